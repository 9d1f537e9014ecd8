//! Safe file-system work for kiln.
//!
//! This crate owns hashing readers and writers and the layer codec: turning
//! a directory (or an overlay upper directory) into an OCI layer tar. It
//! knows nothing of images, registries or containers; paths it is handed
//! are the caller's. The layer applier ([`apply`]) resolves every path of
//! an untrusted layer inside its snapshot with openat2 `RESOLVE_IN_ROOT`.

pub mod apply;
pub mod atomic;
pub mod compress;
pub mod hash;
pub mod layer;
pub mod pgzip;
pub mod pipe;
pub mod process;
