//! `commit`: a new image from an existing one plus a layer written from a
//! container's overlay upper directory (whiteouts for deletions, opaque
//! directories), with a history entry and a new container configuration.
//! The layer is written by `kiln_fs::layer::write_tar` in overlay mode and
//! ingested like any other layer (extracted into a snapshot on top of the
//! parent's top snapshot, compressed into a blob), under a lease.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use kiln_fs::layer::{write_tar, WriteOptions};
use kiln_fs::pipe::{chunk_pipe, ChunkReader};
use kiln_oci::config::{ContainerConfig, History};
use kiln_oci::media_types::ManifestFormat;
use kiln_oci::time::format_rfc3339;
use kiln_oci::{Descriptor, ImageConfig, ImageManifest, Reference};

use crate::archive::ArchiveError;
use crate::layer::NewLayerOptions;
use crate::lease::now;
use crate::records::ImageRecord;
use crate::{Error, Store};

/// What the new image says about itself.
#[derive(Debug, Clone)]
pub struct CommitOptions {
    /// The new image's container configuration.
    pub config: ContainerConfig,
    /// History comment (`--message`).
    pub comment: Option<String>,
    /// Author (`--author`).
    pub author: Option<String>,
    /// `created_by` of the history entry (Docker: the container's command).
    pub created_by: Option<String>,
}

impl Store {
    /// Commit the overlay upper directory `upper` on top of `parent` as a
    /// new image named `names`.
    pub fn commit(
        &self,
        parent: &ImageRecord,
        upper: &Path,
        opts: &CommitOptions,
        names: &[Reference],
    ) -> Result<ImageRecord, Error> {
        let lease = self.lease()?;
        let parent_config_bytes = self.content().read(&parent.config.digest)?;
        let invalid = |reason: String| ArchiveError::Invalid {
            input: parent.config.digest.to_string(),
            reason,
        };
        let mut config: ImageConfig = serde_json::from_slice(&parent_config_bytes)
            .map_err(|e| invalid(format!("cannot read the image config: {e}")))?;
        let format = if parent.manifest.media_type == ManifestFormat::Docker.manifest() {
            ManifestFormat::Docker
        } else {
            ManifestFormat::Oci
        };
        let layer_opts = NewLayerOptions {
            format,
            ..NewLayerOptions::default()
        };
        let top = parent.layers.last().map(|l| &l.chain_id);
        let (out, rx) = chunk_pipe(16);
        let layer = std::thread::scope(|s| {
            let writer = s.spawn(move || {
                let opts = WriteOptions {
                    overlay: true,
                    ..WriteOptions::default()
                };
                let out =
                    write_tar(upper, out, &opts).map_err(|e| io::Error::other(e.to_string()))?;
                out.finish()
            });
            let reader = ChunkReader::new(rx);
            let result = self.ingest_layer_tar(&lease, reader, top, &layer_opts);
            let written = writer.join().map_err(|_| ArchiveError::Io {
                action: "read",
                input: upper.display().to_string(),
                source: io::Error::other("the layer writer panicked"),
            })?;
            written.map_err(|source| ArchiveError::Io {
                action: "read",
                input: upper.display().to_string(),
                source,
            })?;
            result
        })?;
        let created = format_rfc3339(SystemTime::now());
        config.created = Some(created.clone());
        config.author = opts.author.clone();
        config.config = Some(opts.config.clone());
        config.rootfs.diff_ids.push(layer.diff_id.clone());
        config.history.push(History {
            created: Some(created.clone()),
            created_by: opts.created_by.clone(),
            author: opts.author.clone(),
            comment: opts.comment.clone(),
            empty_layer: false,
            extra: Default::default(),
        });
        let config_bytes = kiln_oci::json::to_canonical_json(&config)
            .map_err(|e| invalid(format!("cannot write the image config: {e}")))?;
        let config_digest = self.content().put(&config_bytes, None)?;
        lease.protect([&config_digest], [])?;
        let config_desc =
            Descriptor::new(format.config(), config_digest, config_bytes.len() as u64);
        let mut layers: Vec<Descriptor> = parent.layers.iter().map(|l| l.blob.clone()).collect();
        layers.push(layer.blob.clone());
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(format.manifest().into()),
            artifact_type: None,
            config: config_desc.clone(),
            layers,
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        };
        let manifest_bytes = kiln_oci::json::to_canonical_json(&manifest)
            .map_err(|e| invalid(format!("cannot write the manifest: {e}")))?;
        let manifest_digest = self.content().put(&manifest_bytes, None)?;
        lease.protect([&manifest_digest], [])?;
        let mut all_layers = parent.layers.clone();
        all_layers.push(layer);
        let record = ImageRecord {
            manifest: Descriptor::new(
                format.manifest(),
                manifest_digest,
                manifest_bytes.len() as u64,
            ),
            config: config_desc,
            layers: all_layers,
            created: Some(created),
            platform: parent.platform.clone(),
            added: now(),
            repo_digests: Default::default(),
        };
        self.add_image(&record, names)?;
        Ok(record)
    }
}
