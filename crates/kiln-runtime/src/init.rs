//! The built-in init (`run --init`): kiln's own code as PID 1 of the
//! container. It runs in the container process libcontainer set up (after
//! pivot_root, capabilities, seccomp), so nothing is mounted into the image
//! and no kiln binary is reachable inside: the process is a fork of the
//! monitor, which runs from a sealed memfd copy of kiln
//! ([`crate::memfd`]), and it is made non-dumpable so `/proc/1/*` stays
//! closed to the container's processes (CVE-2019-5736).
//!
//! It forks the command, forwards every catchable signal to it, reaps every
//! zombie (orphans are re-parented to PID 1), and exits with the command's
//! status (128 + signal if it was killed), like tini / docker-init.

use std::ffi::CString;

use nix::sys::signal::{self, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{self, ForkResult, Pid};

/// Signals the init forwards (every catchable one but SIGCHLD).
fn forwarded() -> impl Iterator<Item = Signal> {
    Signal::iterator().filter(|s| {
        !matches!(
            s,
            Signal::SIGKILL
                | Signal::SIGSTOP
                | Signal::SIGCHLD
                | Signal::SIGSEGV
                | Signal::SIGBUS
                | Signal::SIGILL
                | Signal::SIGFPE
                | Signal::SIGABRT
                | Signal::SIGTRAP
                | Signal::SIGSYS
        )
    })
}

extern "C" fn ignore(_: libc_int) {}

#[allow(non_camel_case_types)]
type libc_int = std::ffi::c_int;

/// Reset the signal mask and dispositions a process inherited, before it
/// execs a container command.
pub fn reset_signals() {
    let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    for s in Signal::iterator() {
        if matches!(s, Signal::SIGKILL | Signal::SIGSTOP) {
            continue;
        }
        // SAFETY: restoring the default disposition installs no handler.
        let _ = unsafe { signal::signal(s, SigHandler::SigDfl) };
    }
}

/// exec `args` (PATH lookup) or exit 127/126 as a shell would.
pub fn exec_command(args: &[String]) -> ! {
    let cargs: Vec<CString> = args
        .iter()
        .filter_map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    if cargs.len() == args.len() && !cargs.is_empty() {
        let err = unistd::execvp(&cargs[0], &cargs).err();
        let code = match err {
            Some(nix::errno::Errno::ENOENT) => 127,
            _ => 126,
        };
        let msg = format!(
            "kiln-init: exec {:?} failed: {}\n",
            args[0],
            err.map_or("unknown error".into(), |e| e.desc().to_string())
        );
        let _ = unistd::write(std::io::stderr(), msg.as_bytes());
        std::process::exit(code);
    }
    std::process::exit(127)
}

/// Run as PID 1: start `args`, reap, forward, exit with its status.
pub fn run(args: &[String]) -> ! {
    // No descriptor of the monitor survives into PID 1.
    // SAFETY: close_range on fds this process does not use any more; std
    // holds no others (stdio stays).
    unsafe {
        nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, 0u32);
    }
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) only changes this process's flag;
    // PR_SET_NAME copies at most 16 bytes from a NUL-terminated literal.
    // The name is what `ps` in the container shows for PID 1 (docker-init
    // for Docker), instead of libcontainer's "youki:[2:INIT]".
    unsafe {
        nix::libc::prctl(nix::libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        nix::libc::prctl(nix::libc::PR_SET_NAME, c"kiln-init".as_ptr(), 0, 0, 0);
    }
    let mut all = SigSet::empty();
    for s in forwarded() {
        all.add(s);
        // A handler (never run: the signals are blocked and waited for)
        // so the kernel delivers signals from outside the PID namespace to
        // PID 1 instead of dropping them.
        // SAFETY: the handler does nothing and is async-signal-safe.
        let _ = unsafe { signal::signal(s, SigHandler::Handler(ignore)) };
    }
    all.add(Signal::SIGCHLD);
    let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&all), None);

    // SAFETY: the monitor this process was cloned from is single-threaded,
    // so fork is safe; the child only resets signals and execs.
    let child = match unsafe { unistd::fork() } {
        Ok(ForkResult::Child) => {
            // Its own process group, in the foreground of the terminal if
            // there is one (as tini does), so ^C on a tty reaches it.
            let _ = unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            if unistd::isatty(0).unwrap_or(false) {
                // SAFETY: ignoring SIGTTOU installs no handler.
                let _ = unsafe { signal::signal(Signal::SIGTTOU, SigHandler::SigIgn) };
                let _ = unistd::tcsetpgrp(std::io::stdin(), unistd::getpid());
            }
            reset_signals();
            exec_command(args)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => {
            let msg = format!("kiln-init: fork failed: {e}\n");
            let _ = unistd::write(std::io::stderr(), msg.as_bytes());
            std::process::exit(125)
        }
    };
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            let _ = signal::kill(child, sig);
            continue;
        }
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => std::process::exit(code),
                Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => {
                    std::process::exit(128 + s as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}
