//! Running kiln from a copy of itself that cannot be written (runc's
//! defence against CVE-2019-5736): the monitor re-executes itself before it
//! creates a container, so every process it forks (the container's init,
//! the built-in init) has a `/proc/PID/exe` that cannot be written, and the
//! host binary is never reachable from inside a container.
//!
//! The cheap way first, as runc ≥ 1.2 does: a private, detached,
//! read-only overlayfs whose only layers are kiln's own directory (and an
//! empty one: overlayfs wants two lower layers when it has no upper one),
//! made with the new mount API (`fsopen`, `fsmount`) and never attached to
//! any path; kiln is executed from it with `fexecve`. Nothing is copied,
//! and the file it runs from is on a file system that has no writable
//! layer at all. Where that is not possible (no overlayfs, an old kernel),
//! a sealed memfd copy of the binary (`memfd_create`, `F_SEAL_WRITE`…).

use std::ffi::CString;
use std::fs::File;
use std::io;

use rustix::fs::{MemfdFlags, SealFlags};

/// The name the memfd carries (`/proc/self/exe` reads `/memfd:NAME`).
const NAME: &str = "kiln-sealed";

/// Set in the environment of the re-executed process.
const MARKER: &str = "KILN_SEALED_EXEC";
/// `statfs(2)`'s f_type of overlayfs.
const OVERLAYFS_SUPER_MAGIC: i64 = 0x794c_7630;

/// Whether this process already runs from the sealed copy: a sealed memfd,
/// or (when the re-exec said so) a file on a read-only overlayfs.
pub fn running_sealed() -> bool {
    let memfd = std::fs::read_link("/proc/self/exe")
        .map(|p| p.to_string_lossy().starts_with(&format!("/memfd:{NAME}")))
        .unwrap_or(false);
    if memfd {
        return true;
    }
    if std::env::var_os(MARKER).is_none() {
        return false;
    }
    match rustix::fs::statfs("/proc/self/exe") {
        Ok(st) => {
            st.f_type == OVERLAYFS_SUPER_MAGIC
                && rustix::fs::statvfs("/proc/self/exe")
                    .is_ok_and(|v| v.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY))
        }
        Err(_) => false,
    }
}

/// Make sure this process runs from a sealed copy of kiln: if it does,
/// name it `kiln` (its `comm`, what `ps -e` and `top` show: started as
/// `/proc/self/fd/N` it would be named after that descriptor's number);
/// otherwise re-execute it from one ([`reexec_sealed`]), which returns
/// only on failure, with the error.
pub fn ensure_sealed() -> io::Result<()> {
    if !running_sealed() {
        return Err(reexec_sealed());
    }
    let _ = rustix::thread::set_name(c"kiln");
    Ok(())
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
    match overlay_copy() {
        Ok(file) => {
            let e = exec_fd(&file, true);
            tracing::debug!(error = %e, "exec from a read-only overlay failed; copying to a memfd");
        }
        Err(e) => {
            tracing::debug!(error = %e, "no read-only overlay of kiln; copying to a memfd");
        }
    }
    let file = memfd_copy()?;
    Err(exec_fd(&file, false))
}

/// kiln's binary, sealed, to start kiln's helper processes (the monitor,
/// a build step) from directly: they then start sealed and need not
/// re-execute themselves, one `execve` of kiln (about 4 ms here) less each.
#[derive(Debug)]
pub struct SealedExe {
    file: Option<File>,
}

impl SealedExe {
    /// Opens the read-only overlay copy; where that is not possible, the
    /// commands run `/proc/self/exe` and the child re-executes itself from a
    /// memfd copy as before ([`reexec_sealed`]).
    pub fn open() -> SealedExe {
        SealedExe {
            file: overlay_copy()
                .map_err(|e| tracing::debug!(error = %e, "no read-only overlay of kiln"))
                .ok(),
        }
    }

    /// A command running kiln (`arg0` "kiln"). The file stays open in this
    /// process only (close-on-exec): the child's `execve` of
    /// `/proc/self/fd/N` opens it before the kernel closes that descriptor.
    pub fn command(&self) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut c = match &self.file {
            Some(f) => {
                let mut c = std::process::Command::new(format!(
                    "/proc/self/fd/{}",
                    std::os::fd::AsRawFd::as_raw_fd(f)
                ));
                c.env(MARKER, "1");
                c
            }
            None => {
                let mut c = std::process::Command::new("/proc/self/exe");
                c.env_remove(MARKER);
                c
            }
        };
        c.arg0("kiln");
        c
    }
}

/// kiln's binary opened through a detached read-only overlayfs of its
/// directory (see the module docs).
fn overlay_copy() -> io::Result<File> {
    use rustix::mount::{
        fsconfig_create, fsconfig_set_string, fsmount, fsopen, FsMountFlags, FsOpenFlags,
        MountAttrFlags,
    };
    let exe = std::fs::read_link("/proc/self/exe")?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "kiln's path has no directory",
        ));
    };
    if !exe.is_absolute() || exe.to_string_lossy().contains(':') {
        // A deleted binary (` (deleted)`), a memfd, or a path overlayfs'
        // lowerdir syntax cannot carry.
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "kiln's path cannot be an overlay layer",
        ));
    }
    let empty = empty_dir()?;
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    let lower = format!("{}:{}", dir.display(), empty.display());
    fsconfig_set_string(&fs, "lowerdir", lower.as_str())?;
    fsconfig_create(&fs)?;
    let mnt = fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_RDONLY | MountAttrFlags::MOUNT_ATTR_NODEV,
    )?;
    let fd = rustix::fs::openat(
        &mnt,
        name,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// An empty directory to be overlayfs' second lower layer.
fn empty_dir() -> io::Result<std::path::PathBuf> {
    let dir = std::path::PathBuf::from("/run/kiln/empty");
    std::fs::create_dir_all(&dir)?;
    if std::fs::read_dir(&dir)?.next().is_some() {
        return Err(io::Error::other(format!("{} is not empty", dir.display())));
    }
    Ok(dir)
}

/// A sealed memfd copy of kiln's binary.
fn memfd_copy() -> io::Result<File> {
    let fd = rustix::fs::memfd_create(NAME, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut src = File::open("/proc/self/exe")?;
    let mut dst = File::from(fd);
    io::copy(&mut src, &mut dst)?;
    rustix::fs::fcntl_add_seals(
        &dst,
        SealFlags::SEAL | SealFlags::SHRINK | SealFlags::GROW | SealFlags::WRITE,
    )?;
    Ok(dst)
}

/// `fexecve` of `file` with this process's arguments and environment
/// (plus the marker when it runs from the overlay). Returns on failure.
fn exec_fd(file: &File, marker: bool) -> io::Error {
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
        .filter(|kv: &CString| !kv.as_bytes().starts_with(format!("{MARKER}=").as_bytes()))
        .collect();
    let mut env = env;
    if marker {
        if let Ok(m) = CString::new(format!("{MARKER}=1")) {
            env.push(m);
        }
    }
    // The file is close-on-exec: fexecve of an ELF file does not need it
    // open afterwards, and nothing inherits it.
    let e = nix::unistd::fexecve(std::os::fd::AsRawFd::as_raw_fd(file), &args, &env)
        .err()
        .unwrap_or(nix::errno::Errno::EINVAL);
    io::Error::from_raw_os_error(e as i32)
}
