//! The embedded OCI runtime: youki's libcontainer, without systemd (cgroup
//! v1, v2 or this machine's hybrid layout, which libcgroups drives as v1).
//! kiln's own executor runs in the container process once libcontainer has
//! set it up: it checks the command exists (so `run` can answer 127 or 126
//! as Docker does), resets the signal state it inherited, and either execs
//! the command or becomes the built-in init ([`crate::init`]).
//!
//! Only the single-threaded monitor calls into this module: libcontainer
//! forks.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::Container;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;
use thiserror::Error;

/// libcontainer failed.
#[derive(Debug, Error)]
pub enum EngineError {
    /// Creating the container failed.
    #[error("failed to create the container: {0}")]
    Create(String),
    /// Starting it failed.
    #[error("failed to start the container: {0}")]
    Start(String),
    /// Deleting it failed.
    #[error("failed to delete the container: {0}")]
    Delete(String),
}

impl EngineError {
    /// Docker's exit status for a start failure: 127 for a command that is
    /// not there, 126 for one that cannot be executed, else 125.
    pub fn exit_code(&self) -> i32 {
        let text = self.to_string();
        if text.contains("executable file not found") || text.contains("no such file or directory")
        {
            127
        } else if text.contains("permission denied") || text.contains("not executable") {
            126
        } else {
            125
        }
    }
}

/// kiln's workload executor.
#[derive(Debug, Clone)]
pub struct KilnExecutor {
    /// Run the built-in init as PID 1.
    pub init: bool,
    /// The seccomp filter to load just before exec, compiled beforehand
    /// ([`crate::bpf`]): the container's when [`crate::bpf::prepare`] took
    /// it out of the spec, an `exec`'d process's (libcontainer drops the
    /// container's filter for those).
    pub seccomp: Option<crate::bpf::Seccomp>,
}

fn process_args(spec: &Spec) -> Option<Vec<String>> {
    spec.process().as_ref()?.args().clone()
}

/// Look `name` up as execvp would: `Ok(path)`, or Docker's message.
fn find_executable(name: &str, path_var: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let check = |p: &Path| -> Result<PathBuf, String> {
        let md = std::fs::metadata(p)
            .map_err(|_| format!("exec: \"{name}\": stat {name}: no such file or directory"))?;
        if md.is_dir() || md.permissions().mode() & 0o111 == 0 {
            return Err(format!("exec: \"{name}\": permission denied"));
        }
        Ok(p.to_path_buf())
    };
    if name.contains('/') {
        return check(Path::new(name));
    }
    for dir in path_var.split(':') {
        let p = Path::new(if dir.is_empty() { "." } else { dir }).join(name);
        if p.is_file() {
            return check(&p);
        }
    }
    Err(format!(
        "exec: \"{name}\": executable file not found in $PATH"
    ))
}

impl Executor for KilnExecutor {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        let args = process_args(spec).ok_or(ExecutorError::InvalidArg)?;
        crate::init::reset_signals();
        if let Some(s) = &self.seccomp {
            s.install().map_err(|e| {
                ExecutorError::Other(format!("failed to load the seccomp filter: {e}"))
            })?;
        }
        if self.init {
            crate::init::run(&args)
        }
        crate::init::exec_command(&args)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        let args = process_args(spec)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| ExecutorValidationError::ArgValidationError("no command".into()))?;
        let path = spec
            .process()
            .as_ref()
            .and_then(|p| p.env().as_ref())
            .and_then(|env| {
                env.iter()
                    .find_map(|e| e.strip_prefix("PATH=").map(String::from))
            })
            .unwrap_or_default();
        find_executable(&args[0], &path)
            .map(|_| ())
            .map_err(ExecutorValidationError::ArgValidationError)
    }
}

/// Where a container's stdio goes.
#[derive(Debug)]
pub enum Stdio {
    /// These three descriptors.
    Fds {
        /// Standard input.
        stdin: OwnedFd,
        /// Standard output.
        stdout: OwnedFd,
        /// Standard error.
        stderr: OwnedFd,
    },
    /// A new pty whose master is sent to this unix socket.
    Console(PathBuf),
}

/// Create (not start) the container `id` from `bundle/config.json`, its
/// runtime state under `state_root`; its executor loads `seccomp` (taken
/// out of that spec by [`crate::bpf::prepare`]). Returns the container and
/// its init's pid on the host.
pub fn create(
    id: &str,
    state_root: &Path,
    bundle: &Path,
    stdio: Stdio,
    init: bool,
    seccomp: Option<crate::bpf::Seccomp>,
) -> Result<(Container, i32), EngineError> {
    // No other thread may run while libcontainer clones.
    crate::cgroup_warm::settle();
    let err = |e: libcontainer::error::LibcontainerError| EngineError::Create(error_chain(&e));
    let mut b = ContainerBuilder::new(id.to_string(), SyscallType::Linux)
        .with_executor(KilnExecutor { init, seccomp })
        .with_root_path(state_root)
        .map_err(err)?;
    match stdio {
        Stdio::Fds {
            stdin,
            stdout,
            stderr,
        } => {
            b = b.with_stdin(stdin).with_stdout(stdout).with_stderr(stderr);
        }
        Stdio::Console(path) => b = b.with_console_socket(Some(path)),
    }
    let container = b
        .as_init(bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(err)?;
    let pid = container
        .pid()
        .map(|p| p.as_raw())
        .ok_or_else(|| EngineError::Create("the container has no process".into()))?;
    Ok((container, pid))
}

/// Run another process in the running container `id` (`kiln exec`): the
/// process described by the OCI `process.json` at `process`, in the
/// container's namespaces and cgroup. Returns its pid on the host (a child
/// of this process).
pub fn exec(
    id: &str,
    state_root: &Path,
    process: &Path,
    stdio: Stdio,
    seccomp: Option<crate::bpf::Seccomp>,
) -> Result<i32, EngineError> {
    crate::cgroup_warm::settle();
    let err = |e: libcontainer::error::LibcontainerError| EngineError::Create(error_chain(&e));
    let mut b = ContainerBuilder::new(id.to_string(), SyscallType::Linux)
        .with_executor(KilnExecutor {
            init: false,
            seccomp,
        })
        .with_root_path(state_root)
        .map_err(err)?;
    match stdio {
        Stdio::Fds {
            stdin,
            stdout,
            stderr,
        } => {
            b = b.with_stdin(stdin).with_stdout(stdout).with_stderr(stderr);
        }
        Stdio::Console(path) => b = b.with_console_socket(Some(path)),
    }
    let pid = b
        .as_tenant()
        .with_process(Some(process))
        .with_detach(true)
        .build()
        .map_err(err)?;
    Ok(pid.as_raw())
}

/// Start a created container (its init execs the command).
pub fn start(container: &mut Container) -> Result<(), EngineError> {
    container
        .start()
        .map_err(|e| EngineError::Start(error_chain(&e)))
}

/// Remove the container's runtime state and cgroup (its processes are
/// gone or are killed).
pub fn delete(state_root: &Path, id: &str) -> Result<(), EngineError> {
    let dir = state_root.join(id);
    if !dir.exists() {
        return Ok(());
    }
    let mut c = Container::load(dir).map_err(|e| EngineError::Delete(error_chain(&e)))?;
    c.delete(true)
        .map_err(|e| EngineError::Delete(error_chain(&e)))
}

/// [`delete`] for a container whose init this process has reaped (so no
/// process of it is left but those the kernel is still killing with its
/// PID namespace): its cgroup's directories are removed from every cgroup
/// hierarchy mounted here, then its runtime state. libcontainer's delete
/// first builds a cgroup manager, which costs ~1.5 ms of mountinfo and
/// procfs checks per container; on anything unexpected (a process still
/// in the cgroup: `EBUSY`) this falls back to it, which kills and waits.
pub fn delete_exited(state_root: &Path, id: &str, cgroup: &str) -> Result<(), EngineError> {
    let dir = state_root.join(id);
    if !dir.exists() {
        return Ok(());
    }
    let rel = cgroup.trim_start_matches('/');
    let sane = !rel.is_empty() && rel.split('/').all(|c| !c.is_empty() && c != "..");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| cgroup_mounts(&t))
        .unwrap_or_default();
    if !sane || mounts.is_empty() {
        return delete(state_root, id);
    }
    for m in mounts {
        match std::fs::remove_dir(m.join(rel)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return delete(state_root, id),
        }
    }
    std::fs::remove_dir_all(&dir)
        .map_err(|e| EngineError::Delete(format!("{}: {e}", dir.display())))
}

/// The mount points of the cgroup file systems (v1 hierarchies and the
/// unified one) in `/proc/self/mountinfo`'s text.
fn cgroup_mounts(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            Some(PathBuf::from(crate::rootfs::unescape_mountinfo(
                left.split(' ').nth(4)?,
            )))
        })
        .collect()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_mounts_come_from_mountinfo() {
        let text = "\
25 30 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw shared:13 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/my\\040pids rw shared:15 - cgroup cgroup rw,pids
40 30 0:35 / /proc rw - proc proc rw
";
        assert_eq!(
            cgroup_mounts(text),
            vec![
                PathBuf::from("/sys/fs/cgroup/unified"),
                PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"),
                PathBuf::from("/sys/fs/cgroup/my pids"),
            ]
        );
    }

    #[test]
    fn executables_are_found_as_execvp_would() {
        assert!(find_executable("sh", "/usr/bin:/bin").is_ok());
        let e = find_executable("no-such-cmd-kiln", "/usr/bin:/bin").unwrap_err();
        assert!(e.contains("executable file not found"), "{e}");
        let e = find_executable("/etc/passwd", "/bin").unwrap_err();
        assert!(e.contains("permission denied"), "{e}");
        let e = find_executable("/nope/x", "/bin").unwrap_err();
        assert!(e.contains("no such file"), "{e}");
        assert_eq!(EngineError::Create(e).exit_code(), 127);
    }
}

/// An external OCI runtime (`--runtime PATH`: runc, crun) driven through
/// its command line, its state under `state_root`. The caller must be a
/// child subreaper so that the container's process, which the runtime's
/// `create` leaves behind, is re-parented to it.
#[derive(Debug, Clone)]
pub struct External {
    /// The runtime binary.
    pub path: PathBuf,
    /// Its `--root`.
    pub state_root: PathBuf,
}

impl External {
    fn cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(&self.path);
        c.arg("--root").arg(&self.state_root);
        c
    }

    /// `create`; returns the container's pid (see [`External::start`]).
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        stdio: Stdio,
        pid_file: &Path,
    ) -> Result<i32, EngineError> {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only sets a flag on this
        // process.
        unsafe {
            nix::libc::prctl(nix::libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
        let mut c = self.cmd();
        c.arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(pid_file);
        match stdio {
            Stdio::Fds {
                stdin,
                stdout,
                stderr,
            } => {
                c.stdin(stdin).stdout(stdout).stderr(stderr);
            }
            Stdio::Console(sock) => {
                c.arg("--console-socket").arg(sock);
            }
        }
        c.arg(id);
        let out = c
            .output()
            .map_err(|e| EngineError::Create(format!("{}: {e}", self.path.display())))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            let _ = self.delete(id);
            return Err(EngineError::Create(text.trim().to_string()));
        }
        let pid: i32 = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| EngineError::Create("the runtime wrote no pid".into()))?;
        Ok(pid)
    }

    /// `start` of a container made by [`External::create`].
    pub fn start(&self, id: &str) -> Result<(), EngineError> {
        let out = self
            .cmd()
            .arg("start")
            .arg(id)
            .output()
            .map_err(|e| EngineError::Start(format!("{}: {e}", self.path.display())))?;
        if !out.status.success() {
            return Err(EngineError::Start(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(())
    }

    /// `delete --force`.
    pub fn delete(&self, id: &str) -> Result<(), EngineError> {
        let out = self
            .cmd()
            .args(["delete", "--force", id])
            .output()
            .map_err(|e| EngineError::Delete(e.to_string()))?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            if !text.contains("does not exist") && !text.contains("not exist") {
                return Err(EngineError::Delete(text.trim().to_string()));
            }
        }
        Ok(())
    }
}
