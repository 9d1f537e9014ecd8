//! One build step (a Dockerfile `RUN`) in a fresh container, run by kiln
//! re-executed as a hidden subcommand (single threaded, from a sealed copy
//! of itself: DESIGN.md, "Process model").
//!
//! The step's root file system is an overlay of the parent layers and an
//! upper directory the build gives, so the step's changes are left there in
//! overlay form for the build to commit. The container always has kiln's
//! init as PID 1: the step ends when its command ends, and whatever it left
//! running in the background is killed with the PID namespace; zombies are
//! reaped. The rest is what `run` does: Docker's capabilities and seccomp
//! profile, the user from the image's passwd and group, the working
//! directory created (owned by root, as BuildKit does), `/etc/hosts`,
//! `/etc/hostname` and `/etc/resolv.conf` generated and bound over the
//! image's, the hostname `buildkitsandbox` (BuildKit's).
//!
//! Decisions:
//! - The process first moves into a private mount namespace of its own, so
//!   every mount it makes (the overlay, the mounts of a bind from a stage,
//!   the tmpfs of the secrets) disappears with it, however it ends.
//! - The container's run-time files (bundle, runtime state, generated
//!   files, the root's mount point) are in a tmpfs of that namespace, on
//!   the step's scratch directory: only the overlay's work directory and
//!   upper directory are on disk.
//! - Mount points the runtime had to create in the upper directory (the
//!   generated files, `/proc`, the targets of `RUN --mount`, and the
//!   parents made for them) are removed from it after the step when they
//!   are still empty and the image did not have them, as BuildKit does: a
//!   layer holds only what the command changed.
//! - Secrets are read by this process only, written into a tmpfs that is
//!   never part of the root file system, and bound read-only at their
//!   target (or passed as an environment variable): they reach no layer,
//!   and the request that describes the step names only where they come
//!   from.
//! - A bind mount from a stage or image is an overlay of its layers with a
//!   throw-away upper directory: `rw` writes are discarded, as in BuildKit.
//!   A read-write bind of the build context is made the same way.
//! - Output: the container's stdout and stderr both go to the descriptor
//!   given (one stream, in order, as BuildKit's progress shows it).

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use serde::{Deserialize, Serialize};

use crate::engine::{self, Stdio};
use crate::options::{MountKind, MountRequest, NetworkMode, RunOptions, SeccompMode};
use crate::rootfs::{MountPointParents, Overlay};
use crate::spec::{self, Generated};
use crate::{inroot, monitor, network, user};

/// The host name of a build step's container (BuildKit's).
pub const HOSTNAME: &str = "buildkitsandbox";

/// One RUN step to run: everything the child process needs, written by the
/// build as JSON. It holds no secret value, only where each comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepConfig {
    /// A container id (unique on this host while it runs).
    pub id: String,
    /// A private, empty directory for the container's run-time files (the
    /// root's mount point, the runtime's state, the bundle, the generated
    /// `/etc` files). The step mounts a tmpfs on it in its own mount
    /// namespace, so none of them reaches the disk and it is empty again
    /// when the step ends; the caller removes it afterwards.
    pub scratch: PathBuf,
    /// A private, empty directory on the file system of `upper`: the
    /// overlay's work directory, and the throw-away layers of `rw` binds
    /// from a stage or the context. The caller removes it afterwards.
    pub work: PathBuf,
    /// The parent layers' snapshot directories, bottom first.
    pub lowers: Vec<PathBuf>,
    /// The (empty) overlay upper directory where the changes are left.
    pub upper: PathBuf,
    /// The command.
    pub args: Vec<String>,
    /// `KEY=value` environment.
    pub env: Vec<String>,
    /// USER (`name`, `uid`, `uid:gid`, …), empty for root.
    pub user: String,
    /// Absolute working directory, created if missing.
    pub cwd: String,
    /// The network: [`NetworkMode::Bridge`] (own namespace on kiln's
    /// bridge, outbound NAT: `docker build`'s default), [`NetworkMode::None`]
    /// (own namespace, loopback only) or [`NetworkMode::Host`].
    pub network: NetworkMode,
    /// The bridge, for [`NetworkMode::Bridge`].
    #[serde(default)]
    pub bridge: Option<network::NetworkConfig>,
    /// `RUN --mount`s, in order.
    pub mounts: Vec<StepMount>,
    /// Where compiled seccomp filters are kept ([`crate::bpf`]).
    #[serde(default)]
    pub seccomp_cache: Option<PathBuf>,
}

/// A `RUN --mount`, with its source found on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum StepMount {
    /// A host file or directory bound at `target` (a cache directory, the
    /// build context read-only, an ssh agent socket).
    Bind {
        /// Host path.
        source: PathBuf,
        /// Absolute path in the container.
        target: String,
        /// Read-only.
        readonly: bool,
    },
    /// `path` inside an overlay of `lowers` (bottom first; none: an empty
    /// tree), with a throw-away upper directory, bound at `target`.
    Layers {
        /// Directories, bottom first.
        lowers: Vec<PathBuf>,
        /// Absolute path inside them (already resolved in their root).
        path: String,
        /// Absolute path in the container.
        target: String,
        /// Read-only.
        readonly: bool,
    },
    /// A fresh tmpfs.
    Tmpfs {
        /// Absolute path in the container.
        target: String,
        /// Size limit in bytes (none or 0: no limit).
        size: Option<u64>,
    },
    /// A build secret: a file at `target` and/or the variable `env`.
    Secret {
        /// Where its value comes from.
        source: SecretFrom,
        /// Absolute path of the file in the container (none: env only).
        target: Option<String>,
        /// Environment variable to set to the value.
        env: Option<String>,
        /// File mode.
        mode: u32,
        /// File owner.
        uid: u32,
        /// File group.
        gid: u32,
    },
    /// An ssh agent socket bound at `target`; the first one is also
    /// `SSH_AUTH_SOCK`.
    Ssh {
        /// The agent's socket on the host.
        socket: PathBuf,
        /// Absolute path in the container.
        target: String,
    },
}

/// Where a secret's value is read from (by the step process only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretFrom {
    /// A host file.
    File(PathBuf),
    /// A variable of kiln's environment.
    Env(String),
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepOutcome {
    /// The command ran and exited with this status (128 + signal when it
    /// was killed).
    Exited(i32),
    /// The container could not be set up or started.
    Failed(String),
}

/// Run the step to its end; the container's output goes to `output`.
/// Call only from a single-threaded process (libcontainer forks).
///
/// Termination signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT) are blocked from
/// the start, so that one arriving while the container is being set up
/// never kills this process between the container's creation and its
/// start, which would leave the created container's init waiting forever
/// (it is PID 1 of its namespace: a terminal's SIGINT does not kill it).
/// One pending when the container is ready stops the step before it
/// starts; one arriving later kills the container (see [`wait`]).
///
/// `mounted`, when given, is closed as soon as the root's overlay is
/// mounted: from then on the step no longer opens its lower directories
/// by path (the build may rename them).
pub fn run(cfg: &StepConfig, output: OwnedFd, mounted: Option<OwnedFd>) -> StepOutcome {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&termination()), None);
    let overlay = Overlay {
        lowers: cfg.lowers.clone(),
        upper: cfg.upper.clone(),
        work: cfg.work.clone(),
        target: cfg.scratch.join("rootfs"),
        volatile: true,
    };
    let mut targets: Vec<String> = Vec::new();
    let result = prepare_and_run(cfg, &overlay, output, mounted, &mut targets);
    // Ok: the step's init ended and was reaped.
    let state = cfg.scratch.join("state");
    let _ = match result {
        Ok(_) => engine::delete_exited(&state, &cfg.id, &monitor::cgroup_path(&cfg.id)),
        Err(_) => engine::delete(&state, &cfg.id),
    };
    let _ = overlay.unmount();
    for (i, _) in cfg.mounts.iter().enumerate() {
        let _ = Overlay::in_dir(&layers_mount_dir(cfg, i), Vec::new()).unmount();
    }
    let secrets = cfg.scratch.join("secrets");
    if crate::rootfs::is_mount_point(&secrets) {
        let _ = rustix::mount::unmount(&secrets, UnmountFlags::DETACH);
    }
    overlay.remove_mount_points(&targets, MountPointParents::All);
    match result {
        Ok(code) => StepOutcome::Exited(code),
        Err(e) => StepOutcome::Failed(e),
    }
}

/// Where the `index`th mount, a [`StepMount::Layers`], keeps its overlay
/// (on disk: its `rw` writes can be large).
fn layers_mount_dir(cfg: &StepConfig, index: usize) -> PathBuf {
    cfg.work.join(format!("mounts/{index}"))
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> String {
    move |e| format!("{what}: {e}")
}

fn prepare_and_run(
    cfg: &StepConfig,
    overlay: &Overlay,
    output: OwnedFd,
    mounted: Option<OwnedFd>,
    targets: &mut Vec<String>,
) -> Result<i32, String> {
    // Mounts made from here on are this process's alone.
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(err("failed to make a mount namespace"))?;
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(err("failed to make the mounts private"))?;
    // The run-time files live in memory: a build makes and removes them
    // for every RUN, and on a file system such as ext4 without a journal
    // each inode freed slows every allocation for a minute after
    // (`recently_deleted`), the next step's own files among them.
    rustix::mount::mount(
        "tmpfs",
        &cfg.scratch,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        c"mode=0700,size=64m",
    )
    .map_err(err("failed to mount the step's run-time tmpfs"))?;
    // The merged root takes the upper directory's owner and mode: those of
    // the image's root, not of the build's private staging directory.
    let (mode, uid, gid) = cfg
        .lowers
        .iter()
        .rev()
        .find_map(|l| fs::metadata(l).ok())
        .map_or((0o755, 0, 0), |m| (m.mode() & 0o7777, m.uid(), m.gid()));
    rustix::fs::chown(
        &cfg.upper,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(err("failed to set the owner of the root directory"))?;
    fs::set_permissions(&cfg.upper, fs::Permissions::from_mode(mode))
        .map_err(err("failed to set the mode of the root directory"))?;
    let mounting = overlay.mount();
    drop(mounted);
    mounting.map_err(|e| e.to_string())?;
    let rootfs = &overlay.target;
    let u = user::resolve_in_root(rootfs, &cfg.user).map_err(|e| e.to_string())?;
    let root = inroot::open_root(rootfs).map_err(err("failed to open the root file system"))?;
    inroot::mkdir_all(&root, &cfg.cwd)
        .map_err(|e| format!("failed to create the working directory {}: {e}", cfg.cwd))?;
    drop(root);

    let mut env = cfg.env.clone();
    let mut mounts = Vec::new();
    let mut tmpfs_targets = Vec::new();
    let mut ssh_set = env.iter().any(|e| e.starts_with("SSH_AUTH_SOCK="));
    for (i, m) in cfg.mounts.iter().enumerate() {
        match m {
            StepMount::Bind {
                source,
                target,
                readonly,
            } => mounts.push(bind(source, target, *readonly)),
            StepMount::Layers {
                lowers,
                path,
                target,
                readonly,
            } => {
                let dir = layers_mount_dir(cfg, i);
                let mut o = Overlay::in_dir(&dir, lowers.clone());
                o.volatile = true;
                o.mount()
                    .map_err(|e| format!("failed to mount the source of {target}: {e}"))?;
                let source = o.target.join(path.trim_start_matches('/'));
                mounts.push(bind(&source, target, *readonly));
            }
            StepMount::Tmpfs { target, size } => {
                let options = match size {
                    Some(n) if *n > 0 => vec![format!("size={n}")],
                    _ => Vec::new(),
                };
                tmpfs_targets.push(target.clone());
                mounts.push(MountRequest {
                    kind: MountKind::Tmpfs,
                    source: String::new(),
                    target: target.clone(),
                    readonly: false,
                    options,
                    name: None,
                    no_copy: false,
                });
            }
            StepMount::Secret {
                source,
                target,
                env: var,
                mode,
                uid,
                gid,
            } => {
                let value = read_secret(source)?;
                if let Some(var) = var {
                    let text = String::from_utf8(value.clone())
                        .map_err(|_| format!("secret for ${var} is not UTF-8 text"))?;
                    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != var);
                    env.push(format!("{var}={text}"));
                }
                if let Some(target) = target {
                    let file = secret_file(&cfg.scratch, i, &value, *mode, *uid, *gid)?;
                    mounts.push(bind(&file, target, true));
                }
            }
            StepMount::Ssh { socket, target } => {
                mounts.push(bind(socket, target, false));
                if !ssh_set {
                    env.push(format!("SSH_AUTH_SOCK={target}"));
                    ssh_set = true;
                }
            }
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", u.home));
    }
    let opts = RunOptions {
        args: cfg.args.clone(),
        env,
        cwd: cfg.cwd.clone(),
        user: cfg.user.clone(),
        hostname: HOSTNAME.into(),
        init: true,
        seccomp: SeccompMode::Default,
        network: cfg.network,
        mounts,
        ..RunOptions::default()
    };
    let (hosts, hostname, resolv) = write_etc_files(&cfg.scratch, cfg.network)
        .map_err(err("failed to write the container's /etc files"))?;
    let files = Generated {
        hosts: &hosts,
        hostname: &hostname,
        resolv_conf: &resolv,
    };
    let mut spec = spec::build(&opts, &u, rootfs, &files, &monitor::cgroup_path(&cfg.id))
        .map_err(|e| e.to_string())?;
    if let Some(list) = spec["mounts"].as_array_mut() {
        for m in list.iter_mut() {
            if let Some(d) = m["destination"].as_str() {
                targets.push(d.to_string());
            }
            // RUN's tmpfs mounts are not noexec (BuildKit's options).
            if m["type"] == "tmpfs"
                && m["destination"]
                    .as_str()
                    .is_some_and(|d| tmpfs_targets.iter().any(|t| t == d))
            {
                let mut o = vec!["nosuid".to_string(), "strictatime".to_string()];
                if let Some(old) = m["options"].as_array() {
                    o.extend(
                        old.iter()
                            .filter_map(|v| v.as_str())
                            .filter(|v| v.starts_with("size="))
                            .map(String::from),
                    );
                }
                m["options"] = serde_json::json!(o);
            }
        }
    }
    let seccomp = crate::bpf::prepare(&mut spec, cfg.seccomp_cache.as_deref());
    let bundle = cfg.scratch.join("bundle");
    fs::create_dir_all(&bundle).map_err(err("failed to create the bundle"))?;
    let text = serde_json::to_vec(&spec).map_err(err("failed to write the runtime spec"))?;
    fs::write(bundle.join("config.json"), text).map_err(err("failed to write the runtime spec"))?;
    let state = cfg.scratch.join("state");
    fs::create_dir_all(&state).map_err(err("failed to create the runtime state"))?;

    let stdin: OwnedFd = File::open("/dev/null")
        .map_err(err("failed to open /dev/null"))?
        .into();
    let stderr = output
        .try_clone()
        .map_err(err("failed to duplicate the output"))?;
    let (mut container, pid) = engine::create(
        &cfg.id,
        &state,
        &bundle,
        Stdio::Fds {
            stdin,
            stdout: output,
            stderr,
        },
        true,
        seccomp,
    )
    .map_err(|e| e.to_string())?;
    let mut attached = None;
    match (cfg.network, &cfg.bridge) {
        (NetworkMode::None, _) => {
            let ns = network::open_netns(pid as u32).map_err(|e| e.to_string())?;
            network::loopback_up(ns.as_fd()).map_err(|e| e.to_string())?;
        }
        (NetworkMode::Bridge, Some(bridge)) => {
            network::ensure_bridge(bridge).map_err(|e| e.to_string())?;
            let ns = network::open_netns(pid as u32).map_err(|e| e.to_string())?;
            let a = network::attach(bridge, &cfg.id, ns.as_fd()).map_err(|e| e.to_string())?;
            attached = Some((bridge, a));
        }
        (NetworkMode::Bridge, None) => {
            return Err("a bridged build step needs its bridge's configuration".into())
        }
        (NetworkMode::Host, _) => {}
    }
    let started = block_signals()
        .map_err(err("failed to block signals"))
        .and_then(|sfd| {
            if let Some(sig) = pending_termination() {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                let _ = waitpid(Pid::from_raw(pid), None);
                return Err(format!("stopped by {sig} before the step started"));
            }
            engine::start(&mut container).map_err(|e| e.to_string())?;
            Ok(wait(pid, &sfd))
        });
    if let Some((bridge, a)) = attached {
        if let Err(e) = network::detach(bridge, &cfg.id, &a) {
            tracing::warn!(error = %e, id = %cfg.id, "failed to detach a build step's network");
        }
    }
    started
}

/// A bind mount request.
fn bind(source: &Path, target: &str, readonly: bool) -> MountRequest {
    MountRequest {
        kind: MountKind::Bind,
        source: source.display().to_string(),
        target: target.to_string(),
        readonly,
        options: Vec::new(),
        name: None,
        no_copy: false,
    }
}

fn read_secret(source: &SecretFrom) -> Result<Vec<u8>, String> {
    match source {
        SecretFrom::File(p) => {
            fs::read(p).map_err(|e| format!("failed to read secret file {}: {e}", p.display()))
        }
        SecretFrom::Env(v) => std::env::var_os(v)
            .map(|v| v.into_encoded_bytes())
            .ok_or_else(|| format!("secret variable {v} is not set")),
    }
}

/// Write a secret's value into the step's private tmpfs (mounted on first
/// use), with its mode and owner; returns the file.
fn secret_file(
    scratch: &Path,
    index: usize,
    value: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<PathBuf, String> {
    let dir = scratch.join("secrets");
    if !crate::rootfs::is_mount_point(&dir) {
        fs::create_dir_all(&dir).map_err(err("failed to create the secrets directory"))?;
        rustix::mount::mount(
            "tmpfs",
            &dir,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            c"mode=0700,size=16m",
        )
        .map_err(err("failed to mount the secrets tmpfs"))?;
    }
    let file = dir.join(index.to_string());
    fs::write(&file, value).map_err(err("failed to write a secret"))?;
    rustix::fs::chown(
        &file,
        Some(rustix::fs::Uid::from_raw(uid)),
        Some(rustix::fs::Gid::from_raw(gid)),
    )
    .map_err(err("failed to set the owner of a secret"))?;
    fs::set_permissions(&file, fs::Permissions::from_mode(mode & 0o7777))
        .map_err(err("failed to set the mode of a secret"))?;
    Ok(file)
}

/// `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf` for the step.
fn write_etc_files(dir: &Path, net: NetworkMode) -> io::Result<(PathBuf, PathBuf, PathBuf)> {
    let hosts = dir.join("hosts");
    let hostname = dir.join("hostname");
    let resolv = dir.join("resolv.conf");
    fs::write(&hostname, format!("{HOSTNAME}\n"))?;
    fs::write(&hosts, network::hosts_file(HOSTNAME, None, &[]))?;
    let host = fs::read_to_string(network::host_resolv_conf_path()).unwrap_or_default();
    let text = if net == NetworkMode::Host {
        // The host's own name servers are reachable from its namespace.
        host
    } else {
        network::resolv_conf(&host, &[], &[], &[])
    };
    fs::write(&resolv, text)?;
    Ok((hosts, hostname, resolv))
}

/// The signals that end a step.
fn termination() -> SigSet {
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        mask.add(s);
    }
    mask
}

/// A termination signal waiting (blocked) for this process, if any (taken:
/// the step stops).
fn pending_termination() -> Option<Signal> {
    let sfd = SignalFd::with_flags(
        &termination(),
        SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
    )
    .ok()?;
    let si = sfd.read_signal().ok()??;
    Signal::try_from(si.ssi_signo as i32).ok()
}

fn block_signals() -> nix::Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGPIPE,
    ] {
        mask.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC)
}

/// Wait for the container's init; a termination signal to this process
/// kills it (and with it the whole PID namespace).
fn wait(pid: i32, sfd: &SignalFd) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 137,
        }
        if let Ok(Some(si)) = sfd.read_signal() {
            let sig = si.ssi_signo as i32;
            if sig != Signal::SIGCHLD as i32 && sig != Signal::SIGPIPE as i32 {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_and_their_parents_leave_the_upper_dir() {
        let d = tempfile::tempdir().unwrap();
        let lower = d.path().join("lower");
        let upper = d.path().join("upper");
        fs::create_dir_all(lower.join("etc")).unwrap();
        fs::write(lower.join("etc/passwd"), "root").unwrap();
        fs::create_dir_all(lower.join("run")).unwrap();
        // Made by the runtime for mounts.
        fs::create_dir_all(upper.join("etc")).unwrap();
        fs::write(upper.join("etc/hosts"), "").unwrap();
        fs::create_dir_all(upper.join("run/secrets")).unwrap();
        fs::write(upper.join("run/secrets/tok"), "").unwrap();
        fs::create_dir_all(upper.join("cache/deep")).unwrap();
        // Made by the step itself.
        fs::create_dir_all(upper.join("app/data")).unwrap();
        fs::write(upper.join("app/out"), "x").unwrap();
        let o = Overlay {
            lowers: vec![lower],
            upper: upper.clone(),
            work: d.path().join("work"),
            target: d.path().join("rootfs"),
            volatile: true,
        };
        let targets: Vec<String> = [
            "/etc/hosts",
            "/run/secrets/tok",
            "/cache/deep",
            "/app/data",
            "/etc/passwd",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        o.remove_mount_points(&targets, MountPointParents::All);
        let mut left: Vec<String> = Vec::new();
        for e in fs::read_dir(&upper).unwrap() {
            left.push(e.unwrap().file_name().to_string_lossy().into_owned());
        }
        left.sort();
        // `app/data` was created only as a mount point, `app/out` is the
        // step's.
        assert_eq!(left, ["app"]);
        assert!(upper.join("app/out").exists());
        assert!(!upper.join("app/data").exists());
    }
}
