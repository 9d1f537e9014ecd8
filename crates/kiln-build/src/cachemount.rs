//! `RUN --mount=type=cache` directories: where they live in the store,
//! which instance a step gets, and what a new one starts with.
//!
//! It owns `cache/mounts/` of the store and nothing else: it never runs a
//! step, and it reads a `from=` stage or image only through its snapshot
//! directories (in-root, [`crate::tree`]).
//!
//! BuildKit's rules (`solver/llbsolver/mounts/mount.go`), as kiln has them:
//!
//! - **Names.** A cache is named by its id (a name, never a path: the
//!   directory is `cache/mounts/<hash of the id>`) and by its base, when it
//!   has one: BuildKit keys a cache by `id:base-snapshot`, so `from=` (and
//!   `uid`/`gid`/`mode`, which BuildKit applies by making the cache on top of
//!   a small snapshot of its own) give a cache of its own, beside the plain
//!   one of the same id. kiln names the base by what made it (the stage's
//!   cache key, the image's config digest, the source path, the owner and
//!   mode), so a changed `from` stage gets a new cache, as in BuildKit.
//! - **Seeding.** A new cache with `from=STAGE,source=PATH` starts as a copy
//!   of `PATH` in that stage or image (resolved in its root: a symlink or
//!   `..` never leaves it), with its files' owners and modes; with
//!   `uid`/`gid`/`mode` (and no `source`) as an empty directory with those;
//!   otherwise empty, 0755 root. An existing cache is used as it is: its
//!   seed is not copied again (BuildKit reuses the mutable snapshot it made
//!   on the base; a new base is a new cache). A `source` other than `/`
//!   without `from=` is an error, as in BuildKit (the path does not exist
//!   in the empty base).
//! - **Sharing.** Each name may have several instances (`<name>`,
//!   `<name>-1`, …), each with a lock file. `shared` (the default) takes a
//!   shared lock on the first instance no one holds exclusively (with others
//!   that share it, in this build or another kiln process); `private` and
//!   `locked` take an exclusive lock. When every instance is in use,
//!   `shared` and `private` make a new one (BuildKit makes a new mutable
//!   snapshot), while `locked` waits for one to be released (BuildKit polls
//!   every 100 ms; so does kiln). Finding or making an instance is done
//!   under a lock of the name (`<name>.key.lock`), so two processes never
//!   make the same instance. Locks are `flock`s: the kernel drops them when
//!   a killed build's process ends.
//!
//! Decisions: a cache with `from=` is named with its `source` too (BuildKit
//! mounts the `source` subdirectory of one snapshot per `from`; kiln copies
//! only that subdirectory, so two sources are two caches). A `source` that
//! is not a directory is refused. A new instance is made in the store's
//! `ingest/` and renamed into place, so a killed build never leaves a
//! half-seeded cache.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{flock, FlockOperation};

use crate::copy::{self, CopySpec};
use crate::key::KeyHasher;
use crate::solve::StepError;
use crate::tree::{Kind, LayeredTree, Tree};

/// How long `sharing=locked` sleeps between looks at its instances.
const LOCKED_POLL: Duration = Duration::from_millis(100);

use kiln_dockerfile::mounts::CacheSharing;

/// What a new instance of a cache starts with.
#[derive(Debug)]
pub(crate) enum CacheInit {
    /// An empty directory with this mode and owner.
    Empty {
        /// Permission bits.
        mode: u32,
        /// Owner.
        uid: u32,
        /// Group.
        gid: u32,
    },
    /// A copy of the directory `path` (absolute, resolved in the tree) of
    /// a stage's or image's layers.
    Seed {
        /// The layers.
        tree: LayeredTree,
        /// The directory in them.
        path: String,
    },
}

/// One cache mount of a step, before it gets a directory.
#[derive(Debug)]
pub(crate) struct CacheSpec {
    /// The name: hex of the hash of the id and the base.
    pub(crate) name: String,
    /// `sharing=`.
    pub(crate) sharing: CacheSharing,
    /// What a new instance starts with.
    pub(crate) init: CacheInit,
}

impl CacheSpec {
    /// The spec of cache `id` on `base` (see the module docs; `None`: the
    /// plain cache of the id, whose name is that of earlier kiln versions).
    pub(crate) fn new(
        id: &str,
        base: Option<&str>,
        sharing: CacheSharing,
        init: CacheInit,
    ) -> CacheSpec {
        let mut h = KeyHasher::new("cache-mount", None);
        h.field("id", id.as_bytes());
        if let Some(b) = base {
            h.field("base", b.as_bytes());
        }
        CacheSpec {
            name: h.finish().trim_start_matches("sha256:").to_string(),
            sharing,
            init,
        }
    }
}

/// A cache instance a step holds: its directory, and its lock, released
/// when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    /// The instance's directory.
    pub(crate) dir: PathBuf,
    _lock: fs::File,
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StepError + 'a {
    move |source| StepError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

fn open_lock(path: &Path) -> Result<fs::File, StepError> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_err("open", path))
}

/// `flock` without waiting: `Ok(false)` when someone else holds it.
fn try_lock(f: &fs::File, shared: bool, path: &Path) -> Result<bool, StepError> {
    let op = if shared {
        FlockOperation::NonBlockingLockShared
    } else {
        FlockOperation::NonBlockingLockExclusive
    };
    match flock(f, op) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(StepError::Io {
            action: "lock",
            path: path.to_path_buf(),
            source: e.into(),
        }),
    }
}

/// Instance `n` of `name` under `dir`.
fn instance(dir: &Path, name: &str, n: usize) -> PathBuf {
    if n == 0 {
        dir.join(name)
    } else {
        dir.join(format!("{name}-{n}"))
    }
}

fn lock_path(instance: &Path) -> PathBuf {
    let mut s = instance.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// Find or make an instance of `spec` under the store `root` for a step,
/// by its sharing mode (see the module docs); `locked` may wait.
pub(crate) fn acquire(root: &Path, spec: &CacheSpec) -> Result<Held, StepError> {
    let dir = root.join("cache/mounts");
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    let shared = spec.sharing == CacheSharing::Shared;
    let key_path = dir.join(format!("{}.key.lock", spec.name));
    let key = open_lock(&key_path)?;
    loop {
        flock(&key, FlockOperation::LockExclusive).map_err(|e| StepError::Io {
            action: "lock",
            path: key_path.clone(),
            source: e.into(),
        })?;
        let mut n = 0;
        while instance(&dir, &spec.name, n).is_dir() {
            let path = instance(&dir, &spec.name, n);
            let lock_file = lock_path(&path);
            let lock = open_lock(&lock_file)?;
            if try_lock(&lock, shared, &lock_file)? {
                return Ok(Held {
                    dir: path,
                    _lock: lock,
                });
            }
            n += 1;
        }
        if spec.sharing == CacheSharing::Locked && n > 0 {
            // Every instance is in use: wait for one, without holding the
            // name's lock (its holders must be able to look too).
            let _ = flock(&key, FlockOperation::Unlock);
            std::thread::sleep(LOCKED_POLL);
            continue;
        }
        let path = instance(&dir, &spec.name, n);
        let lock_file = lock_path(&path);
        let lock = open_lock(&lock_file)?;
        if !try_lock(&lock, shared, &lock_file)? {
            // Only a holder of the name's lock takes an instance's lock,
            // and the instance does not exist yet: nobody can hold it.
            return Err(StepError::Io {
                action: "lock",
                path: lock_file,
                source: io::Error::other("a new cache instance is locked already"),
            });
        }
        make(root, &path, &spec.init)?;
        return Ok(Held {
            dir: path,
            _lock: lock,
        });
    }
}

/// What [`prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Cache instances removed.
    pub caches: usize,
    /// Bytes of the files they held.
    pub bytes: u64,
}

/// Remove every cache instance under the store `root` that no step holds
/// now (`kiln builder prune`); instances in use are left. Each is moved
/// into `ingest/` under its name's lock and the instance's own exclusive
/// lock, then deleted, so a step never sees half of one.
pub fn prune(root: &Path) -> Result<Pruned, StepError> {
    let dir = root.join("cache/mounts");
    let mut pruned = Pruned::default();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(pruned),
        Err(e) => return Err(io_err("read", &dir)(e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let n = e
                .file_name()
                .to_str()?
                .strip_suffix(".key.lock")?
                .to_string();
            Some(n)
        })
        .collect();
    names.sort();
    let ingest = root.join("ingest");
    fs::create_dir_all(&ingest).map_err(io_err("create", &ingest))?;
    for name in names {
        let key_path = dir.join(format!("{name}.key.lock"));
        let key = open_lock(&key_path)?;
        flock(&key, FlockOperation::LockExclusive).map_err(|e| StepError::Io {
            action: "lock",
            path: key_path.clone(),
            source: e.into(),
        })?;
        let mut n = 0;
        loop {
            let path = instance(&dir, &name, n);
            n += 1;
            if !path.is_dir() {
                // Instances are numbered from 0 without gaps, but a prune
                // that kept one in use leaves a gap: look a little further.
                if n > 64 {
                    break;
                }
                continue;
            }
            let lock_file = lock_path(&path);
            let lock = open_lock(&lock_file)?;
            if !try_lock(&lock, false, &lock_file)? {
                continue;
            }
            let bytes = tree_bytes(&path);
            let tmp = kiln_fs::atomic::temp_path(&ingest);
            fs::rename(&path, &tmp).map_err(io_err("move", &path))?;
            fs::remove_dir_all(&tmp).map_err(io_err("remove", &tmp))?;
            pruned.caches += 1;
            pruned.bytes += bytes;
        }
    }
    Ok(pruned)
}

/// The cache instances under the store `root` and the bytes of their
/// files (`kiln system df`), in use or not.
pub fn usage(root: &Path) -> Pruned {
    let dir = root.join("cache/mounts");
    let mut u = Pruned::default();
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            u.caches += 1;
            u.bytes += tree_bytes(&e.path());
        }
    }
    u
}

/// The bytes of the regular files under `path` (symlinks not followed).
fn tree_bytes(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    fs::read_dir(path)
        .map(|es| es.flatten().map(|e| tree_bytes(&e.path())).sum())
        .unwrap_or(0)
}

/// Make the instance directory `path` with `init`'s contents, staged in
/// the store's `ingest/` and renamed into place.
fn make(root: &Path, path: &Path, init: &CacheInit) -> Result<(), StepError> {
    let ingest = root.join("ingest");
    fs::create_dir_all(&ingest).map_err(io_err("create", &ingest))?;
    let tmp = kiln_fs::atomic::temp_path(&ingest);
    fs::create_dir(&tmp).map_err(io_err("create", &tmp))?;
    let result = (|| {
        let (mode, uid, gid) = match init {
            CacheInit::Empty { mode, uid, gid } => (*mode, *uid, *gid),
            CacheInit::Seed { tree, path } => {
                let top = tree
                    .lstat(path)
                    .map_err(io_err("read", Path::new(path)))?
                    .filter(|e| e.kind == Kind::Dir)
                    .ok_or_else(|| StepError::Mount {
                        reason: format!(
                            "cache source {path} is not a directory in the `from` stage or image"
                        ),
                    })?;
                let sources = vec![path.clone()];
                let spec = CopySpec {
                    add: false,
                    sources: &sources,
                    contents: &[],
                    dest: "/",
                    workdir: "/",
                    chown: None,
                    chmod: None,
                    parents: false,
                    exclude: &[],
                    unpack: Some(false),
                    from_context: false,
                    now: top.mtime.0,
                    remote: &std::collections::BTreeMap::new(),
                };
                let empty = LayeredTree::new(Vec::new());
                let plan = copy::plan(&spec, tree, &empty)?;
                plan.stage(&empty, &tmp)?;
                (top.mode, top.uid, top.gid)
            }
        };
        rustix::fs::chown(
            &tmp,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .map_err(|e| StepError::Io {
            action: "chown",
            path: tmp.clone(),
            source: e.into(),
        })?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(io_err("chmod", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename", path))
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn empty() -> CacheInit {
        CacheInit::Empty {
            mode: 0o755,
            uid: 0,
            gid: 0,
        }
    }

    fn spec(sharing: CacheSharing) -> CacheSpec {
        CacheSpec::new("id", None, sharing, empty())
    }

    #[test]
    fn names_are_hashes_of_the_id_and_base() {
        let plain = CacheSpec::new("/root/.cache", None, CacheSharing::Shared, empty());
        assert_eq!(plain.name.len(), 64);
        assert!(plain.name.bytes().all(|b| b.is_ascii_hexdigit()));
        let again = CacheSpec::new("/root/.cache", None, CacheSharing::Locked, empty());
        assert_eq!(plain.name, again.name);
        let based = CacheSpec::new("/root/.cache", Some("x"), CacheSharing::Shared, empty());
        assert_ne!(plain.name, based.name);
        let other = CacheSpec::new("../../etc", None, CacheSharing::Shared, empty());
        assert!(!other.name.contains('/'));
    }

    #[test]
    fn shared_users_get_one_directory() {
        let d = tempfile::tempdir().unwrap();
        let a = acquire(d.path(), &spec(CacheSharing::Shared)).unwrap();
        let b = acquire(d.path(), &spec(CacheSharing::Shared)).unwrap();
        assert_eq!(a.dir, b.dir);
        assert!(a.dir.starts_with(d.path().join("cache/mounts")));
    }

    #[test]
    fn private_users_get_a_new_instance_while_one_is_in_use() {
        let d = tempfile::tempdir().unwrap();
        let a = acquire(d.path(), &spec(CacheSharing::Private)).unwrap();
        fs::write(a.dir.join("mine"), "a").unwrap();
        let b = acquire(d.path(), &spec(CacheSharing::Private)).unwrap();
        assert_ne!(a.dir, b.dir);
        assert!(!b.dir.join("mine").exists());
        // A shared user does not join a private one either.
        let c = acquire(d.path(), &spec(CacheSharing::Shared)).unwrap();
        assert_ne!(c.dir, a.dir);
        assert_ne!(c.dir, b.dir);
        // Released: the first instance is reused, with its files.
        drop((a, b, c));
        let again = acquire(d.path(), &spec(CacheSharing::Private)).unwrap();
        assert!(again.dir.join("mine").exists());
    }

    #[test]
    fn prune_removes_the_instances_no_step_holds() {
        let d = tempfile::tempdir().unwrap();
        let a = acquire(d.path(), &spec(CacheSharing::Shared)).unwrap();
        fs::write(a.dir.join("f"), "12345").unwrap();
        let b = acquire(d.path(), &spec(CacheSharing::Private)).unwrap();
        fs::write(b.dir.join("g"), "123").unwrap();
        let (a_dir, b_dir) = (a.dir.clone(), b.dir.clone());
        assert_eq!(
            usage(d.path()),
            Pruned {
                caches: 2,
                bytes: 8
            }
        );
        drop(a);
        // b is held: only a goes.
        let p = prune(d.path()).unwrap();
        assert_eq!((p.caches, p.bytes), (1, 5));
        assert!(!a_dir.exists() && b_dir.join("g").exists());
        drop(b);
        // A gap at instance 0 does not hide instance 1.
        let p = prune(d.path()).unwrap();
        assert_eq!((p.caches, p.bytes), (1, 3));
        assert!(!b_dir.exists());
        assert_eq!(fs::read_dir(d.path().join("ingest")).unwrap().count(), 0);
        assert_eq!(prune(d.path()).unwrap(), Pruned::default());
        assert_eq!(usage(d.path()), Pruned::default());
        // The next step gets a new, empty cache.
        let again = acquire(d.path(), &spec(CacheSharing::Shared)).unwrap();
        assert_eq!(fs::read_dir(&again.dir).unwrap().count(), 0);
    }

    #[test]
    fn locked_users_wait_for_an_instance() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        let a = acquire(&root, &spec(CacheSharing::Locked)).unwrap();
        let first = a.dir.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let b = acquire(&root, &spec(CacheSharing::Locked)).unwrap();
            tx.send(b.dir.clone()).unwrap();
        });
        // Still waiting while the first holds it.
        assert!(rx.recv_timeout(Duration::from_millis(400)).is_err());
        drop(a);
        let got = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(got, first);
        waiter.join().unwrap();
    }

    #[test]
    fn a_new_cache_is_made_with_its_owner_and_mode() {
        let d = tempfile::tempdir().unwrap();
        let s = CacheSpec::new(
            "x",
            Some("perms"),
            CacheSharing::Shared,
            CacheInit::Empty {
                mode: 0o1777,
                uid: 0,
                gid: 0,
            },
        );
        let h = acquire(d.path(), &s).unwrap();
        let m = fs::metadata(&h.dir).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o1777);
        // Nothing left in ingest/.
        assert_eq!(fs::read_dir(d.path().join("ingest")).unwrap().count(), 0);
    }

    #[test]
    fn a_seed_is_copied_once_from_its_directory_only() {
        let d = tempfile::tempdir().unwrap();
        let layer = d.path().join("layer");
        fs::create_dir_all(layer.join("data/sub")).unwrap();
        fs::write(layer.join("data/sub/f"), "seed").unwrap();
        fs::write(layer.join("outside"), "no").unwrap();
        fs::set_permissions(layer.join("data"), fs::Permissions::from_mode(0o750)).unwrap();
        let store = d.path().join("store");
        let seed = |path: &str| CacheInit::Seed {
            tree: LayeredTree::new(vec![layer.clone()]),
            path: path.into(),
        };
        let s = CacheSpec::new("x", Some("b"), CacheSharing::Shared, seed("/data"));
        let h = acquire(&store, &s).unwrap();
        assert_eq!(fs::read_to_string(h.dir.join("sub/f")).unwrap(), "seed");
        assert!(!h.dir.join("outside").exists());
        assert_eq!(fs::metadata(&h.dir).unwrap().mode() & 0o7777, 0o750);
        // An existing cache is used as it is.
        fs::write(h.dir.join("sub/f"), "changed").unwrap();
        fs::remove_file(layer.join("data/sub/f")).unwrap();
        drop(h);
        let h = acquire(&store, &s).unwrap();
        assert_eq!(fs::read_to_string(h.dir.join("sub/f")).unwrap(), "changed");
        // A source that is a file is refused, and leaves nothing behind.
        let bad = CacheSpec::new("y", Some("b"), CacheSharing::Shared, seed("/outside"));
        assert!(matches!(
            acquire(&store, &bad),
            Err(StepError::Mount { .. })
        ));
        assert_eq!(fs::read_dir(store.join("ingest")).unwrap().count(), 0);
    }
}
