//! Running kiln from a sealed memfd copy of itself (runc's defence against
//! CVE-2019-5736): the monitor re-executes itself from an anonymous,
//! sealed, read-only in-memory file before it creates a container, so
//! every process it forks (the container's init, the built-in init) has a
//! `/proc/PID/exe` that cannot be written, and the host binary is never
//! reachable from inside a container.

use std::ffi::CString;
use std::fs::File;
use std::io;

use rustix::fs::{MemfdFlags, SealFlags};

/// The name the memfd carries (`/proc/self/exe` reads `/memfd:NAME`).
const NAME: &str = "kiln-sealed";

/// Whether this process already runs from the sealed copy.
pub fn running_sealed() -> bool {
    std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().starts_with(&format!("/memfd:{NAME}")))
        .unwrap_or(false)
}

/// Re-execute this process, with the same arguments and environment, from
/// a sealed memfd copy of its binary. Returns only on failure.
pub fn reexec_sealed() -> io::Error {
    match try_reexec() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn try_reexec() -> io::Result<std::convert::Infallible> {
    let fd = rustix::fs::memfd_create(NAME, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut src = File::open("/proc/self/exe")?;
    let mut dst = File::from(fd);
    io::copy(&mut src, &mut dst)?;
    rustix::fs::fcntl_add_seals(
        &dst,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )?;
    let args: Vec<CString> = std::env::args_os()
        .filter_map(|a| CString::new(a.into_encoded_bytes()).ok())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).ok()
        })
        .collect();
    // The memfd is close-on-exec: fexecve of an ELF file does not need it
    // open afterwards, and nothing inherits it.
    let e = nix::unistd::fexecve(std::os::fd::AsRawFd::as_raw_fd(&dst), &args, &env)
        .err()
        .unwrap_or(nix::errno::Errno::EINVAL);
    Err(io::Error::from_raw_os_error(e as i32))
}
