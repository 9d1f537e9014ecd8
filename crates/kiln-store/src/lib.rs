//! kiln's local store.
//!
//! So far the content store: immutable blobs under `blobs/sha256/<hex>`,
//! written through `ingest/` with the discipline of DESIGN.md: temporary
//! file, fsync, digest and size verified, rename, directory fsync. A blob
//! path exists only with the bytes its name promises. The metadata database
//! (images, tags, containers, leases) and garbage collection come next.

pub mod content;

pub use content::{ContentStore, Ingest, StoreError};
