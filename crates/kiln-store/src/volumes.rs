//! Volumes: directories under `volumes/<name>/_data` that outlive the
//! containers mounting them, with a record in the `volumes` table (name,
//! driver `local`, creation time, labels, options, anonymous flag).
//!
//! Names follow Docker's rule for local volumes,
//! `[a-zA-Z0-9][a-zA-Z0-9_.-]+`; anonymous volumes are named by 64 hex
//! digits (chosen by the caller) and carry Docker's
//! `com.docker.volume.anonymous` label. Which containers use a volume is
//! not recorded here: it is read from the container records (their
//! `host_config.mounts`, entries of kind `volume`), in the same
//! transaction as a removal, so that a volume in use is never removed —
//! even with `volume rm -f`, as in Docker.
//!
//! A container record naming a volume that does not exist is refused
//! (see [`Store::create_container`]), so a `volume prune` racing a `run`
//! makes that `run` fail instead of leaving a container without its
//! volume.
//!
//! A removal takes the record away and renames the directory to
//! `volumes/.trash-<name>` in the transaction, then deletes it; a leftover
//! trash directory (a killed removal) or a directory without a record (a
//! killed creation) is removed the next time the name is created, so a new
//! volume never sees an old one's files.
//!
//! It does not mount anything and does not copy image content into a
//! volume: the runtime does that when a container starts.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::meta::{Txn, CONTAINERS, VOLUMES};
use crate::store::io_err;
use crate::{Error, Store};

/// The label Docker (≥ 23) puts on anonymous volumes; `volume prune`
/// without `--all` removes only volumes that have it.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// Option keys Docker's `local` driver accepts (`-o type=… -o device=…`).
const LOCAL_OPTIONS: [&str; 4] = ["type", "device", "o", "size"];

/// Everything kiln knows of a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeRecord {
    /// Its name (64 hex digits for an anonymous volume).
    pub name: String,
    /// Always `local`.
    pub driver: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// `--label` pairs.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `-o/--opt` pairs given to the driver.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Made for a container (`-v /path`, an image `VOLUME`), not by name.
    #[serde(default)]
    pub anonymous: bool,
}

/// Why a volume lookup or change failed.
#[derive(Debug, Error)]
pub enum VolumeError {
    /// Nothing by that name.
    #[error("get {0}: no such volume")]
    NoSuch(String),
    /// A name Docker would not accept (Docker's wording).
    #[error("create {0}: \"{0}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path")]
    BadName(String),
    /// An option the local driver does not know.
    #[error("create {name}: invalid option key: {key:?}")]
    BadOption {
        /// The volume.
        name: String,
        /// The key.
        key: String,
    },
    /// Removing a volume containers use (Docker's wording).
    #[error("remove {name}: volume is in use - [{}]", .containers.join(", "))]
    InUse {
        /// The volume.
        name: String,
        /// The ids of the containers that use it.
        containers: Vec<String>,
    },
}

/// The part of a container record that names its volumes.
#[derive(Debug, Default, Deserialize)]
struct HostMounts {
    #[serde(default)]
    mounts: Vec<MountRef>,
}

#[derive(Debug, Deserialize)]
struct MountRef {
    kind: String,
    #[serde(default)]
    name: Option<String>,
}

/// The volume names a container's `host_config` mounts.
pub fn volumes_of(host_config: &serde_json::Value) -> Vec<String> {
    let m: HostMounts = serde_json::from_value(host_config.clone()).unwrap_or_default();
    m.mounts
        .into_iter()
        .filter(|m| m.kind == "volume")
        .filter_map(|m| m.name)
        .collect()
}

/// Docker's rule for local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    crate::containers::valid_name(name)
}

/// Container ids using each volume, from the container records.
fn users(t: &Txn) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let all: Vec<(String, serde_json::Value)> = t.all(CONTAINERS)?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, c) in all {
        let names: BTreeSet<String> = c
            .get("host_config")
            .map(volumes_of)
            .unwrap_or_default()
            .into_iter()
            .collect();
        for n in names {
            out.entry(n).or_default().push(id.clone());
        }
    }
    Ok(out)
}

/// Bytes of the files under `dir` (links not followed).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for e in entries.flatten() {
        let Ok(md) = e.metadata() else { continue };
        if md.is_dir() {
            total += dir_size(&e.path());
        } else if md.is_file() {
            total += md.size();
        }
    }
    total
}

impl Store {
    /// `volumes/`.
    fn volumes_dir(&self) -> PathBuf {
        self.root().join("volumes")
    }

    /// `volumes/<name>/_data`: what containers mount.
    pub fn volume_data(&self, name: &str) -> PathBuf {
        self.volumes_dir().join(name).join("_data")
    }

    /// Create the volume `name` (its directory, mode 0700 above a 0755
    /// `_data`, and its record). An existing volume of that name is
    /// returned as it is (Docker's `volume create` of an existing name
    /// succeeds). Returns the record and whether it was created now.
    pub fn create_volume(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(VolumeRecord, bool), Error> {
        if !valid_name(name) {
            return Err(VolumeError::BadName(name.into()).into());
        }
        if let Some(key) = options
            .keys()
            .find(|k| !LOCAL_OPTIONS.contains(&k.as_str()))
        {
            return Err(VolumeError::BadOption {
                name: name.into(),
                key: key.clone(),
            }
            .into());
        }
        if let Some(v) = self
            .meta
            .read(|t| Ok::<_, Error>(t.get::<VolumeRecord>(VOLUMES, name)?))?
        {
            return Ok((v, false));
        }
        let mut labels = labels;
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.into(), String::new());
        }
        let record = VolumeRecord {
            name: name.into(),
            driver: "local".into(),
            // Whole seconds, as Docker shows `CreatedAt`.
            created: kiln_oci::time::format_rfc3339(
                std::time::UNIX_EPOCH + std::time::Duration::from_secs(crate::lease::now()),
            ),
            labels,
            options,
            anonymous,
        };
        let dir = self.volumes_dir().join(name);
        let data = dir.join("_data");
        self.meta.write(|t| {
            if let Some(v) = t.get::<VolumeRecord>(VOLUMES, name)? {
                return Ok((v, false));
            }
            // A directory without a record is what a killed creation or
            // removal left: never hand its files to a new volume.
            for stale in [
                dir.clone(),
                self.volumes_dir().join(format!(".trash-{name}")),
            ] {
                match fs::remove_dir_all(&stale) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove", &stale)(e)),
                }
            }
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(io_err("create", &dir))?;
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&data)
                .map_err(io_err("create", &data))?;
            t.put(VOLUMES, name, &record)?;
            Ok::<_, Error>((record.clone(), true))
        })
    }

    /// The volume `name`.
    pub fn volume(&self, name: &str) -> Result<VolumeRecord, Error> {
        self.meta
            .read(|t| Ok::<_, Error>(t.get::<VolumeRecord>(VOLUMES, name)?))?
            .ok_or_else(|| VolumeError::NoSuch(name.into()).into())
    }

    /// Every volume, by name, with the ids of the containers using it.
    pub fn volumes(&self) -> Result<Vec<(VolumeRecord, Vec<String>)>, Error> {
        self.meta.read(|t| {
            let all: Vec<(String, VolumeRecord)> = t.all(VOLUMES)?;
            let mut users = users(t)?;
            Ok(all
                .into_iter()
                .map(|(n, v)| (v, users.remove(&n).unwrap_or_default()))
                .collect())
        })
    }

    /// Remove the volume `name` and its files; refused while a container
    /// (running or not) uses it.
    pub fn remove_volume(&self, name: &str) -> Result<(), Error> {
        self.remove_volumes_where(|v, _| v.name == name, true)
            .and_then(|removed| {
                if removed.is_empty() {
                    Err(VolumeError::NoSuch(name.into()).into())
                } else {
                    Ok(())
                }
            })
    }

    /// Remove the volumes `keep` selects (given the record and its users)
    /// that no container uses; with `strict`, a selected volume in use is
    /// an error ([`VolumeError::InUse`]) and nothing is removed. Returns
    /// the removed volumes' names with the bytes they held.
    pub fn remove_volumes_where(
        &self,
        select: impl Fn(&VolumeRecord, &[String]) -> bool,
        strict: bool,
    ) -> Result<Vec<(String, u64)>, Error> {
        let trash = self.meta.write(|t| {
            let all: Vec<(String, VolumeRecord)> = t.all(VOLUMES)?;
            let users = users(t)?;
            let mut moved = Vec::new();
            for (name, v) in all {
                let used = users.get(&name).cloned().unwrap_or_default();
                if !select(&v, &used) {
                    continue;
                }
                if !used.is_empty() {
                    if strict {
                        return Err(VolumeError::InUse {
                            name,
                            containers: used,
                        }
                        .into());
                    }
                    continue;
                }
                let dir = self.volumes_dir().join(&name);
                let to = self.volumes_dir().join(format!(".trash-{name}"));
                let size = dir_size(&dir.join("_data"));
                match fs::rename(&dir, &to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove", &dir)(e)),
                }
                t.remove(VOLUMES, &name)?;
                moved.push((name, to, size));
            }
            Ok::<_, Error>(moved)
        })?;
        let mut out = Vec::new();
        for (name, to, size) in trash {
            match fs::remove_dir_all(&to) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &to)(e)),
            }
            out.push((name, size));
        }
        Ok(out)
    }

    /// Remove the anonymous volumes among `names` that no container uses
    /// any more (`rm -v`, `run --rm`): named volumes stay.
    pub fn remove_anonymous_volumes(&self, names: &[String]) -> Result<Vec<String>, Error> {
        if names.is_empty() {
            return Ok(Vec::new()); // no transaction (and its syncs) for nothing
        }
        let removed =
            self.remove_volumes_where(|v, _| v.anonymous && names.contains(&v.name), false)?;
        Ok(removed.into_iter().map(|(n, _)| n).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::tests::record;

    #[test]
    fn volumes_are_created_listed_and_removed_unless_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (v, new) = store
            .create_volume("data", BTreeMap::new(), BTreeMap::new(), false)
            .unwrap();
        assert!(new && v.driver == "local" && !v.anonymous);
        assert!(store.volume_data("data").is_dir());
        fs::write(store.volume_data("data").join("f"), "x").unwrap();
        let (_, new) = store
            .create_volume("data", BTreeMap::new(), BTreeMap::new(), false)
            .unwrap();
        assert!(!new);
        assert!(store.volume_data("data").join("f").exists());
        for bad in ["-x", "a", "a/b", "..", "a b"] {
            let e = store
                .create_volume(bad, BTreeMap::new(), BTreeMap::new(), false)
                .unwrap_err();
            assert!(e.to_string().contains("invalid characters"), "{e}");
        }
        let opts = BTreeMap::from([("bogus".to_string(), "1".to_string())]);
        assert!(store
            .create_volume("v2", BTreeMap::new(), opts, false)
            .is_err());
        assert!(!dir.path().join("volumes/v2").exists());

        // A container naming a volume that is not there is refused.
        let mut c = record("ac", "db");
        c.host_config = serde_json::json!({"mounts": [{"kind": "volume", "name": "gone"}]});
        assert!(store.create_container(&c).is_err());
        let mut c = record("ab", "web");
        c.host_config = serde_json::json!({"mounts": [{"kind": "volume", "name": "data"}]});
        store.create_container(&c).unwrap();
        assert_eq!(store.volumes().unwrap()[0].1, vec![c.id.clone()]);
        let e = store.remove_volume("data").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("remove data: volume is in use - [{}]", c.id)
        );
        assert!(store.volume_data("data").join("f").exists());
        store.remove_container(&c.id).unwrap();
        store.remove_volume("data").unwrap();
        assert!(!dir.path().join("volumes/data").exists());
        assert!(store.volume("data").is_err());
        assert!(store.remove_volume("data").is_err());
    }

    #[test]
    fn only_unused_anonymous_volumes_go_with_their_container() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let anon = "f".repeat(64);
        store
            .create_volume(&anon, BTreeMap::new(), BTreeMap::new(), true)
            .unwrap();
        store
            .create_volume("named", BTreeMap::new(), BTreeMap::new(), false)
            .unwrap();
        assert!(store
            .volume(&anon)
            .unwrap()
            .labels
            .contains_key(ANONYMOUS_LABEL));
        let names = vec![anon.clone(), "named".to_string()];
        assert_eq!(store.remove_anonymous_volumes(&names).unwrap(), vec![anon]);
        assert!(store.volume("named").is_ok());
    }
}
