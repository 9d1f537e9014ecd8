//! The store as a whole: content, snapshots and the metadata database under
//! one root, and the image operations on them (add, list, resolve, tag,
//! untag, remove).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use kiln_oci::{Digest, Reference, ReferenceError};
use thiserror::Error;

use crate::content::{ContentStore, StoreError};
use crate::lease::{Lease, LeaseRecord};
use crate::meta::{Meta, MetaError, Txn, CONTAINERS, IMAGES, LEASES, SNAPSHOTS};
use crate::records::{ImageRecord, SnapshotRecord};

/// A store operation that failed.
#[derive(Debug, Error)]
pub enum Error {
    /// The content store failed.
    #[error(transparent)]
    Content(#[from] StoreError),
    /// The metadata database failed.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// File-system trouble outside the content store.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A layer that cannot be stored.
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    /// An archive that cannot be loaded or written.
    #[error(transparent)]
    Archive(#[from] crate::archive::ArchiveError),
    /// A name that is not a reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Nothing by that name or id.
    #[error("no such image: {name}")]
    NoSuchImage {
        /// What was asked for.
        name: String,
    },
    /// A short id matching several images.
    #[error("image id prefix {prefix:?} is ambiguous: it matches {count} images")]
    Ambiguous {
        /// The prefix.
        prefix: String,
        /// How many images it matches.
        count: usize,
    },
    /// Deleting by id an image that has names in several repositories.
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")]
    MultipleRepositories {
        /// The short image id.
        id: String,
    },
    /// Deleting an image a container uses.
    #[error("conflict: unable to {action} (must be forced) - image is being used by container {container}")]
    InUse {
        /// What was refused (`delete ID`, `remove repository reference "x"`).
        action: String,
        /// The container's id.
        container: String,
    },
    /// A lease removed by someone else (its expiry passed).
    #[error("lease {id} expired while the operation was running")]
    LeaseLost {
        /// The lease.
        id: String,
    },
    /// A container lookup or change failed.
    #[error(transparent)]
    Container(#[from] crate::containers::ContainerError),
    /// A volume lookup or change failed.
    #[error(transparent)]
    Volume(#[from] crate::volumes::VolumeError),
    /// Content an image needs is missing.
    #[error("image {image}: {what} {digest} is not in the store")]
    Missing {
        /// The image's manifest digest.
        image: Digest,
        /// blob or snapshot.
        what: &'static str,
        /// What is missing.
        digest: Digest,
    },
}

pub(crate) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// kiln's local store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    content: ContentStore,
    snapshots: PathBuf,
    pub(crate) meta: Meta,
}

/// An image with the names that point to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// What the store knows of it.
    pub record: ImageRecord,
    /// Its names (tags), sorted.
    pub names: Vec<Reference>,
}

/// What removing an image did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// A name was removed.
    Untagged(Reference),
    /// An image was deleted (its id, the config digest).
    Deleted(Digest),
}

impl Store {
    /// Open (creating) the store at `root`. If an earlier kiln process
    /// died in the middle of an operation (its lease is dead), what it left
    /// half-done is removed now.
    pub fn open(root: &Path) -> Result<Store, Error> {
        let content = ContentStore::open(root)?;
        let snapshots = root.join("snapshots");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&snapshots)
            .map_err(io_err("create", &snapshots))?;
        let store = Store {
            root: root.to_path_buf(),
            content,
            snapshots,
            meta: Meta::new(root),
        };
        let dead = store.meta.read(|t| {
            let leases: Vec<(String, LeaseRecord)> = t.all(LEASES)?;
            Ok::<_, Error>(leases.iter().any(|(_, l)| !l.alive()))
        })?;
        if dead {
            tracing::info!("a kiln process died mid-operation: collecting what it left");
            store.gc()?;
        }
        Ok(store)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The content store.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The directory of snapshots.
    pub(crate) fn snapshots_dir(&self) -> &Path {
        &self.snapshots
    }

    /// The file-system root of a snapshot (`snapshots/<hex>/fs`): an
    /// overlay lower directory.
    pub fn snapshot_path(&self, chain_id: &Digest) -> PathBuf {
        self.snapshots.join(chain_id.hex()).join("fs")
    }

    /// A snapshot's record, if it exists.
    pub fn snapshot(&self, chain_id: &Digest) -> Result<Option<SnapshotRecord>, Error> {
        self.meta
            .read(|t| t.get(SNAPSHOTS, &chain_id.to_string()).map_err(Error::from))
    }

    /// Record an image and point `names` at it, in one transaction; every
    /// blob and snapshot it references must be there. Returns the images
    /// that lost a name to it (their manifest digests).
    pub fn add_image(
        &self,
        record: &ImageRecord,
        names: &[Reference],
    ) -> Result<Vec<Digest>, Error> {
        self.meta.write(|t| self.add_image_in(t, record, names))
    }

    /// [`Store::add_image`], in the same transaction storing `blobs` (the
    /// image's config and manifest, small: written under the database lock,
    /// so no collection sees them unreferenced) that are not here yet and
    /// ending `lease` (what only it protected and the image does not use
    /// is collected). One commit where a build made three.
    pub fn add_image_releasing(
        &self,
        record: &ImageRecord,
        names: &[Reference],
        blobs: &[(&Digest, &[u8])],
        lease: &Lease<'_>,
    ) -> Result<Vec<Digest>, Error> {
        self.meta.write(|t| {
            for (digest, bytes) in blobs {
                if !self.content.contains(digest) {
                    self.content
                        .put(bytes, Some(((*digest).clone(), bytes.len() as u64)))?;
                }
            }
            let displaced = self.add_image_in(t, record, names)?;
            lease.release_in(t)?;
            Ok(displaced)
        })
    }

    fn add_image_in(
        &self,
        t: &mut Txn,
        record: &ImageRecord,
        names: &[Reference],
    ) -> Result<Vec<Digest>, Error> {
        for d in record.blobs() {
            if !self.content.contains(d) {
                return Err(Error::Missing {
                    image: record.manifest.digest.clone(),
                    what: "blob",
                    digest: d.clone(),
                });
            }
        }
        for c in record.snapshots() {
            if t.get::<SnapshotRecord>(SNAPSHOTS, &c.to_string())?
                .is_none()
            {
                return Err(Error::Missing {
                    image: record.manifest.digest.clone(),
                    what: "snapshot",
                    digest: c.clone(),
                });
            }
        }
        let key = record.manifest.digest.to_string();
        // A manifest already here keeps its first `added` time.
        let mut record = record.clone();
        if let Some(old) = t.get::<ImageRecord>(IMAGES, &key)? {
            record.added = old.added;
            record.repo_digests.extend(old.repo_digests);
        }
        t.put(IMAGES, &key, &record)?;
        let mut displaced = Vec::new();
        for n in names {
            let n = n.clone().with_default_tag();
            if let Some(old) = t.set_name(&n.to_string(), &key)? {
                if old != key {
                    if let Ok(d) = old.parse() {
                        displaced.push(d);
                    }
                }
            }
        }
        Ok(displaced)
    }

    /// Every image with its names, newest first.
    pub fn images(&self) -> Result<Vec<Image>, Error> {
        self.meta.read(|t| all_images(t))
    }

    /// The image a name, `name@digest`, full or short id, or manifest
    /// digest designates (Docker's order: a name first, then an id).
    pub fn resolve(&self, input: &str) -> Result<Image, Error> {
        self.meta.read(|t| {
            if let Some(image) = by_name(t, input)? {
                return Ok(image);
            }
            let images = all_images(t)?;
            resolve_in(&images, input).map(|(i, _)| images[i].clone())
        })
    }

    /// Point `name` at the image `source` designates.
    pub fn tag(&self, source: &str, name: &Reference) -> Result<Image, Error> {
        let name = name.clone().with_default_tag();
        self.meta.write(|t| {
            let image = match by_name(t, source)? {
                Some(image) => image,
                None => {
                    let images = all_images(t)?;
                    let (i, _) = resolve_in(&images, source)?;
                    images[i].clone()
                }
            };
            t.set_name(&name.to_string(), &image.record.manifest.digest.to_string())?;
            Ok(image)
        })
    }

    /// `rmi`: untag and, when no name is left, delete. Docker's rules:
    /// by name, only that name goes (and the image with it if it was the
    /// last); by id, every name goes, which needs `force` if they span
    /// several repositories; an image a container uses is not deleted.
    pub fn remove_image(&self, input: &str, force: bool) -> Result<Vec<Removal>, Error> {
        let (events, freed) = self.meta.write(|t| {
            let images = all_images(t)?;
            let (i, by_name) = resolve_in(&images, input)?;
            let image = &images[i];
            let key = image.record.manifest.digest.to_string();
            let user = container_using(t, &key)?;
            let mut events = Vec::new();
            let remaining: Vec<Reference> = match &by_name {
                Some(name) if image.names.len() > 1 || (user.is_none() || force) => {
                    t.remove_name(&name.to_string())?;
                    events.push(Removal::Untagged(name.clone()));
                    image.names.iter().filter(|n| *n != name).cloned().collect()
                }
                Some(name) => {
                    return Err(Error::InUse {
                        action: format!("remove repository reference {:?}", name.familiar()),
                        container: user.unwrap_or_default(),
                    })
                }
                None => {
                    let repos: BTreeSet<String> =
                        image.names.iter().map(Reference::repository).collect();
                    if repos.len() > 1 && !force {
                        return Err(Error::MultipleRepositories {
                            id: image.record.id().short().to_string(),
                        });
                    }
                    if let Some(c) = &user {
                        if !force {
                            return Err(Error::InUse {
                                action: format!("delete {}", image.record.id().short()),
                                container: c.clone(),
                            });
                        }
                    }
                    for n in &image.names {
                        t.remove_name(&n.to_string())?;
                        events.push(Removal::Untagged(n.clone()));
                    }
                    Vec::new()
                }
            };
            if !remaining.is_empty() || user.is_some() {
                return Ok((events, None));
            }
            t.remove(IMAGES, &key)?;
            events.push(Removal::Deleted(image.record.id().clone()));
            Ok((events, Some(image.record.clone())))
        })?;
        if let Some(record) = freed {
            self.collect(&record)?;
        }
        Ok(events)
    }

    /// Delete images no container uses: dangling ones (no name), or with
    /// `all` every one. Returns what was done and the bytes freed.
    pub fn prune_images(&self, all: bool) -> Result<(Vec<Removal>, u64), Error> {
        let (events, freed) = self.meta.write(|t| {
            let images = all_images(t)?;
            let mut events = Vec::new();
            let mut freed = Vec::new();
            for image in images {
                let key = image.record.manifest.digest.to_string();
                if (!all && !image.names.is_empty()) || container_using(t, &key)?.is_some() {
                    continue;
                }
                for n in &image.names {
                    t.remove_name(&n.to_string())?;
                    events.push(Removal::Untagged(n.clone()));
                }
                t.remove(IMAGES, &key)?;
                events.push(Removal::Deleted(image.record.id().clone()));
                freed.push(image.record);
            }
            Ok::<_, Error>((events, freed))
        })?;
        let mut bytes = 0;
        for r in &freed {
            bytes += self.collect(r)?.bytes;
        }
        Ok((events, bytes))
    }
}

/// Every image with its names, newest first.
pub(crate) fn all_images(t: &Txn) -> Result<Vec<Image>, Error> {
    let records: Vec<(String, ImageRecord)> = t.all(IMAGES)?;
    let mut names: BTreeMap<String, Vec<Reference>> = BTreeMap::new();
    for (name, digest) in t.names()? {
        if let Ok(r) = Reference::parse(&name) {
            names.entry(digest).or_default().push(r);
        }
    }
    let mut out: Vec<Image> = records
        .into_iter()
        .map(|(k, record)| Image {
            names: names.remove(&k).unwrap_or_default(),
            record,
        })
        .collect();
    out.sort_by(|a, b| {
        (b.record.created.as_deref(), b.record.added)
            .cmp(&(a.record.created.as_deref(), a.record.added))
    });
    for i in &mut out {
        i.names.sort();
    }
    Ok(out)
}

/// The image a plain reference (`busybox`, `repo:tag`, no digest) names,
/// read directly: what [`resolve_in`] finds first for such an input,
/// without decoding every image record (a resolve then costs the same in a
/// store of ten images or of thousands). `None`: the slow way decides.
fn by_name(t: &Txn, input: &str) -> Result<Option<Image>, Error> {
    let Ok(r) = Reference::parse(input) else {
        return Ok(None);
    };
    let r = r.with_default_tag();
    if r.digest().is_some() {
        return Ok(None);
    }
    let Some(digest) = t.name(&r.to_string())? else {
        return Ok(None);
    };
    let Some(record) = t.get::<ImageRecord>(IMAGES, &digest)? else {
        return Ok(None);
    };
    let mut names: Vec<Reference> = t
        .names()?
        .into_iter()
        .filter(|(_, d)| *d == digest)
        .filter_map(|(n, _)| Reference::parse(&n).ok())
        .collect();
    names.sort();
    Ok(Some(Image { names, record }))
}

/// Index of the image `input` designates, and the name it was found by.
fn resolve_in(images: &[Image], input: &str) -> Result<(usize, Option<Reference>), Error> {
    let not_found = || Error::NoSuchImage {
        name: input.to_string(),
    };
    if let Ok(r) = Reference::parse(input) {
        let r = r.with_default_tag();
        if let Some(d) = r.digest() {
            // `repo@digest`: the manifest, under that repository (a name
            // or a recorded repo digest), or any image with that manifest
            // when no repository has it (Docker resolves by digest alone).
            let in_repo = |i: &Image| {
                i.names.iter().any(|n| n.repository() == r.repository())
                    || i.record.repo_digests.contains(&r.to_string())
            };
            let found = images
                .iter()
                .position(|i| &i.record.manifest.digest == d && in_repo(i))
                .or_else(|| images.iter().position(|i| &i.record.manifest.digest == d));
            return found.map(|i| (i, None)).ok_or_else(not_found);
        }
        if let Some(i) = images.iter().position(|i| i.names.contains(&r)) {
            return Ok((i, Some(r)));
        }
    }
    // An id: the config digest (or the manifest digest), whole or a prefix.
    let hex = input.strip_prefix("sha256:").unwrap_or(input);
    if hex.is_empty() || hex.len() > 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let hex = hex.to_ascii_lowercase();
    let by_config: Vec<usize> = (0..images.len())
        .filter(|&i| images[i].record.id().hex().starts_with(&hex))
        .collect();
    let distinct: BTreeSet<&Digest> = by_config.iter().map(|&i| images[i].record.id()).collect();
    match distinct.len() {
        1 => return Ok((by_config[0], None)),
        0 => {}
        n => {
            return Err(Error::Ambiguous {
                prefix: input.to_string(),
                count: n,
            })
        }
    }
    if hex.len() == 64 {
        if let Some(i) = images
            .iter()
            .position(|i| i.record.manifest.digest.hex() == hex)
        {
            return Ok((i, None));
        }
    }
    Err(not_found())
}

/// The id of a container that uses the image with manifest digest `key`.
pub(crate) fn container_using(t: &Txn, key: &str) -> Result<Option<String>, Error> {
    let containers: Vec<(String, serde_json::Value)> = t.all(CONTAINERS)?;
    Ok(containers
        .into_iter()
        .find(|(_, c)| c.get("image").and_then(|v| v.as_str()) == Some(key))
        .map(|(id, _)| id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::{ImportOptions, ImportSource};
    use kiln_oci::config::ContainerConfig;
    use kiln_oci::Platform;

    fn tiny_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "hello", &b"hi"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn an_image_a_container_uses_is_not_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let opts = ImportOptions {
            config: ContainerConfig::default(),
            message: None,
            source_name: "-".into(),
            platform: Platform::host(),
            layer: Default::default(),
        };
        let name = Reference::parse("app:1").unwrap();
        let rec = store
            .import(
                ImportSource::Tar(&tiny_tar()[..]),
                &opts,
                std::slice::from_ref(&name),
            )
            .unwrap();
        store
            .meta
            .write(|t| {
                let c = serde_json::json!({"image": rec.manifest.digest.to_string()});
                t.put(CONTAINERS, "c0ffee", &c).map_err(Error::from)
            })
            .unwrap();
        let err = store.remove_image("app:1", false).unwrap_err();
        assert!(err.to_string().contains("container c0ffee"), "{err}");
        let err = store.remove_image(rec.id().short(), false).unwrap_err();
        assert!(matches!(err, Error::InUse { .. }), "{err}");
        // Forced: the name goes, the image stays for its container.
        let events = store.remove_image("app:1", true).unwrap();
        assert_eq!(events, vec![Removal::Untagged(name.with_default_tag())]);
        assert_eq!(store.images().unwrap().len(), 1);
        assert!(store.content().contains(&rec.manifest.digest));
        // Prune leaves it too.
        let (events, _) = store.prune_images(true).unwrap();
        assert!(events.is_empty());
        assert!(store.check(false).unwrap().problems.is_empty());
    }
}
