//! The OCI runtime spec (`config.json`) of a container: Docker's isolation
//! defaults (its 14 capabilities with an empty inheritable set, masked and
//! read-only paths, `/dev` as a tmpfs with the standard devices, the
//! devices cgroup allow list, the default seccomp profile), the mounts
//! (`/proc`, `/sys` read-only, `/dev/pts`, `/dev/shm`, `/dev/mqueue`, the
//! generated `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf`, the user's
//! binds and tmpfs), the process and its user, and the resource limits.
//!
//! The spec is built as JSON and checked by deserialising it into
//! `oci_spec::runtime::Spec`, so what is written is what the schema allows.

use std::path::Path;

use serde_json::{json, Value};
use thiserror::Error;

use crate::options::{MountKind, NetworkMode, RunOptions, SeccompMode};
use crate::seccomp;
use crate::user::ExecUser;

/// Docker's default capabilities.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability (for `--privileged` and `--cap-add ALL`).
pub const ALL_CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's masked paths (a bind of /dev/null or an empty read-only tmpfs).
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// A spec that cannot be made.
#[derive(Debug, Error)]
pub enum SpecError {
    /// An unknown capability name.
    #[error("invalid capability: {0}")]
    BadCapability(String),
    /// An unknown `--ulimit` name.
    #[error("invalid ulimit type: {0}")]
    BadUlimit(String),
    /// The seccomp profile.
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    /// The generated JSON does not fit the runtime spec (a bug).
    #[error("generated runtime spec is invalid: {0}")]
    Invalid(#[source] serde_json::Error),
}

/// Files generated for the container and bound into it.
#[derive(Debug, Clone)]
pub struct Generated<'a> {
    /// `/etc/hosts`.
    pub hosts: &'a Path,
    /// `/etc/hostname`.
    pub hostname: &'a Path,
    /// `/etc/resolv.conf`.
    pub resolv_conf: &'a Path,
}

fn cap_name(c: &str) -> Result<String, SpecError> {
    let up = c.to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if full == "CAP_ALL" || ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(SpecError::BadCapability(c.into()))
    }
}

/// The capabilities this process may hand on (its bounding set): what
/// `--privileged` and `--cap-add ALL` mean, as in Docker. [`ALL_CAPS`] is
/// in bit order.
fn host_caps() -> Vec<String> {
    let bits = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, c)| c.to_string())
        .collect()
}

/// The capability set: Docker's defaults, `--cap-add`, `--cap-drop`
/// (`ALL` accepted in both), or every capability when privileged.
pub fn capabilities(opts: &RunOptions) -> Result<Vec<String>, SpecError> {
    if opts.privileged {
        return Ok(host_caps());
    }
    let adds = opts
        .cap_add
        .iter()
        .map(|c| cap_name(c))
        .collect::<Result<Vec<_>, _>>()?;
    let drops = opts
        .cap_drop
        .iter()
        .map(|c| cap_name(c))
        .collect::<Result<Vec<_>, _>>()?;
    let mut caps: Vec<String> = if drops.iter().any(|d| d == "CAP_ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drops.contains(c))
            .collect()
    };
    if adds.iter().any(|a| a == "CAP_ALL") {
        caps = host_caps()
            .into_iter()
            .filter(|c| !drops.contains(c))
            .collect();
    }
    for a in adds {
        if a != "CAP_ALL" && !caps.contains(&a) {
            caps.push(a);
        }
    }
    Ok(caps)
}

fn rlimit_type(name: &str) -> Option<&'static str> {
    Some(match name {
        "core" => "RLIMIT_CORE",
        "cpu" => "RLIMIT_CPU",
        "data" => "RLIMIT_DATA",
        "fsize" => "RLIMIT_FSIZE",
        "locks" => "RLIMIT_LOCKS",
        "memlock" => "RLIMIT_MEMLOCK",
        "msgqueue" => "RLIMIT_MSGQUEUE",
        "nice" => "RLIMIT_NICE",
        "nofile" => "RLIMIT_NOFILE",
        "nproc" => "RLIMIT_NPROC",
        "rss" => "RLIMIT_RSS",
        "rtprio" => "RLIMIT_RTPRIO",
        "rttime" => "RLIMIT_RTTIME",
        "sigpending" => "RLIMIT_SIGPENDING",
        "stack" => "RLIMIT_STACK",
        "as" => "RLIMIT_AS",
        _ => return None,
    })
}

/// Whether `name` is a `--ulimit` Docker knows.
pub fn valid_ulimit(name: &str) -> bool {
    rlimit_type(name).is_some()
}

fn device(path: &str, major: i64, minor: i64) -> Value {
    json!({"path": path, "type": "c", "major": major, "minor": minor,
           "fileMode": 0o666, "uid": 0, "gid": 0})
}

/// The runtime spec for a container whose root file system is mounted at
/// `rootfs`, running `opts` as `user`, in the cgroup `cgroup_path`.
pub fn build(
    opts: &RunOptions,
    user: &ExecUser,
    rootfs: &Path,
    files: &Generated<'_>,
    cgroup_path: &str,
) -> Result<Value, SpecError> {
    let caps = capabilities(opts)?;
    // A non-root user keeps only the bounding set, as Docker does since
    // the fix for CVE-2022-24769 (the kernel clears the rest on exec).
    let (eff, perm): (Vec<String>, Vec<String>) = if user.uid == 0 {
        (caps.clone(), caps.clone())
    } else {
        (Vec::new(), Vec::new())
    };
    let mut rlimits: Vec<Value> = Vec::new();
    for u in &opts.ulimits {
        let t = rlimit_type(&u.name).ok_or_else(|| SpecError::BadUlimit(u.name.clone()))?;
        rlimits.push(json!({"type": t, "soft": u.soft, "hard": u.hard}));
    }
    if !opts.ulimits.iter().any(|u| u.name == "nofile") {
        // Docker's 1048576, or as high as this host allows.
        let max = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map_or(1_048_576, |(_, hard)| hard.min(1_048_576));
        rlimits.push(json!({"type": "RLIMIT_NOFILE", "soft": max, "hard": max}));
    }
    let mut process = json!({
        "terminal": opts.tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids, "umask": 0o022},
        "args": opts.args,
        "env": opts.env,
        "cwd": opts.cwd,
        "capabilities": {
            "bounding": caps, "effective": eff, "permitted": perm,
            "inheritable": [], "ambient": []
        },
        "rlimits": rlimits,
        "oomScoreAdj": 0
    });
    if opts.no_new_privileges {
        process["noNewPrivileges"] = json!(true);
    }
    if opts.tty {
        process["consoleSize"] = json!({"height": 24, "width": 80});
    }

    let ro_sys = !opts.privileged;
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
               "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": if ro_sys { json!(["nosuid", "noexec", "nodev", "ro"]) } else { json!(["nosuid", "noexec", "nodev"]) }}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
               "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
               "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
               "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    ];
    let bind_ro = |src: &Path, dst: &str, ro: bool| {
        let mut o = vec!["rbind", "rprivate", "nosuid", "nodev", "noexec"];
        if ro {
            o.push("ro");
        }
        json!({"destination": dst, "type": "bind", "source": src, "options": o})
    };
    mounts.push(bind_ro(
        files.resolv_conf,
        "/etc/resolv.conf",
        opts.read_only,
    ));
    mounts.push(bind_ro(files.hostname, "/etc/hostname", opts.read_only));
    mounts.push(bind_ro(files.hosts, "/etc/hosts", opts.read_only));
    for m in &opts.mounts {
        match m.kind {
            MountKind::Bind | MountKind::Volume => {
                let mut o = vec!["rbind".to_string(), "rprivate".to_string()];
                if m.readonly {
                    o.push("ro".into());
                }
                o.extend(m.options.iter().cloned());
                mounts.push(json!({"destination": m.target, "type": "bind", "source": m.source, "options": o}));
            }
            MountKind::Tmpfs => {
                let mut o = vec![
                    "nosuid".to_string(),
                    "nodev".to_string(),
                    "noexec".to_string(),
                ];
                if m.readonly {
                    o.push("ro".into());
                }
                o.extend(m.options.iter().cloned());
                mounts.push(json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": o}));
            }
        }
    }

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
        json!({"type": "cgroup"}),
    ];
    if opts.network != NetworkMode::Host {
        namespaces.push(json!({"type": "network"}));
    }

    // The devices cgroup: deny everything, allow the standard devices and
    // pseudo-terminals (Docker's list).
    let mut dev_rules = vec![json!({"allow": false, "access": "rwm"})];
    if opts.privileged {
        dev_rules = vec![json!({"allow": true, "access": "rwm"})];
    } else {
        for (maj, min) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
        ] {
            dev_rules.push(
                json!({"allow": true, "type": "c", "major": maj, "minor": min, "access": "rwm"}),
            );
        }
        dev_rules.push(json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}));
        dev_rules
            .push(json!({"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}));
        dev_rules
            .push(json!({"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}));
    }
    let mut resources = json!({"devices": dev_rules});
    if let Some(p) = opts.pids_limit.filter(|p| *p > 0) {
        resources["pids"] = json!({"limit": p});
    }
    if let Some(m) = opts.memory.filter(|m| *m > 0) {
        resources["memory"] = json!({"limit": m});
    }
    if let Some(c) = opts.cpus.filter(|c| *c > 0.0) {
        let period: u64 = 100_000;
        resources["cpu"] = json!({"quota": (c * period as f64).round() as i64, "period": period});
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": cgroup_path,
        "devices": [
            device("/dev/null", 1, 3), device("/dev/zero", 1, 5), device("/dev/full", 1, 7),
            device("/dev/random", 1, 8), device("/dev/urandom", 1, 9), device("/dev/tty", 5, 0)
        ],
    });
    if !opts.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
        match &opts.seccomp {
            SeccompMode::Default => linux["seccomp"] = seccomp::default_profile(&caps),
            SeccompMode::Unconfined => {}
            SeccompMode::Profile(text) => {
                linux["seccomp"] = seccomp::from_docker_profile(text, &caps)?
            }
        }
    }
    let spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": rootfs, "readonly": opts.read_only},
        "hostname": opts.hostname,
        "mounts": mounts,
        "linux": linux,
    });
    let _: oci_spec::runtime::Spec =
        serde_json::from_value(spec.clone()).map_err(SpecError::Invalid)?;
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Ulimit;
    use std::path::PathBuf;

    fn files() -> (PathBuf, PathBuf, PathBuf) {
        (
            "/c/hosts".into(),
            "/c/hostname".into(),
            "/c/resolv.conf".into(),
        )
    }

    #[test]
    fn docker_defaults() {
        let opts = RunOptions {
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            hostname: "abc".into(),
            pids_limit: Some(50),
            ulimits: vec![Ulimit {
                name: "nproc".into(),
                soft: 10,
                hard: 20,
            }],
            ..RunOptions::default()
        };
        let user = ExecUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/root".into(),
        };
        let (h, n, r) = files();
        let g = Generated {
            hosts: &h,
            hostname: &n,
            resolv_conf: &r,
        };
        let s = build(&opts, &user, Path::new("/r"), &g, "/kiln/x").unwrap();
        assert_eq!(
            s["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert_eq!(s["process"]["capabilities"]["inheritable"], json!([]));
        assert_eq!(s["linux"]["maskedPaths"].as_array().unwrap().len(), 12);
        assert_eq!(s["linux"]["resources"]["pids"]["limit"], 50);
        assert!(s["linux"]["seccomp"].is_object());
        assert!(s["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/sys"
                && m["options"].as_array().unwrap().contains(&json!("ro"))));
        let user = ExecUser { uid: 1000, ..user };
        let s = build(&opts, &user, Path::new("/r"), &g, "/kiln/x").unwrap();
        assert_eq!(s["process"]["capabilities"]["effective"], json!([]));
    }

    #[test]
    fn cap_add_drop_and_privileged() {
        let mut o = RunOptions {
            cap_drop: vec!["chown".into(), "NET_RAW".into()],
            cap_add: vec!["sys_admin".into()],
            ..RunOptions::default()
        };
        let c = capabilities(&o).unwrap();
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(c.len(), 13);
        o.cap_drop = vec!["ALL".into()];
        o.cap_add = vec!["KILL".into()];
        assert_eq!(capabilities(&o).unwrap(), vec!["CAP_KILL".to_string()]);
        o.cap_add = vec!["NOPE".into()];
        assert!(capabilities(&o).is_err());
        o.privileged = true;
        assert_eq!(capabilities(&o).unwrap(), host_caps());
        assert!(host_caps().contains(&"CAP_SYS_ADMIN".to_string()));
    }
}
