//! Garbage collection: remove blobs and snapshots nothing references.
//!
//! What is alive: everything an image references (manifest, config, layer
//! blobs; the snapshots of its layers), everything a live lease protects,
//! and what build-cache records list. Everything else in `blobs/`,
//! `snapshots/` and `ingest/` is garbage, and so are temporary files and
//! directories of processes that are gone. The collection runs in one
//! metadata transaction, under the store lock, so no other kiln process can
//! add a reference in the middle of it.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::PathBuf;

use kiln_oci::Digest;
use serde::Deserialize;

use crate::content::{sha256_name, temp_owner};
use crate::lease::{pid_alive, LeaseRecord};
use crate::meta::{Txn, BUILD_CACHE, CONTAINERS, IMAGES, LEASES, SNAPSHOTS};
use crate::records::{ImageRecord, SnapshotRecord};
use crate::store::io_err;
use crate::{Error, Store};

/// What a collection removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs removed.
    pub blobs: usize,
    /// Snapshots removed.
    pub snapshots: usize,
    /// Dead leases removed.
    pub leases: usize,
    /// Temporary files and directories of dead processes removed.
    pub temps: usize,
    /// Bytes freed (blob sizes plus snapshot content sizes).
    pub bytes: u64,
}

/// What is alive.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) blobs: BTreeSet<Digest>,
    pub(crate) snapshots: BTreeSet<Digest>,
}

/// The parts of a build-cache record the collector reads.
#[derive(Debug, Default, Deserialize)]
struct CacheRefs {
    #[serde(default)]
    blobs: Vec<Digest>,
    #[serde(default)]
    snapshots: Vec<Digest>,
}

/// The parts of a container record the collector reads (older records
/// have only `image`).
#[derive(Debug, Default, Deserialize)]
struct ContainerRefs {
    #[serde(default)]
    config_digest: Option<Digest>,
    #[serde(default)]
    snapshots: Vec<Digest>,
}

/// Everything referenced; dead leases are removed on the way (counted in
/// the returned number).
pub(crate) fn live_set(t: &mut Txn) -> Result<(Live, usize), Error> {
    let mut live = Live::default();
    let images: Vec<(String, ImageRecord)> = t.all(IMAGES)?;
    for (_, i) in &images {
        live.blobs.extend(i.blobs().cloned());
        live.snapshots.extend(i.snapshots().cloned());
    }
    let mut dead = 0;
    let leases: Vec<(String, LeaseRecord)> = t.all(LEASES)?;
    for (id, l) in leases {
        if l.alive() {
            live.blobs.extend(l.blobs);
            live.snapshots.extend(l.snapshots);
        } else {
            t.remove(LEASES, &id)?;
            dead += 1;
        }
    }
    // A container keeps its image's config and snapshots (its overlay
    // lowers) even if the image record were gone.
    let containers: Vec<(String, ContainerRefs)> = t.all(CONTAINERS)?;
    for (_, c) in containers {
        live.blobs.extend(c.config_digest);
        live.snapshots.extend(c.snapshots);
    }
    let cache: Vec<(String, CacheRefs)> = t.all(BUILD_CACHE)?;
    for (_, c) in cache {
        live.blobs.extend(c.blobs);
        live.snapshots.extend(c.snapshots);
    }
    // A snapshot keeps its parents: overlay needs the whole stack.
    let records: Vec<(String, SnapshotRecord)> = t.all(SNAPSHOTS)?;
    let parents: std::collections::BTreeMap<Digest, Digest> = records
        .into_iter()
        .filter_map(|(k, r)| Some((k.parse().ok()?, r.parent?)))
        .collect();
    let mut todo: Vec<Digest> = live.snapshots.iter().cloned().collect();
    while let Some(s) = todo.pop() {
        if let Some(p) = parents.get(&s) {
            if live.snapshots.insert(p.clone()) {
                todo.push(p.clone());
            }
        }
    }
    Ok((live, dead))
}

impl Store {
    /// Remove everything nothing references.
    pub fn gc(&self) -> Result<GcReport, Error> {
        self.meta.write(|t| {
            let (live, leases) = live_set(t)?;
            let mut report = GcReport {
                leases,
                ..GcReport::default()
            };
            for (d, size) in self.content().list()? {
                if !live.blobs.contains(&d) {
                    self.content().remove(&d)?;
                    report.blobs += 1;
                    report.bytes += size;
                }
            }
            let records: Vec<(String, SnapshotRecord)> = t.all(SNAPSHOTS)?;
            let mut known = BTreeSet::new();
            for (k, r) in records {
                let keep = k
                    .parse::<Digest>()
                    .is_ok_and(|d| live.snapshots.contains(&d));
                if keep {
                    known.insert(k);
                    continue;
                }
                self.remove_snapshot_dir_hex(k.strip_prefix("sha256:").unwrap_or(&k))?;
                t.remove(SNAPSHOTS, &k)?;
                report.snapshots += 1;
                report.bytes += r.size;
            }
            // Directories without a record: a crashed extraction's temporary
            // directory, or one renamed into place just before its process
            // died (not yet recorded, protected only by its dead lease).
            for (path, temp) in self.unreferenced_snapshot_dirs(&known, &live)? {
                remove_dir(&path)?;
                if temp {
                    report.temps += 1;
                } else {
                    report.snapshots += 1;
                }
            }
            report.temps += self.content().clean_ingest(pid_alive)?;
            Ok(report)
        })
    }

    /// Directories under `snapshots/` that neither a record in `known` nor
    /// a live lease accounts for, each with whether it is a temporary one:
    /// a crashed extraction's temporary directory (its process dead), or
    /// one renamed into place just before its process died (not yet
    /// recorded, protected only by its dead lease).
    pub(crate) fn unreferenced_snapshot_dirs(
        &self,
        known: &BTreeSet<String>,
        live: &Live,
    ) -> Result<Vec<(PathBuf, bool)>, Error> {
        let dir = self.snapshots_dir();
        let mut out = Vec::new();
        for e in fs::read_dir(dir).map_err(io_err("list", dir))? {
            let e = e.map_err(io_err("list", dir))?;
            let name = e.file_name();
            if let Some(pid) = temp_owner(&name) {
                if !pid_alive(pid) {
                    out.push((e.path(), true));
                }
                continue;
            }
            let Some(d) = sha256_name(&name) else {
                continue;
            };
            if !known.contains(&d.to_string()) && !live.snapshots.contains(&d) {
                out.push((e.path(), false));
            }
        }
        Ok(out)
    }

    /// Remove what of `record` nothing else references (after `rmi`).
    pub(crate) fn collect(&self, record: &ImageRecord) -> Result<GcReport, Error> {
        self.meta
            .write(|t| self.sweep(t, record.blobs(), record.snapshots()))
    }

    /// End a lease and remove what it alone kept alive.
    pub(crate) fn release_lease(&self, id: &str) -> Result<GcReport, Error> {
        self.meta.write(|t| self.release_lease_in(t, id))
    }

    /// [`Store::release_lease`] in the caller's write transaction.
    pub(crate) fn release_lease_in(&self, t: &mut Txn, id: &str) -> Result<GcReport, Error> {
        let Some(lease) = t.get::<LeaseRecord>(LEASES, id)? else {
            return Ok(GcReport::default());
        };
        t.remove(LEASES, id)?;
        self.sweep(t, &lease.blobs, &lease.snapshots)
    }

    /// Remove those of the candidate blobs and snapshots that nothing live
    /// references (a collection limited to what one operation touched).
    fn sweep<'d>(
        &self,
        t: &mut Txn,
        blobs: impl IntoIterator<Item = &'d Digest>,
        snapshots: impl IntoIterator<Item = &'d Digest>,
    ) -> Result<GcReport, Error> {
        let (live, leases) = live_set(t)?;
        let mut report = GcReport {
            leases,
            ..GcReport::default()
        };
        let blobs: BTreeSet<&Digest> = blobs.into_iter().collect();
        for d in blobs {
            if !live.blobs.contains(d) && self.content().contains(d) {
                report.bytes += fs::metadata(self.content().path(d)?).map_or(0, |m| m.len());
                self.content().remove(d)?;
                report.blobs += 1;
            }
        }
        for c in snapshots {
            if live.snapshots.contains(c) {
                continue;
            }
            if let Some(r) = t.get::<SnapshotRecord>(SNAPSHOTS, &c.to_string())? {
                report.bytes += r.size;
            }
            self.remove_snapshot_dir_hex(c.hex())?;
            if t.remove(SNAPSHOTS, &c.to_string())? {
                report.snapshots += 1;
            }
        }
        Ok(report)
    }

    fn remove_snapshot_dir_hex(&self, hex: &str) -> Result<(), Error> {
        remove_dir(&self.snapshots_dir().join(hex))
    }
}

/// Remove a directory tree, renaming it aside first so that a crash in the
/// middle leaves a temporary directory (collected later), never a
/// half-empty snapshot under its real name.
pub(crate) fn remove_dir(path: &std::path::Path) -> Result<(), Error> {
    let parent = path.parent().unwrap_or(path);
    let doomed = kiln_fs::atomic::temp_path(parent);
    match fs::rename(path, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("remove", path)(e)),
    }
    make_writable(&doomed);
    fs::remove_dir_all(&doomed).map_err(io_err("remove", &doomed))
}

/// Directories without write permission cannot be emptied by a non-root
/// owner; give them back the owner's write bit first (best effort).
fn make_writable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if rustix::process::geteuid().is_root() {
        return;
    }
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        if !m.is_dir() {
            continue;
        }
        let mode = m.permissions().mode();
        if mode & 0o700 != 0o700 {
            let _ = fs::set_permissions(&p, fs::Permissions::from_mode(mode | 0o700));
        }
        if let Ok(rd) = fs::read_dir(&p) {
            stack.extend(rd.flatten().map(|e| e.path()));
        }
    }
}
