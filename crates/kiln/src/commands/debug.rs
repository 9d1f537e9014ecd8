//! `kiln debug …`: hidden commands that run one library piece alone, for
//! benchmarks (`bench/layers.sh`) and debugging. Not a stable interface.
//!
//! - `layer-write DIR -o FILE`: the layer writer and compressor
//!   ([`kiln_fs::compress::write_compressed_layer`]); prints the DiffID,
//!   the digest and the size of the blob on stdout.
//! - `layer-apply FILE DIR`: the applier ([`kiln_fs::apply::apply_layer`]),
//!   decompressing on a thread of its own, into a new or empty directory.

use std::fs::File;
use std::io::Write;

use anyhow::{bail, Context, Result};
use kiln_fs::apply::{apply_layer, ApplyOptions};
use kiln_fs::compress::{
    available_threads, decompressed_in_background, write_compressed_layer, CompressOptions,
};
use kiln_fs::layer::WriteOptions;
use kiln_oci::media_types::Compression;

use crate::cli::{DebugCommand, LayerApplyArgs, LayerCompression, LayerWriteArgs};

pub(crate) fn run(cmd: &DebugCommand) -> Result<u8> {
    match cmd {
        DebugCommand::LayerWrite(args) => layer_write(args),
        DebugCommand::LayerApply(args) => layer_apply(args),
        DebugCommand::Docs(args) => super::docs::generate(&args.dir),
    }
}

fn layer_write(args: &LayerWriteArgs) -> Result<u8> {
    let compression = match args.compression {
        LayerCompression::Gzip => Compression::Gzip,
        LayerCompression::Zstd => Compression::Zstd,
        LayerCompression::None => Compression::None,
    };
    let threads = args.threads.unwrap_or_else(available_threads);
    let out = File::create(&args.output)
        .with_context(|| format!("failed to create {}", args.output.display()))?;
    // Unbuffered: the compressors write in blocks of tens of KiB or more.
    let (layer, _out) = write_compressed_layer(
        &args.dir,
        out,
        &WriteOptions {
            overlay: args.overlay,
            lower: args.lower.clone(),
            source_date_epoch: None,
        },
        &CompressOptions {
            compression,
            level: args.level,
            threads,
        },
    )
    .with_context(|| format!("failed to write {} as a layer", args.dir.display()))?;
    // No fsync: this measures the codec, as `tar | zstd > FILE` does.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "diff_id {}", layer.layer.diff_id)?;
    writeln!(stdout, "digest {}", layer.digest)?;
    writeln!(stdout, "size {}", layer.size)?;
    writeln!(stdout, "tar_size {}", layer.layer.size)?;
    writeln!(stdout, "entries {}", layer.layer.entries)?;
    Ok(0)
}

fn layer_apply(args: &LayerApplyArgs) -> Result<u8> {
    match std::fs::read_dir(&args.dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} is not empty", args.dir.display());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(&args.dir)
            .with_context(|| format!("failed to create {}", args.dir.display()))?,
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", args.dir.display())),
    }
    let file = File::open(&args.file)
        .with_context(|| format!("failed to open {}", args.file.display()))?;
    let tar = decompressed_in_background(file)
        .with_context(|| format!("failed to read {}", args.file.display()))?;
    let stats = apply_layer(tar, &args.dir, &ApplyOptions::default()).with_context(|| {
        format!(
            "failed to apply {} into {}",
            args.file.display(),
            args.dir.display()
        )
    })?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "entries {}", stats.entries)?;
    writeln!(stdout, "bytes {}", stats.bytes)?;
    Ok(0)
}
