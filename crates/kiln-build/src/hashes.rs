//! Content hashes of build-context files, remembered between builds by
//! what `stat` says of each file, as BuildKit's content-hash cache does: a
//! file whose device, inode, size, modification time and change time are
//! all as they were is not read again (20 MB of context hashed on every
//! build was most of a no-change rebuild's CPU).
//!
//! Why it is trustworthy: any write to a file, and any `utimensat`, sets
//! its change time to now, and no user can set a change time back, so a
//! file whose content changed never matches its old entry; a rename or
//! copy over it is another inode. Racy entries are never recorded: a file
//! changed while it was read (its stat differs before and after), or
//! changed so recently (change time within 100 ms of now, or within
//! three seconds on a file system that keeps whole seconds only: see
//! `settled`) that a second write could still come within the same clock
//! tick and leave the same stat behind (git's "racily clean" problem).
//!
//! The cache is a JSON file in the store (`cache/context-hashes.json`),
//! read when a build opens its context and written back, atomically, when
//! the context is dropped, if anything was added. It is only a cache: a
//! file that is missing, unreadable or corrupt is an empty cache, and
//! concurrent builds may each write theirs (the last one wins). Only the
//! entries of the last builds are kept (at most [`MAX_ENTRIES`]).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// How many entries the file keeps at most.
pub const MAX_ENTRIES: usize = 200_000;

/// What identifies one version of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stat {
    fn of(m: &fs::Metadata) -> Stat {
        Stat {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    stat: Stat,
    /// SHA-256 of the content, hex.
    sha256: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    version: u32,
    entries: BTreeMap<String, Entry>,
}

/// The hashes of one build's context files (see the module docs).
#[derive(Debug)]
pub struct HashCache {
    path: PathBuf,
    old: BTreeMap<String, Entry>,
    /// Entries used or added by this build.
    used: Mutex<(BTreeMap<String, Entry>, bool)>,
}

const VERSION: u32 = 1;

impl HashCache {
    /// The cache kept in the file `path` (read now).
    pub fn open(path: PathBuf) -> HashCache {
        let old = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<CacheFile>(&b).ok())
            .filter(|f| f.version == VERSION)
            .map(|f| f.entries)
            .unwrap_or_default();
        HashCache {
            path,
            old,
            used: Mutex::new((BTreeMap::new(), false)),
        }
    }

    /// The SHA-256 of the file at `host`, from the cache when its stat is
    /// unchanged, else read (and remembered when it is not racy).
    pub fn sha256(&self, host: &Path) -> io::Result<Vec<u8>> {
        let key = host.to_string_lossy().into_owned();
        let before = Stat::of(&fs::metadata(host)?);
        let known = {
            let used = self.used.lock().ok();
            used.and_then(|u| u.0.get(&key).cloned())
                .or_else(|| self.old.get(&key).cloned())
        };
        if let Some(e) = known.filter(|e| e.stat == before) {
            if let Some(h) = unhex(&e.sha256) {
                if let Ok(mut u) = self.used.lock() {
                    u.0.insert(key, e);
                }
                return Ok(h);
            }
        }
        let mut f = File::open(host)?;
        let opened = Stat::of(&f.metadata()?);
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        let digest = h.finalize().to_vec();
        let after = Stat::of(&f.metadata()?);
        if before == opened && opened == after && settled(after.ctime, SystemTime::now()) {
            if let Ok(mut u) = self.used.lock() {
                u.0.insert(
                    key,
                    Entry {
                        stat: after,
                        sha256: hex(&digest),
                    },
                );
                u.1 = true;
            }
        }
        Ok(digest)
    }

    /// Write the file back if this build added entries: this build's
    /// entries, and as many older ones as fit.
    pub fn save(&self) {
        let Ok(used) = self.used.lock() else { return };
        if !used.1 {
            return;
        }
        let mut entries = used.0.clone();
        for (k, v) in &self.old {
            if entries.len() >= MAX_ENTRIES {
                break;
            }
            entries.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let file = CacheFile {
            version: VERSION,
            entries,
        };
        let Ok(bytes) = serde_json::to_vec(&file) else {
            return;
        };
        if let Some(dir) = self.path.parent() {
            let _ = fs::create_dir_all(dir);
        }
        // A cache: not synced (a file lost or torn in a crash reads as
        // empty or corrupt, which is an empty cache).
        let tmp = kiln_fs::atomic::temp_path(self.path.parent().unwrap_or(Path::new(".")));
        if fs::write(&tmp, bytes).is_ok() && fs::rename(&tmp, &self.path).is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }
}

/// `bytes` in lowercase hex, whole.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..32)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// Whether a file last changed at `ctime` (seconds, nanoseconds) is no
/// longer racy at `now`: a write from now on gets a later change time. The
/// kernel stamps files from its coarse clock, which moves on every tick
/// (10 ms at most: HZ >= 100); a file system with sub-second times shows
/// them (a change time of exactly a whole second is taken for one that
/// keeps whole seconds only, and gets git's margin: the next seconds).
fn settled(ctime: (i64, i64), now: SystemTime) -> bool {
    let (Ok(secs), Ok(nanos)) = (u64::try_from(ctime.0), u32::try_from(ctime.1)) else {
        return false;
    };
    let margin = if nanos != 0 {
        std::time::Duration::from_millis(100)
    } else {
        std::time::Duration::from_secs(3)
    };
    let changed = UNIX_EPOCH + std::time::Duration::new(secs, nanos.min(999_999_999));
    now.duration_since(changed).is_ok_and(|d| d > margin)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sha(data: &[u8]) -> Vec<u8> {
        Sha256::digest(data).to_vec()
    }

    #[test]
    fn racy_changes_are_those_within_a_tick_or_a_whole_second() {
        let at = |s: u64, n: u32| UNIX_EPOCH + std::time::Duration::new(s, n);
        // Sub-second times: 100 ms.
        assert!(!settled((1000, 5), at(1000, 50_000_000)));
        assert!(settled((1000, 5), at(1000, 200_000_000)));
        // Whole seconds only: three seconds.
        assert!(!settled((1000, 0), at(1002, 0)));
        assert!(settled((1000, 0), at(1003, 1)));
        // The future, or nonsense, is never settled.
        assert!(!settled((2000, 1), at(1000, 0)));
        assert!(!settled((-1, 0), at(1000, 0)));
    }

    #[test]
    fn remembers_old_files_and_sees_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache_path = dir.path().join("cache/hashes.json");
        let f = dir.path().join("f");
        fs::write(&f, b"one").unwrap();
        // An old file (change time well in the past is what makes it
        // cacheable; set the clock check aside by waiting is too slow, so
        // check the racy rule first: a fresh file is not recorded).
        let c = HashCache::open(cache_path.clone());
        assert_eq!(c.sha256(&f).unwrap(), sha(b"one"));
        c.save();
        assert!(!cache_path.exists(), "a file changed just now is racy");
        // An entry for the file as it is now, as an earlier build left it.
        let stat = Stat::of(&fs::metadata(&f).unwrap());
        let mut entries = BTreeMap::new();
        entries.insert(
            f.to_string_lossy().into_owned(),
            Entry {
                stat,
                sha256: hex(&sha(b"cached")),
            },
        );
        fs::create_dir_all(cache_path.parent().unwrap()).unwrap();
        fs::write(
            &cache_path,
            serde_json::to_vec(&CacheFile {
                version: VERSION,
                entries,
            })
            .unwrap(),
        )
        .unwrap();
        let c = HashCache::open(cache_path.clone());
        // Unchanged stat: the cached hash (not the content's, proving it
        // was not read).
        assert_eq!(c.sha256(&f).unwrap(), sha(b"cached"));
        // Same size, new content: the change time moved, so it is read.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(&f, b"two").unwrap();
        assert_eq!(c.sha256(&f).unwrap(), sha(b"two"));
        // A file with sub-second times, changed more than a tick or two
        // ago, is remembered.
        std::thread::sleep(std::time::Duration::from_millis(150));
        let c = HashCache::open(cache_path.clone());
        assert_eq!(c.sha256(&f).unwrap(), sha(b"two"));
        c.save();
        let saved = fs::read_to_string(&cache_path).unwrap();
        assert!(saved.contains(&hex(&sha(b"two"))), "{saved}");
        // A corrupt cache file is an empty cache.
        fs::write(&cache_path, b"{not json").unwrap();
        let c = HashCache::open(cache_path);
        assert_eq!(c.sha256(&f).unwrap(), sha(b"two"));
    }
}
