//! Filling an empty volume from the image, as Docker does on a volume's
//! first mount: the content of the container's root file system at the
//! mount target is copied into the volume's `_data` directory (owners,
//! modes, times, xattrs, symlinks, hard links, device nodes and fifos
//! preserved; sockets skipped), unless the mount asks for `volume-nocopy`
//! or the volume already holds something.
//!
//! The root file system is untrusted (DESIGN.md, security rule 1): the
//! target is resolved in-root (`openat2` with `RESOLVE_IN_ROOT`, so a
//! `VOLUME` path that is a symlink to `/etc` or `../..` means the image's
//! `/etc` or its root, never the host's), and the walk below it uses file
//! descriptors only, never following a symlink (`O_NOFOLLOW`, `*at` calls
//! with `AT_SYMLINK_NOFOLLOW`): symlinks are copied as links. Everything
//! is created with `O_EXCL` or `mkdirat` relative to directories this walk
//! made, so nothing is written outside the volume.
//!
//! Two containers starting at the same instant on the same new volume may
//! both find it empty; the second copy then fails on the first's files
//! (`EEXIST`), which fails that start. Docker serialises this in its
//! daemon; kiln has none.

use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, Dir, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid,
};
use thiserror::Error;

use crate::inroot;
use crate::options::{MountKind, MountRequest};

/// How deep a directory tree the copy follows (a hostile image could nest
/// directories until the monitor's stack runs out).
const MAX_DEPTH: usize = 512;

/// A mount that cannot be prepared.
#[derive(Debug, Error)]
pub enum CopyUpError {
    /// A target that is (through the image's symlinks) the root itself.
    #[error("invalid mount target {target}: it resolves to the container's root")]
    RootTarget {
        /// The mount target in the container.
        target: String,
    },
    /// A volume that could not be filled from the image.
    #[error(
        "failed to copy the image's content at {target} into volume {name} ({path}): {source}"
    )]
    Copy {
        /// The mount target in the container.
        target: String,
        /// The volume's name.
        name: String,
        /// Where in the copy it failed (relative to the target).
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Copy up every volume mount of `mounts` that wants it (see the module
/// documentation) from the root file system opened as `root`.
/// Every mount's target is checked first: one that resolves (through the
/// image's symlinks) to the container's root itself is refused, as Docker
/// refuses a mount on `/`.
pub fn copy_up_all(root: &OwnedFd, mounts: &[MountRequest]) -> Result<(), CopyUpError> {
    let root_st = rustix::fs::fstat(root).map_err(|e| CopyUpError::Copy {
        target: "/".into(),
        name: String::new(),
        path: PathBuf::new(),
        source: e.into(),
    })?;
    for m in mounts {
        let Ok(fd) = inroot::open(root, &m.target, OFlags::PATH, 0) else {
            continue;
        };
        if rustix::fs::fstat(&fd)
            .is_ok_and(|st| st.st_dev == root_st.st_dev && st.st_ino == root_st.st_ino)
        {
            return Err(CopyUpError::RootTarget {
                target: m.target.clone(),
            });
        }
    }
    for m in mounts
        .iter()
        .filter(|m| m.kind == MountKind::Volume && !m.no_copy)
    {
        let mut rel = PathBuf::new();
        copy_up(root, &m.target, Path::new(&m.source), &mut rel).map_err(|source| {
            CopyUpError::Copy {
                target: m.target.clone(),
                name: m.name.clone().unwrap_or_default(),
                path: rel,
                source,
            }
        })?;
    }
    Ok(())
}

/// Copy the tree at `target` (in-root) into the directory `data` if `data`
/// is empty and `target` is a directory; returns whether it copied.
/// `rel` tracks where the copy is, for the error.
pub fn copy_up(root: &OwnedFd, target: &str, data: &Path, rel: &mut PathBuf) -> io::Result<bool> {
    let dst = rustix::fs::open(
        data,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if !is_empty(&dst)? {
        return Ok(false);
    }
    let src = match inroot::open(
        root,
        target,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOCTTY | OFlags::NONBLOCK,
        0,
    ) {
        Ok(fd) => fd,
        Err(e)
            if matches!(
                rustix::io::Errno::from_io_error(&e),
                Some(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR)
            ) =>
        {
            return Ok(false)
        }
        Err(e) => return Err(e),
    };
    let mut links = HashMap::new();
    copy_dir(&src, &dst, &dst, rel, &mut links, 0)?;
    let st = rustix::fs::fstat(&src)?;
    set_meta(&src, &dst, &st)?;
    Ok(true)
}

fn is_empty(dir: &OwnedFd) -> io::Result<bool> {
    for e in Dir::read_from(dir)? {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

fn name_path(name: &CStr) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()))
}

/// Copy the entries of `src` into `dst`; `dst_root` is the volume's
/// `_data`, `rel` the path of `dst` below it, `links` the copies of files
/// with several links by (device, inode).
fn copy_dir(
    src: &OwnedFd,
    dst: &OwnedFd,
    dst_root: &OwnedFd,
    rel: &mut PathBuf,
    links: &mut HashMap<(u64, u64), PathBuf>,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("directories nested deeper than {MAX_DEPTH}"),
        ));
    }
    let mut names = Vec::new();
    for e in Dir::read_from(src)? {
        let e = e?;
        let n = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            names.push(n.to_owned());
        }
    }
    names.sort();
    for name in names {
        rel.push(name_path(&name));
        copy_entry(src, dst, dst_root, &name, rel, links, depth)?;
        rel.pop();
    }
    Ok(())
}

fn copy_entry(
    src: &OwnedFd,
    dst: &OwnedFd,
    dst_root: &OwnedFd,
    name: &CStr,
    rel: &mut PathBuf,
    links: &mut HashMap<(u64, u64), PathBuf>,
    depth: usize,
) -> io::Result<()> {
    let st = rustix::fs::statat(src, name, AtFlags::SYMLINK_NOFOLLOW)?;
    let mode = Mode::from_raw_mode(st.st_mode & 0o7777);
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => {
            rustix::fs::mkdirat(dst, name, Mode::from_raw_mode(0o700))?;
            let s = rustix::fs::openat(
                src,
                name,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let d = rustix::fs::openat(
                dst,
                name,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            copy_dir(&s, &d, dst_root, rel, links, depth + 1)?;
            set_meta(&s, &d, &st)?;
        }
        FileType::RegularFile => {
            let key = (st.st_dev, st.st_ino);
            if st.st_nlink > 1 {
                if let Some(first) = links.get(&key) {
                    // The first copy, reached beneath the volume without
                    // following any symlink (a container sharing the
                    // volume could have swapped a directory for one), then
                    // linked by descriptor.
                    let fd = kiln_fs::openat2(
                        dst_root,
                        first.as_path(),
                        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                        ResolveFlags::BENEATH
                            | ResolveFlags::NO_SYMLINKS
                            | ResolveFlags::NO_MAGICLINKS,
                    )?;
                    return Ok(rustix::fs::linkat(fd, "", dst, name, AtFlags::EMPTY_PATH)?);
                }
            }
            let s = rustix::fs::openat(
                src,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            let d = rustix::fs::openat(
                dst,
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )?;
            let mut sf = File::from(s);
            let mut df = File::from(d);
            io::copy(&mut sf, &mut df)?;
            set_meta(&sf, &df, &st)?;
            if st.st_nlink > 1 {
                links.insert(key, rel.clone());
            }
        }
        FileType::Symlink => {
            let target = rustix::fs::readlinkat(src, name, Vec::new())?;
            rustix::fs::symlinkat(target.as_c_str(), dst, name)?;
            rustix::fs::chownat(
                dst,
                name,
                Some(Uid::from_raw(st.st_uid)),
                Some(Gid::from_raw(st.st_gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
            rustix::fs::utimensat(dst, name, &times(&st), AtFlags::SYMLINK_NOFOLLOW)?;
        }
        t @ (FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo) => {
            rustix::fs::mknodat(dst, name, t, mode, st.st_rdev)?;
            rustix::fs::chownat(
                dst,
                name,
                Some(Uid::from_raw(st.st_uid)),
                Some(Gid::from_raw(st.st_gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )?;
            // The mode past the umask: through a descriptor of the node
            // itself (fchmodat cannot refuse to follow a symlink, and
            // fchmod does not work on an O_PATH descriptor).
            let fd = rustix::fs::openat(
                dst,
                name,
                OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != t {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "the new node was replaced",
                ));
            }
            rustix::fs::chmod(format!("/proc/self/fd/{}", fd.as_raw_fd()), mode)?;
            rustix::fs::utimensat(dst, name, &times(&st), AtFlags::SYMLINK_NOFOLLOW)?;
        }
        // Sockets belong to the process that made them.
        _ => {}
    }
    Ok(())
}

fn times(st: &rustix::fs::Stat) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec as _,
        },
        last_modification: Timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec as _,
        },
    }
}

/// Give `dst` the owner, mode, xattrs and times of `src` (whose status is
/// `st`): owner first, since chown clears set-id bits.
fn set_meta(src: impl AsFd, dst: impl AsFd, st: &rustix::fs::Stat) -> io::Result<()> {
    rustix::fs::fchown(
        &dst,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    rustix::fs::fchmod(&dst, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    copy_xattrs(&src, &dst)?;
    rustix::fs::futimens(&dst, &times(st))?;
    Ok(())
}

/// Copy extended attributes; those the volume's file system refuses
/// (overlay's own `trusted.overlay.*`, an unsupported namespace) are
/// skipped, as a copy by `cp -a` would.
fn copy_xattrs(src: impl AsFd, dst: impl AsFd) -> io::Result<()> {
    let mut list = vec![0u8; 64 * 1024];
    let n = match rustix::fs::flistxattr(&src, &mut list[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut value = vec![0u8; 64 * 1024];
    for name in list[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.") {
            continue;
        }
        let Ok(len) = rustix::fs::fgetxattr(&src, name, &mut value[..]) else {
            continue;
        };
        let _ = rustix::fs::fsetxattr(&dst, name, &value[..len], rustix::fs::XattrFlags::empty());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    #[test]
    fn copies_the_tree_and_never_leaves_the_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let vol = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("sub/f"), "hello").unwrap();
        std::fs::set_permissions(data.join("sub/f"), std::fs::Permissions::from_mode(0o640))
            .unwrap();
        std::fs::hard_link(data.join("sub/f"), data.join("g")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            data.join("fifo").as_path(),
            FileType::Fifo,
            Mode::from_raw_mode(0o666),
            0,
        )
        .unwrap();
        std::fs::set_permissions(data.join("fifo"), std::fs::Permissions::from_mode(0o666))
            .unwrap();
        symlink(outside.path().join("secret"), data.join("abs")).unwrap();
        symlink("../../../../..", data.join("up")).unwrap();
        // A VOLUME path that is a link out of the root.
        symlink(outside.path(), root.path().join("evil")).unwrap();
        let fd = inroot::open_root(root.path()).unwrap();

        let mut rel = PathBuf::new();
        assert!(copy_up(&fd, "/data", vol.path(), &mut rel).unwrap());
        let v = vol.path();
        assert_eq!(std::fs::read_to_string(v.join("sub/f")).unwrap(), "hello");
        let md = std::fs::metadata(v.join("sub/f")).unwrap();
        assert_eq!(md.mode() & 0o777, 0o640);
        assert_eq!(md.ino(), std::fs::metadata(v.join("g")).unwrap().ino());
        let fifo = std::fs::symlink_metadata(v.join("fifo")).unwrap();
        assert_eq!(fifo.mode(), 0o010666);
        // Links are copied as links, not followed.
        assert_eq!(
            std::fs::read_link(v.join("abs")).unwrap(),
            outside.path().join("secret")
        );
        assert!(std::fs::symlink_metadata(v.join("up"))
            .unwrap()
            .is_symlink());
        // Not empty any more: a second copy does nothing.
        assert!(!copy_up(&fd, "/data", vol.path(), &mut rel).unwrap());

        // The link resolves inside the root, where nothing is.
        let vol2 = tempfile::tempdir().unwrap();
        assert!(!copy_up(&fd, "/evil", vol2.path(), &mut rel).unwrap());
        assert_eq!(std::fs::read_dir(vol2.path()).unwrap().count(), 0);
        // `..` stays at the root: the image's own root is copied, nothing
        // of the host's.
        let vol3 = tempfile::tempdir().unwrap();
        assert!(copy_up(&fd, "/../../..", vol3.path(), &mut rel).unwrap());
        assert!(vol3.path().join("data/sub/f").exists());
        assert!(!vol3.path().join("secret").exists());
    }
}
