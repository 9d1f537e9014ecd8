//! kiln's build engine: from a lowered Dockerfile (`kiln-dockerfile`'s
//! `Build`) to an image in the store.
//!
//! - [`solve`]: the build graph (one vertex per step of the stages the
//!   target needs), the scheduler (independent stages in parallel), the
//!   steps' execution, the cache lookups and the image export; progress
//!   through a [`Reporter`], RUN through a [`StepRunner`] that the
//!   container runtime implements.
//! - `cachemount`: `RUN --mount=type=cache` directories (names, seeding,
//!   sharing) under the store's `cache/mounts/`.
//! - [`config`]: config-only instructions and BuildKit's history strings.
//! - [`copy`]: COPY and ADD as file-system operations, staged into a fresh
//!   directory per step and written as a layer.
//! - [`hashes`]: content hashes of context files, kept between builds by
//!   their stat.
//! - [`key`]: the versioned cache-key format (`cache-v1`).
//! - [`perms`]: `--chown` names from the image's own passwd and group
//!   files, `--chmod` octal and symbolic.
//! - [`remote`]: ADD's http(s) downloads and git checkouts.
//! - [`tree`]: the context and image file trees, read in-root.
//!
//! It prints nothing and never exits; it must not start containers itself
//! (that is the runtime's, behind [`StepRunner`]), nor talk to registries.

mod cachemount;
pub mod config;
pub mod copy;
pub mod hashes;
pub mod key;
pub mod lineage;
pub mod perms;
mod pipeline;
pub mod remote;
pub mod solve;
pub mod tree;

pub use cachemount::{prune as prune_cache_mounts, usage as cache_mounts_usage, Pruned};
pub use pipeline::publish_in_flight;
pub use solve::{
    export_rootfs, export_rootfs_tar, BuildError, BuildOptions, BuildResult, Builder, Event, Graph,
    MountSource, Reporter, ResolvedMount, RunError, RunRequest, SecretSource, Silent, Status,
    StepError, StepRunner, StoreImages, Vertex,
};
