//! The address book: which container holds which address of the subnet.
//!
//! `<state_dir>/ipam.json`, read and rewritten only under an exclusive
//! `flock(2)` on `<state_dir>/ipam.lock` (so concurrent `kiln run`s never
//! hand out one address twice), replaced by rename so that a kill at any
//! instant leaves either the old or the new book.
//!
//! No fsync: the book records the boot it belongs to
//! (`/proc/sys/kernel/random/boot_id`), and a book of an earlier boot is
//! discarded, because a reboot ends every container and every network
//! namespace with it. What fsync would protect (the book across a power
//! loss) is thrown away after one anyway, and it cost ~9 ms per container
//! start and again per removal on this machine. For the same reason an
//! empty file (what a power loss can leave of a renamed file) reads as an
//! empty book.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};

use super::{prefix_mask, NetworkConfig, NetworkError};

const BOOK: &str = "ipam.json";
const LOCK: &str = "ipam.lock";

/// One container's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Entry {
    pub(super) ip: Ipv4Addr,
    pub(super) veth: String,
    /// The process that attached it (a monitor, a build step) and its
    /// start time: the entry is stale once that process is gone, whichever
    /// store it ran for (0: not recorded, by an older kiln).
    #[serde(default)]
    pub(super) owner: u32,
    #[serde(default)]
    pub(super) owner_start: u64,
}

impl Entry {
    /// Whether the recorded owner still runs (`None`: none recorded).
    pub(super) fn owner_alive(&self) -> Option<bool> {
        (self.owner != 0)
            .then(|| kiln_fs::process::start_time(self.owner) == Some(self.owner_start))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Book {
    version: u32,
    /// The boot the entries belong to.
    #[serde(default)]
    boot_id: String,
    containers: BTreeMap<String, Entry>,
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The book, locked for as long as this value lives.
struct Locked {
    _lock: File,
    path: PathBuf,
    book: Book,
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> NetworkError {
    let path = path.to_owned();
    move |source| NetworkError::Io {
        action,
        path,
        source,
    }
}

/// Takes an exclusive `flock(2)` on `<state_dir>/<name>` (created when
/// missing), held until the returned file is dropped.
pub(super) fn lock_file(cfg: &NetworkConfig, name: &str) -> Result<File, NetworkError> {
    let dir = &cfg.state_dir;
    std::fs::create_dir_all(dir).map_err(io_err("create the network state directory", dir))?;
    let lock_path = dir.join(name);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err("open", &lock_path))?;
    flock(&lock, FlockOperation::LockExclusive)
        .map_err(|e| io_err("lock", &lock_path)(e.into()))?;
    Ok(lock)
}

fn lock(cfg: &NetworkConfig) -> Result<Locked, NetworkError> {
    let lock = lock_file(cfg, LOCK)?;
    let path = cfg.state_dir.join(BOOK);
    let boot = boot_id();
    let fresh = || Book {
        version: 1,
        boot_id: boot.clone(),
        containers: BTreeMap::new(),
    };
    let book = match std::fs::read(&path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => fresh(),
        Ok(bytes) => {
            let book: Book =
                serde_json::from_slice(&bytes).map_err(|source| NetworkError::IpamState {
                    path: path.clone(),
                    source,
                })?;
            if book.boot_id == boot {
                book
            } else {
                fresh()
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fresh(),
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    Ok(Locked {
        _lock: lock,
        path,
        book,
    })
}

impl Locked {
    fn save(&self) -> Result<(), NetworkError> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes =
            serde_json::to_vec_pretty(&self.book).map_err(|source| NetworkError::IpamState {
                path: self.path.clone(),
                source,
            })?;
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(&bytes).map_err(io_err("write", &tmp))?;
        drop(f);
        std::fs::rename(&tmp, &self.path).map_err(io_err("replace", &self.path))
    }
}

/// The address of `container_id`: the one it already has, or the lowest
/// free host address of the subnet other than the gateway.
pub(super) fn allocate(
    cfg: &NetworkConfig,
    container_id: &str,
    veth: &str,
) -> Result<Ipv4Addr, NetworkError> {
    let (net, prefix) = cfg.subnet;
    let mask = prefix_mask(prefix);
    let network = u32::from(net) & mask;
    let broadcast = network | !mask;
    let in_subnet = |ip: Ipv4Addr| u32::from(ip) & mask == network;

    let owner = std::process::id();
    let owner_start = kiln_fs::process::start_time(owner).unwrap_or(0);
    let mut locked = lock(cfg)?;
    if let Some(entry) = locked.book.containers.get_mut(container_id) {
        if in_subnet(entry.ip) {
            // (A new start of the container: this process owns it now.)
            let ip = entry.ip;
            if (entry.owner, entry.owner_start) != (owner, owner_start) {
                entry.owner = owner;
                entry.owner_start = owner_start;
                locked.save()?;
            }
            return Ok(ip);
        }
    }
    let used: BTreeSet<u32> = locked
        .book
        .containers
        .values()
        .map(|e| u32::from(e.ip))
        .collect();
    // network + 1 is the gateway; the broadcast address is excluded.
    let free = (network + 2..broadcast).find(|a| !used.contains(a));
    let Some(addr) = free else {
        return Err(NetworkError::IpamExhausted {
            subnet: cfg.subnet_string(),
            bridge: cfg.bridge.clone(),
        });
    };
    let ip = Ipv4Addr::from(addr);
    locked.book.containers.insert(
        container_id.to_owned(),
        Entry {
            ip,
            veth: veth.to_owned(),
            owner,
            owner_start,
        },
    );
    locked.save()?;
    Ok(ip)
}

/// Frees the address of `container_id`; its entry, if it had one.
pub(super) fn release(
    cfg: &NetworkConfig,
    container_id: &str,
) -> Result<Option<Entry>, NetworkError> {
    let mut locked = lock(cfg)?;
    let old = locked.book.containers.remove(container_id);
    if old.is_some() {
        locked.save()?;
    }
    Ok(old)
}

/// Every entry, by container id.
pub(super) fn entries(cfg: &NetworkConfig) -> Result<BTreeMap<String, Entry>, NetworkError> {
    Ok(lock(cfg)?.book.containers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, prefix: u8) -> NetworkConfig {
        NetworkConfig {
            bridge: "kt0".into(),
            subnet: (Ipv4Addr::new(10, 77, 0, 0), prefix),
            state_dir: dir.join("network"),
        }
    }

    #[test]
    fn allocates_lowest_free_and_skips_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), 24);
        assert_eq!(
            allocate(&c, "a", "kva").unwrap(),
            Ipv4Addr::new(10, 77, 0, 2)
        );
        assert_eq!(
            allocate(&c, "b", "kvb").unwrap(),
            Ipv4Addr::new(10, 77, 0, 3)
        );
        // Idempotent per container.
        assert_eq!(
            allocate(&c, "a", "kva").unwrap(),
            Ipv4Addr::new(10, 77, 0, 2)
        );
        let e = entries(&c).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e["b"].veth, "kvb");
    }

    #[test]
    fn reuses_freed_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), 24);
        for id in ["a", "b", "c"] {
            allocate(&c, id, id).unwrap();
        }
        let freed = release(&c, "b").unwrap().unwrap();
        assert_eq!(freed.ip, Ipv4Addr::new(10, 77, 0, 3));
        assert!(release(&c, "b").unwrap().is_none());
        assert_eq!(allocate(&c, "d", "d").unwrap(), Ipv4Addr::new(10, 77, 0, 3));
        assert_eq!(allocate(&c, "e", "e").unwrap(), Ipv4Addr::new(10, 77, 0, 5));
    }

    #[test]
    fn exhaustion_is_an_error_and_never_gives_reserved_addresses() {
        let dir = tempfile::tempdir().unwrap();
        // /29: .0 network, .1 gateway, .7 broadcast, .2-.6 usable.
        let c = cfg(dir.path(), 29);
        let mut got = Vec::new();
        for i in 0..5 {
            got.push(allocate(&c, &format!("c{i}"), "v").unwrap());
        }
        assert_eq!(
            got,
            (2..=6)
                .map(|d| Ipv4Addr::new(10, 77, 0, d))
                .collect::<Vec<_>>()
        );
        let err = allocate(&c, "c5", "v").unwrap_err();
        assert!(matches!(err, NetworkError::IpamExhausted { .. }), "{err}");
        assert!(err.to_string().contains("10.77.0.0/29"), "{err}");
        release(&c, "c3").unwrap();
        assert_eq!(
            allocate(&c, "c5", "v").unwrap(),
            Ipv4Addr::new(10, 77, 0, 5)
        );
    }

    #[test]
    fn concurrent_allocations_are_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), 24);
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let c = c.clone();
                std::thread::spawn(move || allocate(&c, &format!("t{i}"), "v").unwrap())
            })
            .collect();
        let ips: BTreeSet<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(ips.len(), 8);
    }

    #[test]
    fn a_book_of_an_earlier_boot_or_empty_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), 24);
        allocate(&c, "a", "v").unwrap();
        let path = c.state_dir.join(BOOK);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(&boot_id()), "{text}");
        std::fs::write(&path, text.replace(&boot_id(), "an-earlier-boot")).unwrap();
        assert!(entries(&c).unwrap().is_empty());
        assert_eq!(allocate(&c, "b", "v").unwrap(), Ipv4Addr::new(10, 77, 0, 2));
        std::fs::write(&path, b"").unwrap();
        assert!(entries(&c).unwrap().is_empty());
    }

    #[test]
    fn a_corrupt_book_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = cfg(dir.path(), 24);
        std::fs::create_dir_all(&c.state_dir).unwrap();
        std::fs::write(c.state_dir.join(BOOK), b"{not json").unwrap();
        let err = allocate(&c, "a", "v").unwrap_err();
        assert!(err.to_string().contains("ipam.json"), "{err}");
    }
}
