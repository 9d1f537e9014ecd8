//! Reading and creating paths inside a container's root file system, which
//! is untrusted: every lookup goes through `openat2` with `RESOLVE_IN_ROOT`
//! (symlinks, `..` and absolute links stay inside the root) and
//! `RESOLVE_NO_MAGICLINKS`, never through host path resolution (DESIGN.md,
//! security rule 1).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use rustix::fs::{Mode, OFlags, ResolveFlags};

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Open the root directory itself.
pub fn open_root(root: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        root,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Open `path` inside `root` with `flags` (in-root resolution; the last
/// component is not followed if `flags` has `NOFOLLOW`).
pub fn open(root: &OwnedFd, path: &str, flags: OFlags, mode: u32) -> io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    Ok(kiln_fs::openat2(
        root,
        if rel.is_empty() { "." } else { rel },
        flags | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
        RESOLVE,
    )?)
}

/// Read a regular file at `path` inside `root`, at most `limit` bytes;
/// `None` if it does not exist.
pub fn read_file(root: &OwnedFd, path: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let fd = match kiln_fs::openat2(
        root,
        path.trim_start_matches('/'),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        RESOLVE,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let st = rustix::fs::fstat(&fd)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path} is not a regular file"),
        ));
    }
    let mut out = Vec::new();
    File::from(fd).take(limit).read_to_end(&mut out)?;
    Ok(Some(out))
}

/// Create the directory `path` (and its missing parents) inside `root`,
/// mode 0755, owned by whoever creates it; an existing directory is fine,
/// an existing non-directory is an error.
pub fn mkdir_all(root: &OwnedFd, path: &str) -> io::Result<()> {
    let mut done = String::new();
    for c in Path::new(path).components() {
        let Component::Normal(name) = c else { continue };
        let name = name
            .to_str()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path is not UTF-8"))?;
        let parent = kiln_fs::openat2(
            root,
            if done.is_empty() { "." } else { done.as_str() },
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )?;
        match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        if !done.is_empty() {
            done.push('/');
        }
        done.push_str(name);
        // Whatever is there now must resolve (in-root) to a directory.
        kiln_fs::openat2(
            root,
            done.as_str(),
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host").unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("etc/passwd"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("work")).unwrap();
        let root = open_root(dir.path()).unwrap();
        // The absolute link resolves inside the root, where nothing is.
        assert!(read_file(&root, "/etc/passwd", 1024).unwrap().is_none());
        // mkdir never follows the link to the host: the link resolves
        // inside the root, where its target does not exist.
        assert!(mkdir_all(&root, "/work/app").is_err());
        assert!(!outside.path().join("app").exists());
        // Once the in-root target exists, the directory is made there.
        let inside = dir.path().join(outside.path().strip_prefix("/").unwrap());
        std::fs::create_dir_all(&inside).unwrap();
        mkdir_all(&root, "/work/app").unwrap();
        assert!(inside.join("app").is_dir());
        assert!(!outside.path().join("app").exists());
        mkdir_all(&root, "a/b/c").unwrap();
        assert!(dir.path().join("a/b/c").is_dir());
        // A file in the way is an error.
        std::fs::write(dir.path().join("f"), "").unwrap();
        assert!(mkdir_all(&root, "/f/x").is_err());
    }
}
