//! Seccomp filters compiled once, loaded by kiln's executor.
//!
//! libseccomp turns Docker's profile (three architectures on x86_64) into a
//! BPF program in about 12 ms, and libcontainer did that inside every
//! container's init, on the way of every `run` and every RUN step. kiln
//! compiles a profile once per host instead — the program depends on the
//! profile, libseccomp's version and API level, the kernel and the machine
//! — keeps it in the store (`cache/seccomp/<key>`), and the container's
//! process loads it ([`Seccomp::install`]) in [`crate::engine::KilnExecutor`],
//! right before exec.
//!
//! Loading a filter needs `no_new_privs` or `CAP_SYS_ADMIN`. libcontainer
//! loads it before it drops the capabilities; the executor runs after, so for
//! a process without `no_new_privs` the spec libcontainer gets
//! ([`prepare`]) keeps `CAP_SYS_ADMIN` (and `CAP_SETPCAP`, which removing a
//! capability from the bounding set needs) when the container's own set
//! lacks them, and the executor drops exactly those right after the load,
//! before exec: the command starts with the spec's capabilities under the
//! filter, as before. Nothing of the image runs in between (the executor
//! is kiln's code in the init process libcontainer cloned). That needs a
//! filter that lets `capset` and `prctl` through (Docker's profile and
//! kiln's do); any other profile, and one with `SCMP_ACT_NOTIFY`, is left to
//! libcontainer.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use rustix::thread::CapabilitySet;
use serde_json::Value;
use thiserror::Error;

/// Bumped when the cache key's inputs change.
const KEY_VERSION: &str = "kiln-seccomp-v1";

/// A profile kiln does not compile itself (libcontainer does).
#[derive(Debug, Error)]
pub enum BpfError {
    /// libseccomp refused it.
    #[error("seccomp: {0}")]
    Compile(String),
    /// Notify actions need libcontainer's listener handling.
    #[error("seccomp: notify actions are loaded by libcontainer")]
    Notify,
    /// The spec's `linux.seccomp` does not decode.
    #[error("seccomp: {0}")]
    Spec(String),
}

/// A compiled filter: the BPF program and the flags for seccomp(2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// `struct sock_filter`s, 8 bytes each, as libseccomp exported them.
    program: Vec<u64>,
    /// `SECCOMP_FILTER_FLAG_*`.
    flags: u32,
}

fn compile_err(e: impl std::fmt::Display) -> BpfError {
    BpfError::Compile(e.to_string())
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction, BpfError> {
    let errno = errno.map_or(nix::libc::EPERM, |e| e as i32);
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(u16::try_from(errno).map_err(compile_err)?)
        }
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => return Err(BpfError::Notify),
    })
}

fn compare_op(op: LinuxSeccompOperator, mask: Option<u64>) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(mask.unwrap_or(0)),
    }
}

impl Filter {
    /// Compile `profile` with libseccomp, with the rules libcontainer's
    /// loader makes of it: rules whose action is the default are skipped,
    /// names this libseccomp does not know are skipped, and conditions on
    /// the same argument become separate rules (as runc does).
    pub fn compile(profile: &LinuxSeccomp) -> Result<Filter, BpfError> {
        let default = action(profile.default_action(), profile.default_errno_ret())?;
        let mut ctx = ScmpFilterContext::new(default).map_err(compile_err)?;
        let mut flags = 0;
        for f in profile.flags().iter().flatten() {
            flags |= match f {
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 1,
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => 2,
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => 4,
                LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 32,
            };
        }
        for arch in profile.architectures().iter().flatten() {
            let name = serde_json::to_value(arch).map_err(compile_err)?;
            let a = ScmpArch::from_str(name.as_str().unwrap_or_default()).map_err(compile_err)?;
            ctx.add_arch(a).map_err(compile_err)?;
        }
        for rule in profile.syscalls().iter().flatten() {
            let act = action(rule.action(), rule.errno_ret())?;
            if act == default {
                continue;
            }
            let args: Vec<ScmpArgCompare> = rule
                .args()
                .iter()
                .flatten()
                .map(|a| {
                    ScmpArgCompare::new(
                        a.index() as u32,
                        compare_op(a.op(), a.value_two()),
                        a.value(),
                    )
                })
                .collect();
            let mut seen = std::collections::HashSet::new();
            let distinct = rule.args().iter().flatten().all(|a| seen.insert(a.index()));
            for name in rule.names() {
                let Ok(sc) = ScmpSyscall::from_name(name) else {
                    continue;
                };
                if distinct {
                    if args.is_empty() {
                        ctx.add_rule(act, sc)
                    } else {
                        ctx.add_rule_conditional(act, sc, &args)
                    }
                    .map_err(compile_err)?;
                } else {
                    for a in &args {
                        ctx.add_rule_conditional(act, sc, std::slice::from_ref(a))
                            .map_err(compile_err)?;
                    }
                }
            }
        }
        // Exported into a memory file (this libseccomp has no
        // export-to-memory call).
        let fd = rustix::fs::memfd_create("kiln-seccomp", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(compile_err)?;
        ctx.export_bpf(&fd).map_err(compile_err)?;
        let mut file = fs::File::from(fd);
        let mut bytes = Vec::new();
        std::io::Seek::rewind(&mut file)
            .and_then(|()| std::io::Read::read_to_end(&mut file, &mut bytes))
            .map_err(compile_err)?;
        Filter::from_bytes(&bytes, flags)
    }

    fn from_bytes(bytes: &[u8], flags: u32) -> Result<Filter, BpfError> {
        if bytes.is_empty() || bytes.len() % 8 != 0 || bytes.len() / 8 > usize::from(u16::MAX) {
            return Err(BpfError::Compile(format!(
                "a BPF program of {} bytes",
                bytes.len()
            )));
        }
        let program = bytes
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or_default()))
            .collect();
        Ok(Filter { program, flags })
    }

    fn bytes(&self) -> Vec<u8> {
        self.program.iter().flat_map(|i| i.to_ne_bytes()).collect()
    }

    /// `profile` compiled, from `cache` when it was compiled before on this
    /// host, else compiled now and kept there (`None`: no cache).
    pub fn cached(cache: Option<&Path>, profile: &LinuxSeccomp) -> Result<Filter, BpfError> {
        let Some(dir) = cache else {
            return Filter::compile(profile);
        };
        let path = cache_path(dir, profile)?;
        if let Ok(bytes) = fs::read(&path) {
            let (flags, program) = bytes.split_at(bytes.len().min(4));
            let flags = u32::from_le_bytes(flags.try_into().unwrap_or_default());
            if let Ok(f) = Filter::from_bytes(program, flags) {
                return Ok(f);
            }
        }
        let f = Filter::compile(profile)?;
        let mut bytes = f.flags.to_le_bytes().to_vec();
        bytes.extend(f.bytes());
        // A cache: a failed write only means compiling again next time.
        if fs::create_dir_all(dir).is_ok() {
            let _ = kiln_fs::atomic::write_file(&path, &bytes);
        }
        Ok(f)
    }

    /// Install the filter on this thread (seccomp(2)); needs `no_new_privs`
    /// or `CAP_SYS_ADMIN`.
    pub fn load(&self) -> io::Result<()> {
        let prog = nix::libc::sock_fprog {
            len: self.program.len() as u16,
            filter: self.program.as_ptr() as *mut nix::libc::sock_filter,
        };
        // SAFETY: `prog` points at `len` 8-byte sock_filter entries owned by
        // `self`, alive for the call; the kernel copies them.
        let rc = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_seccomp,
                1, // SECCOMP_SET_MODE_FILTER
                self.flags,
                &prog as *const nix::libc::sock_fprog,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// `<cache>/<key>`: a hash of the profile and of what libseccomp's output
/// depends on besides it.
fn cache_path(dir: &Path, profile: &LinuxSeccomp) -> Result<PathBuf, BpfError> {
    use std::io::Write as _;
    let v = libseccomp::ScmpVersion::current().map_err(compile_err)?;
    let api = libseccomp::get_api();
    let uname = rustix::system::uname();
    let mut h = kiln_fs::hash::HashingWriter::new(io::sink());
    let profile = serde_json::to_vec(profile).map_err(compile_err)?;
    let _ = write!(
        h,
        "{KEY_VERSION}\0{}.{}.{}\0{api}\0{:?}\0{:?}\0",
        v.major,
        v.minor,
        v.micro,
        uname.release(),
        uname.machine()
    );
    let _ = h.write_all(&profile);
    Ok(dir.join(h.finish().0.hex()))
}

/// What the executor does before exec: load the filter, then drop the
/// capabilities that were only there to load it.
#[derive(Debug, Clone)]
pub struct Seccomp {
    /// The filter.
    pub filter: Filter,
    /// Set `no_new_privs` first (`kiln exec`: loading needs it there).
    pub set_no_new_privs: bool,
    /// Added to the bounding set for the load: removed after.
    pub added_bounding: CapabilitySet,
    /// Added to the effective and permitted sets for the load: removed
    /// after.
    pub added: CapabilitySet,
}

impl Seccomp {
    /// A filter loaded under `no_new_privs` (which it sets).
    pub fn with_no_new_privs(filter: Filter) -> Seccomp {
        Seccomp {
            filter,
            set_no_new_privs: true,
            added_bounding: CapabilitySet::empty(),
            added: CapabilitySet::empty(),
        }
    }

    /// Load the filter and drop the added capabilities, in this process
    /// (the container's, about to exec).
    pub fn install(&self) -> io::Result<()> {
        if self.set_no_new_privs {
            rustix::thread::set_no_new_privs(true)?;
        }
        self.filter.load()?;
        // CAP_SETPCAP last: removing from the bounding set needs it.
        for cap in [CapabilitySet::SYS_ADMIN, CapabilitySet::SETPCAP] {
            if self.added_bounding.contains(cap) {
                rustix::thread::remove_capability_from_bounding_set(cap)?;
            }
        }
        if !self.added.is_empty() {
            let mut sets = rustix::thread::capabilities(None)?;
            sets.effective -= self.added;
            sets.permitted -= self.added;
            rustix::thread::set_capabilities(None, sets)?;
        }
        Ok(())
    }
}

/// Whether `profile` lets `name` through whatever its arguments.
fn allows(profile: &LinuxSeccomp, name: &str) -> bool {
    let named = profile.syscalls().iter().flatten().find(|r| {
        r.names().iter().any(|n| n == name)
            && (r.args().as_ref().is_none_or(Vec::is_empty)
                || r.action() == profile.default_action())
    });
    match named {
        Some(r) => r.action() == LinuxSeccompAction::ScmpActAllow,
        None => profile.default_action() == LinuxSeccompAction::ScmpActAllow,
    }
}

/// Take the filter out of the runtime `spec` libcontainer will get, for
/// kiln's executor to load it ([`Seccomp`]): compiled (or read from
/// `cache`), and the capabilities the load needs added to the spec's
/// process when it has no `no_new_privs`. `None`, and the spec unchanged,
/// when there is no filter or libcontainer should load it (see the module
/// documentation).
pub fn prepare(spec: &mut Value, cache: Option<&Path>) -> Option<Seccomp> {
    let profile: LinuxSeccomp = match spec["linux"].get("seccomp") {
        Some(v) => match serde_json::from_value(v.clone()) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("{}", BpfError::Spec(e.to_string()));
                return None;
            }
        },
        None => return None,
    };
    let nnp = spec["process"]["noNewPrivileges"] == Value::Bool(true);
    let can_drop = allows(&profile, "capset") && allows(&profile, "prctl");
    if !(nnp || can_drop) {
        return None;
    }
    let filter = match Filter::cached(cache, &profile) {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!("{e}; libcontainer loads the filter");
            return None;
        }
    };
    if let Some(linux) = spec["linux"].as_object_mut() {
        linux.remove("seccomp");
    }
    let mut s = Seccomp {
        filter,
        set_no_new_privs: false,
        added_bounding: CapabilitySet::empty(),
        added: CapabilitySet::empty(),
    };
    if !nnp {
        let caps = &mut spec["process"]["capabilities"];
        for (name, bit) in [
            ("CAP_SYS_ADMIN", CapabilitySet::SYS_ADMIN),
            ("CAP_SETPCAP", CapabilitySet::SETPCAP),
        ] {
            for set in ["bounding", "effective", "permitted"] {
                if !caps[set].is_array() {
                    caps[set] = Value::Array(Vec::new());
                }
                let Some(l) = caps[set].as_array_mut() else {
                    continue;
                };
                if l.iter().any(|x| x == name) {
                    continue;
                }
                l.push(Value::from(name));
                if set == "bounding" {
                    s.added_bounding |= bit;
                } else {
                    s.added |= bit;
                }
            }
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn docker_profile() -> LinuxSeccomp {
        let caps: Vec<String> = crate::spec::DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .collect();
        serde_json::from_value(crate::seccomp::default_profile(&caps)).expect("profile")
    }

    #[test]
    fn compiles_docker_profile_and_caches_it() {
        let p = docker_profile();
        let f = Filter::compile(&p).expect("compile");
        assert!(f.program.len() > 100, "{} instructions", f.program.len());
        let dir = tempfile::tempdir().expect("tempdir");
        let a = Filter::cached(Some(dir.path()), &p).expect("first");
        assert_eq!(a, f);
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 1);
        let b = Filter::cached(Some(dir.path()), &p).expect("second");
        assert_eq!(b, f);
        // A damaged entry is compiled again.
        let entry = fs::read_dir(dir.path())
            .expect("dir")
            .next()
            .expect("entry")
            .expect("entry")
            .path();
        fs::write(&entry, b"xyz").expect("damage");
        assert_eq!(Filter::cached(Some(dir.path()), &p).expect("third"), f);
    }

    #[test]
    fn prepare_moves_the_filter_and_adds_only_missing_caps() {
        let mut spec = json!({
            "process": {"capabilities": {
                "bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"],
                "permitted": ["CAP_CHOWN"], "inheritable": [], "ambient": []
            }},
            "linux": {"seccomp": serde_json::to_value(docker_profile()).expect("json")}
        });
        let s = prepare(&mut spec, None).expect("prepared");
        assert!(spec["linux"].get("seccomp").is_none());
        let both = CapabilitySet::SYS_ADMIN | CapabilitySet::SETPCAP;
        assert!(s.added == both && s.added_bounding == both && !s.set_no_new_privs);
        for set in ["bounding", "effective", "permitted"] {
            assert_eq!(
                spec["process"]["capabilities"][set],
                json!(["CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_SETPCAP"]),
                "{set}"
            );
        }
        assert_eq!(spec["process"]["capabilities"]["inheritable"], json!([]));

        // no_new_privs: no capability needed.
        let mut spec = json!({
            "process": {"noNewPrivileges": true, "capabilities": {"bounding": []}},
            "linux": {"seccomp": serde_json::to_value(docker_profile()).expect("json")}
        });
        let s = prepare(&mut spec, None).expect("prepared");
        assert!(s.added.is_empty() && s.added_bounding.is_empty());
        assert_eq!(spec["process"]["capabilities"]["bounding"], json!([]));

        // A non-root user: bounding set kept, effective and permitted empty.
        let mut spec = json!({
            "process": {"capabilities": {
                "bounding": ["CAP_SETPCAP"], "effective": [], "permitted": []
            }},
            "linux": {"seccomp": serde_json::to_value(docker_profile()).expect("json")}
        });
        let s = prepare(&mut spec, None).expect("prepared");
        assert_eq!(s.added_bounding, CapabilitySet::SYS_ADMIN);
        assert_eq!(s.added, CapabilitySet::SYS_ADMIN | CapabilitySet::SETPCAP);
    }

    #[test]
    fn profiles_that_block_capset_stay_with_libcontainer() {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["capset"], "action": "SCMP_ACT_ERRNO"}]
        });
        let mut spec = json!({"process": {}, "linux": {"seccomp": profile}});
        let before = spec.clone();
        assert!(prepare(&mut spec, None).is_none());
        assert_eq!(spec, before);
        // The same under no_new_privs is kiln's to load.
        spec["process"]["noNewPrivileges"] = json!(true);
        assert!(prepare(&mut spec, None).is_some());
        // Notify is libcontainer's.
        let notify = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]
        });
        let mut spec = json!({"process": {"noNewPrivileges": true}, "linux": {"seccomp": notify}});
        assert!(prepare(&mut spec, None).is_none());
    }
}
