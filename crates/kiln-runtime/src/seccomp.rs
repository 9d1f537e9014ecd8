//! Seccomp: Docker's default policy (an allow list; everything else fails
//! with EPERM, `clone3` with ENOSYS so that libc falls back to `clone`,
//! whose namespace flags are refused), widened per capability as Docker
//! does for `CAP_SYS_ADMIN`, `CAP_SYS_PTRACE`, …; and Docker's JSON profile
//! format (`--security-opt seccomp=FILE`) converted to the OCI runtime
//! spec's `linux.seccomp`.
//!
//! Syscalls Docker's policy leaves out and so fail here: `mount`, `umount2`,
//! `unshare`, `setns`, `keyctl`, `add_key`, `request_key`, `bpf`,
//! `kexec_*`, `init_module`, `reboot`, `swapon`, `pivot_root`,
//! `open_by_handle_at`, `perf_event_open`, `userfaultfd`, `quotactl`, …
//! (`ptrace` is allowed, as in Docker's policy for kernels since 4.8.)

use serde_json::{json, Value};
use thiserror::Error;

/// A profile that cannot be used.
#[derive(Debug, Error)]
pub enum SeccompError {
    /// Not JSON, or not a profile.
    #[error("invalid seccomp profile: {0}")]
    Invalid(String),
}

/// Allowed for every container.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    "arch_prctl",
    "modify_ldt",
    "socket",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "personality",
];

/// Namespace flags `clone` may not carry without CAP_SYS_ADMIN
/// (CLONE_NEWNS | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWCGROUP).
const CLONE_NS_FLAGS: u64 = 0x7E02_0000;

/// Syscalls CAP_SYS_ADMIN unlocks (Docker grants them with the capability).
const SYS_ADMIN: &[&str] = &[
    "bpf",
    "clone",
    "clone3",
    "fanotify_init",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "perf_event_open",
    "quotactl",
    "quotactl_fd",
    "setdomainname",
    "sethostname",
    "setns",
    "syslog",
    "umount",
    "umount2",
    "unshare",
];

/// Docker's default profile as OCI `linux.seccomp`, for a process with
/// the capabilities `caps` (`CAP_…` names).
pub fn default_profile(caps: &[String]) -> Value {
    let has = |c: &str| caps.iter().any(|x| x == c);
    let mut syscalls = vec![json!({"names": ALLOWED, "action": "SCMP_ACT_ALLOW"})];
    if has("CAP_SYS_ADMIN") {
        syscalls.push(json!({"names": SYS_ADMIN, "action": "SCMP_ACT_ALLOW"}));
    } else {
        syscalls.push(json!({
            "names": ["clone"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NS_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]
        }));
        // ENOSYS, not EPERM: libc then falls back to clone(2).
        syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}));
    }
    let extra: &[(&str, &[&str])] = &[
        ("CAP_SYS_BOOT", &["reboot"]),
        ("CAP_SYS_CHROOT", &["chroot"]),
        (
            "CAP_SYS_MODULE",
            &["delete_module", "init_module", "finit_module"],
        ),
        ("CAP_SYS_PACCT", &["acct"]),
        ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd"]),
        ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
        (
            "CAP_SYS_TIME",
            &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        ),
        ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
        (
            "CAP_SYS_NICE",
            &[
                "get_mempolicy",
                "mbind",
                "set_mempolicy",
                "set_mempolicy_home_node",
            ],
        ),
        ("CAP_SYSLOG", &["syslog"]),
        ("CAP_BPF", &["bpf"]),
        ("CAP_PERFMON", &["perf_event_open"]),
    ];
    for (cap, names) in extra {
        if has(cap) {
            syscalls.push(json!({"names": names, "action": "SCMP_ACT_ALLOW"}));
        }
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls
    })
}

/// A Docker-format profile (`defaultAction`, `syscalls` with `names`,
/// `action`, `args`, `errnoRet`, optional `includes.caps` /
/// `excludes.caps`) as OCI `linux.seccomp` for the capabilities `caps`.
pub fn from_docker_profile(text: &str, caps: &[String]) -> Result<Value, SeccompError> {
    let v: Value = serde_json::from_str(text).map_err(|e| SeccompError::Invalid(e.to_string()))?;
    let default = v
        .get("defaultAction")
        .and_then(Value::as_str)
        .ok_or_else(|| SeccompError::Invalid("no defaultAction".into()))?;
    let mut out = json!({"defaultAction": default});
    if let Some(e) = v.get("defaultErrnoRet") {
        out["defaultErrnoRet"] = e.clone();
    }
    let archs: Vec<Value> = match v.get("archMap").and_then(Value::as_array) {
        Some(map) => map
            .iter()
            .flat_map(|m| {
                let mut a = vec![m.get("architecture").cloned().unwrap_or(Value::Null)];
                if let Some(sub) = m.get("subArchitectures").and_then(Value::as_array) {
                    a.extend(sub.iter().cloned());
                }
                a
            })
            .filter(|a| !a.is_null())
            .collect(),
        None => v
            .get("architectures")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    };
    if !archs.is_empty() {
        out["architectures"] = Value::Array(archs);
    }
    let has = |c: &Value| c.as_str().is_some_and(|c| caps.iter().any(|x| x == c));
    let mut rules = Vec::new();
    for s in v
        .get("syscalls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(inc) = s.pointer("/includes/caps").and_then(Value::as_array) {
            if !inc.iter().all(has) {
                continue;
            }
        }
        if let Some(exc) = s.pointer("/excludes/caps").and_then(Value::as_array) {
            if exc.iter().any(has) {
                continue;
            }
        }
        let mut names: Vec<Value> = s
            .get("names")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(n) = s.get("name") {
            names.push(n.clone());
        }
        let action = s
            .get("action")
            .cloned()
            .ok_or_else(|| SeccompError::Invalid("a syscall rule without action".into()))?;
        let mut r = json!({"names": names, "action": action});
        if let Some(a) = s.get("args").filter(|a| !a.is_null()) {
            r["args"] = a.clone();
        }
        if let Some(e) = s.get("errnoRet") {
            r["errnoRet"] = e.clone();
        }
        rules.push(r);
    }
    out["syscalls"] = Value::Array(rules);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_refuses_namespaces_and_mounts_without_sys_admin() {
        let p = default_profile(&["CAP_CHOWN".into()]);
        let text = p.to_string();
        assert!(!ALLOWED.contains(&"mount"));
        assert!(!ALLOWED.contains(&"unshare"));
        assert!(!ALLOWED.contains(&"keyctl"));
        assert!(text.contains("SCMP_CMP_MASKED_EQ"));
        let admin = default_profile(&["CAP_SYS_ADMIN".into()]).to_string();
        assert!(admin.contains("\"unshare\""));
        let spec: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(p).unwrap();
        assert!(spec.syscalls().as_ref().unwrap().len() >= 3);
    }

    #[test]
    fn docker_profiles_convert() {
        let text = r#"{"defaultAction":"SCMP_ACT_ERRNO","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],
            "syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
                        {"names":["mount"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}}]}"#;
        let p = from_docker_profile(text, &[]).unwrap();
        assert_eq!(p["syscalls"].as_array().unwrap().len(), 1);
        assert_eq!(p["architectures"].as_array().unwrap().len(), 2);
        let _: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(p).unwrap();
        assert!(from_docker_profile("{}", &[]).is_err());
    }
}
