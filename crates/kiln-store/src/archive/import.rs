//! `import`: a root file system (a tarball in any compression, or a
//! directory) becomes a one-layer image.

use std::io::{self, Read};
use std::path::PathBuf;
use std::time::SystemTime;

use kiln_fs::layer::{write_tar, WriteOptions};
use kiln_fs::pipe::{chunk_pipe, ChunkReader};
use kiln_oci::config::{ContainerConfig, History, RootFs};
use kiln_oci::time::format_rfc3339;
use kiln_oci::{Descriptor, ImageConfig, ImageManifest, Platform, Reference};

use super::ArchiveError;
use crate::layer::NewLayerOptions;
use crate::lease::now;
use crate::records::ImageRecord;
use crate::{Error, Store};

/// What to import and how.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The container configuration (from `--change`).
    pub config: ContainerConfig,
    /// The history comment (`--message`); default `Imported from SOURCE`.
    pub message: Option<String>,
    /// How the source is named in the default comment (`-`, a path).
    pub source_name: String,
    /// The image's platform.
    pub platform: Platform,
    /// How the layer is compressed.
    pub layer: NewLayerOptions,
}

/// What to import from.
#[derive(Debug)]
pub enum ImportSource<R> {
    /// A tar stream.
    Tar(R),
    /// A directory, written as a layer.
    Dir(PathBuf),
}

impl Store {
    /// Import a root file system as a one-layer image named `names`.
    pub fn import<R: Read>(
        &self,
        source: ImportSource<R>,
        opts: &ImportOptions,
        names: &[Reference],
    ) -> Result<ImageRecord, Error> {
        let lease = self.lease()?;
        let layer = match source {
            ImportSource::Tar(r) => self.ingest_layer_tar(&lease, r, None, &opts.layer)?,
            ImportSource::Dir(dir) => {
                let (out, rx) = chunk_pipe(16);
                std::thread::scope(|s| {
                    let writer = s.spawn(move || {
                        let out = write_tar(&dir, out, &WriteOptions::default())
                            .map_err(|e| io::Error::other(e.to_string()))?;
                        out.finish()
                    });
                    let reader = ChunkReader::new(rx);
                    let result = self.ingest_layer_tar(&lease, reader, None, &opts.layer);
                    let written = writer.join().map_err(|_| ArchiveError::Io {
                        action: "read",
                        input: "the directory".into(),
                        source: io::Error::other("the layer writer panicked"),
                    })?;
                    // The writer's error explains a reader's failure best.
                    written.map_err(|source| ArchiveError::Io {
                        action: "read",
                        input: "the directory".into(),
                        source,
                    })?;
                    result
                })?
            }
        };
        let created = format_rfc3339(SystemTime::now());
        let config = ImageConfig {
            created: Some(created.clone()),
            author: None,
            architecture: opts.platform.architecture.clone(),
            os: opts.platform.os.clone(),
            os_version: None,
            os_features: Vec::new(),
            variant: (!opts.platform.variant.is_empty()).then(|| opts.platform.variant.clone()),
            config: Some(opts.config.clone()),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![layer.diff_id.clone()],
            },
            history: vec![History {
                created: Some(created.clone()),
                created_by: None,
                author: None,
                comment: Some(
                    opts.message
                        .clone()
                        .unwrap_or_else(|| format!("Imported from {}", opts.source_name)),
                ),
                empty_layer: false,
                extra: Default::default(),
            }],
            extra: Default::default(),
        };
        let json_err = |e: serde_json::Error| ArchiveError::Invalid {
            input: opts.source_name.clone(),
            reason: format!("cannot write the image config: {e}"),
        };
        let config_bytes = kiln_oci::json::to_canonical_json(&config).map_err(json_err)?;
        let config_digest = self.content().put(&config_bytes, None)?;
        let format = opts.layer.format;
        let config_desc =
            Descriptor::new(format.config(), config_digest, config_bytes.len() as u64);
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(format.manifest().into()),
            artifact_type: None,
            config: config_desc.clone(),
            layers: vec![layer.blob.clone()],
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        };
        let manifest_bytes = kiln_oci::json::to_canonical_json(&manifest).map_err(json_err)?;
        lease.protect([&config_desc.digest], [])?;
        let manifest_digest = self.content().put(&manifest_bytes, None)?;
        lease.protect([&manifest_digest], [])?;
        let record = ImageRecord {
            manifest: Descriptor::new(
                format.manifest(),
                manifest_digest,
                manifest_bytes.len() as u64,
            ),
            config: config_desc,
            layers: vec![layer],
            created: Some(created),
            platform: opts.platform.to_string(),
            added: now(),
            repo_digests: Default::default(),
        };
        self.add_image(&record, names)?;
        Ok(record)
    }
}
