//! Container records in the metadata database (`containers` table).
//!
//! The runtime owns what a container *is*; the store owns where its record
//! lives and the rules every command relies on: names are unique, ids are
//! 64 hex digits and may be given by unique prefix, and a container keeps
//! its image (the record's `image` key is what `rmi` and the collector read,
//! `snapshots` and `config_digest` keep its layers and config alive even
//! if the image record were gone). The per-container directory
//! (`containers/<id>/`) is created and removed here too, so that a record
//! and its directory come and go together.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use kiln_oci::Digest;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::meta::{CONTAINERS, VOLUMES};
use crate::store::io_err;
use crate::{Error, Store};

/// A container's life-cycle state, as Docker names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Its process runs (or ran, until someone looks: see
    /// [`ContainerRecord::refresh`]).
    Running,
    /// Its process ended.
    Exited,
    /// Being removed.
    Removing,
}

impl ContainerState {
    /// Docker's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Exited => "exited",
            ContainerState::Removing => "removing",
        }
    }
}

/// Everything kiln knows of a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 lowercase hex digits.
    pub id: String,
    /// Its unique name (without Docker's leading `/`).
    pub name: String,
    /// The image's manifest digest (the key `rmi` honours).
    pub image: String,
    /// What the user called the image (`busybox`, an id).
    pub image_name: String,
    /// The image id (config digest).
    pub config_digest: Digest,
    /// The image's snapshots (chain ids), bottom first: the overlay lowers.
    pub snapshots: Vec<Digest>,
    /// The merged container configuration (image config plus run options),
    /// as `inspect` shows it under `Config`.
    pub config: serde_json::Value,
    /// Runtime options that are not image configuration (`HostConfig`).
    pub host_config: serde_json::Value,
    /// The process's path and arguments.
    pub path: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// RFC 3339 creation time.
    pub created: String,
    /// Current state.
    pub state: ContainerState,
    /// The container's init process on the host, while it runs.
    #[serde(default)]
    pub pid: u32,
    /// That process's start time (`/proc/PID/stat` field 22), so a
    /// recycled pid is never mistaken for it.
    #[serde(default)]
    pub pid_start_time: u64,
    /// The monitor's pid and start time.
    #[serde(default)]
    pub monitor_pid: u32,
    /// The monitor's start time.
    #[serde(default)]
    pub monitor_start_time: u64,
    /// The exit status (128 + signal for a killed process).
    #[serde(default)]
    pub exit_code: i32,
    /// Why the start failed, if it did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// RFC 3339 start time of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// RFC 3339 end time of the last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Whether `stop`/`kill` asked it to end (Docker does not restart those).
    #[serde(default)]
    pub stopped_by_user: bool,
    /// The runtime's record of its network (address, published ports) for
    /// the current or last run; `null` before it ran.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub network: serde_json::Value,
}

impl ContainerRecord {
    /// The first 12 hex digits, as Docker shows ids.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    /// Whether the recorded process is still the one that runs.
    pub fn process_alive(&self) -> bool {
        self.pid != 0 && running_start_time(self.pid) == Some(self.pid_start_time)
    }

    /// Whether the recorded monitor still runs.
    pub fn monitor_alive(&self) -> bool {
        self.monitor_pid != 0
            && running_start_time(self.monitor_pid) == Some(self.monitor_start_time)
    }

    /// Correct a record whose processes died without saying so (the
    /// monitor was SIGKILLed, the machine rebooted): a running container
    /// whose process and monitor are gone has exited. Returns whether the
    /// record changed.
    pub fn refresh(&mut self) -> bool {
        if self.state == ContainerState::Running && !self.process_alive() && !self.monitor_alive() {
            self.state = ContainerState::Exited;
            self.pid = 0;
            if self.exit_code == 0 {
                // Docker reports a container whose status was never
                // collected as killed.
                self.exit_code = 137;
            }
            self.finished_at = Some(kiln_oci::time::format_rfc3339(std::time::SystemTime::now()));
            return true;
        }
        false
    }
}

/// The start time of a process that runs (a zombie does not: once its
/// monitor is gone, a container's dead init may stay unreaped).
fn running_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X" | "x")) {
        return None;
    }
    crate::lease::process_start_time(pid)
}

/// Why a container lookup or change failed.
#[derive(Debug, Error)]
pub enum ContainerError {
    /// Nothing by that name or id.
    #[error("No such container: {0}")]
    NoSuch(String),
    /// A prefix matching several containers.
    #[error("multiple containers match {0:?}")]
    Ambiguous(String),
    /// The name is taken.
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse {
        /// The name.
        name: String,
        /// Who has it.
        id: String,
    },
    /// A name Docker would not accept.
    #[error("Invalid container name ({0}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
}

impl Store {
    /// `containers/<id>/`, the container's directory.
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root().join("containers").join(id)
    }

    /// `cache/seccomp/`: seccomp filters compiled for this host, which
    /// containers and RUN steps load (kiln-runtime's `bpf`).
    pub fn seccomp_cache(root: &std::path::Path) -> PathBuf {
        root.join("cache").join("seccomp")
    }

    /// Record a new container and create its directory (mode 0700). Fails
    /// if the name is taken or invalid, or if a volume it mounts does not
    /// exist.
    pub fn create_container(&self, record: &ContainerRecord) -> Result<PathBuf, Error> {
        if !valid_name(&record.name) {
            return Err(ContainerError::BadName(record.name.clone()).into());
        }
        let dir = self.container_dir(&record.id);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_err("create", &dir))?;
        let r = self.meta.write(|t| {
            let all: Vec<(String, ContainerRecord)> = t.all(CONTAINERS)?;
            if let Some((id, _)) = all.iter().find(|(_, c)| c.name == record.name) {
                return Err(ContainerError::NameInUse {
                    name: record.name.clone(),
                    id: id.clone(),
                }
                .into());
            }
            // Its volumes exist (a concurrent `volume prune` may have taken
            // a new anonymous one): no record names a missing volume.
            for v in crate::volumes::volumes_of(&record.host_config) {
                if t.get::<serde_json::Value>(VOLUMES, &v)?.is_none() {
                    return Err(crate::volumes::VolumeError::NoSuch(v).into());
                }
            }
            t.put(CONTAINERS, &record.id, record)?;
            Ok::<_, Error>(())
        });
        if r.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        r.map(|()| dir)
    }

    /// Every container, newest first, with stale running states corrected
    /// (and saved).
    pub fn containers(&self) -> Result<Vec<ContainerRecord>, Error> {
        let mut all: Vec<ContainerRecord> = self.meta.read(|t| {
            Ok::<_, Error>(
                t.all::<ContainerRecord>(CONTAINERS)?
                    .into_iter()
                    .map(|(_, c)| c)
                    .collect(),
            )
        })?;
        let stale: Vec<String> = all
            .iter_mut()
            .filter_map(|c| c.clone().refresh().then(|| c.id.clone()))
            .collect();
        for id in &stale {
            if let Some(c) = self.update_container(id, |c| {
                c.refresh();
            })? {
                if let Some(slot) = all.iter_mut().find(|x| x.id == *id) {
                    *slot = c;
                }
            }
        }
        all.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(all)
    }

    /// The container a name, full id or unique id prefix designates (as
    /// Docker: an exact id, then an exact name, then an id prefix).
    pub fn container(&self, input: &str) -> Result<ContainerRecord, Error> {
        let all = self.containers()?;
        let input = input.strip_prefix('/').unwrap_or(input);
        if let Some(c) = all.iter().find(|c| c.id == input || c.name == input) {
            return Ok(c.clone());
        }
        let hex = !input.is_empty() && input.bytes().all(|b| b.is_ascii_hexdigit());
        let matches: Vec<&ContainerRecord> = if hex {
            all.iter().filter(|c| c.id.starts_with(input)).collect()
        } else {
            Vec::new()
        };
        match matches.len() {
            1 => Ok(matches[0].clone()),
            0 => Err(ContainerError::NoSuch(input.to_string()).into()),
            _ => Err(ContainerError::Ambiguous(input.to_string()).into()),
        }
    }

    /// Change a container's record in one transaction; `None` if it is gone.
    pub fn update_container(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Result<Option<ContainerRecord>, Error> {
        self.meta.write(|t| {
            let Some(mut c) = t.get::<ContainerRecord>(CONTAINERS, id)? else {
                return Ok(None);
            };
            f(&mut c);
            t.put(CONTAINERS, id, &c)?;
            Ok(Some(c))
        })
    }

    /// Remove a container's record and its directory. The caller has made
    /// sure nothing is mounted there any more.
    pub fn remove_container(&self, id: &str) -> Result<bool, Error> {
        let had = self
            .meta
            .write(|t| t.remove(CONTAINERS, id).map_err(Error::from))?;
        let dir = self.container_dir(id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &dir)(e)),
        }
        Ok(had)
    }
}

/// Docker's rule for container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_name(name: &str) -> bool {
    let mut b = name.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record(id: &str, name: &str) -> ContainerRecord {
        ContainerRecord {
            id: id.repeat(64 / id.len()),
            name: name.into(),
            image: format!("sha256:{}", "1".repeat(64)),
            image_name: "img".into(),
            config_digest: format!("sha256:{}", "2".repeat(64)).parse().unwrap(),
            snapshots: Vec::new(),
            config: serde_json::json!({}),
            host_config: serde_json::json!({}),
            path: "sh".into(),
            args: Vec::new(),
            created: "2026-01-01T00:00:00Z".into(),
            state: ContainerState::Running,
            pid: u32::MAX,
            pid_start_time: 1,
            monitor_pid: 0,
            monitor_start_time: 0,
            exit_code: 0,
            error: String::new(),
            started_at: None,
            finished_at: None,
            stopped_by_user: false,
            network: serde_json::Value::Null,
        }
    }

    #[test]
    fn names_are_unique_and_lookups_follow_docker() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_container(&record("ab", "web")).unwrap();
        store.create_container(&record("ac", "db")).unwrap();
        let err = store.create_container(&record("ad", "web")).unwrap_err();
        assert!(err.to_string().contains("already in use"), "{err}");
        assert!(!store.container_dir(&"ad".repeat(32)).exists());
        assert!(store.create_container(&record("ae", "-x")).is_err());
        assert_eq!(store.container("web").unwrap().name, "web");
        assert_eq!(store.container("abab").unwrap().name, "web");
        assert!(matches!(
            store.container("a"),
            Err(Error::Container(ContainerError::Ambiguous(_)))
        ));
        assert!(store.container("nope").is_err());
        // The raw record keeps the `image` key rmi reads.
        let raw: Vec<(String, serde_json::Value)> = store
            .meta
            .read(|t| t.all(CONTAINERS).map_err(Error::from))
            .unwrap();
        assert!(raw[0]
            .1
            .get("image")
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
    }

    #[test]
    fn a_dead_running_container_reads_as_exited() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_container(&record("ab", "web")).unwrap();
        let c = store.container("web").unwrap();
        assert_eq!(c.state, ContainerState::Exited);
        assert_eq!(c.exit_code, 137);
        assert!(store.remove_container(&c.id).unwrap());
        assert!(!store.container_dir(&c.id).exists());
    }
}
