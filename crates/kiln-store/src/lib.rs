//! kiln's local store: everything under one root directory (DESIGN.md,
//! "Store").
//!
//! - [`content`]: immutable blobs under `blobs/sha256/<hex>`, written
//!   through `ingest/` (temporary file, fsync, digest and size verified,
//!   rename, directory fsync).
//! - [`meta`]: the metadata database `meta.redb` (images, names, snapshots,
//!   leases; room for containers and the build cache), one short locked
//!   transaction at a time.
//! - [`layer`]: layers into blobs and extracted snapshots
//!   (`snapshots/<chain-id>/fs`, overlay lower directories), in one pass.
//! - [`lease`], [`gc`], [`check`]: what an operation in progress uses, the
//!   collection of what nothing uses, and the consistency check.
//! - [`archive`]: `save` and `load` of docker-archive and oci-archive tars,
//!   and `import` of a root file system.
//!
//! - [`volumes`]: named and anonymous volumes (`volumes/<name>/_data`).
//!
//! It does not print, and knows nothing of registries or containers beyond
//! the records it keeps for them.

pub mod archive;
pub mod build_cache;
pub mod check;
pub mod commit;
pub mod containers;
pub mod content;
pub mod gc;
pub mod layer;
pub mod lease;
mod meta;
pub mod records;
mod store;
pub mod usage;
pub mod volumes;

pub use build_cache::{BuildCacheRecord, CacheEntry};
pub use containers::{ContainerError, ContainerRecord, ContainerState};
pub use content::{ContentStore, Ingest, StoreError};
pub use meta::MetaError;
pub use records::{ImageRecord, LayerRecord, SnapshotRecord};
pub use store::{Error, Image, Removal, Store};
pub use volumes::{VolumeError, VolumeRecord};
