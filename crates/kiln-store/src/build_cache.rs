//! Build cache records: what a build step produced, by its cache key.
//!
//! The build engine (`kiln-build`) owns the keys and decides what a hit
//! is; the store keeps the records in the `build_cache` table and keeps
//! alive what they list (`blobs`, `snapshots`) through garbage collection.
//! A record never names a secret: it holds digests and times only.

use kiln_oci::Digest;
use serde::{Deserialize, Serialize};

use crate::lease::Lease;
use crate::meta::BUILD_CACHE;
use crate::records::LayerRecord;
use crate::{Error, Store};

/// A build step's cache key and the time of its result: recorded with
/// the layer it made, in the transaction that publishes it
/// ([`crate::layer::NewLayerOptions::cache`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The step's cache key.
    pub key: String,
    /// RFC 3339 time of the result (the history entry's `created`).
    pub created: String,
}

/// What one cached build step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildCacheRecord {
    /// The layer the step committed (its blob, DiffID and snapshot).
    pub layer: LayerRecord,
    /// When the layer was made (RFC 3339), for the image history.
    pub created: String,
    /// When the record was last used (seconds since the epoch).
    #[serde(default)]
    pub last_used: u64,
    /// Blobs kept alive for this record (read by the collector).
    #[serde(default)]
    pub blobs: Vec<Digest>,
    /// Snapshots kept alive for this record, parents included by the
    /// collector (read by the collector).
    #[serde(default)]
    pub snapshots: Vec<Digest>,
}

impl BuildCacheRecord {
    /// A record for `layer`, made at `created`, keeping its blob and
    /// snapshot alive.
    pub fn new(layer: LayerRecord, created: String) -> BuildCacheRecord {
        BuildCacheRecord {
            blobs: vec![layer.blob.digest.clone()],
            snapshots: vec![layer.chain_id.clone()],
            layer,
            created,
            last_used: crate::lease::now(),
        }
    }
}

impl Store {
    /// The build cache record under `key`, if there is one whose blob and
    /// snapshot are both still in the store.
    pub fn build_cache_get(&self, key: &str) -> Result<Option<BuildCacheRecord>, Error> {
        let record: Option<BuildCacheRecord> = self
            .meta
            .read(|t| Ok::<_, Error>(t.get(BUILD_CACHE, key)?))?;
        Ok(record.filter(|r| {
            self.content().contains(&r.layer.blob.digest)
                && self.snapshot_path(&r.layer.chain_id).is_dir()
        }))
    }

    /// [`Store::build_cache_get`], the record's blobs and snapshots
    /// protected by `lease` in the same transaction (one commit instead of
    /// two for a cache hit: a build's no-change run is mostly these).
    /// What a record lists is protected even when it is then not used.
    pub fn build_cache_use(
        &self,
        key: &str,
        lease: &Lease<'_>,
    ) -> Result<Option<BuildCacheRecord>, Error> {
        // A miss (every step of a changed build) is a read: no commit.
        let found: Option<BuildCacheRecord> = self.meta.read(|t| t.get(BUILD_CACHE, key))?;
        if found.is_none() {
            return Ok(None);
        }
        let record: Option<BuildCacheRecord> = self.meta.write(|t| {
            let r: Option<BuildCacheRecord> = t.get(BUILD_CACHE, key)?;
            if let Some(r) = &r {
                lease.protect_in(t, &r.blobs, &r.snapshots)?;
            }
            Ok::<_, Error>(r)
        })?;
        Ok(record.filter(|r| {
            self.content().contains(&r.layer.blob.digest)
                && self.snapshot_path(&r.layer.chain_id).is_dir()
        }))
    }

    /// Every build cache key with its record, in key order.
    pub fn build_cache(&self) -> Result<Vec<(String, BuildCacheRecord)>, Error> {
        self.meta.read(|t| Ok::<_, Error>(t.all(BUILD_CACHE)?))
    }

    /// Remove every build cache record (what only they kept alive goes at
    /// the next collection); returns how many there were.
    pub fn build_cache_clear(&self) -> Result<usize, Error> {
        self.meta.write(|t| {
            let all: Vec<(String, serde_json::Value)> = t.all(BUILD_CACHE)?;
            for (k, _) in &all {
                t.remove(BUILD_CACHE, k)?;
            }
            Ok::<_, Error>(all.len())
        })
    }
}
