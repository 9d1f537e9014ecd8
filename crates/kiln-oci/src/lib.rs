//! Image types shared by every kiln crate.
//!
//! This crate owns the vocabulary of the OCI image format and Docker's
//! superset of it: [`Digest`] (a validated newtype), media types,
//! descriptors, manifests, indexes, the image config, canonical JSON, and
//! [`Platform`]. Documents that come from elsewhere keep their raw bytes
//! ([`manifest::RawDocument`]) so their digests never change. It does no
//! I/O and depends on nothing but serialisation and error helpers.

pub mod config;
pub mod descriptor;
pub mod digest;
pub mod json;
pub mod manifest;
pub mod media_types;
pub mod platform;
pub mod reference;
pub mod time;

pub use config::ImageConfig;
pub use descriptor::Descriptor;
pub use digest::{Digest, DigestError};
pub use manifest::{ImageIndex, ImageManifest, Manifest};
pub use platform::{Platform, PlatformError};
pub use reference::{Reference, ReferenceError};
