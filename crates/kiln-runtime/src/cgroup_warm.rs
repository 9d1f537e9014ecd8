//! Paying the cgroup attach's RCU grace period beside other work.
//!
//! Moving a process into a cgroup by pid (what libcontainer's intermediate
//! process does for every container: it writes its pid into `cgroup.procs`
//! of each hierarchy) takes the kernel's one global
//! `cgroup_threadgroup_rwsem` for writing, and the first writer after a
//! quiet spell waits a full RCU grace period for it (`rcu_sync_enter`:
//! 6-20 ms on this project's machines, HZ=250, measured). A writer that
//! comes within a grace period of the previous one does not wait. runc and
//! youki pay that wait in the middle of every container start.
//!
//! [`start`] forks a small helper process that pays it while kiln prepares
//! the container (store, overlay, spec, bundle; for `kiln run` also the
//! re-execution into the monitor): it writes its own pid into the
//! `cgroup.procs` of the cgroup it is already in — a move to where it is,
//! which changes nothing — and again every 2 ms, so the lock stays in its
//! writer mode, until [`settle`] closes the pipe it watches (or its parent
//! is gone, or a second has passed). The engine settles right before it
//! clones the container's processes, whose attach then does not wait for
//! a grace period of its own.
//!
//! A process rather than a thread: the callers are single-threaded on
//! purpose (libcontainer clones them; the build step unshares its mount
//! namespace), and a process survives the `exec` of `kiln run` into the
//! monitor, which takes it over by the descriptor number it is given
//! ([`adopt`]).
//!
//! Best effort: when no `cgroup.procs` can be opened for writing (no cgroup
//! file system, not root) no helper is started and the attach waits as
//! before.

use std::fs::{self, File, OpenOptions};
use std::os::fd::{IntoRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags, Timespec};

/// How long the helper waits between two writes: well under a grace
/// period, so the lock never goes back to its reader-only mode.
const INTERVAL: Duration = Duration::from_millis(2);

/// The longest a helper runs when nobody settles it.
const LIMIT: Duration = Duration::from_secs(1);

/// The write end of the pipe the running helper watches.
static HELPER: Mutex<Option<OwnedFd>> = Mutex::new(None);

/// Start the helper (see the module docs), unless one runs for this
/// process already or no `cgroup.procs` is writable.
pub fn start() {
    let Ok(mut slot) = HELPER.lock() else {
        return;
    };
    if slot.is_none() {
        *slot = spawn();
    }
}

/// Start the helper and hand its pipe over to a process this one is about
/// to become or start: the returned descriptor is inherited across `exec`
/// (the caller passes its number on, see [`adopt`]). `None` when no helper
/// could be started.
pub fn start_for_exec() -> Option<RawFd> {
    let fd = spawn()?;
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::empty()).ok()?;
    Some(fd.into_raw_fd())
}

/// Make `cmd`'s process inherit `fd` (a [`Helper::share`]d descriptor)
/// and name it with `--warm-fd N` (appended: the command's subcommand
/// must take that option, and [`adopt`] it).
pub fn hand_to(cmd: &mut std::process::Command, fd: &OwnedFd) {
    use std::os::fd::AsFd;
    let raw = crate::monitor::pass_fd(cmd, fd.as_fd());
    cmd.arg("--warm-fd").arg(raw.to_string());
}

/// A helper a multi-threaded process (the build) keeps for the children it
/// starts: it runs while this handle or a descriptor [`Helper::share`]d
/// from it is open (and a second at most).
#[derive(Debug)]
pub struct Helper {
    stop: OwnedFd,
    started: Instant,
}

impl Helper {
    /// Start one; `None` when no `cgroup.procs` is writable.
    pub fn spawn() -> Option<Helper> {
        Some(Helper {
            stop: spawn()?,
            started: Instant::now(),
        })
    }

    /// Whether it is about to end by itself (started most of a second
    /// ago): a caller that needs it for longer starts another.
    pub fn ending(&self) -> bool {
        self.started.elapsed() >= LIMIT.mul_f32(0.8)
    }

    /// A copy of its pipe for a child to [`adopt`] (close-on-exec: the
    /// child's side must clear that flag between fork and exec).
    pub fn share(&self) -> Option<OwnedFd> {
        rustix::io::fcntl_dupfd_cloexec(&self.stop, 3).ok()
    }
}

/// Take over the helper a previous program of this process started
/// ([`start_for_exec`]), by its pipe's descriptor number. A number that is
/// not an open pipe is ignored.
pub fn adopt(fd: RawFd) {
    let Some(fd) = crate::monitor::inherited_fd(fd) else {
        return;
    };
    let is_pipe = rustix::fs::fstat(&fd).is_ok_and(|st| {
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Fifo
    });
    if !is_pipe {
        return;
    }
    if let Ok(mut slot) = HELPER.lock() {
        *slot = Some(fd);
    }
}

/// Tell the helper to stop: it ends after its current write. Never waits
/// (the container's own attach waits for what is left of a grace period
/// the helper is still in); the helper is not this process's child.
pub fn settle() {
    if let Ok(mut slot) = HELPER.lock() {
        slot.take();
    }
}

/// Fork the helper; returns the write end of the pipe it watches.
fn spawn() -> Option<OwnedFd> {
    let file = own_procs_file()?;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
    // SAFETY: the children only make system calls (fork, close, getpid,
    // write, poll, clock reads, _exit) and touch no lock or allocator
    // state, so this is sound even when the parent has other threads.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            drop(write);
            // The helper is this child's child: this one ends at once and
            // is reaped below, and the helper, orphaned, is never left a
            // zombie of the caller (a long build starts many).
            match unsafe { nix::unistd::fork() } {
                Ok(nix::unistd::ForkResult::Child) => helper(&file, &read),
                // SAFETY: as in helper().
                _ => unsafe { nix::libc::_exit(0) },
            }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => {
            let _ = nix::sys::wait::waitpid(child, None);
            Some(write)
        }
        Err(_) => None,
    }
}

/// The helper's whole life: write its pid, wait 2 ms or for the pipe to
/// close, again, until told or a second has passed.
fn helper(file: &File, stop: &OwnedFd) -> ! {
    use std::os::fd::AsRawFd;
    // Nothing of the parent's stays open here: not its store's lock, nor a
    // pipe (its stdout) someone reads until every writer is gone.
    close_all_but(file.as_raw_fd(), stop.as_raw_fd());
    let mut buf = [0u8; 20];
    let pid = decimal(
        rustix::process::getpid().as_raw_nonzero().get() as u32,
        &mut buf,
    );
    let began = Instant::now();
    let wait = Timespec {
        tv_sec: 0,
        tv_nsec: INTERVAL.as_nanos() as i64,
    };
    loop {
        // A write the kernel refuses took the lock all the same.
        let _ = rustix::io::write(file, pid);
        let mut fds = [PollFd::new(stop, PollFlags::IN)];
        let stopped = match poll(&mut fds, Some(&wait)) {
            Ok(0) => false,
            Ok(_) => true,
            Err(e) => e != rustix::io::Errno::INTR,
        };
        if stopped || began.elapsed() >= LIMIT {
            // SAFETY: _exit ends the process at once, without running
            // anything of the parent's copied state.
            unsafe { nix::libc::_exit(0) }
        }
    }
}

/// Close every descriptor of this process but `a` and `b` (system calls
/// only: it runs between fork and exit).
fn close_all_but(a: RawFd, b: RawFd) {
    let (lo, hi) = (a.min(b) as u32, a.max(b) as u32);
    let ranges = [
        (Some(0), lo.checked_sub(1)),
        (lo.checked_add(1), hi.checked_sub(1)),
        (hi.checked_add(1), Some(u32::MAX)),
    ];
    for (first, last) in ranges {
        if let (Some(first), Some(last)) = (first, last) {
            if first <= last {
                // SAFETY: closing descriptors this process will not use
                // again (the helper only uses `a` and `b`).
                unsafe {
                    nix::libc::close_range(first, last, 0);
                }
            }
        }
    }
}

/// `n` in decimal, written into the end of `buf`, without allocating.
fn decimal(mut n: u32, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The `cgroup.procs` of a cgroup this process is in, opened for writing:
/// a v1 hierarchy's, else the unified one's (under `/sys/fs/cgroup/unified`
/// on a hybrid host, `/sys/fs/cgroup` on a pure v2 one).
fn own_procs_file() -> Option<File> {
    let text = fs::read_to_string("/proc/self/cgroup").ok()?;
    candidates(&text).into_iter().find_map(|p| {
        OpenOptions::new()
            .write(true)
            .open(p.join("cgroup.procs"))
            .ok()
    })
}

/// The directories to try, in order, from `/proc/self/cgroup`'s lines
/// (`ID:CONTROLLERS:PATH`).
fn candidates(proc_cgroup: &str) -> Vec<PathBuf> {
    let root = PathBuf::from("/sys/fs/cgroup");
    let mut v1 = Vec::new();
    let mut v2 = Vec::new();
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let rel = path.trim_start_matches('/');
        if rel.split('/').any(|c| c == "..") {
            continue;
        }
        if ctrls.is_empty() {
            v2.push(root.join("unified").join(rel));
            v2.push(root.join(rel));
        } else {
            let dir = ctrls.strip_prefix("name=").unwrap_or(ctrls);
            v1.push(root.join(dir).join(rel));
        }
    }
    v1.extend(v2);
    v1
}

/// Whether a helper runs for this process (tests).
#[cfg(test)]
fn running() -> bool {
    HELPER.lock().is_ok_and(|s| s.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_come_from_proc_self_cgroup_v1_first() {
        let text = "9:name=systemd:/\n8:pids:/a/b\n1:cpu,cpuacct:/\n0::/user.slice\n";
        let got = candidates(text);
        let want: Vec<PathBuf> = [
            "/sys/fs/cgroup/systemd/",
            "/sys/fs/cgroup/pids/a/b",
            "/sys/fs/cgroup/cpu,cpuacct/",
            "/sys/fs/cgroup/unified/user.slice",
            "/sys/fs/cgroup/user.slice",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(got, want);
        assert!(candidates("3:pids:/../etc\n").is_empty());
    }

    #[test]
    fn decimal_writes_digits() {
        let mut b = [0u8; 20];
        assert_eq!(decimal(0, &mut b), b"0");
        assert_eq!(decimal(4_194_304, &mut b), b"4194304");
        assert_eq!(decimal(u32::MAX, &mut b), b"4294967295");
    }

    /// As root (CI), the helper runs and stops when settled (its pipe
    /// closed): it is gone within a grace period or two.
    #[test]
    fn the_helper_stops_when_settled() {
        if !rustix::process::geteuid().is_root() {
            return;
        }
        assert!(
            own_procs_file().is_some(),
            "as root, no cgroup.procs of this process could be opened for writing"
        );
        let (read, write) = nix::unistd::pipe().unwrap();
        let file = own_procs_file().unwrap();
        // SAFETY: as in spawn().
        let pid = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                drop(write);
                helper(&file, &read)
            }
            nix::unistd::ForkResult::Parent { child } => child,
        };
        drop(read);
        std::thread::sleep(Duration::from_millis(20));
        // It keeps only its two descriptors (the cgroup.procs file and
        // its pipe): not this process's stdio, nor anything else.
        let fds: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(fds.len(), 2, "{fds:?}");
        assert!(
            !fds.iter().any(|f| f == "0" || f == "1" || f == "2"),
            "{fds:?}"
        );
        assert_eq!(
            nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)).unwrap(),
            nix::sys::wait::WaitStatus::StillAlive,
            "the helper ended on its own"
        );
        let t = Instant::now();
        drop(write);
        loop {
            let st =
                nix::sys::wait::waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)).unwrap();
            if st == nix::sys::wait::WaitStatus::Exited(pid, 0) {
                break;
            }
            assert_eq!(st, nix::sys::wait::WaitStatus::StillAlive);
            assert!(
                t.elapsed() < Duration::from_millis(500),
                "the helper still runs {:?} after its pipe closed",
                t.elapsed()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // The module's own slot: start, settle, and a settle of nothing.
        start();
        assert!(running());
        settle();
        assert!(!running());
        settle();
    }
}
