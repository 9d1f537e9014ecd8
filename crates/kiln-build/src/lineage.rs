//! Which snapshot the last run of a copy step made, so the next run of the
//! same step (after a context file changed, or under `--no-cache`: a miss)
//! hard-links the files that did not change instead of copying them
//! ([`crate::copy::Plan::stage_reusing`]). A one-file change of a 100-file,
//! 20 MB COPY then writes one file, not 100.
//!
//! "The same step" is the step's instruction, kind, working directory and
//! parent key (for `--link`, no parent): what stays when only the content
//! of its sources changes. Its hint is a small JSON file in the store,
//! `cache/copy-lineage/<sha256 of that>`, naming the snapshot and, per
//! copied file, the content hash, mode, owner and mtime it was copied
//! with. It is only a hint: every file is checked again (the source's hash
//! against the recorded one, the old file's `lstat` against the item)
//! before it is linked, a missing snapshot or file is copied, and a
//! missing, unreadable or corrupt hint is no hint. Not synced, like the
//! context-hash cache: a hint lost in a crash costs one copy.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use kiln_oci::Digest;
use kiln_store::Store;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::copy::{FileSig, Reuse};

/// Version of the hint's format (1 recorded only a prefix of each hash).
const VERSION: u32 = 2;

#[derive(Debug, Serialize, Deserialize)]
struct Hint {
    version: u32,
    chain_id: String,
    files: BTreeMap<String, FileSig>,
}

/// The hint file of one copy step.
#[derive(Debug, Clone)]
pub struct Lineage {
    path: PathBuf,
}

impl Lineage {
    /// The hint of the step described by these, in the store at `root`.
    pub fn new(
        root: &Path,
        kind: &str,
        parent_key: Option<&str>,
        instruction: &str,
        workdir: &str,
    ) -> Lineage {
        let mut h = Sha256::new();
        for part in [kind, parent_key.unwrap_or(""), instruction, workdir] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let name = crate::hashes::hex(&h.finalize());
        Lineage {
            path: root.join("cache/copy-lineage").join(name),
        }
    }

    /// The snapshot the last run made, with its files, when the hint is
    /// readable and the snapshot is still in the store.
    pub fn load(&self, store: &Store) -> Option<Reuse> {
        let bytes = fs::read(&self.path).ok()?;
        let hint: Hint = serde_json::from_slice(&bytes).ok()?;
        if hint.version != VERSION {
            return None;
        }
        let chain: Digest = hint.chain_id.parse().ok()?;
        store.snapshot(&chain).ok()??;
        Some(Reuse {
            root: store.snapshot_path(&chain),
            files: hint.files,
        })
    }

    /// Record what this run made (best effort).
    pub fn save(&self, chain_id: &Digest, files: BTreeMap<String, FileSig>) {
        let hint = Hint {
            version: VERSION,
            chain_id: chain_id.to_string(),
            files,
        };
        let Ok(bytes) = serde_json::to_vec(&hint) else {
            return;
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let _ = fs::create_dir_all(dir);
        let tmp = kiln_fs::atomic::temp_path(dir);
        if fs::write(&tmp, bytes).is_err() || fs::rename(&tmp, &self.path).is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_depends_on_every_part() {
        let root = Path::new("/s");
        let a = Lineage::new(root, "copy", Some("k"), "COPY a b", "/");
        let same = Lineage::new(root, "copy", Some("k"), "COPY a b", "/");
        assert_eq!(a.path, same.path);
        for other in [
            Lineage::new(root, "add", Some("k"), "COPY a b", "/"),
            Lineage::new(root, "copy", None, "COPY a b", "/"),
            Lineage::new(root, "copy", Some("k2"), "COPY a b", "/"),
            Lineage::new(root, "copy", Some("k"), "COPY a c", "/"),
            Lineage::new(root, "copy", Some("k"), "COPY a b", "/app"),
            // Parts do not run into one another.
            Lineage::new(root, "cop", Some("yk"), "COPY a b", "/"),
        ] {
            assert_ne!(a.path, other.path);
        }
        assert!(a.path.starts_with("/s/cache/copy-lineage"));
    }
}
