//! COPY and ADD as file-system operations: which files a step selects,
//! where they land, with which owner and mode ([`plan`]); the content
//! hash of that selection for the cache key ([`Plan::hash`]); and the
//! staging of exactly those files, with the directories above them, into
//! a fresh directory that becomes the step's layer ([`Plan::stage`]). The
//! cost is proportional to what the step copies, never to the image.
//!
//! Docker's rules, as BuildKit's `FileOp` copy applies them:
//! - a relative destination is relative to WORKDIR; a destination ending
//!   in `/` (or `.`), or one that is a directory in the image (symlinks
//!   followed in the image's root), is a directory: sources go into it;
//!   several sources need such a destination;
//! - a source directory's *contents* are copied, not the directory; the
//!   destination directory is made like the directories above it (or left
//!   as it is when the image has it), never with the source directory's
//!   metadata; subdirectories take their source's mode and owner;
//!   files keep their mtimes, directories get the time of the copy, and so
//!   does an existing directory that gets a new entry (as BuildKit's copy
//!   leaves them: compared with Docker 20.10's BuildKit);
//! - wildcards (`*`, `?`, `[…]`, Go's `filepath.Match`) match per path
//!   component; a wildcard that matches nothing copies nothing;
//! - a source path is resolved in its own root (the context, a stage, an
//!   image): a symlink named as a source is followed there; symlinks met
//!   inside a copied directory are copied as symlinks, never followed;
//! - files from the context are owned by 0:0, files from a stage or image
//!   keep their owners; `--chown` overrides both, `--chmod` sets (octal)
//!   or edits (symbolic) every copied file's and directory's mode;
//! - directories created above the destination are 0755 (an octal
//!   `--chmod` mode if given, as BuildKit's `MkdirAll` takes the copy's
//!   mode) and owned by the `--chown` owner (else root); existing ones keep
//!   their metadata;
//! - `--parents` keeps each source's path below the part before `/./`
//!   (the whole path without one); `--exclude` patterns (`.dockerignore`
//!   syntax) are matched against paths relative to each source;
//! - ADD of a local file that is a tar archive (plain, gzip, bzip2, xz or
//!   zstd, detected by content) extracts it into the destination directory
//!   (`--unpack=false` copies it as it is); the archive's owners are kept.
//!
//! - ADD of an http(s) URL or a git repository ([`crate::remote`] fetches
//!   them before the plan, into [`Fetched`] sources): a download is one
//!   file named after the URL (mode 0600 unless `--chmod`, owned by 0:0
//!   unless `--chown`, its mtime from `Last-Modified`), never extracted
//!   unless `--unpack=true`; a repository's tree (or subdirectory) is
//!   copied like a directory of the context, owned by 0:0. A download is
//!   keyed by its content; a checkout by its commit (its files by path
//!   and mode only: a kept `.git` differs from clone to clone). COPY of
//!   either is an error, as in BuildKit.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_dockerfile::ignore::IgnoreRules;
use kiln_dockerfile::instructions::InlineFile;
use rustix::fs::{AtFlags, Timespec, Timestamps};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

use crate::hashes::HashCache;
use crate::key::KeyHasher;
use crate::perms::{Chmod, PermsError};
use crate::remote::{GitCheckout, HttpFile, Remote};
use crate::tree::{clean_abs, components, join, ContextTree, Entry, Kind, Tree};

/// A COPY or ADD that cannot be done.
#[derive(Debug, Error)]
pub enum CopyError {
    /// A source that does not exist.
    #[error("failed to compute cache key: \"{path}\": not found")]
    NotFound {
        /// The source path.
        path: String,
    },
    /// Several sources into something that is not a directory.
    #[error("when using {cmd} with more than one source file, the destination must be a directory and end with a /")]
    DestNotDir {
        /// COPY or ADD.
        cmd: &'static str,
    },
    /// A URL or git repository as a COPY source.
    #[error("source can't be {what} for {cmd}: {source_path}")]
    Unsupported {
        /// COPY.
        cmd: &'static str,
        /// `a URL`, `a git repository`.
        what: &'static str,
        /// The source as written (without credentials).
        source_path: String,
    },
    /// A remote source that was not fetched before the plan.
    #[error("{cmd}: {source_path} was not fetched")]
    NotFetched {
        /// ADD.
        cmd: &'static str,
        /// The source (without credentials).
        source_path: String,
    },
    /// A remote source that cannot be fetched.
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    /// An owner or mode that cannot be resolved.
    #[error(transparent)]
    Perms(#[from] PermsError),
    /// An `--exclude` pattern that does not parse.
    #[error("invalid --exclude pattern: {0}")]
    Exclude(String),
    /// Reading a source or writing the staging directory failed.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// An archive that cannot be extracted.
    #[error("failed to extract {path}: {source}")]
    Unpack {
        /// The archive (its path in the source).
        path: String,
        /// Why.
        #[source]
        source: kiln_fs::apply::ApplyError,
    },
}

fn io_err(action: &'static str, path: impl Into<String>) -> impl FnOnce(io::Error) -> CopyError {
    let path = path.into();
    move |source| CopyError::Io {
        action,
        path,
        source,
    }
}

/// What a COPY or ADD asks for, after expansion.
#[derive(Debug, Clone)]
pub struct CopySpec<'a> {
    /// ADD (archives are extracted, URLs allowed).
    pub add: bool,
    /// Source paths.
    pub sources: &'a [String],
    /// Heredoc sources.
    pub contents: &'a [InlineFile],
    /// The destination as written.
    pub dest: &'a str,
    /// The stage's working directory.
    pub workdir: &'a str,
    /// `--chown`, resolved.
    pub chown: Option<(u32, u32)>,
    /// `--chmod`, parsed.
    pub chmod: Option<Chmod>,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude`.
    pub exclude: &'a [String],
    /// ADD `--unpack` (default: extract local archives).
    pub unpack: Option<bool>,
    /// Sources come from the build context (owners become 0:0).
    pub from_context: bool,
    /// The time given to directories the copy creates (seconds).
    pub now: i64,
    /// ADD's remote sources, fetched, by the source as written.
    pub remote: &'a BTreeMap<String, Fetched>,
}

/// A remote ADD source after [`crate::remote`] fetched it.
#[derive(Debug, Clone)]
pub enum Fetched {
    /// A downloaded file.
    File(HttpFile),
    /// A checked-out repository.
    Git(GitCheckout),
}

/// One source of a COPY/ADD after wildcard expansion.
enum Match<'s> {
    /// A path in the source tree, with its `--parents` base.
    Local(String, String),
    /// A fetched remote source (as written, and what it is).
    Remote(&'s str, &'s Fetched),
}

impl CopySpec<'_> {
    fn cmd(&self) -> &'static str {
        if self.add {
            "ADD"
        } else {
            "COPY"
        }
    }
}

/// What one planned item is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    /// A directory.
    Dir,
    /// A regular file, read from the host path.
    File(PathBuf),
    /// A symbolic link with this target.
    Symlink(String),
    /// A heredoc's content.
    Inline(Vec<u8>),
    /// A tar archive (host path) to extract into this directory.
    Unpack(PathBuf),
    /// A hard link to the item at this destination (copied files that
    /// were hard links of one another in their source stay so).
    Hardlink(String),
}

/// One thing the step puts into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Its absolute path in the image (no symlink above it).
    pub dest: String,
    /// What it is.
    pub kind: ItemKind,
    /// Mode bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time.
    pub mtime: (i64, i64),
}

/// Everything a COPY/ADD puts into the image, by destination path.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Items by destination (later sources replace earlier ones).
    pub items: BTreeMap<String, Item>,
    /// Owner of directories the copy creates above its items.
    pub parent_owner: (u32, u32),
    /// Mode of those directories: 0755, or an octal `--chmod` (BuildKit's
    /// `MkdirAll` with the copy's mode).
    pub dir_mode: u32,
    /// Time of those directories.
    pub now: i64,
    /// Host directories whose files are keyed by path and mode only, with
    /// what pins their content (a git checkout and its commit).
    pub pinned: Vec<(PathBuf, String)>,
    /// Where the source tree remembers its files' hashes, if it does.
    pub hashes: Option<Arc<HashCache>>,
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Go's `filepath.Match` for one path component.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn inner(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| inner(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && inner(&p[1..], &n[1..]),
            Some('[') => {
                let Some(c) = n.first() else {
                    return false;
                };
                let mut i = 1;
                let negate = matches!(p.get(1), Some('^') | Some('!'));
                if negate {
                    i += 1;
                }
                let mut matched = false;
                let mut first = true;
                while i < p.len() && (p[i] != ']' || first) {
                    first = false;
                    let mut lo = p[i];
                    if lo == '\\' && i + 1 < p.len() {
                        i += 1;
                        lo = p[i];
                    }
                    let mut hi = lo;
                    if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                        hi = p[i + 2];
                        i += 2;
                    }
                    if lo <= *c && *c <= hi {
                        matched = true;
                    }
                    i += 1;
                }
                if i >= p.len() {
                    return false; // unterminated class: no match, as Go errs
                }
                matched != negate && inner(&p[i + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && inner(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && inner(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    inner(&p, &n)
}

/// The paths `pattern` (clean, absolute) matches in `tree`, sorted, with
/// symlinks on the way resolved in-root (the matches themselves are not).
fn expand(tree: &dyn Tree, pattern: &str) -> Result<Vec<String>, CopyError> {
    let mut current = vec!["/".to_string()];
    let mut missing = None;
    let comps = components(pattern);
    for (i, c) in comps.iter().enumerate() {
        let last = i + 1 == comps.len();
        let mut next = Vec::new();
        for dir in &current {
            let dir = if dir == "/" {
                dir.clone()
            } else {
                tree.resolve(dir, true).map_err(io_err("resolve", dir))?
            };
            if has_wildcard(c) {
                let Some(e) = tree.lstat(&dir).map_err(io_err("read", &dir))? else {
                    continue;
                };
                if e.kind != Kind::Dir {
                    continue;
                }
                for name in tree.list(&dir).map_err(io_err("list", &dir))? {
                    if glob_match(c, &name) {
                        next.push(join(&dir, &name));
                    }
                }
            } else {
                // A name after a wildcard must exist below what the
                // wildcard matched (`dir/*/g` skips the files of `dir`).
                let p = join(&dir, c);
                if tree.lstat(&p).map_err(io_err("read", &p))?.is_some() {
                    next.push(p);
                } else if last && missing.is_none() {
                    missing = Some(p);
                }
            }
        }
        current = next;
    }
    if current.is_empty() {
        // Nothing has the last name: the first candidate is the one the
        // error names.
        current.extend(missing);
    }
    current.sort();
    current.dedup();
    Ok(current)
}

/// The uncompressed content of the file at `host`: bzip2 (`BZh` and a
/// block size digit), else whatever `kiln-fs` detects (gzip, xz, zstd,
/// none).
fn archive_reader(host: &Path) -> io::Result<Box<dyn Read>> {
    let mut r = io::BufReader::with_capacity(64 * 1024, File::open(host)?);
    let head = io::BufRead::fill_buf(&mut r)?;
    if head.len() >= 4 && &head[..3] == b"BZh" && (b'1'..=b'9').contains(&head[3]) {
        return Ok(Box::new(bzip2::bufread::MultiBzDecoder::new(r)));
    }
    kiln_fs::compress::decompressed(r)
}

/// Whether the file at `host` is a tar archive (plain, gzip, bzip2, xz,
/// zstd).
fn is_archive(host: &Path) -> bool {
    let Ok(mut r) = archive_reader(host) else {
        return false;
    };
    let mut head = [0u8; 512];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return false,
        }
    }
    if n < 512 {
        return false;
    }
    if &head[257..262] == b"ustar" {
        return true;
    }
    // Old (v7) tar: a valid header checksum.
    let stored = std::str::from_utf8(&head[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = head
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(*b)
            }
        })
        .sum();
    stored == Some(sum) && head[0] != 0
}

/// The destination of a step: its absolute path in the image with the
/// directories above it resolved in the image's root, and whether it is a
/// directory.
fn destination(spec: &CopySpec<'_>, image: &dyn Tree) -> Result<(String, bool), CopyError> {
    let raw = if spec.dest.starts_with('/') {
        spec.dest.to_string()
    } else {
        format!("{}/{}", spec.workdir, spec.dest)
    };
    let slash = spec.dest.ends_with('/')
        || spec.dest == "."
        || spec.dest.ends_with("/.")
        || spec.dest.is_empty();
    let abs = clean_abs(&raw);
    if slash {
        let resolved = image.resolve(&abs, true).map_err(io_err("resolve", &abs))?;
        return Ok((resolved, true));
    }
    if let Some((p, e)) = image.stat(&abs).map_err(io_err("resolve", &abs))? {
        if e.kind == Kind::Dir {
            return Ok((p, true));
        }
    }
    // An existing symlink at the destination is followed (in the image's
    // root), as BuildKit resolves the whole destination path: the file is
    // written where the link points, and the link stays.
    let resolved = image.resolve(&abs, true).map_err(io_err("resolve", &abs))?;
    Ok((resolved, false))
}

/// Work out what a COPY/ADD puts where.
pub fn plan(spec: &CopySpec<'_>, src: &dyn Tree, image: &dyn Tree) -> Result<Plan, CopyError> {
    let cmd = spec.cmd();
    let (dest, mut dest_dir) = destination(spec, image)?;
    let count = spec.sources.len() + spec.contents.len();
    if count > 1 && !dest_dir {
        return Err(CopyError::DestNotDir { cmd });
    }
    let exclude = if spec.exclude.is_empty() {
        None
    } else {
        Some(
            IgnoreRules::parse(&spec.exclude.join("\n"))
                .map_err(|e| CopyError::Exclude(e.to_string()))?,
        )
    };
    let mut plan = Plan {
        items: BTreeMap::new(),
        parent_owner: spec.chown.unwrap_or((0, 0)),
        dir_mode: match &spec.chmod {
            Some(Chmod::Octal(m)) => *m,
            _ => 0o755,
        },
        now: spec.now,
        pinned: Vec::new(),
        hashes: src.hash_cache(),
    };
    let owner = |e: &Entry| match spec.chown {
        Some(o) => o,
        None if spec.from_context => (0, 0),
        None => (e.uid, e.gid),
    };
    let mode = |m: u32, kind: Kind| match &spec.chmod {
        Some(c) if kind != Kind::Symlink => c.apply(m, kind),
        _ => m,
    };
    let mut matched_total = Vec::new();
    for source in spec.sources {
        if let Some(remote) = crate::remote::classify(source) {
            let source_path = crate::remote::redact(source);
            if !spec.add {
                let what = match remote {
                    Remote::Http(_) => "a URL",
                    Remote::Git(_) => "a git repository",
                };
                return Err(CopyError::Unsupported {
                    cmd,
                    what,
                    source_path,
                });
            }
            let fetched = spec
                .remote
                .get(source)
                .ok_or(CopyError::NotFetched { cmd, source_path })?;
            matched_total.push(Match::Remote(source, fetched));
            continue;
        }
        let (base, pattern) = match (spec.parents, source.split_once("/./")) {
            (true, Some((b, p))) => (clean_abs(b), clean_abs(&format!("{b}/{p}"))),
            (true, None) => ("/".to_string(), clean_abs(source)),
            (false, _) => (String::new(), clean_abs(source)),
        };
        let matches = if has_wildcard(&pattern) {
            expand(src, &pattern)?
        } else {
            match src.lstat(
                &src.resolve(&pattern, false)
                    .map_err(io_err("resolve", &pattern))?,
            ) {
                Ok(Some(_)) => vec![pattern.clone()],
                Ok(None) => {
                    return Err(CopyError::NotFound {
                        path: source.clone(),
                    })
                }
                Err(e) => return Err(io_err("read", source.clone())(e)),
            }
        };
        for m in matches {
            matched_total.push(Match::Local(m, base.clone()));
        }
    }
    if matched_total.len() > 1 && !dest_dir {
        // A wildcard that matched several files: they go into the
        // destination as a directory.
        dest_dir = true;
    }
    for m in matched_total {
        let (m, base) = match m {
            Match::Local(m, base) => (m, base),
            Match::Remote(source, fetched) => {
                plan_remote(
                    spec,
                    source,
                    fetched,
                    &dest,
                    dest_dir,
                    image,
                    exclude.as_ref(),
                    &mode,
                    &mut plan,
                )?;
                continue;
            }
        };
        let Some((real, e)) = src.stat(&m).map_err(io_err("read", &m))? else {
            return Err(CopyError::NotFound { path: m });
        };
        let name = components(&m).pop().unwrap_or_default();
        // Where this match goes.
        let target = if spec.parents {
            let rel = m.strip_prefix(&base).unwrap_or(&m).trim_start_matches('/');
            if rel.is_empty() {
                dest.clone()
            } else {
                join(&dest, rel)
            }
        } else if e.kind == Kind::Dir {
            dest.clone()
        } else if dest_dir {
            join(&dest, &name)
        } else {
            dest.clone()
        };
        if let Some(ex) = &exclude {
            if e.kind != Kind::Dir && ex.is_excluded(&name) {
                continue;
            }
        }
        match e.kind {
            Kind::Dir => {
                // The destination directory is made like the directories
                // above it (it does not take the source directory's
                // metadata); an existing one is left as it is.
                let exists = image
                    .stat(&target)
                    .map_err(io_err("read", &target))?
                    .is_some_and(|(_, e)| e.kind == Kind::Dir);
                if !exists {
                    plan.items.insert(
                        target.clone(),
                        Item {
                            dest: target.clone(),
                            kind: ItemKind::Dir,
                            mode: plan.dir_mode,
                            uid: plan.parent_owner.0,
                            gid: plan.parent_owner.1,
                            mtime: (spec.now, 0),
                        },
                    );
                }
                walk(
                    src,
                    &real,
                    "",
                    &target,
                    exclude.as_ref(),
                    &owner,
                    &mode,
                    &mut plan,
                )?;
            }
            Kind::File
                if spec.add
                    && spec.from_context
                    && spec.unpack != Some(false)
                    && is_archive(&e.host) =>
            {
                // Extracted into the destination directory.
                let dir = if dest_dir || spec.parents {
                    if spec.parents {
                        components(&target)
                            .split_last()
                            .map(|(_, p)| format!("/{}", p.join("/")))
                            .unwrap_or_else(|| "/".into())
                    } else {
                        dest.clone()
                    }
                } else {
                    dest.clone()
                };
                let key = format!("{dir}\0unpack\0{m}");
                plan.items.insert(
                    key,
                    Item {
                        dest: dir,
                        kind: ItemKind::Unpack(e.host.clone()),
                        mode: 0o755,
                        uid: plan.parent_owner.0,
                        gid: plan.parent_owner.1,
                        mtime: (spec.now, 0),
                    },
                );
            }
            Kind::File => {
                let (uid, gid) = owner(&e);
                plan.items.insert(
                    target.clone(),
                    Item {
                        dest: target,
                        kind: ItemKind::File(e.host.clone()),
                        mode: mode(e.mode, Kind::File),
                        uid,
                        gid,
                        mtime: e.mtime,
                    },
                );
            }
            Kind::Symlink | Kind::Other => {
                // A dangling symlink named as a source, or a device: a
                // symlink is copied as it is; devices are skipped.
                if e.kind == Kind::Symlink {
                    let link = fs::read_link(&e.host).map_err(io_err("read", &m))?;
                    let (uid, gid) = owner(&e);
                    plan.items.insert(
                        target.clone(),
                        Item {
                            dest: target,
                            kind: ItemKind::Symlink(link.to_string_lossy().into_owned()),
                            mode: 0o777,
                            uid,
                            gid,
                            mtime: e.mtime,
                        },
                    );
                }
            }
        }
    }
    for f in spec.contents {
        let target = if dest_dir {
            join(&dest, &clean_abs(&f.name)[1..])
        } else {
            dest.clone()
        };
        let (uid, gid) = spec.chown.unwrap_or((0, 0));
        plan.items.insert(
            target.clone(),
            Item {
                dest: target,
                kind: ItemKind::Inline(f.data.clone().into_bytes()),
                mode: mode(0o644, Kind::File),
                uid,
                gid,
                mtime: (spec.now, 0),
            },
        );
    }
    drop_shadowed(&mut plan);
    link_hardlinks(&mut plan);
    Ok(plan)
}

/// Add a fetched remote source to the plan.
#[allow(clippy::too_many_arguments)]
fn plan_remote(
    spec: &CopySpec<'_>,
    source: &str,
    fetched: &Fetched,
    dest: &str,
    dest_dir: bool,
    image: &dyn Tree,
    exclude: Option<&IgnoreRules>,
    mode: &dyn Fn(u32, Kind) -> u32,
    plan: &mut Plan,
) -> Result<(), CopyError> {
    let (uid, gid) = spec.chown.unwrap_or((0, 0));
    match fetched {
        Fetched::File(f) => {
            if spec.unpack == Some(true) && is_archive(&f.path) {
                plan.items.insert(
                    format!("{dest}\0unpack\0{source}"),
                    Item {
                        dest: dest.to_string(),
                        kind: ItemKind::Unpack(f.path.clone()),
                        mode: 0o755,
                        uid: plan.parent_owner.0,
                        gid: plan.parent_owner.1,
                        mtime: (spec.now, 0),
                    },
                );
                return Ok(());
            }
            let target = if dest_dir {
                join(dest, &f.name)
            } else {
                dest.to_string()
            };
            plan.items.insert(
                target.clone(),
                Item {
                    dest: target,
                    kind: ItemKind::File(f.path.clone()),
                    mode: mode(0o600, Kind::File),
                    uid,
                    gid,
                    mtime: (f.mtime, 0),
                },
            );
        }
        Fetched::Git(g) => {
            // The repository's contents go into the destination, which is
            // a directory whatever its spelling (BuildKit copies the
            // checkout's `/`).
            let exists = image
                .stat(dest)
                .map_err(io_err("read", dest))?
                .is_some_and(|(_, e)| e.kind == Kind::Dir);
            if !exists {
                plan.items.insert(
                    dest.to_string(),
                    Item {
                        dest: dest.to_string(),
                        kind: ItemKind::Dir,
                        mode: plan.dir_mode,
                        uid: plan.parent_owner.0,
                        gid: plan.parent_owner.1,
                        mtime: (spec.now, 0),
                    },
                );
            }
            let tree = ContextTree::new(g.root.clone(), None);
            let dir = tree
                .resolve(&g.subdir, true)
                .map_err(io_err("resolve", &g.subdir))?;
            let owner = |_: &Entry| (uid, gid);
            walk(&tree, &dir, "", dest, exclude, &owner, mode, plan)?;
            plan.pinned.push((
                g.root.clone(),
                format!(
                    "git {} commit {} subdir {}",
                    crate::remote::redact(source),
                    g.commit,
                    g.subdir
                ),
            ));
        }
    }
    Ok(())
}

/// Items under a destination that ends up a non-directory (a later
/// source put a file or symlink where an earlier one had a directory) are
/// dropped: that path is not a directory in the result.
fn drop_shadowed(plan: &mut Plan) {
    let files: Vec<String> = plan
        .items
        .values()
        .filter(|i| !matches!(i.kind, ItemKind::Dir | ItemKind::Unpack(_)))
        .map(|i| format!("{}/", i.dest))
        .collect();
    if files.is_empty() {
        return;
    }
    plan.items
        .retain(|k, _| !files.iter().any(|f| k.starts_with(f.as_str())));
}

/// Files of the plan that are one inode in their source become one file
/// and hard links to it (the first in path order is the file), as
/// BuildKit's copy keeps them.
fn link_hardlinks(plan: &mut Plan) {
    use std::os::unix::fs::MetadataExt;
    let mut inodes: BTreeMap<(u64, u64), Vec<String>> = BTreeMap::new();
    for item in plan.items.values() {
        if let ItemKind::File(host) = &item.kind {
            if let Ok(m) = fs::symlink_metadata(host) {
                if m.nlink() > 1 {
                    inodes
                        .entry((m.dev(), m.ino()))
                        .or_default()
                        .push(item.dest.clone());
                }
            }
        }
    }
    for dests in inodes.into_values() {
        let Some((first, rest)) = dests.split_first() else {
            continue;
        };
        for d in rest {
            if let Some(item) = plan.items.get_mut(d) {
                item.kind = ItemKind::Hardlink(first.clone());
            }
        }
    }
}

/// Add the contents of directory `dir` (in `src`) under `target`.
#[allow(clippy::too_many_arguments)]
fn walk(
    src: &dyn Tree,
    dir: &str,
    rel: &str,
    target: &str,
    exclude: Option<&IgnoreRules>,
    owner: &dyn Fn(&Entry) -> (u32, u32),
    mode: &dyn Fn(u32, Kind) -> u32,
    plan: &mut Plan,
) -> Result<(), CopyError> {
    for name in src.list(dir).map_err(io_err("list", dir))? {
        let path = join(dir, &name);
        let rel_path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if exclude.is_some_and(|ex| ex.is_excluded(&rel_path)) {
            continue;
        }
        let Some(e) = src.lstat(&path).map_err(io_err("read", &path))? else {
            continue;
        };
        let dest = join(target, &name);
        let (uid, gid) = owner(&e);
        let kind = match e.kind {
            Kind::Dir => ItemKind::Dir,
            Kind::File => ItemKind::File(e.host.clone()),
            Kind::Symlink => ItemKind::Symlink(
                fs::read_link(&e.host)
                    .map_err(io_err("read", &path))?
                    .to_string_lossy()
                    .into_owned(),
            ),
            Kind::Other => continue,
        };
        let m = if e.kind == Kind::Symlink {
            0o777
        } else {
            mode(e.mode, e.kind)
        };
        // Directories get the time of the copy, files keep theirs, as
        // BuildKit's copy does.
        let mtime = if e.kind == Kind::Dir {
            (plan.now, 0)
        } else {
            e.mtime
        };
        plan.items.insert(
            dest.clone(),
            Item {
                dest: dest.clone(),
                kind,
                mode: m,
                uid,
                gid,
                mtime,
            },
        );
        if e.kind == Kind::Dir {
            walk(src, &path, &rel_path, &dest, exclude, owner, mode, plan)?;
        }
    }
    Ok(())
}

impl Plan {
    /// Feed the plan into a cache key: every item's destination, kind,
    /// mode, owner and content (file bytes hashed, link targets, heredoc
    /// text, archive bytes) in path order. Modification times are left out,
    /// as BuildKit leaves them out, so a `touch` is still a hit.
    pub fn hash(&self, key: &mut KeyHasher) -> Result<(), CopyError> {
        key.field("items", self.items.len().to_string().as_bytes());
        for item in self.items.values() {
            key.field("dest", item.dest.as_bytes());
            key.field(
                "meta",
                format!("{:o} {}:{}", item.mode, item.uid, item.gid).as_bytes(),
            );
            let what = match &item.kind {
                ItemKind::Dir => {
                    key.field("dir", b"");
                    "directory".to_string()
                }
                ItemKind::File(host) => {
                    if let Some((_, pin)) = self.pinned.iter().find(|(r, _)| host.starts_with(r)) {
                        // Its content is the commit's (keyed below).
                        key.field("pinned-file", b"");
                        format!("file of {pin}")
                    } else {
                        let h = self.sha256(host)?;
                        key.field("file", &h);
                        format!("file {}", hex_prefix(&h))
                    }
                }
                ItemKind::Symlink(t) => {
                    key.field("symlink", t.as_bytes());
                    format!("symlink to {t}")
                }
                ItemKind::Inline(data) => {
                    key.field("inline", data);
                    format!("heredoc {}", hex_prefix(&Sha256::digest(data)))
                }
                ItemKind::Unpack(host) => {
                    let h = self.sha256(host)?;
                    key.field("unpack", &h);
                    format!("archive {}", hex_prefix(&h))
                }
                ItemKind::Hardlink(target) => {
                    key.field("hardlink", target.as_bytes());
                    format!("hard link to {target}")
                }
            };
            key.note(
                format!("path {}", item.dest),
                format!(
                    "{what}, mode {:o}, owner {}:{}",
                    item.mode, item.uid, item.gid
                ),
            );
        }
        key.field(
            "parents",
            format!(
                "{}:{} {:o}",
                self.parent_owner.0, self.parent_owner.1, self.dir_mode
            )
            .as_bytes(),
        );
        for (i, (_, pin)) in self.pinned.iter().enumerate() {
            key.field("pin", pin.as_bytes());
            key.note(format!("pin {i}"), pin.clone());
        }
        Ok(())
    }

    /// The content hash of a source file, through the tree's cache.
    fn sha256(&self, host: &Path) -> Result<Vec<u8>, CopyError> {
        match &self.hashes {
            Some(c) => c
                .sha256(host)
                .map_err(io_err("read", host.display().to_string())),
            None => file_sha256(host),
        }
    }

    /// Write the plan's items, and the directories above them (their
    /// metadata taken from `image` where they exist), into the empty
    /// directory `stage`.
    pub fn stage(&self, image: &dyn Tree, stage: &Path) -> Result<(), CopyError> {
        self.stage_reusing(image, stage, None)
    }

    /// [`Plan::stage`], hard-linking from `reuse` (the snapshot a previous
    /// run of the same step made) every file that is there unchanged:
    /// same content (by the source's hash), mode, owner and mtime, checked
    /// against what that run recorded and what the old file's `lstat`
    /// says now. Snapshots are never written in place, so a link is the
    /// same as a copy, without the copy; a file that is gone or differs is
    /// copied. Each old inode is linked at most once, so no hard link
    /// appears in the layer that the sources did not have.
    pub fn stage_reusing(
        &self,
        image: &dyn Tree,
        stage: &Path,
        reuse: Option<&Reuse>,
    ) -> Result<(), CopyError> {
        let mut linked = std::collections::HashSet::new();
        let mut made: BTreeMap<String, Item> = BTreeMap::new();
        for item in self.items.values() {
            // The directories above it.
            let comps = components(&item.dest);
            let mut p = String::from("/");
            for c in comps.iter().take(comps.len().saturating_sub(1)) {
                p = join(&p, c);
                if made.contains_key(&p) || self.items.contains_key(&p) {
                    continue;
                }
                let dir = match image.lstat(&p).map_err(io_err("read", &p))? {
                    Some(e) if e.kind == Kind::Dir => Item {
                        dest: p.clone(),
                        kind: ItemKind::Dir,
                        mode: e.mode,
                        uid: e.uid,
                        gid: e.gid,
                        mtime: e.mtime,
                    },
                    _ => Item {
                        dest: p.clone(),
                        kind: ItemKind::Dir,
                        mode: self.dir_mode,
                        uid: self.parent_owner.0,
                        gid: self.parent_owner.1,
                        mtime: (self.now, 0),
                    },
                };
                mkdir(stage, &p)?;
                made.insert(p.clone(), dir);
            }
            // An existing directory that gets a new entry gets a new mtime.
            let parent = components(&item.dest)
                .split_last()
                .map(|(_, p)| format!("/{}", p.join("/")));
            if let Some(d) = parent.and_then(|p| made.get_mut(&p)) {
                d.mtime = (self.now, 0);
            }
            // Never write through a symlink the copy itself made (a link
            // and a directory of the same name from two sources): every
            // directory above the item must be a real one.
            ensure_real_parents(stage, &item.dest)?;
            let host = host_path(stage, &item.dest);
            match &item.kind {
                ItemKind::Dir => {
                    mkdir(stage, &item.dest)?;
                    made.insert(item.dest.clone(), item.clone());
                    continue;
                }
                ItemKind::File(src) => {
                    remove_existing(&host)?;
                    if reuse.is_some_and(|r| self.link_unchanged(r, item, src, &host, &mut linked))
                    {
                        // Its metadata is the item's already.
                        continue;
                    }
                    fs::copy(src, &host).map_err(io_err("copy", &item.dest))?;
                }
                ItemKind::Hardlink(target) => {
                    remove_existing(&host)?;
                    fs::hard_link(host_path(stage, target), &host)
                        .map_err(io_err("link", &item.dest))?;
                    continue;
                }
                ItemKind::Inline(data) => {
                    remove_existing(&host)?;
                    fs::write(&host, data).map_err(io_err("write", &item.dest))?;
                }
                ItemKind::Symlink(target) => {
                    remove_existing(&host)?;
                    std::os::unix::fs::symlink(target, &host)
                        .map_err(io_err("create", &item.dest))?;
                }
                ItemKind::Unpack(src) => {
                    mkdir(stage, &item.dest)?;
                    if !made.contains_key(&item.dest) && !self.items.contains_key(&item.dest) {
                        let dir = match image
                            .lstat(&item.dest)
                            .map_err(io_err("read", &item.dest))?
                        {
                            Some(e) if e.kind == Kind::Dir => Item {
                                dest: item.dest.clone(),
                                kind: ItemKind::Dir,
                                mode: e.mode,
                                uid: e.uid,
                                gid: e.gid,
                                mtime: e.mtime,
                            },
                            _ => Item {
                                kind: ItemKind::Dir,
                                ..item.clone()
                            },
                        };
                        made.insert(item.dest.clone(), dir);
                    }
                    let tar =
                        archive_reader(src).map_err(io_err("read", src.display().to_string()))?;
                    kiln_fs::apply::apply_layer(tar, &host, &Default::default()).map_err(
                        |source| CopyError::Unpack {
                            path: src.display().to_string(),
                            source,
                        },
                    )?;
                    continue;
                }
            }
            set_meta(&host, item)?;
        }
        // Directories last, deepest first, so their times stick.
        for item in made.values().rev() {
            set_meta(&host_path(stage, &item.dest), item)?;
        }
        Ok(())
    }
}

impl Plan {
    /// What [`Plan::stage_reusing`] needs to know of this plan's files in a
    /// later build: per destination, the content hash of its source, mode,
    /// owner and mtime. Files of a pinned checkout (no content hash) are
    /// left out.
    pub fn file_signatures(&self) -> Result<BTreeMap<String, FileSig>, CopyError> {
        let mut out = BTreeMap::new();
        for item in self.items.values() {
            let ItemKind::File(src) = &item.kind else {
                continue;
            };
            if self.pinned.iter().any(|(r, _)| src.starts_with(r)) {
                continue;
            }
            out.insert(
                item.dest.clone(),
                FileSig {
                    sha256: crate::hashes::hex(&self.sha256(src)?),
                    mode: item.mode,
                    uid: item.uid,
                    gid: item.gid,
                    mtime: item.mtime,
                },
            );
        }
        Ok(out)
    }

    /// Hard-link `item` from `reuse` to `host` when the old file is the
    /// same (see [`Plan::stage_reusing`]); false when it was not linked.
    fn link_unchanged(
        &self,
        reuse: &Reuse,
        item: &Item,
        src: &Path,
        host: &Path,
        linked: &mut std::collections::HashSet<(u64, u64)>,
    ) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some(sig) = reuse.files.get(&item.dest) else {
            return false;
        };
        if (sig.mode, sig.uid, sig.gid, sig.mtime) != (item.mode, item.uid, item.gid, item.mtime)
            || self.pinned.iter().any(|(r, _)| src.starts_with(r))
        {
            return false;
        }
        if !self
            .sha256(src)
            .is_ok_and(|h| crate::hashes::hex(&h) == sig.sha256)
        {
            return false;
        }
        let old = host_path(&reuse.root, &item.dest);
        let Ok(m) = fs::symlink_metadata(&old) else {
            return false;
        };
        let same = m.file_type().is_file()
            && m.mode() & 0o7777 == item.mode
            && (m.uid(), m.gid()) == (item.uid, item.gid)
            && (m.mtime(), m.mtime_nsec()) == item.mtime;
        if !same || !linked.insert((m.dev(), m.ino())) {
            return false;
        }
        fs::hard_link(&old, host).is_ok()
    }
}

/// One copied file as [`Plan::file_signatures`] records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileSig {
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Mode bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time.
    pub mtime: (i64, i64),
}

/// A snapshot an earlier run of a copy step made, and what it copied
/// there ([`Plan::stage_reusing`]).
#[derive(Debug, Clone)]
pub struct Reuse {
    /// The snapshot's root directory.
    pub root: PathBuf,
    /// Its copied files by destination.
    pub files: BTreeMap<String, FileSig>,
}

fn ensure_real_parents(stage: &Path, dest: &str) -> Result<(), CopyError> {
    let comps = components(dest);
    let mut p = stage.to_path_buf();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        p.push(c);
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(CopyError::Io {
                    action: "copy",
                    path: dest.to_string(),
                    source: io::Error::other(format!(
                        "{} is not a directory in what this step copies",
                        p.strip_prefix(stage).unwrap_or(&p).display()
                    )),
                })
            }
            Err(e) => return Err(io_err("copy", dest)(e)),
        }
    }
    Ok(())
}

fn host_path(stage: &Path, dest: &str) -> PathBuf {
    stage.join(dest.trim_start_matches('/'))
}

fn mkdir(stage: &Path, dest: &str) -> Result<(), CopyError> {
    let p = host_path(stage, dest);
    match fs::symlink_metadata(&p) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => fs::remove_file(&p).map_err(io_err("replace", dest))?,
        Err(_) => {}
    }
    fs::create_dir_all(&p).map_err(io_err("create", dest))
}

fn remove_existing(p: &Path) -> Result<(), CopyError> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            fs::remove_dir_all(p).map_err(io_err("replace", p.display().to_string()))
        }
        Ok(_) => fs::remove_file(p).map_err(io_err("replace", p.display().to_string())),
        Err(_) => Ok(()),
    }
}

fn set_meta(host: &Path, item: &Item) -> Result<(), CopyError> {
    let shown = || item.dest.clone();
    rustix::fs::chownat(
        rustix::fs::CWD,
        host,
        Some(rustix::fs::Uid::from_raw(item.uid)),
        Some(rustix::fs::Gid::from_raw(item.gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("chown", shown())(e.into()))?;
    let is_link = matches!(item.kind, ItemKind::Symlink(_));
    if !is_link {
        // After chown, which clears setuid and setgid.
        fs::set_permissions(host, fs::Permissions::from_mode(item.mode))
            .map_err(io_err("chmod", shown()))?;
    }
    let t = Timespec {
        tv_sec: item.mtime.0,
        tv_nsec: item.mtime.1 as _,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        host,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("set times of", shown())(e.into()))?;
    Ok(())
}

/// The first 8 bytes of a hash in hex, as the cache explanations show it.
fn hex_prefix(bytes: &[u8]) -> String {
    crate::hashes::hex(&bytes[..bytes.len().min(8)])
}

fn file_sha256(host: &Path) -> Result<Vec<u8>, CopyError> {
    let shown = || host.display().to_string();
    let mut f = File::open(host).map_err(io_err("open", shown()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io_err("read", shown()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tree::{ContextTree, LayeredTree};

    #[test]
    fn glob() {
        assert!(glob_match("*.txt", "a.txt"));
        assert!(!glob_match("*.txt", "a.txt.bak"));
        assert!(glob_match("f?o", "foo"));
        assert!(glob_match("[a-c]x", "bx"));
        assert!(!glob_match("[^a-c]x", "bx"));
        assert!(glob_match("\\*", "*"));
    }

    fn spec<'a>(sources: &'a [String], dest: &'a str) -> CopySpec<'a> {
        CopySpec {
            add: false,
            sources,
            contents: &[],
            dest,
            workdir: "/work",
            chown: None,
            chmod: None,
            parents: false,
            exclude: &[],
            unpack: None,
            from_context: true,
            now: 1_000,
            remote: &NO_REMOTE,
        }
    }

    static NO_REMOTE: BTreeMap<String, Fetched> = BTreeMap::new();

    /// Destination rules: (sources, dest) → destinations planned.
    #[test]
    fn destination_rules() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir_all(ctx.join("d/sub")).unwrap();
        fs::write(ctx.join("a.txt"), "a").unwrap();
        fs::write(ctx.join("b.txt"), "b").unwrap();
        fs::write(ctx.join("d/x"), "x").unwrap();
        fs::write(ctx.join("d/sub/y"), "y").unwrap();
        let img = dir.path().join("img");
        fs::create_dir_all(img.join("usr/bin")).unwrap();
        fs::create_dir_all(img.join("existing")).unwrap();
        std::os::unix::fs::symlink("usr/bin", img.join("bin")).unwrap();
        std::os::unix::fs::symlink("/usr/bin/tool", img.join("lnkfile")).unwrap();
        let src = ContextTree::new(ctx, None);
        let image = LayeredTree::new(vec![img]);
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: Vec<(Vec<String>, &str, Vec<&str>)> = vec![
            (s(&["a.txt"]), "/f", vec!["/f"]),
            (s(&["a.txt"]), "/f/", vec!["/f/a.txt"]),
            (s(&["a.txt"]), "rel", vec!["/work/rel"]),
            (s(&["a.txt"]), ".", vec!["/work/a.txt"]),
            (s(&["a.txt"]), "/existing", vec!["/existing/a.txt"]),
            (s(&["a.txt"]), "/bin/", vec!["/usr/bin/a.txt"]),
            (s(&["a.txt", "b.txt"]), "/m/", vec!["/m/a.txt", "/m/b.txt"]),
            (s(&["*.txt"]), "/w", vec!["/w/a.txt", "/w/b.txt"]),
            // `d/*` also matches the file `d/x`, which has no `y` below.
            (s(&["d/*/y"]), "/w/", vec!["/w/y"]),
            // A symlink at the destination is written through, in-root.
            (s(&["a.txt"]), "/lnkfile", vec!["/usr/bin/tool"]),
            (
                s(&["d"]),
                "/app",
                vec!["/app", "/app/sub", "/app/sub/y", "/app/x"],
            ),
            (
                s(&["d/"]),
                "/app/",
                vec!["/app", "/app/sub", "/app/sub/y", "/app/x"],
            ),
        ];
        for (sources, dest, want) in cases {
            let p = plan(&spec(&sources, dest), &src, &image).unwrap();
            let got: Vec<&str> = p.items.values().map(|i| i.dest.as_str()).collect();
            assert_eq!(got, want, "COPY {sources:?} {dest}");
        }
        let two = s(&["a.txt", "b.txt"]);
        assert!(matches!(
            plan(&spec(&two, "/nodir"), &src, &image),
            Err(CopyError::DestNotDir { .. })
        ));
        let missing = s(&["nope"]);
        assert!(matches!(
            plan(&spec(&missing, "/x"), &src, &image),
            Err(CopyError::NotFound { .. })
        ));
        // --parents keeps the path below `/./`.
        let par = s(&["d/./sub/y", "a.txt"]);
        let mut sp = spec(&par, "/p/");
        sp.parents = true;
        let p = plan(&sp, &src, &image).unwrap();
        let got: Vec<&str> = p.items.values().map(|i| i.dest.as_str()).collect();
        assert_eq!(got, vec!["/p/a.txt", "/p/sub/y"]);
        // --exclude.
        let all = s(&["d"]);
        let ex = s(&["sub"]);
        let mut sp = spec(&all, "/e/");
        sp.exclude = &ex;
        let p = plan(&sp, &src, &image).unwrap();
        let got: Vec<&str> = p.items.values().map(|i| i.dest.as_str()).collect();
        assert_eq!(got, vec!["/e", "/e/x"]);
    }

    /// A symlink from one source and a directory of the same name from
    /// another: nothing is ever written through the link.
    #[test]
    fn never_writes_through_a_copied_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        let outside = dir.path().join("outside");
        fs::create_dir_all(ctx.join("a/lnk")).unwrap();
        fs::create_dir_all(ctx.join("b")).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(ctx.join("a/lnk/f"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, ctx.join("b/lnk")).unwrap();
        let src = ContextTree::new(ctx, None);
        let img = LayeredTree::new(vec![]);
        let sources = vec!["a".to_string(), "b".to_string()];
        let p = plan(&spec(&sources, "/d/"), &src, &img).unwrap();
        assert!(matches!(p.items["/d/lnk"].kind, ItemKind::Symlink(_)));
        assert!(!p.items.contains_key("/d/lnk/f"));
        let stage = dir.path().join("stage");
        fs::create_dir(&stage).unwrap();
        p.stage(&img, &stage).unwrap();
        assert!(!outside.join("f").exists());
        // And the stage refuses a plan that would, however it came about.
        let mut bad = p.clone();
        bad.items.insert(
            "/d/lnk/g".into(),
            Item {
                dest: "/d/lnk/g".into(),
                kind: ItemKind::Inline(b"g".to_vec()),
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: (0, 0),
            },
        );
        let stage2 = dir.path().join("stage2");
        fs::create_dir(&stage2).unwrap();
        assert!(bad.stage(&img, &stage2).is_err());
        assert!(!outside.join("g").exists());
    }

    #[test]
    fn hard_links_stay_hard_links() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir_all(ctx.join("d")).unwrap();
        fs::write(ctx.join("d/b"), "1").unwrap();
        fs::hard_link(ctx.join("d/b"), ctx.join("d/a")).unwrap();
        let src = ContextTree::new(ctx, None);
        let img = LayeredTree::new(vec![]);
        let sources = vec!["d".to_string()];
        let p = plan(&spec(&sources, "/x/"), &src, &img).unwrap();
        assert_eq!(p.items["/x/a"].kind, ItemKind::File(src_host(&dir, "d/a")));
        assert_eq!(p.items["/x/b"].kind, ItemKind::Hardlink("/x/a".into()));
        let stage = dir.path().join("stage");
        fs::create_dir(&stage).unwrap();
        p.stage(&img, &stage).unwrap();
        use std::os::unix::fs::MetadataExt;
        let a = fs::metadata(stage.join("x/a")).unwrap();
        let b = fs::metadata(stage.join("x/b")).unwrap();
        assert_eq!(a.ino(), b.ino());
    }

    fn src_host(dir: &tempfile::TempDir, rel: &str) -> PathBuf {
        dir.path().join("ctx").join(rel)
    }

    #[test]
    fn hash_ignores_mtime_but_not_content_or_mode() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join("a"), "1").unwrap();
        let img = LayeredTree::new(vec![]);
        let src = ContextTree::new(ctx.clone(), None);
        let sources = vec!["a".to_string()];
        let h = || {
            let p = plan(&spec(&sources, "/a"), &src, &img).unwrap();
            let mut k = KeyHasher::new("copy", None);
            p.hash(&mut k).unwrap();
            k.finish()
        };
        let first = h();
        let f = File::options().write(true).open(ctx.join("a")).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(h(), first, "mtime is not part of the key");
        fs::set_permissions(ctx.join("a"), fs::Permissions::from_mode(0o600)).unwrap();
        let second = h();
        assert_ne!(second, first, "mode is");
        fs::write(ctx.join("a"), "2").unwrap();
        fs::set_permissions(ctx.join("a"), fs::Permissions::from_mode(0o600)).unwrap();
        assert_ne!(h(), second, "content is");
    }

    /// A file's signature holds its source's whole SHA-256, not the short
    /// form the cache explanations show.
    #[test]
    fn file_signatures_hold_the_whole_content_hash() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path().join("ctx");
        fs::create_dir_all(&ctx).unwrap();
        fs::write(ctx.join("a"), "abc").unwrap();
        let img = LayeredTree::new(vec![]);
        let src = ContextTree::new(ctx, None);
        let sources = vec!["a".to_string()];
        let p = plan(&spec(&sources, "/a"), &src, &img).unwrap();
        let sigs = p.file_signatures().unwrap();
        assert_eq!(
            sigs["/a"].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
