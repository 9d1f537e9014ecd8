//! Container networking: the `kiln0` bridge, one veth per container, the
//! address book (IPAM), outbound NAT, published ports and the generated
//! `/etc/resolv.conf` and `/etc/hosts`.
//!
//! What it owns:
//!
//! - the host bridge (default `kiln0`, 10.209.0.0/16: neither Docker's
//!   172.17/16 nor Podman's 10.88/16), made through netlink
//!   ([`rtnetlink`], never by running `ip`), with the gateway address `.1`
//!   ([rtnetlink(7)](https://man7.org/linux/man-pages/man7/rtnetlink.7.html));
//! - `net.ipv4.ip_forward=1` and three iptables rules per bridge, each
//!   tagged with the comment `kiln bridge <name>` so that they can be found
//!   and removed: MASQUERADE of the subnet leaving by another interface, and
//!   FORWARD accepts for traffic from the bridge and for replies to it (a
//!   dockerd on the same machine sets the FORWARD policy to DROP). The host's
//!   `iptables` (iptables-nft on Debian 12) is run for them, as Docker does;
//!   every rule is checked with `-C` before it is inserted, under a lock, so
//!   it is never duplicated, and the check is skipped until the next reboot
//!   or the bridge is recreated (see [`ensure_bridge`]);
//! - the address book: `<state_dir>/ipam.json`, changed only under an
//!   exclusive `flock(2)` on `<state_dir>/ipam.lock`, replaced by rename,
//!   keyed by container id, valid for one boot (see `ipam.rs`). Never hands out the network, gateway or
//!   broadcast address; the lowest free address is given, so freed ones are
//!   reused. Each container's MAC is derived from its address (`02:6b:` and
//!   the four address bytes), so a reused address keeps the MAC neighbours
//!   have cached;
//! - per container, a veth pair: the host end `kv<12 hex>` (the short
//!   container id) on the bridge, the peer created directly inside the
//!   container's network namespace as `eth0`, with its address, `lo` up and
//!   a default route via the gateway (the caller's own namespace is refused);
//! - published ports: a user-space proxy ([`PortProxy`]) on host sockets,
//!   like Docker's `docker-proxy`, so that `127.0.0.1:PORT` works without
//!   `route_localnet` tricks.
//!
//! What it must not touch: container records, the OCI spec, mounts. The
//! runtime stores the [`Attachment`] it gets back and hands it to
//! [`detach`] when the container is removed.
//!
//! # Threads and namespaces
//!
//! Netlink inside the container's namespace is done with a netlink socket
//! created there: the calling thread `setns(2)`s into the namespace, opens
//! the socket and `setns(2)`s straight back; the socket stays bound to the
//! namespace it was created in. All netlink work runs on a tokio
//! *current-thread* runtime that is built and dropped inside each call, so
//! no thread is ever started by [`ensure_bridge`], [`attach`], [`detach`],
//! [`release_stale`] or [`remove_bridge`]. That matters because kiln's
//! per-container monitor calls them and must stay single threaded until it
//! has forked and exec'd the container (see DESIGN.md, "Process model").
//! [`PortProxy::start`] does start threads: call it only after the
//! container's process exists.
//!
//! # Use by the monitor
//!
//! `--network bridge` (the default), in this order:
//!
//! 1. before the container exists: `parse_publish` for each `-p`,
//!    `publish_all` of the image's `ExposedPorts` for `-P` (errors are
//!    usage errors, exit 125); `parse_add_host` with [`host_gateway`];
//! 2. create the container with a new network namespace and open it from
//!    the init's pid ([`open_netns`]); while still single threaded:
//!    [`ensure_bridge`], then [`attach`] (store the [`Attachment`] in the
//!    container record); write `/etc/hosts` ([`hosts_file`] with
//!    `attachment.ip`) and `/etc/resolv.conf` ([`resolv_conf`] of the
//!    contents of [`host_resolv_conf_path`]); close the namespace fd;
//! 3. start the process, then [`PortProxy::start`] with the mappings and
//!    `attachment.ip`; store [`PortProxy::bound`] in the record
//!    (`kiln port` prints each with its `Display`: `80/tcp -> 0.0.0.0:8080`,
//!    and `80/tcp -> [::]:8080` when the host has IPv6);
//!    a bind error fails the run like Docker's "port is already allocated";
//! 4. after the container exited and its status is recorded:
//!    [`PortProxy::stop`], then [`detach`]. Deleting a veth costs ~20 ms
//!    here (the kernel's teardown), but once the container's namespace is
//!    gone (its last process exited and no fd holds it) the kernel removes
//!    the pair itself (some 20 ms later, asynchronously) and [`detach`] then
//!    only frees the address (<1 ms): so do it after releasing the client of
//!    `kiln run`.
//!
//! `--network none`: [`loopback_up`] only. `--network host`: nothing here;
//! Docker then copies the host's `/etc/hosts` and `/etc/resolv.conf`
//! unchanged (plus `--add-host`, `--dns`). On `kiln` start-up (or
//! `system prune`), [`release_stale`] with "does this container exist in the
//! store" frees what a SIGKILLed monitor left: write the container's record
//! before [`attach`], so that a container being created counts as live.
//!
//! # Files
//!
//! [`resolv_conf`] and [`hosts_file`] produce the contents Docker would
//! write (see `files.rs` for the rules); [`parse_add_host`] reads
//! `--add-host`, [`parse_publish`] reads `-p`, [`publish_all`] implements
//! `-P`.

mod files;
mod firewall;
mod ipam;
mod netlink;
mod proxy;
mod publish;

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use files::{host_resolv_conf_path, hosts_file, parse_add_host, resolv_conf};
pub use proxy::PortProxy;
pub use publish::{parse_publish, publish_all, PortMapping, Proto};

/// The bridge kiln's containers are attached to by default.
pub const DEFAULT_BRIDGE: &str = "kiln0";
/// The default subnet: an unusual private /16, so that kiln's bridge does not
/// collide with Docker's (172.17.0.0/16) or Podman's (10.88.0.0/16).
pub const DEFAULT_SUBNET: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 209, 0, 0), 16);

/// Where and how containers are networked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Name of the Linux bridge (at most 15 bytes).
    pub bridge: String,
    /// Network address and prefix length of the bridge's subnet.
    pub subnet: (Ipv4Addr, u8),
    /// Directory holding the address book (`ipam.json`, `ipam.lock`). One
    /// per bridge: two store roots that share a bridge must share this
    /// directory too, or they hand out the same addresses (give a test's
    /// store root its own bridge name and subnet instead).
    pub state_dir: PathBuf,
}

impl NetworkConfig {
    /// kiln's default network for the store at `store_root`: bridge `kiln0`,
    /// subnet 10.209.0.0/16, state in `<store_root>/network`.
    pub fn for_store(store_root: &Path) -> Self {
        NetworkConfig {
            bridge: DEFAULT_BRIDGE.to_owned(),
            subnet: DEFAULT_SUBNET,
            state_dir: store_root.join("network"),
        }
    }

    /// [`NetworkConfig::for_store`], with the bridge, the subnet and the
    /// address book's directory replaced by `KILN_BRIDGE`, `KILN_SUBNET`
    /// (`a.b.c.d/len`) and `KILN_NETWORK_DIR` when they are set: a second
    /// store root (a test's, a CI job's) must not share `kiln0` with the
    /// default one without sharing its address book, so it gets its own
    /// bridge, or several stores share one bridge and one directory (the
    /// tests do). Every kiln command of one store must see the same values.
    pub fn from_env(store_root: &Path) -> Result<Self, NetworkError> {
        let mut cfg = Self::for_store(store_root);
        if let Some(d) = std::env::var_os("KILN_NETWORK_DIR") {
            cfg.state_dir = PathBuf::from(d);
        }
        if let Some(b) = std::env::var_os("KILN_BRIDGE") {
            cfg.bridge = b.to_string_lossy().into_owned();
        }
        if let Ok(s) = std::env::var("KILN_SUBNET") {
            let bad = |reason| NetworkError::InvalidSubnet {
                subnet: s.clone(),
                reason,
            };
            let (addr, len) = s
                .split_once('/')
                .ok_or_else(|| bad("expected a.b.c.d/len"))?;
            let addr: Ipv4Addr = addr.parse().map_err(|_| bad("not an IPv4 address"))?;
            let len: u8 = len.parse().map_err(|_| bad("not a prefix length"))?;
            cfg.subnet = (addr, len);
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The gateway (the bridge's own address): the first host address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.subnet.0) + 1)
    }

    /// Checks the bridge name and the subnet, so that bad configuration is
    /// refused before anything on the host changes.
    pub fn validate(&self) -> Result<(), NetworkError> {
        let (addr, prefix) = self.subnet;
        let reason = if !(8..=30).contains(&prefix) {
            Some("the prefix length must be between 8 and 30")
        } else if u32::from(addr) & !prefix_mask(prefix) != 0 {
            Some("the address has host bits set")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(NetworkError::InvalidSubnet {
                subnet: format!("{addr}/{prefix}"),
                reason,
            });
        }
        let name = &self.bridge;
        if name.is_empty()
            || name.len() > 15
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(NetworkError::InvalidBridgeName { name: name.clone() });
        }
        Ok(())
    }

    pub(crate) fn subnet_string(&self) -> String {
        format!("{}/{}", self.subnet.0, self.subnet.1)
    }
}

pub(crate) fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// `--network`: what the container's network namespace is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// A new namespace on kiln's bridge (Docker's default, also `default`).
    #[default]
    Bridge,
    /// The host's namespace: no isolation, nothing to set up.
    Host,
    /// A new namespace with only `lo`.
    None,
}

impl std::str::FromStr for NetworkMode {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "bridge" | "default" => Ok(NetworkMode::Bridge),
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            other => Err(NetworkError::InvalidNetworkMode {
                mode: other.to_owned(),
            }),
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NetworkMode::Bridge => "bridge",
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
        })
    }
}

/// A MAC address, serialised as `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The locally administered MAC kiln gives the interface holding `ip`.
    pub fn for_ip(ip: Ipv4Addr) -> Self {
        let o = ip.octets();
        MacAddr([0x02, 0x6b, o[0], o[1], o[2], o[3]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for MacAddr {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NetworkError::InvalidMac { mac: s.to_owned() };
        let mut out = [0u8; 6];
        let mut parts = s.split(':');
        for byte in &mut out {
            let part = parts.next().ok_or_else(bad)?;
            if part.len() != 2 {
                return Err(bad());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(MacAddr(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What [`attach`] set up for one container; the runtime keeps it in the
/// container record (for `inspect`, `/etc/hosts`, the port proxy) and hands
/// it back to [`detach`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// The container's address on the bridge.
    pub ip: Ipv4Addr,
    /// Prefix length of the bridge's subnet.
    pub prefix: u8,
    /// The bridge's address, the container's default route.
    pub gateway: Ipv4Addr,
    /// MAC of the container's `eth0`.
    pub mac: MacAddr,
    /// Name of the host end of the veth pair.
    pub host_veth: String,
}

/// A container's network as the runtime records it (for `inspect`,
/// `kiln port`, `ps`): its attachment to the bridge and the ports the
/// proxy bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkState {
    /// The bridge it is attached to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub bridge: String,
    /// Its address and interface (bridge network only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// Published ports as bound (host port 0 replaced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortMapping>,
}

/// Errors of the network module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The configured subnet cannot be used.
    #[error("invalid network subnet {subnet}: {reason}")]
    InvalidSubnet {
        /// The subnet as written, `a.b.c.d/len`.
        subnet: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The configured bridge name is not a valid interface name.
    #[error("invalid bridge name {name:?}: 1 to 15 letters, digits, '-', '_' or '.'")]
    InvalidBridgeName {
        /// The name as configured.
        name: String,
    },
    /// A `--network` value kiln does not support.
    #[error("invalid --network {mode:?}: kiln supports bridge, host and none")]
    InvalidNetworkMode {
        /// The value as given.
        mode: String,
    },
    /// A stored MAC address could not be parsed.
    #[error("invalid MAC address {mac:?}")]
    InvalidMac {
        /// The text that was read.
        mac: String,
    },
    /// A netlink request failed.
    #[error("failed to {action} {name}")]
    Netlink {
        /// What was being done (`create bridge`, `add address to`).
        action: &'static str,
        /// The interface (or address) it was done to.
        name: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// An interface that must exist does not.
    #[error("failed to find interface {name} {place}")]
    MissingInterface {
        /// The interface.
        name: String,
        /// Where it was looked for.
        place: &'static str,
    },
    /// The namespace handed to [`attach`] is the caller's own.
    #[error("refusing to configure the host's own network namespace as a container's")]
    HostNamespace,
    /// A system call or file operation failed.
    #[error("failed to {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file, namespace or socket it was done to.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The address book could not be read.
    #[error("failed to read the address book {}", path.display())]
    IpamState {
        /// `ipam.json`.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// Every address of the subnet is in use.
    #[error("failed to allocate an address: subnet {subnet} of bridge {bridge} is full")]
    IpamExhausted {
        /// The subnet.
        subnet: String,
        /// The bridge.
        bridge: String,
    },
    /// `iptables` could not be started.
    #[error("failed to run iptables (install the iptables package)")]
    IptablesSpawn {
        /// The error from exec.
        #[source]
        source: io::Error,
    },
    /// `iptables` refused a rule.
    #[error("failed to {action} iptables rule `{rule}`: {stderr}")]
    Iptables {
        /// `insert`, `delete`.
        action: &'static str,
        /// The rule's arguments.
        rule: String,
        /// What iptables printed.
        stderr: String,
    },
    /// A `-p`/`--publish` value is not valid.
    #[error("invalid publish spec {spec:?}: {reason}")]
    InvalidPublish {
        /// The value as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `EXPOSE` entry is not valid.
    #[error("invalid exposed port {spec:?}: {reason}")]
    InvalidExposed {
        /// The value as given.
        spec: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `--add-host` value is not valid.
    #[error("invalid --add-host {spec:?}: {reason}")]
    InvalidAddHost {
        /// The value as given.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A host port to publish could not be bound (usually: it is in use).
    #[error("failed to publish port {proto} {addr}: {source}")]
    PortBind {
        /// The host address and port.
        addr: SocketAddr,
        /// `tcp` or `udp`.
        proto: Proto,
        /// The error from bind, e.g. "Address in use".
        #[source]
        source: io::Error,
    },
    /// The port proxy could not start a thread or its stop signal.
    #[error("failed to start the port proxy")]
    ProxyStart {
        /// The error.
        #[source]
        source: io::Error,
    },
}

/// Opens the network namespace of process `pid` (`/proc/PID/ns/net`), for
/// [`attach`].
pub fn open_netns(pid: u32) -> Result<OwnedFd, NetworkError> {
    let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
    std::fs::File::open(&path)
        .map(OwnedFd::from)
        .map_err(|source| NetworkError::Io {
            action: "open network namespace",
            path,
            source,
        })
}

/// The host-side veth name of a container: `kv` and the container's short
/// id (its first 12 hex digits), or 12 hex digits of a hash of the id when
/// it is not hex, so that names fit IFNAMSIZ and are recognisable in
/// `ip link`.
pub fn host_veth_name(container_id: &str) -> String {
    let hex: String = container_id.chars().take(12).collect();
    if hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return format!("kv{}", hex.to_ascii_lowercase());
    }
    // FNV-1a: stable across releases, unlike std's DefaultHasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in container_id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("kv{:012x}", h & 0xffff_ffff_ffff)
}

/// Makes sure the bridge exists with its gateway address and is up, that
/// IPv4 forwarding is on, and that the NAT and FORWARD rules are in place.
/// Idempotent and safe to run from several processes at once.
///
/// The iptables rules are checked (three `iptables -C` runs, a few ms each)
/// only when the bridge was (re)created or the machine rebooted since the
/// last check: `<state_dir>/rules.stamp` records the boot id and the
/// bridge's interface index. Rules deleted by hand behind kiln's back are
/// therefore restored by [`remove_bridge`] + [`ensure_bridge`] or a reboot,
/// not by every container start.
pub fn ensure_bridge(cfg: &NetworkConfig) -> Result<(), NetworkError> {
    cfg.validate()?;
    // Serialises concurrent `kiln run`s: `iptables -C` then `-I` is not
    // atomic, and two of them could insert a rule twice.
    let _lock = ipam::lock_file(cfg, BRIDGE_LOCK)?;
    let index = netlink::ensure_bridge(cfg)?;
    enable_ip_forward()?;
    let stamp_path = cfg.state_dir.join(RULES_STAMP);
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let stamp = format!("{} {index} {}\n", boot_id.trim(), cfg.subnet_string());
    if std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(());
    }
    firewall::ensure_rules(cfg)?;
    // Only a cache: a lost write means one more check next time.
    let tmp = stamp_path.with_extension("tmp");
    if std::fs::write(&tmp, &stamp)
        .and_then(|()| std::fs::rename(&tmp, &stamp_path))
        .is_err()
    {
        tracing::debug!(path = %stamp_path.display(), "failed to write the rules stamp");
    }
    Ok(())
}

const BRIDGE_LOCK: &str = "bridge.lock";
const RULES_STAMP: &str = "rules.stamp";

/// Deletes the bridge and its iptables rules (and the veths still on it, as
/// the kernel does). Leaves `ip_forward` as it is: something else may rely
/// on it. Idempotent.
pub fn remove_bridge(cfg: &NetworkConfig) -> Result<(), NetworkError> {
    cfg.validate()?;
    let _lock = ipam::lock_file(cfg, BRIDGE_LOCK)?;
    let stamp = cfg.state_dir.join(RULES_STAMP);
    match std::fs::remove_file(&stamp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(NetworkError::Io {
                action: "remove",
                path: stamp,
                source,
            })
        }
    }
    firewall::remove_rules(cfg)?;
    netlink::remove_bridge(cfg)
}

fn enable_ip_forward() -> Result<(), NetworkError> {
    let path = Path::new("/proc/sys/net/ipv4/ip_forward");
    let io_err = |action, source| NetworkError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    let current = std::fs::read_to_string(path).map_err(|e| io_err("read", e))?;
    if current.trim() != "1" {
        std::fs::write(path, "1\n").map_err(|e| io_err("enable IPv4 forwarding in", e))?;
    }
    Ok(())
}

/// Connects a container to the bridge: allocates its address, creates the
/// veth pair with `eth0` inside `netns` (the container's network namespace,
/// e.g. from [`open_netns`]), configures `eth0`, `lo` and the default route.
/// Calling it again for the same container id reuses its address. On error
/// nothing is left behind. Starts no thread (see the module docs).
pub fn attach(
    cfg: &NetworkConfig,
    container_id: &str,
    netns: BorrowedFd<'_>,
) -> Result<Attachment, NetworkError> {
    cfg.validate()?;
    let host_veth = host_veth_name(container_id);
    let ip = ipam::allocate(cfg, container_id, &host_veth)?;
    let attachment = Attachment {
        ip,
        prefix: cfg.subnet.1,
        gateway: cfg.gateway(),
        mac: MacAddr::for_ip(ip),
        host_veth,
    };
    match netlink::attach(cfg, &attachment, netns) {
        Ok(()) => Ok(attachment),
        Err(e) => {
            if let Err(release) = ipam::release(cfg, container_id) {
                tracing::warn!(error = %release, container_id, "failed to release address after a failed attach");
            }
            Err(e)
        }
    }
}

/// Disconnects a container: deletes its host veth (the peer in the
/// container's namespace goes with it) and frees its address. A veth that is
/// already gone is fine: idempotent.
pub fn detach(
    cfg: &NetworkConfig,
    container_id: &str,
    attachment: &Attachment,
) -> Result<(), NetworkError> {
    cfg.validate()?;
    netlink::delete_links(std::slice::from_ref(&attachment.host_veth))?;
    ipam::release(cfg, container_id)?;
    Ok(())
}

/// After a crash: frees the address and deletes the veth of every container
/// in the address book whose attaching process (its monitor, a build step)
/// is gone — or, for an entry an older kiln wrote without one, for which
/// `live(id)` is false — and deletes any other `kv*` veth on the bridge
/// that the address book does not know. Another store's containers on the
/// same bridge are left alone while they run.
pub fn release_stale(cfg: &NetworkConfig, live: &dyn Fn(&str) -> bool) -> Result<(), NetworkError> {
    cfg.validate()?;
    let entries = ipam::entries(cfg)?;
    let mut stale_links = Vec::new();
    let mut stale_ids = Vec::new();
    let mut known = std::collections::BTreeSet::new();
    for (id, entry) in &entries {
        if entry.owner_alive().unwrap_or_else(|| live(id)) {
            known.insert(entry.veth.clone());
        } else {
            stale_links.push(entry.veth.clone());
            stale_ids.push(id.clone());
        }
    }
    for name in netlink::bridge_ports(cfg)? {
        if name.starts_with("kv") && !known.contains(&name) && !stale_links.contains(&name) {
            stale_links.push(name);
        }
    }
    netlink::delete_links(&stale_links)?;
    for id in stale_ids {
        ipam::release(cfg, &id)?;
    }
    Ok(())
}

/// Brings `lo` up in `netns`, for `--network none` (a new network
/// namespace starts with its loopback down; [`attach`] does this itself).
/// Starts no thread.
pub fn loopback_up(netns: BorrowedFd<'_>) -> Result<(), NetworkError> {
    netlink::loopback_up(netns)
}

/// The address `host-gateway` stands for in `--add-host` on this network.
pub fn host_gateway(cfg: &NetworkConfig) -> IpAddr {
    IpAddr::V4(cfg.gateway())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_names_fit_ifnamsiz() {
        assert_eq!(host_veth_name("0123456789abcdef0123"), "kv0123456789ab");
        assert_eq!(host_veth_name("ABCDEF0123456789"), "kvabcdef012345");
        let hashed = host_veth_name("not-hex-at-all");
        assert!(hashed.starts_with("kv") && hashed.len() == 14, "{hashed}");
        assert_eq!(hashed, host_veth_name("not-hex-at-all"));
        assert_ne!(hashed, host_veth_name("not-hex-at-all2"));
        assert_eq!(host_veth_name("short").len(), 14);
    }

    #[test]
    fn config_defaults_and_validation() {
        let cfg = NetworkConfig::for_store(Path::new("/var/lib/kiln"));
        assert_eq!(cfg.bridge, "kiln0");
        assert_eq!(cfg.subnet_string(), "10.209.0.0/16");
        assert_eq!(cfg.gateway(), Ipv4Addr::new(10, 209, 0, 1));
        assert_eq!(cfg.state_dir, Path::new("/var/lib/kiln/network"));
        cfg.validate().unwrap();
        let bad_host_bits = NetworkConfig {
            subnet: (Ipv4Addr::new(10, 209, 0, 1), 16),
            ..cfg.clone()
        };
        assert!(bad_host_bits.validate().is_err());
        let bad_prefix = NetworkConfig {
            subnet: (Ipv4Addr::new(10, 209, 0, 0), 31),
            ..cfg.clone()
        };
        assert!(bad_prefix.validate().is_err());
        let bad_name = NetworkConfig {
            bridge: "a-name-that-is-too-long".into(),
            ..cfg.clone()
        };
        assert!(bad_name.validate().is_err());
        let bad_name = NetworkConfig {
            bridge: "br;rm".into(),
            ..cfg
        };
        assert!(bad_name.validate().is_err());
    }

    #[test]
    fn network_modes() {
        for (s, m) in [
            ("bridge", NetworkMode::Bridge),
            ("default", NetworkMode::Bridge),
            ("host", NetworkMode::Host),
            ("none", NetworkMode::None),
        ] {
            assert_eq!(s.parse::<NetworkMode>().unwrap(), m);
        }
        assert_eq!(NetworkMode::default(), NetworkMode::Bridge);
        assert_eq!(NetworkMode::None.to_string(), "none");
        let err = "container:abc".parse::<NetworkMode>().unwrap_err();
        assert!(err.to_string().contains("\"container:abc\""), "{err}");
    }

    #[test]
    fn attachment_serde_round_trip() {
        let a = Attachment {
            ip: Ipv4Addr::new(10, 209, 0, 2),
            prefix: 16,
            gateway: Ipv4Addr::new(10, 209, 0, 1),
            mac: MacAddr::for_ip(Ipv4Addr::new(10, 209, 0, 2)),
            host_veth: "kv0123456789ab".into(),
        };
        let s = serde_json::to_string(&a).unwrap();
        assert!(s.contains("\"mac\":\"02:6b:0a:d1:00:02\""), "{s}");
        assert_eq!(serde_json::from_str::<Attachment>(&s).unwrap(), a);
        assert!("02:6b:0a:d1:00".parse::<MacAddr>().is_err());
        assert!("02:6b:0a:d1:00:02:03".parse::<MacAddr>().is_err());
        assert!("02:6b:0a:d1:00:zz".parse::<MacAddr>().is_err());
    }
}
