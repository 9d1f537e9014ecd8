//! Image types shared by every kiln crate.
//!
//! This crate owns the vocabulary of the OCI image format and Docker's
//! superset of it; for now the [`Platform`] newtype. It does no I/O and
//! depends on nothing but serialisation and error helpers.

pub mod platform;

pub use platform::{Platform, PlatformError};
