//! A container's root file system: an overlay of the image's snapshots
//! (read-only lowers, the topmost layer first in `lowerdir`) and the
//! container's own `upper` and `work` directories, mounted at
//! `containers/<id>/rootfs` on the host for as long as the container runs
//! (and briefly for `export` and `cp`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};
use thiserror::Error;

/// The overlay could not be mounted or unmounted.
#[derive(Debug, Error)]
pub enum RootfsError {
    /// A directory could not be created.
    #[error("failed to create {path}: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// mount(2) failed.
    #[error("failed to mount the container's root file system at {path}: {source}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// umount(2) failed.
    #[error("failed to unmount {path}: {source}")]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The overlay options do not fit in a page.
    #[error("the image has too many layers for one overlay mount ({0} bytes of options)")]
    TooManyLayers(usize),
}

/// The directories of one container's overlay.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// Snapshot directories, bottom layer first.
    pub lowers: Vec<PathBuf>,
    /// The container's changes.
    pub upper: PathBuf,
    /// overlayfs's work directory.
    pub work: PathBuf,
    /// Where the merged tree is mounted.
    pub target: PathBuf,
    /// Mount with overlayfs's `volatile` option: no syncs of the upper
    /// directory, which makes the unmount of a `--rm` container (whose
    /// changes are thrown away) ~100 ms cheaper. Never for a container
    /// that outlives its run: after a crash a volatile upper is unusable.
    pub volatile: bool,
}

impl Overlay {
    /// Mount with the new mount API, one `lowerdir+` per layer (topmost
    /// first, as in `lowers`): EINVAL from a kernel without `lowerdir+`.
    fn mount_layer_by_layer(&self, lowers: &[String]) -> io::Result<()> {
        use rustix::mount::{
            fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount,
            FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags,
        };
        let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
        for l in lowers {
            fsconfig_set_string(&fs, "lowerdir+", l.as_str())?;
        }
        fsconfig_set_string(&fs, "upperdir", self.upper.as_path())?;
        fsconfig_set_string(&fs, "workdir", self.work.as_path())?;
        fsconfig_set_string(&fs, "index", "off")?;
        fsconfig_set_string(&fs, "redirect_dir", "off")?;
        fsconfig_set_string(&fs, "metacopy", "off")?;
        if self.volatile {
            fsconfig_set_flag(&fs, "volatile")?;
        }
        fsconfig_create(&fs)?;
        let mnt = fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, MountAttrFlags::empty())?;
        move_mount(
            &mnt,
            "",
            rustix::fs::CWD,
            &self.target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )?;
        Ok(())
    }

    /// The overlay of a container directory `dir` over `lowers`.
    pub fn in_dir(dir: &Path, lowers: Vec<PathBuf>) -> Overlay {
        Overlay {
            lowers,
            upper: dir.join("upper"),
            work: dir.join("work"),
            target: dir.join("rootfs"),
            volatile: false,
        }
    }

    /// Whether the merged tree is mounted now.
    pub fn is_mounted(&self) -> bool {
        is_mount_point(&self.target)
    }

    /// Mount the merged tree (unmounting a stale mount first).
    pub fn mount(&self) -> Result<(), RootfsError> {
        for d in [&self.upper, &self.work, &self.target] {
            fs::create_dir_all(d).map_err(|source| RootfsError::Create {
                path: d.clone(),
                source,
            })?;
        }
        if self.is_mounted() {
            self.unmount()?;
        }
        // An image with no layer still needs a lower directory.
        let empty = self.target.with_file_name("empty");
        let lowers: Vec<String> = if self.lowers.is_empty() {
            fs::create_dir_all(&empty).map_err(|source| RootfsError::Create {
                path: empty.clone(),
                source,
            })?;
            vec![empty.display().to_string()]
        } else {
            self.lowers
                .iter()
                .rev()
                .map(|p| p.display().to_string())
                .collect()
        };
        let data = format!(
            "lowerdir={},upperdir={},workdir={},index=off,redirect_dir=off,metacopy=off",
            lowers.join(":"),
            self.upper.display(),
            self.work.display()
        );
        let data = if self.volatile {
            format!("{data},volatile")
        } else {
            data
        };
        if data.len() >= 4096 {
            // mount(2) takes one page of options: ~40 layers at the
            // store's path lengths. The new mount API takes each lower
            // directory on its own (`lowerdir+`, Linux 6.8), without that
            // limit (overlayfs allows 500 lowers).
            return self.mount_layer_by_layer(&lowers).map_err(|e| {
                if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) {
                    RootfsError::TooManyLayers(data.len())
                } else {
                    RootfsError::Mount {
                        path: self.target.clone(),
                        source: e,
                    }
                }
            });
        }
        let data = std::ffi::CString::new(data).map_err(|e| RootfsError::Mount {
            path: self.target.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })?;
        rustix::mount::mount(
            "overlay",
            &self.target,
            "overlay",
            MountFlags::empty(),
            data.as_c_str(),
        )
        .map_err(|e| RootfsError::Mount {
            path: self.target.clone(),
            source: e.into(),
        })
    }

    /// Unmount the merged tree (lazily: a process may still hold it).
    pub fn unmount(&self) -> Result<(), RootfsError> {
        while self.is_mounted() {
            rustix::mount::unmount(&self.target, UnmountFlags::DETACH).map_err(|e| {
                RootfsError::Unmount {
                    path: self.target.clone(),
                    source: e.into(),
                }
            })?;
        }
        Ok(())
    }
}

/// Which parents of a removed mount point [`Overlay::remove_mount_points`]
/// may remove too (when they are left empty and not opaque).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountPointParents {
    /// Only those the image has (copied up just to hold the mount point).
    InImage,
    /// Those the image has and those the runtime created (BuildKit's rule
    /// for a build step's layer).
    All,
}

impl Overlay {
    /// Removes from the upper directory the mount points the runtime
    /// created there (still empty: an empty file or directory the image
    /// does not have), deepest first, and then their parents as `parents`
    /// allows. They are not the container's changes (Docker's `diff` and
    /// `commit`, BuildKit's layers never show them). Does nothing while
    /// the overlay is mounted.
    pub fn remove_mount_points<S: AsRef<str>>(&self, targets: &[S], parents: MountPointParents) {
        if self.is_mounted() {
            return;
        }
        let in_lowers = |rel: &Path| {
            self.lowers
                .iter()
                .any(|l| fs::symlink_metadata(l.join(rel)).is_ok())
        };
        let mut targets: Vec<&str> = targets.iter().map(AsRef::as_ref).collect();
        targets.sort_by_key(|t| std::cmp::Reverse(t.matches('/').count()));
        targets.dedup();
        for t in targets {
            let rel = Path::new(t.trim_start_matches('/'));
            if rel.as_os_str().is_empty() || in_lowers(rel) {
                continue;
            }
            let p = self.upper.join(rel);
            let Ok(md) = fs::symlink_metadata(&p) else {
                continue;
            };
            let removed = if md.is_file() && md.len() == 0 {
                fs::remove_file(&p).is_ok()
            } else if md.is_dir() {
                fs::remove_dir(&p).is_ok()
            } else {
                false
            };
            if !removed {
                continue;
            }
            let mut parent = rel.parent();
            while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
                let p = self.upper.join(dir);
                let allowed = parents == MountPointParents::All || in_lowers(dir);
                if !allowed || is_opaque(&p) || fs::remove_dir(&p).is_err() {
                    break;
                }
                parent = dir.parent();
            }
        }
    }
}

/// Whether an upper directory carries overlayfs's opaque marker.
fn is_opaque(p: &Path) -> bool {
    let mut buf = [0u8; 8];
    rustix::fs::lgetxattr(p, "trusted.overlay.opaque", &mut buf).is_ok()
}

/// Whether `path` is a mount point: `statx`'s mount-root attribute (one
/// system call), else /proc/self/mountinfo (whose reading was ~4 ms of a
/// `run --rm`, three times).
pub fn is_mount_point(path: &Path) -> bool {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags, CWD};
    match rustix::fs::statx(
        CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    ) {
        Ok(st) if st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT) => {
            return st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT);
        }
        Err(rustix::io::Errno::NOENT) => return false,
        _ => {}
    }
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| unescape_mountinfo(m) == want)
}

/// A path field of `/proc/self/mountinfo` with its `\NNN` escapes (space,
/// tab, newline, backslash) undone, byte by byte.
pub(crate) fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u16::from(b[i + 1] - b'0') * 64
                + u16::from(b[i + 2] - b'0') * 8
                + u16::from(b[i + 3] - b'0');
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
