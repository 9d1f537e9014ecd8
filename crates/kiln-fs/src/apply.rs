//! The layer applier: an OCI layer tar → a new snapshot directory, never
//! writing outside it, whatever the tar says.
//!
//! How it stays inside (DESIGN.md security rule 1):
//! - every entry name is cleaned lexically as if rooted (`../x` is `x`);
//! - the parent directory of an entry is opened with `openat2` and
//!   `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`, so
//!   symlinks met on the way are resolved as if the snapshot were `/`;
//! - the entry itself is created with `*at` calls on that parent's file
//!   descriptor, never following a final symlink (`O_NOFOLLOW`, `O_EXCL`,
//!   `AT_SYMLINK_NOFOLLOW`);
//! - a hardlink's target is resolved in-root the same way and linked by file
//!   descriptor (`AT_EMPTY_PATH`);
//! - `tar`'s own `unpack_in` is not used: it resolves with host paths.
//!
//! Whiteouts become their overlay form so snapshots stack as overlay lower
//! directories, as Docker's overlay2 does: `.wh.<name>` a 0/0 character
//! device `<name>`, `.wh..wh..opq` the `trusted.overlay.opaque=y` xattr on
//! the directory. Ownership, modes (setuid included), mtimes and xattrs are
//! kept; directory mtimes are set last, after their children. The
//! decompressed size is capped.
//!
//! The caller extracts into a fresh directory and discards it on error, so a
//! bad layer leaves nothing behind.

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{
    AtFlags, Dev, FileType, Gid, Mode, OFlags, ResolveFlags, Timespec, Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;
use thiserror::Error;

/// Limits for applying a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Most bytes of file content the layer may unpack to.
    pub max_size: u64,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        // Larger than any sane image layer, small enough to stop a bomb.
        ApplyOptions { max_size: 64 << 30 }
    }
}

/// What was applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// Entries applied.
    pub entries: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

/// A layer that cannot be applied.
#[derive(Debug, Error)]
pub enum ApplyError {
    /// The tar stream itself is bad (truncated, bad header).
    #[error("invalid layer archive: {source}")]
    Archive {
        /// Why.
        #[source]
        source: io::Error,
    },
    /// An entry that cannot be applied safely or at all.
    #[error("layer entry `{path}`: {reason}")]
    Entry {
        /// The entry's name.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The layer unpacks to more than allowed.
    #[error("layer unpacks to more than {limit} bytes (at `{path}`): refusing it")]
    TooLarge {
        /// The limit.
        limit: u64,
        /// The entry being written.
        path: String,
    },
    /// The destination cannot be opened.
    #[error("failed to open snapshot directory {path}: {source}")]
    Destination {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn entry_err(path: &str, reason: impl std::fmt::Display) -> ApplyError {
    ApplyError::Entry {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// Bytes copied per read/write of file content.
const COPY_BUF: usize = 256 * 1024;

/// The parent directory of the previous entry, kept open for the next.
///
/// Entries of a layer come grouped by directory, so most entries have the
/// parent of the one before. Reusing its descriptor is exactly what
/// resolving the same path again would give, as long as nothing was removed
/// or replaced since it was resolved: creating new names never changes how
/// existing names resolve, and a resolution that succeeded went through
/// existing names only. So the cache is dropped whenever an entry removes
/// anything (a replaced entry, a whiteout), and every descriptor in it came
/// from an in-root resolution (`open_parent`), or from opening a real
/// directory (no symlink, no mount crossing) in such a descriptor.
struct ParentCache {
    /// The parent's components joined with `/` (empty for the root).
    path: Vec<u8>,
    fd: Option<OwnedFd>,
}

impl ParentCache {
    /// The open parent `parents`, from the cache or resolved in-root.
    fn take(
        &mut self,
        root: &OwnedFd,
        parents: &[&[u8]],
        shown: &str,
    ) -> Result<(OwnedFd, Vec<u8>), ApplyError> {
        let joined = parents.join(&b'/');
        if let Some(fd) = self.fd.take() {
            if self.path == joined {
                return Ok((fd, joined));
            }
        }
        Ok((open_parent(root, parents, shown)?, joined))
    }

    fn put(&mut self, path: Vec<u8>, fd: OwnedFd) {
        self.path = path;
        self.fd = Some(fd);
    }
}

/// Apply the (uncompressed) layer tar `tar` into the directory `dest`.
pub fn apply_layer<R: Read>(
    tar: R,
    dest: &Path,
    opts: &ApplyOptions,
) -> Result<ApplyStats, ApplyError> {
    let root = rustix::fs::open(
        dest,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ApplyError::Destination {
        path: dest.to_path_buf(),
        source: e.into(),
    })?;
    let mut stats = ApplyStats::default();
    let mut dir_times: Vec<(Vec<u8>, u64)> = Vec::new();
    let mut cache = ParentCache {
        path: Vec::new(),
        fd: None,
    };
    let mut buf = vec![0u8; COPY_BUF];
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|source| ApplyError::Archive { source })?;
    for entry in entries {
        let mut entry = entry.map_err(|source| ApplyError::Archive { source })?;
        let raw_name = entry.path_bytes().into_owned();
        let shown = || String::from_utf8_lossy(&raw_name).into_owned();
        let Some(components) = clean(&raw_name) else {
            continue; // the root itself
        };
        let (&name, parents) = components
            .split_last()
            .expect("clean never returns an empty list");
        if parents.iter().any(|c| c.starts_with(b".wh.")) {
            return Err(entry_err(&shown(), "a whiteout name used as a directory"));
        }
        let (parent, parent_path) = cache.take(&root, parents, &shown())?;
        // Where the parent descriptor goes after this entry: back into the
        // cache, unless something was removed (then it is dropped).
        let mut keep = true;
        let header = entry.header();
        let kind = header.entry_type();
        let mode = Mode::from_raw_mode(header.mode().map_err(|e| entry_err(&shown(), e))? & 0o7777);
        let uid = header.uid().map_err(|e| entry_err(&shown(), e))?;
        let gid = header.gid().map_err(|e| entry_err(&shown(), e))?;
        let mtime = header.mtime().map_err(|e| entry_err(&shown(), e))?;
        let size = header.size().map_err(|e| entry_err(&shown(), e))?;
        let device = (
            header.device_major().ok().flatten().unwrap_or(0),
            header.device_minor().ok().flatten().unwrap_or(0),
        );
        let owner = (
            Some(Uid::from_raw(
                u32::try_from(uid).map_err(|_| entry_err(&shown(), "uid out of range"))?,
            )),
            Some(Gid::from_raw(
                u32::try_from(gid).map_err(|_| entry_err(&shown(), "gid out of range"))?,
            )),
        );
        let e = |err: Errno| entry_err(&shown(), io::Error::from(err));

        // Whiteouts.
        if let Some(target) = name.strip_prefix(b".wh.") {
            if target == b".wh..opq" {
                let dir = reopen_dir(&parent, &shown())?;
                rustix::fs::fsetxattr(&dir, "trusted.overlay.opaque", b"y", XattrFlags::empty())
                    .map_err(e)?;
            } else {
                if target.is_empty()
                    || target == b"."
                    || target == b".."
                    || target.starts_with(b".wh.")
                {
                    return Err(entry_err(&shown(), "invalid whiteout name"));
                }
                remove_existing(&parent, target, &shown())?;
                keep = false;
                rustix::fs::mknodat(&parent, target, FileType::CharacterDevice, Mode::empty(), 0)
                    .map_err(e)?;
            }
            stats.entries += 1;
            if keep {
                cache.put(parent_path, parent);
            }
            continue;
        }

        let xattrs = pax_xattrs(&mut entry, &shown())?;
        // Create with `create`; if the name is taken, remove what is there
        // (a later entry replaces an earlier one) and create again.
        let mut replace =
            |create: &mut dyn FnMut() -> Result<(), Errno>| -> Result<(), ApplyError> {
                match create() {
                    Err(Errno::EXIST) => {
                        remove_existing(&parent, name, &shown())?;
                        keep = false;
                        create().map_err(e)
                    }
                    other => other.map_err(e),
                }
            };
        match kind {
            tar::EntryType::Directory => {
                match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700)) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        let st = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW)
                            .map_err(e)?;
                        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                            remove_existing(&parent, name, &shown())?;
                            keep = false;
                            rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o700))
                                .map_err(e)?;
                        }
                    }
                    Err(err) => return Err(e(err)),
                }
                // The directory itself, never through a symlink or a mount.
                let dir = crate::openat2(
                    &parent,
                    name,
                    OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                    ResolveFlags::BENEATH
                        | ResolveFlags::NO_SYMLINKS
                        | ResolveFlags::NO_MAGICLINKS
                        | ResolveFlags::NO_XDEV,
                )
                .map_err(e)?;
                rustix::fs::fchown(&dir, owner.0, owner.1).map_err(e)?;
                rustix::fs::fchmod(&dir, mode).map_err(e)?;
                set_xattrs(&dir, &xattrs, &shown())?;
                let mut full = parent_path;
                if !full.is_empty() {
                    full.push(b'/');
                }
                full.extend_from_slice(name);
                dir_times.push((full.clone(), mtime));
                // Its entries come next: it is their parent.
                if keep {
                    cache.put(full, dir);
                }
                stats.entries += 1;
                continue;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if stats.bytes.saturating_add(size) > opts.max_size {
                    return Err(ApplyError::TooLarge {
                        limit: opts.max_size,
                        path: shown(),
                    });
                }
                let mut fd = None;
                replace(&mut || {
                    fd = Some(rustix::fs::openat(
                        &parent,
                        name,
                        OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::WRONLY
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )?);
                    Ok(())
                })?;
                let mut file = std::fs::File::from(fd.expect("set when replace succeeds"));
                copy_exact(&mut entry, &mut file, size, &mut buf, &shown)?;
                stats.bytes += size;
                let fd = OwnedFd::from(file);
                rustix::fs::fchown(&fd, owner.0, owner.1).map_err(e)?;
                // After chown, which clears setuid and setgid.
                rustix::fs::fchmod(&fd, mode).map_err(e)?;
                set_xattrs(&fd, &xattrs, &shown())?;
                rustix::fs::futimens(&fd, &times(mtime)).map_err(e)?;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| entry_err(&shown(), "symlink without a target"))?
                    .into_owned();
                replace(&mut || rustix::fs::symlinkat(target.as_slice(), &parent, name))?;
                rustix::fs::chownat(&parent, name, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(e)?;
                rustix::fs::utimensat(&parent, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(e)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| entry_err(&shown(), "hardlink without a target"))?
                    .into_owned();
                let Some(target) = clean(&target) else {
                    return Err(entry_err(&shown(), "hardlink to the root"));
                };
                let target = target.join(&b'/');
                let source = crate::openat2(
                    &root,
                    target.as_slice(),
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                    in_root(),
                )
                .map_err(|err| {
                    entry_err(
                        &shown(),
                        format!(
                            "hardlink target `{}`: {}",
                            String::from_utf8_lossy(&target),
                            io::Error::from(err)
                        ),
                    )
                })?;
                replace(&mut || {
                    rustix::fs::linkat(&source, "", &parent, name, AtFlags::EMPTY_PATH)
                })?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (ft, dev) = match kind {
                    tar::EntryType::Fifo => (FileType::Fifo, 0),
                    _ => {
                        let ft = if kind == tar::EntryType::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        };
                        (ft, rustix::fs::makedev(device.0, device.1))
                    }
                };
                replace(&mut || rustix::fs::mknodat(&parent, name, ft, mode, dev as Dev))?;
                rustix::fs::chownat(&parent, name, owner.0, owner.1, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(e)?;
                // mknod applied the umask (0666 came out 0644). The node was
                // just made by name in a directory only the applier writes,
                // so this changes it, not a symlink put in its place.
                rustix::fs::chmodat(&parent, name, mode, AtFlags::empty()).map_err(e)?;
                rustix::fs::utimensat(&parent, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(e)?;
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {
                if keep {
                    cache.put(parent_path, parent);
                }
                continue;
            }
            other => {
                return Err(entry_err(
                    &shown(),
                    format!("unsupported entry type {other:?}"),
                ))
            }
        }
        if keep {
            cache.put(parent_path, parent);
        }
        stats.entries += 1;
    }
    drop(cache);
    // Directory mtimes last: creating their children changed them.
    for (path, mtime) in dir_times.iter().rev() {
        if let Ok(dir) = crate::openat2(
            &root,
            path.as_slice(),
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            in_root(),
        ) {
            let _ = rustix::fs::futimens(&dir, &times(*mtime));
        }
    }
    Ok(stats)
}

/// Copy exactly `size` bytes of an entry's content into `file`, in large
/// writes.
fn copy_exact(
    entry: &mut impl Read,
    file: &mut std::fs::File,
    size: u64,
    buf: &mut [u8],
    shown: &dyn Fn() -> String,
) -> Result<(), ApplyError> {
    let mut left = size;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = match entry.read(&mut buf[..want]) {
            Ok(0) => {
                return Err(ApplyError::Archive {
                    source: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("`{}` is truncated", shown()),
                    ),
                })
            }
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(ApplyError::Archive { source }),
        };
        io::Write::write_all(file, &buf[..n]).map_err(|err| entry_err(&shown(), err))?;
        left -= n as u64;
    }
    Ok(())
}

fn in_root() -> ResolveFlags {
    ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV
}

fn times(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(i64::MAX),
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

/// Clean an entry name as if rooted: components without `""`, `.` and
/// `..` (which cannot climb above the root). `None` for the root itself.
fn clean(name: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out: Vec<&[u8]> = Vec::new();
    for part in name.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Open (creating missing directories) the parent directory of an entry.
/// Every prefix is resolved from the snapshot root with `RESOLVE_IN_ROOT`,
/// so `..` and absolute symlinks met anywhere on the way stay inside it; a
/// missing directory is created by name in its (already resolved) parent.
fn open_parent(root: &OwnedFd, parents: &[&[u8]], shown: &str) -> Result<OwnedFd, ApplyError> {
    let flags = OFlags::DIRECTORY | OFlags::PATH | OFlags::CLOEXEC;
    let open = |prefix: &[&[u8]]| {
        let path = if prefix.is_empty() {
            b".".to_vec()
        } else {
            prefix.join(&b'/')
        };
        crate::openat2(root, path.as_slice(), flags, Mode::empty(), in_root())
    };
    match open(parents) {
        Ok(dir) => return Ok(dir),
        Err(Errno::NOENT) => {}
        Err(e) => {
            return Err(entry_err(
                shown,
                format!("parent directory: {}", io::Error::from(e)),
            ))
        }
    }
    let mut dir = open(&[]).map_err(|e| entry_err(shown, io::Error::from(e)))?;
    for i in 0..parents.len() {
        dir = match open(&parents[..=i]) {
            Ok(next) => next,
            Err(Errno::NOENT) => {
                // A missing parent is created as Docker does (0755, root).
                rustix::fs::mkdirat(&dir, parents[i], Mode::from_raw_mode(0o755)).map_err(|e| {
                    entry_err(
                        shown,
                        format!("creating parent directory: {}", io::Error::from(e)),
                    )
                })?;
                open(&parents[..=i]).map_err(|e| entry_err(shown, io::Error::from(e)))?
            }
            Err(e) => {
                return Err(entry_err(
                    shown,
                    format!("parent directory: {}", io::Error::from(e)),
                ))
            }
        };
    }
    Ok(dir)
}

/// A readable descriptor of a directory opened with `O_PATH` (xattrs need
/// one).
fn reopen_dir(dir: &OwnedFd, shown: &str) -> Result<OwnedFd, ApplyError> {
    rustix::fs::openat(
        dir,
        ".",
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| entry_err(shown, io::Error::from(e)))
}

/// Remove whatever is at `name` in `parent` (a later entry replaces an
/// earlier one), without following symlinks.
fn remove_existing(parent: &OwnedFd, name: &[u8], shown: &str) -> Result<(), ApplyError> {
    match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(entry_err(shown, io::Error::from(e))),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            let dir = rustix::fs::openat(
                parent,
                name,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| entry_err(shown, io::Error::from(e)))?;
            remove_tree(&dir, shown)?;
            rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR)
                .map_err(|e| entry_err(shown, io::Error::from(e)))
        }
        Ok(_) => rustix::fs::unlinkat(parent, name, AtFlags::empty())
            .map_err(|e| entry_err(shown, io::Error::from(e))),
    }
}

/// Empty the directory `dir` (by descriptor, never following symlinks).
fn remove_tree(dir: &OwnedFd, shown: &str) -> Result<(), ApplyError> {
    let err = |e: Errno| entry_err(shown, io::Error::from(e));
    let mut names = Vec::new();
    let mut iter = rustix::fs::Dir::read_from(dir).map_err(err)?;
    while let Some(ent) = iter.read() {
        let ent = ent.map_err(err)?;
        let n = ent.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    for n in names {
        remove_existing(dir, &n, shown)?;
    }
    Ok(())
}

/// The `SCHILY.xattr.*` records of an entry.
fn pax_xattrs<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    shown: &str,
) -> Result<Vec<(String, Vec<u8>)>, ApplyError> {
    let mut out = Vec::new();
    if let Some(exts) = entry
        .pax_extensions()
        .map_err(|source| ApplyError::Archive { source })?
    {
        for ext in exts {
            let ext = ext.map_err(|source| ApplyError::Archive { source })?;
            let Ok(key) = ext.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                // Only what a layer may carry; never overlay's trusted.*.
                if name == "security.capability" || name.starts_with("user.") {
                    out.push((name.to_string(), ext.value_bytes().to_vec()));
                } else if name.starts_with("trusted.") {
                    return Err(entry_err(shown, format!("refusing xattr {name}")));
                }
            }
        }
    }
    Ok(out)
}

fn set_xattrs(fd: &impl AsFd, xattrs: &[(String, Vec<u8>)], shown: &str) -> Result<(), ApplyError> {
    for (name, value) in xattrs {
        rustix::fs::fsetxattr(fd, name.as_str(), value, XattrFlags::empty())
            .map_err(|e| entry_err(shown, format!("xattr {name}: {}", io::Error::from(e))))?;
    }
    Ok(())
}
