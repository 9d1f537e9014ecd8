//! Disk usage, for `system df`.

use std::collections::{BTreeMap, BTreeSet};

use kiln_oci::Digest;

use crate::meta::{BUILD_CACHE, CONTAINERS, SNAPSHOTS};
use crate::records::SnapshotRecord;
use crate::store::{all_images, container_using};
use crate::{Error, Image, Store};

/// Space one image takes.
#[derive(Debug, Clone)]
pub struct ImageUsage {
    /// The image.
    pub image: Image,
    /// Bytes of its snapshots and blobs that other images share.
    pub shared: u64,
    /// Bytes only it uses.
    pub unique: u64,
    /// Containers using it.
    pub containers: usize,
}

/// Space the store takes.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    /// Every image.
    pub images: Vec<ImageUsage>,
    /// Bytes of all images' snapshots and blobs, each counted once.
    pub images_size: u64,
    /// Of those, bytes no container uses.
    pub images_reclaimable: u64,
    /// Containers recorded.
    pub containers: usize,
    /// Build cache records.
    pub build_cache: usize,
}

impl Store {
    /// Measure the store.
    pub fn disk_usage(&self) -> Result<DiskUsage, Error> {
        self.meta.read(|t| {
            let images = all_images(t)?;
            let snapshots: BTreeMap<String, SnapshotRecord> =
                t.all(SNAPSHOTS)?.into_iter().collect();
            let containers = t.all::<serde_json::Value>(CONTAINERS)?.len();
            let build_cache = t.all::<serde_json::Value>(BUILD_CACHE)?.len();
            // Each image's items (blob or snapshot) with their sizes.
            let mut users: BTreeMap<(bool, Digest), (u64, usize)> = BTreeMap::new();
            let mut per_image = Vec::new();
            for image in &images {
                let mut items = BTreeSet::new();
                for d in image.record.blobs() {
                    let size = std::fs::metadata(self.content().path(d)?).map_or(0, |m| m.len());
                    items.insert(((false, d.clone()), size));
                }
                for c in image.record.snapshots() {
                    let size = snapshots.get(&c.to_string()).map_or(0, |s| s.size);
                    items.insert(((true, c.clone()), size));
                }
                for (k, size) in &items {
                    users.entry(k.clone()).or_insert((*size, 0)).1 += 1;
                }
                per_image.push(items);
            }
            let mut usage = DiskUsage {
                containers,
                build_cache,
                ..DiskUsage::default()
            };
            let mut active = BTreeSet::new();
            for (image, items) in images.into_iter().zip(per_image) {
                let key = image.record.manifest.digest.to_string();
                let used = usize::from(container_using(t, &key)?.is_some());
                let (mut shared, mut unique) = (0, 0);
                for (k, size) in &items {
                    if used > 0 {
                        active.insert(k.clone());
                    }
                    if users.get(k).is_some_and(|u| u.1 > 1) {
                        shared += size;
                    } else {
                        unique += size;
                    }
                }
                usage.images.push(ImageUsage {
                    image,
                    shared,
                    unique,
                    containers: used,
                });
            }
            usage.images_size = users.values().map(|u| u.0).sum();
            usage.images_reclaimable = users
                .iter()
                .filter(|(k, _)| !active.contains(*k))
                .map(|(_, u)| u.0)
                .sum();
            Ok(usage)
        })
    }
}
