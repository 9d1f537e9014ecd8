//! `system check`: re-hash every blob, check every reference, find orphans;
//! with `repair`, remove what is corrupt or unreachable.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::PathBuf;

use kiln_oci::manifest::{parse_manifest, Manifest};
use kiln_oci::{Digest, ImageConfig};

use crate::content::temp_owner;
use crate::gc::{live_set, remove_dir};
use crate::lease::pid_alive;
use crate::meta::{IMAGES, SNAPSHOTS};
use crate::records::{ImageRecord, SnapshotRecord};
use crate::store::{all_images, io_err};
use crate::{Error, Store};

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob whose content does not match its name.
    CorruptBlob {
        /// The blob.
        digest: Digest,
    },
    /// An image whose manifest, config or layers are missing or wrong.
    BrokenImage {
        /// The image's manifest digest.
        image: Digest,
        /// What is wrong.
        reason: String,
    },
    /// A snapshot record whose directory is missing.
    MissingSnapshotDir {
        /// The snapshot.
        chain_id: Digest,
    },
    /// A blob nothing references.
    OrphanBlob {
        /// The blob.
        digest: Digest,
    },
    /// A snapshot nothing references, or a directory without a record.
    OrphanSnapshot {
        /// The snapshot.
        chain_id: Digest,
    },
    /// A file that does not belong (a temporary file of a dead process,
    /// a file in `blobs/` that is not named by a digest).
    Stray {
        /// The file.
        path: PathBuf,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::CorruptBlob { digest } => {
                write!(f, "blob {digest}: content does not match its digest")
            }
            Problem::BrokenImage { image, reason } => write!(f, "image {image}: {reason}"),
            Problem::MissingSnapshotDir { chain_id } => {
                write!(f, "snapshot {chain_id}: directory missing")
            }
            Problem::OrphanBlob { digest } => write!(f, "blob {digest}: not referenced"),
            Problem::OrphanSnapshot { chain_id } => {
                write!(f, "snapshot {chain_id}: not referenced")
            }
            Problem::Stray { path } => write!(f, "{}: stray file", path.display()),
        }
    }
}

/// What a check found (and, with repair, fixed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Blobs re-hashed.
    pub blobs: usize,
    /// Images checked.
    pub images: usize,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Problems found.
    pub problems: Vec<Problem>,
    /// Images removed by the repair because their content is lost.
    pub removed_images: Vec<Digest>,
}

impl Store {
    /// Check the whole store; with `repair`, remove corrupt blobs, images
    /// that cannot be used any more, and everything unreferenced.
    pub fn check(&self, repair: bool) -> Result<CheckReport, Error> {
        let mut report = CheckReport::default();
        // Hash outside the lock: it reads every byte of the store.
        let blobs = self.content().list()?;
        let mut corrupt = BTreeSet::new();
        for (d, _) in &blobs {
            match self.content().verify(d) {
                Ok((true, _)) => {}
                Ok((false, _)) => {
                    corrupt.insert(d.clone());
                }
                // Removed meanwhile by another process's collection.
                Err(crate::StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
            report.blobs += 1;
        }
        for p in self.content().strays()? {
            report.problems.push(Problem::Stray { path: p });
        }
        self.meta.write(|t| {
            let images = all_images(t)?;
            let snapshots: Vec<(String, SnapshotRecord)> = t.all(SNAPSHOTS)?;
            let snapshot_ids: BTreeSet<String> = snapshots.iter().map(|(k, _)| k.clone()).collect();
            report.images = images.len();
            report.snapshots = snapshots.len();
            for d in &corrupt {
                report
                    .problems
                    .push(Problem::CorruptBlob { digest: d.clone() });
            }
            let mut broken = Vec::new();
            for image in &images {
                if let Some(reason) = self.image_problem(&image.record, &corrupt, &snapshot_ids) {
                    report.problems.push(Problem::BrokenImage {
                        image: image.record.manifest.digest.clone(),
                        reason,
                    });
                    broken.push(image);
                }
            }
            for (k, _) in &snapshots {
                let Ok(d) = k.parse::<Digest>() else { continue };
                if !self.snapshot_path(&d).is_dir() {
                    report
                        .problems
                        .push(Problem::MissingSnapshotDir { chain_id: d });
                }
            }
            if repair {
                for d in &corrupt {
                    self.content().remove(d)?;
                }
                for image in &broken {
                    for n in &image.names {
                        t.remove_name(&n.to_string())?;
                    }
                    t.remove(IMAGES, &image.record.manifest.digest.to_string())?;
                    report
                        .removed_images
                        .push(image.record.manifest.digest.clone());
                }
                for p in report.problems.iter() {
                    if let Problem::MissingSnapshotDir { chain_id } = p {
                        t.remove(SNAPSHOTS, &chain_id.to_string())?;
                        remove_dir(&self.snapshots_dir().join(chain_id.hex()))?;
                    }
                    if let Problem::Stray { path } = p {
                        fs::remove_file(path).map_err(io_err("remove", path))?;
                    }
                }
            }
            // Orphans, as the collector sees them (live leases respected).
            let (live, _) = live_set(t)?;
            for (d, _) in &blobs {
                if !live.blobs.contains(d) && !corrupt.contains(d) && self.content().contains(d) {
                    report
                        .problems
                        .push(Problem::OrphanBlob { digest: d.clone() });
                }
            }
            for (k, _) in &snapshots {
                if let Ok(d) = k.parse::<Digest>() {
                    if !live.snapshots.contains(&d) {
                        report
                            .problems
                            .push(Problem::OrphanSnapshot { chain_id: d });
                    }
                }
            }
            for (path, _) in self.unreferenced_snapshot_dirs(&snapshot_ids, &live)? {
                report.problems.push(Problem::Stray { path });
            }
            let ingest = self.root().join("ingest");
            for e in fs::read_dir(&ingest).map_err(io_err("list", &ingest))? {
                let e = e.map_err(io_err("list", &ingest))?;
                if !temp_owner(&e.file_name()).is_some_and(pid_alive) {
                    report.problems.push(Problem::Stray { path: e.path() });
                }
            }
            Ok::<_, Error>(())
        })?;
        if repair {
            self.gc()?;
            for p in &report.problems {
                if let Problem::Stray { path } = p {
                    if path.starts_with(self.snapshots_dir()) && path.exists() {
                        remove_dir(path)?;
                    }
                }
            }
        }
        Ok(report)
    }

    fn image_problem(
        &self,
        record: &ImageRecord,
        corrupt: &BTreeSet<Digest>,
        snapshots: &BTreeSet<String>,
    ) -> Option<String> {
        for d in record.blobs() {
            if corrupt.contains(d) {
                return Some(format!("blob {d} is corrupt"));
            }
            if !self.content().contains(d) {
                return Some(format!("blob {d} is missing"));
            }
        }
        for c in record.snapshots() {
            if !snapshots.contains(&c.to_string()) {
                return Some(format!("snapshot {c} is missing"));
            }
        }
        let bytes = match self.content().read(&record.manifest.digest) {
            Ok(b) => b,
            Err(e) => return Some(e.to_string()),
        };
        let manifest = match parse_manifest(&record.manifest.media_type, bytes) {
            Ok(m) => m,
            Err(e) => return Some(format!("manifest: {e}")),
        };
        let Manifest::Image(m) = manifest.value else {
            return Some("manifest is an index, not an image".into());
        };
        if m.config.digest != record.config.digest {
            return Some("manifest names another config".into());
        }
        let layers: Vec<&Digest> = m.layers.iter().map(|l| &l.digest).collect();
        let recorded: Vec<&Digest> = record.layers.iter().map(|l| &l.blob.digest).collect();
        if layers != recorded {
            return Some("manifest lists other layers than recorded".into());
        }
        let config: ImageConfig = match self
            .content()
            .read(&record.config.digest)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(c) => c,
            None => return Some("config does not parse".into()),
        };
        let diff_ids: Vec<&Digest> = record.layers.iter().map(|l| &l.diff_id).collect();
        if config.rootfs.diff_ids.iter().collect::<Vec<_>>() != diff_ids {
            return Some("config's DiffIDs differ from the layers'".into());
        }
        None
    }
}
