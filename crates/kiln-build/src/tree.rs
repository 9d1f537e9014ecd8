//! Read-only views of the file trees a build takes files from: the build
//! context (a host directory seen through `.dockerignore`) and an image or
//! stage (its stack of extracted snapshots, seen as overlay would merge
//! them).
//!
//! Paths are absolute, clean and relative to the tree's own root (`/` is
//! the root). Symlinks are resolved in the tree's root by
//! [`Tree::resolve`], one component at a time, so a link never leads out
//! of the context or the image (`../../etc/passwd` stops at `/`). The host
//! paths handed out for reading ([`Entry::host`]) contain no symlink
//! inside the tree once resolved; the context is the user's own directory,
//! read while the build runs, and a concurrent change to it can at worst
//! make a build read what that directory holds (it is not a privilege
//! boundary); snapshots are immutable.
//!
//! Whiteouts in snapshots are in overlay form (a 0/0 character device;
//! `trusted.overlay.opaque=y` on a directory), as `kiln-fs`'s applier
//! writes them.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_dockerfile::ignore::IgnoreRules;

use crate::hashes::HashCache;

/// What kind of file an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A device, fifo or socket.
    Other,
}

/// One file of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its kind.
    pub kind: Kind,
    /// Permission bits, setuid/setgid/sticky included.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (files).
    pub size: u64,
    /// Modification time, seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// Where to read it on the host.
    pub host: PathBuf,
}

/// A tree of files to copy from.
pub trait Tree: Send + Sync {
    /// The entry at `path` itself (a final symlink is not followed), or
    /// `None` when there is none (or it is excluded).
    fn lstat(&self, path: &str) -> io::Result<Option<Entry>>;
    /// The names in directory `path`, sorted (bytewise).
    fn list(&self, path: &str) -> io::Result<Vec<String>>;
    /// Where the hashes of this tree's files are remembered, if anywhere.
    fn hash_cache(&self) -> Option<Arc<HashCache>> {
        None
    }

    /// `path` with every symlink resolved inside the tree (the last
    /// component only when `follow_last`). The result is clean and
    /// absolute; it may not exist.
    fn resolve(&self, path: &str, follow_last: bool) -> io::Result<String> {
        let mut todo: Vec<String> = components(path).into_iter().rev().collect();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = todo.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            let candidate = join_components(&done, &c);
            let last = todo.is_empty();
            let entry = self.lstat(&candidate)?;
            match entry {
                Some(e) if e.kind == Kind::Symlink && (!last || follow_last) => {
                    links += 1;
                    if links > 40 {
                        return Err(io::Error::other(format!(
                            "too many levels of symbolic links resolving {path}"
                        )));
                    }
                    let target = fs::read_link(&e.host)?;
                    let target = target.as_os_str().as_bytes();
                    let target = String::from_utf8_lossy(target).into_owned();
                    if target.starts_with('/') {
                        done.clear();
                    }
                    for t in components(&target).into_iter().rev() {
                        todo.push(t);
                    }
                }
                _ => done.push(c),
            }
        }
        Ok(format!("/{}", done.join("/")))
    }

    /// The entry `path` designates, symlinks followed in-root.
    fn stat(&self, path: &str) -> io::Result<Option<(String, Entry)>> {
        let resolved = self.resolve(path, true)?;
        Ok(self.lstat(&resolved)?.map(|e| (resolved, e)))
    }
}

/// The components of `path`, `.` and empty ones dropped (`..` kept).
pub(crate) fn components(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

fn join_components(done: &[String], c: &str) -> String {
    let mut s = String::from("/");
    for d in done {
        s.push_str(d);
        s.push('/');
    }
    s.push_str(c);
    s
}

/// `path` made clean and absolute, lexically (`..` stops at `/`).
pub fn clean_abs(path: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for c in components(path) {
        if c == ".." {
            out.pop();
        } else {
            out.push(c);
        }
    }
    format!("/{}", out.join("/"))
}

/// `parent/name`, for clean absolute paths.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// A directory entry's name as UTF-8: paths in Dockerfiles, patterns and
/// keys are strings, and a name that is not one is refused rather than
/// silently skipped or mangled.
fn utf8_name(dir: &Path, name: std::ffi::OsString) -> io::Result<String> {
    name.into_string().map_err(|n| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: the file name {:?} is not UTF-8, which kiln cannot copy yet",
                dir.display(),
                String::from_utf8_lossy(n.as_bytes())
            ),
        )
    })
}

fn entry_from(meta: &fs::Metadata, host: PathBuf) -> Entry {
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        Kind::File
    } else if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else {
        Kind::Other
    };
    Entry {
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: if kind == Kind::File { meta.len() } else { 0 },
        mtime: (meta.mtime(), meta.mtime_nsec()),
        host,
    }
}

fn lstat_host(p: &Path) -> io::Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(p) {
        Ok(m) => Ok(Some(m)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The build context: a host directory, less what `.dockerignore`
/// excludes.
#[derive(Debug)]
pub struct ContextTree {
    root: PathBuf,
    ignore: Option<IgnoreRules>,
    hashes: Option<Arc<HashCache>>,
}

impl ContextTree {
    /// The context at `root`, filtered by `ignore`.
    pub fn new(root: PathBuf, ignore: Option<IgnoreRules>) -> ContextTree {
        ContextTree {
            root,
            ignore,
            hashes: None,
        }
    }

    /// The same, its files' hashes remembered in `cache` (written back when
    /// the tree is dropped).
    pub fn with_hash_cache(mut self, cache: PathBuf) -> ContextTree {
        self.hashes = Some(Arc::new(HashCache::open(cache)));
        self
    }

    /// Whether `path` is hidden by `.dockerignore`: excluded, unless it is
    /// a directory under which an exception (`!…`) may re-include files
    /// (then it stays visible so that walks find them).
    fn hidden(&self, path: &str, is_dir: bool) -> bool {
        let rel = path.trim_start_matches('/');
        let Some(rules) = &self.ignore else {
            return false;
        };
        !rel.is_empty() && rules.is_excluded(rel) && !(is_dir && rules.may_include_under(rel))
    }
}

impl Drop for ContextTree {
    fn drop(&mut self) {
        if let Some(h) = &self.hashes {
            h.save();
        }
    }
}

impl Tree for ContextTree {
    fn hash_cache(&self) -> Option<Arc<HashCache>> {
        self.hashes.clone()
    }

    fn lstat(&self, path: &str) -> io::Result<Option<Entry>> {
        let host = self.root.join(path.trim_start_matches('/'));
        let Some(m) = lstat_host(&host)? else {
            return Ok(None);
        };
        if self.hidden(path, m.is_dir()) {
            return Ok(None);
        }
        Ok(Some(entry_from(&m, host)))
    }

    fn list(&self, path: &str) -> io::Result<Vec<String>> {
        let dir = self.root.join(path.trim_start_matches('/'));
        let mut names = Vec::new();
        for e in fs::read_dir(&dir)? {
            let e = e?;
            let name = utf8_name(&dir, e.file_name())?;
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            if !self.hidden(&join(path, &name), is_dir) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

/// An image's file system: its snapshot directories merged as overlay
/// merges them (top first).
#[derive(Debug, Clone)]
pub struct LayeredTree {
    layers: Vec<PathBuf>,
}

/// A lookup of one path in one layer.
enum Found {
    /// The entry is here.
    Entry(fs::Metadata, PathBuf),
    /// Deleted here, or hidden by a non-directory or an opaque directory.
    Hidden,
    /// Not in this layer: look further down.
    Absent,
}

impl LayeredTree {
    /// The tree of `layers`, bottom first (the order of an image's layers).
    pub fn new(bottom_first: Vec<PathBuf>) -> LayeredTree {
        let mut layers = bottom_first;
        layers.reverse();
        LayeredTree { layers }
    }

    fn find_in(layer: &Path, path: &str) -> io::Result<Found> {
        let comps = components(path);
        let mut p = layer.to_path_buf();
        // An opaque directory on the way hides the lower layers below it.
        let mut opaque = false;
        for (i, c) in comps.iter().enumerate() {
            p.push(c);
            let Some(m) = lstat_host(&p)? else {
                return Ok(if opaque { Found::Hidden } else { Found::Absent });
            };
            if is_whiteout(&m) {
                return Ok(Found::Hidden);
            }
            if i + 1 == comps.len() {
                return Ok(Found::Entry(m, p));
            }
            if !m.is_dir() {
                return Ok(Found::Hidden);
            }
            opaque |= is_opaque(&p);
        }
        // The root.
        match lstat_host(layer)? {
            Some(m) => Ok(Found::Entry(m, layer.to_path_buf())),
            None => Ok(Found::Absent),
        }
    }
}

fn is_whiteout(m: &fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    let mut buf = [0u8; 4];
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| matches!(rustix::fs::lgetxattr(dir, *name, &mut buf), Ok(1) if buf[0] == b'y'))
}

impl Tree for LayeredTree {
    fn lstat(&self, path: &str) -> io::Result<Option<Entry>> {
        if self.layers.is_empty() && components(path).is_empty() {
            // `FROM scratch`: an empty root directory.
            return Ok(Some(Entry {
                kind: Kind::Dir,
                mode: 0o755,
                uid: 0,
                gid: 0,
                size: 0,
                mtime: (0, 0),
                host: PathBuf::new(),
            }));
        }
        for layer in &self.layers {
            match Self::find_in(layer, path)? {
                Found::Entry(m, host) => return Ok(Some(entry_from(&m, host))),
                Found::Hidden => return Ok(None),
                Found::Absent => {}
            }
        }
        Ok(None)
    }

    fn list(&self, path: &str) -> io::Result<Vec<String>> {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut live: BTreeSet<String> = BTreeSet::new();
        for layer in &self.layers {
            let (dir, stop) = match Self::find_in(layer, path)? {
                Found::Entry(m, host) if m.is_dir() => {
                    let stop = is_opaque(&host);
                    (host, stop)
                }
                Found::Entry(..) | Found::Hidden => break,
                Found::Absent => continue,
            };
            for e in fs::read_dir(&dir)? {
                let e = e?;
                let name = utf8_name(&dir, e.file_name())?;
                if !seen.insert(name.clone()) {
                    continue;
                }
                let m = e.metadata()?;
                if !is_whiteout(&m) {
                    live.insert(name);
                }
            }
            if stop {
                break;
            }
        }
        Ok(live.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn resolve_stays_in_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        std::os::unix::fs::symlink("../../../../etc", root.join("a/up")).unwrap();
        std::os::unix::fs::symlink("/a/b", root.join("abs")).unwrap();
        fs::write(root.join("a/b/f"), "x").unwrap();
        let t = ContextTree::new(root.to_path_buf(), None);
        assert_eq!(t.resolve("/a/up/passwd", true).unwrap(), "/etc/passwd");
        assert!(t.stat("/a/up/passwd").unwrap().is_none());
        assert_eq!(t.resolve("/abs/f", true).unwrap(), "/a/b/f");
        assert_eq!(t.resolve("/abs", false).unwrap(), "/abs");
        let (p, e) = t.stat("abs/f").unwrap().unwrap();
        assert_eq!((p.as_str(), e.kind), ("/a/b/f", Kind::File));
    }

    #[test]
    fn layers_merge_with_whiteouts_and_opaque_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let l0 = dir.path().join("l0");
        let l1 = dir.path().join("l1");
        fs::create_dir_all(l0.join("d")).unwrap();
        fs::create_dir_all(l0.join("o")).unwrap();
        fs::write(l0.join("d/gone"), "1").unwrap();
        fs::write(l0.join("d/kept"), "1").unwrap();
        fs::write(l0.join("o/hidden"), "1").unwrap();
        fs::create_dir_all(l1.join("d")).unwrap();
        fs::create_dir_all(l1.join("o")).unwrap();
        fs::write(l1.join("o/new"), "2").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            l1.join("d/gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        rustix::fs::setxattr(
            l1.join("o"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        let t = LayeredTree::new(vec![l0, l1]);
        assert_eq!(t.list("/d").unwrap(), vec!["kept"]);
        assert_eq!(t.list("/o").unwrap(), vec!["new"]);
        assert!(t.lstat("/d/gone").unwrap().is_none());
        assert!(t.lstat("/o/hidden").unwrap().is_none());
        assert!(t.lstat("/d/kept").unwrap().is_some());
        assert_eq!(t.list("/").unwrap(), vec!["d", "o"]);
    }

    #[test]
    fn names_that_are_not_utf8_are_refused() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xff")), "").unwrap();
        let t = ContextTree::new(dir.path().to_path_buf(), None);
        let err = t.list("/").unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }

    #[test]
    fn ignored_files_are_invisible() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.md"), "").unwrap();
        fs::write(dir.path().join("b.txt"), "").unwrap();
        fs::create_dir_all(dir.path().join("docs/sub")).unwrap();
        fs::write(dir.path().join("docs/keep.md"), "").unwrap();
        fs::write(dir.path().join("docs/drop.txt"), "").unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        fs::write(dir.path().join("tmp/x"), "").unwrap();
        let rules = IgnoreRules::parse("*.md\ndocs\ntmp\n!docs/keep.md\n").unwrap();
        let t = ContextTree::new(dir.path().to_path_buf(), Some(rules));
        assert_eq!(t.list("/").unwrap(), vec!["b.txt", "docs"]);
        assert!(t.lstat("/a.md").unwrap().is_none());
        assert!(t.lstat("/tmp/x").unwrap().is_none());
        // An exception re-includes a file under an excluded directory.
        assert_eq!(t.list("/docs").unwrap(), vec!["keep.md"]);
    }
}
