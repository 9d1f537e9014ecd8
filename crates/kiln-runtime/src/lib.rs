//! kiln's containers: the OCI runtime spec from image config and run
//! options ([`options`], [`spec`], [`user`], [`seccomp`]), the overlay root
//! file system ([`rootfs`]), the embedded runtime ([`engine`]: youki's
//! libcontainer), the per-container monitor ([`monitor`]) and the built-in
//! init ([`init`]), volumes filled from the image ([`volume`]), build steps
//! ([`step`]); container networking ([`network`]: bridge, veths,
//! NAT, published ports, hosts and resolv.conf).
//!
//! It knows nothing of the store: the monitor reports through the
//! [`monitor::Recorder`] trait the binary implements. `unsafe` is allowed
//! here (signals, fork, ioctl), each block under a `// SAFETY:` comment.

pub mod bpf;
pub mod cgroup_warm;
pub mod engine;
pub mod freeze;
pub mod init;
pub mod inroot;
pub mod memfd;
pub mod monitor;
pub mod network;
pub mod options;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod step;
pub mod trim;
pub mod user;
pub mod volume;
