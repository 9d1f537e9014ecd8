//! kiln's OCI distribution (Docker Registry v2) client.
//!
//! It owns the wire: which endpoint serves a reference ([`config`], the
//! containers-registries.conf v2 file with mirrors), credentials in
//! Docker's places ([`credentials`]), the auth challenge and tokens
//! ([`auth`]), HTTP with TLS, retries and careful redirects ([`client`]),
//! manifests and blobs of one repository ([`repository`]), and the choice
//! of an image for a platform ([`resolve`]).
//!
//! It never touches kiln's store: a pull hands the caller a verified byte
//! stream ([`repository::BlockingBlobReader`]) and a push reads what the
//! caller opens. It does not print; progress is the caller's business
//! (the byte counts are exposed).

pub mod auth;
pub mod client;
pub mod config;
pub mod credentials;
pub mod repository;
pub mod resolve;

pub use client::{Client, ClientOptions, Error};
pub use config::{Endpoint, RegistriesConf};
pub use credentials::{Credentials, DockerConfig, Secret};
pub use repository::{BlobDownload, BlockingBlobReader, MountOutcome, PulledManifest, Repository};
pub use resolve::Resolved;
