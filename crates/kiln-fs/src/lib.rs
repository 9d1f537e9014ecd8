//! Safe file-system work for kiln.
//!
//! This crate owns hashing readers and writers and the layer codec: turning
//! a directory (or an overlay upper directory) into an OCI layer tar. It
//! knows nothing of images, registries or containers; paths it is handed
//! are the caller's. The layer applier and in-root resolution (openat2
//! `RESOLVE_IN_ROOT`) come next, in this crate too.

pub mod hash;
pub mod layer;
