//! Bringing a layer into the store: its blob into `blobs/`, its files into
//! a snapshot, in one pass over the bytes, with the digest, size and DiffID
//! verified before anything is published.
//!
//! Two ways in:
//! - [`Store::ingest_layer_blob`]: the bytes *are* the blob (a layer from an
//!   archive or a registry): stored as they are, so the manifest that names
//!   them keeps its digest.
//! - [`Store::ingest_layer_tar`]: a tar stream in any compression (`import`):
//!   compressed anew on a second thread while it is extracted.
//!
//! Order of publication: the blob and snapshot are protected by the caller's
//! lease, then published (blob renamed, snapshot directory renamed and
//! recorded). A failure before that leaves nothing: temporary files and
//! directories are removed on drop, or by the next collection if the
//! process was killed.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::mpsc;

use kiln_fs::apply::{apply_layer, ApplyError, ApplyOptions, ApplyStats};
use kiln_fs::compress::{available_threads, decompressed, CompressOptions, Encoder};
use kiln_fs::hash::{HashingWriter, TeeReader};
use kiln_fs::pipe::ChunkWriter;
use kiln_oci::media_types::{Compression, ManifestFormat};
use kiln_oci::{Descriptor, Digest};
use thiserror::Error;

use crate::content::Ingest;
use crate::lease::Lease;
use crate::meta::SNAPSHOTS;
use crate::records::{chain_id, LayerRecord, SnapshotRecord};
use crate::store::io_err;
use crate::{Error, Store};

/// A layer that cannot be stored.
#[derive(Debug, Error)]
pub enum LayerError {
    /// The layer's files cannot be extracted.
    #[error("failed to apply layer {digest}: {source}")]
    Apply {
        /// The layer (blob digest, or DiffID for a new layer).
        digest: String,
        /// Why.
        #[source]
        source: ApplyError,
    },
    /// Reading or decompressing the layer failed.
    #[error("failed to read layer {digest}: {source}")]
    Read {
        /// The layer.
        digest: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The uncompressed content is not what the image config says.
    #[error("layer {digest}: uncompressed content has DiffID {actual}, but the image config says {expected}")]
    DiffId {
        /// The layer blob.
        digest: Digest,
        /// From the config.
        expected: Digest,
        /// Computed.
        actual: Digest,
    },
    /// Compressing the new layer failed.
    #[error("failed to compress the new layer: {source}")]
    Compress {
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// How a new layer is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewLayerOptions {
    /// gzip, zstd or none.
    pub compression: Compression,
    /// Level (gzip 0–9, zstd 1–19); default per algorithm.
    pub level: Option<i32>,
    /// Limits for the extraction.
    pub apply: ApplyOptions,
    /// OCI or Docker media types.
    pub format: ManifestFormat,
}

impl Default for NewLayerOptions {
    fn default() -> Self {
        NewLayerOptions {
            compression: Compression::Gzip,
            level: None,
            apply: ApplyOptions::default(),
            format: ManifestFormat::Oci,
        }
    }
}

impl Store {
    /// Store the layer blob read from `input` (exactly `blob.size` bytes
    /// with digest `blob.digest`, whose uncompressed tar must have DiffID
    /// `diff_id`), on top of the snapshot `parent`. What is already in the
    /// store is not read again: then `input` may be left unread.
    pub fn ingest_layer_blob(
        &self,
        lease: &Lease<'_>,
        input: impl Read,
        blob: &Descriptor,
        diff_id: &Digest,
        parent: Option<&Digest>,
        apply: &ApplyOptions,
    ) -> Result<LayerRecord, Error> {
        let chain = chain_id(parent, diff_id);
        lease.protect([&blob.digest], [&chain])?;
        let have_blob = self.content().contains(&blob.digest);
        let existing = self.existing_snapshot(&chain)?;
        let record = |unpacked_size, tar_size| LayerRecord {
            blob: blob.clone(),
            diff_id: diff_id.clone(),
            chain_id: chain.clone(),
            unpacked_size,
            tar_size,
        };
        if let (true, Some(s)) = (have_blob, &existing) {
            return Ok(record(s.size, s.tar_size));
        }
        let name = blob.digest.to_string();
        let read_err = |source| LayerError::Read {
            digest: name.clone(),
            source,
        };
        let mut ingest = match have_blob {
            true => None,
            false => Some(
                self.content()
                    .ingest(Some((blob.digest.clone(), blob.size)))?,
            ),
        };
        let mut input = input;
        let mut snapshot = match existing {
            Some(_) => None,
            None => Some(NewSnapshot::create(self)?),
        };
        let (actual, tar_size, stats) = {
            let raw = TeeReader::new(&mut input, MaybeWriter(ingest.as_mut()));
            let tar = decompressed(raw).map_err(read_err)?;
            let mut tar = TeeReader::new(tar, HashingWriter::new(io::sink()));
            let stats = match &snapshot {
                Some(s) => {
                    apply_layer(&mut tar, &s.fs, apply).map_err(|source| LayerError::Apply {
                        digest: name.clone(),
                        source,
                    })?
                }
                None => ApplyStats::default(),
            };
            let (_, hasher) = tar.drain().map_err(read_err)?;
            let (digest, size, _) = hasher.finish();
            (digest, size, stats)
        };
        // The blob is whole only when the input is exhausted (a compressed
        // stream may carry bytes after its end).
        io::copy(&mut input, &mut MaybeWriter(ingest.as_mut())).map_err(read_err)?;
        if actual != *diff_id {
            return Err(LayerError::DiffId {
                digest: blob.digest.clone(),
                expected: diff_id.clone(),
                actual,
            }
            .into());
        }
        if let Some(ingest) = ingest {
            ingest.finish()?.publish()?;
        }
        let size = match snapshot.take() {
            Some(s) => {
                s.publish(self, &chain, diff_id, parent, stats, tar_size)?;
                stats.bytes
            }
            None => existing.map_or(0, |s| s.size),
        };
        Ok(record(size, tar_size))
    }

    /// Make a new layer from the tar stream `input` (plain, gzip or zstd,
    /// detected): extracted into a snapshot on top of `parent` and
    /// compressed into a new blob, in one pass on two threads.
    pub fn ingest_layer_tar(
        &self,
        lease: &Lease<'_>,
        input: impl Read,
        parent: Option<&Digest>,
        opts: &NewLayerOptions,
    ) -> Result<LayerRecord, Error> {
        let read_err = |source| LayerError::Read {
            digest: "(new layer)".into(),
            source,
        };
        let snapshot = NewSnapshot::create(self)?;
        let ingest = self.content().ingest(None)?;
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
        let compression = opts.compression;
        let level = opts.level;
        let (diff_id, tar_size, stats, ingest) = std::thread::scope(|scope| {
            let compressor = scope.spawn(move || compress_chunks(rx, ingest, compression, level));
            let result = (|| {
                let tar = decompressed(input).map_err(read_err)?;
                let copy = HashingWriter::new(ChunkWriter::new(tx));
                let mut tar = TeeReader::new(tar, copy);
                let stats = apply_layer(&mut tar, &snapshot.fs, &opts.apply).map_err(|source| {
                    LayerError::Apply {
                        digest: "(new layer)".into(),
                        source,
                    }
                })?;
                let (_, copy) = tar.drain().map_err(read_err)?;
                let (diff_id, tar_size, chunks) = copy.finish();
                chunks.finish().map_err(read_err)?;
                Ok::<_, Error>((diff_id, tar_size, stats))
            })();
            // On failure the sender is dropped above, which ends the thread.
            let ingest = compressor
                .join()
                .map_err(|_| LayerError::Compress {
                    source: io::Error::other("the compression thread panicked"),
                })?
                .map_err(|source| LayerError::Compress { source });
            let (diff_id, tar_size, stats) = result?;
            Ok::<_, Error>((diff_id, tar_size, stats, ingest?))
        })?;
        let verified = ingest.finish()?;
        let chain = chain_id(parent, &diff_id);
        lease.protect([verified.digest()], [&chain])?;
        let blob = Descriptor::new(
            opts.format.layer(opts.compression),
            verified.digest().clone(),
            verified.size(),
        );
        verified.publish()?;
        if self.existing_snapshot(&chain)?.is_none() {
            snapshot.publish(self, &chain, &diff_id, parent, stats, tar_size)?;
        }
        Ok(LayerRecord {
            blob,
            diff_id,
            chain_id: chain,
            unpacked_size: stats.bytes,
            tar_size,
        })
    }

    /// The record of a snapshot whose directory is in place.
    fn existing_snapshot(&self, chain: &Digest) -> Result<Option<SnapshotRecord>, Error> {
        Ok(self
            .snapshot(chain)?
            .filter(|_| self.snapshot_path(chain).is_dir()))
    }
}

/// A snapshot being extracted, in `snapshots/.tmp-PID-…/fs`; removed if
/// dropped unpublished.
#[derive(Debug)]
struct NewSnapshot {
    dir: PathBuf,
    fs: PathBuf,
}

impl NewSnapshot {
    fn create(store: &Store) -> Result<NewSnapshot, Error> {
        let dir = kiln_fs::atomic::temp_path(store.snapshots_dir());
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io_err("create", &dir))?;
        let fs_dir = dir.join("fs");
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&fs_dir)
            .map_err(io_err("create", &fs_dir))?;
        Ok(NewSnapshot { dir, fs: fs_dir })
    }

    /// Rename into `snapshots/<hex>` and record it (the chain id must be
    /// protected by the caller's lease already). If another process
    /// published the same snapshot meanwhile, ours is discarded.
    fn publish(
        mut self,
        store: &Store,
        chain: &Digest,
        diff_id: &Digest,
        parent: Option<&Digest>,
        stats: ApplyStats,
        tar_size: u64,
    ) -> Result<(), Error> {
        let target = store.snapshots_dir().join(chain.hex());
        store.meta.write(|t| {
            if t.get::<SnapshotRecord>(SNAPSHOTS, &chain.to_string())?
                .is_some()
                && target.is_dir()
            {
                return Ok(());
            }
            if target.exists() {
                crate::gc::remove_dir(&target)?;
            }
            fs::rename(&self.dir, &target).map_err(io_err("rename into", &target))?;
            kiln_fs::atomic::sync_dir(store.snapshots_dir())
                .map_err(io_err("sync", store.snapshots_dir()))?;
            self.dir = PathBuf::new();
            t.put(
                SNAPSHOTS,
                &chain.to_string(),
                &SnapshotRecord {
                    diff_id: diff_id.clone(),
                    parent: parent.cloned(),
                    size: stats.bytes,
                    entries: stats.entries,
                    tar_size,
                },
            )?;
            Ok::<_, Error>(())
        })
    }
}

impl Drop for NewSnapshot {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = crate::gc::remove_dir(&self.dir);
        }
    }
}

/// Writes to the ingest when there is one, discards otherwise.
struct MaybeWriter<'a>(Option<&'a mut Ingest>);

impl Write for MaybeWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(w) => w.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

fn compress_chunks(
    rx: mpsc::Receiver<Vec<u8>>,
    ingest: Ingest,
    compression: Compression,
    level: Option<i32>,
) -> io::Result<Ingest> {
    let opts = CompressOptions {
        compression,
        level,
        // pgzip and zstdmt: the same bytes whatever the core count.
        threads: available_threads(),
    };
    let mut enc = Encoder::new(ingest, &opts).map_err(io::Error::other)?;
    for c in rx {
        enc.write_all(&c)?;
    }
    enc.finish().map_err(io::Error::other)
}
