//! The netlink half of the network module: bridge, veth pairs, addresses
//! and routes, through `rtnetlink` on a current-thread tokio runtime that
//! lives for one call (no thread is started; see the module docs).

use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::PathBuf;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};

use super::{Attachment, MacAddr, NetworkConfig, NetworkError};

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;

/// The errno of a netlink error answer, if it is one.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}

fn nl_err(
    action: &'static str,
    name: impl Into<String>,
) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    let name = name.into();
    move |source| NetworkError::Netlink {
        action,
        name,
        source,
    }
}

fn missing(name: &str, place: &'static str) -> NetworkError {
    NetworkError::MissingInterface {
        name: name.to_owned(),
        place,
    }
}

fn io_err(action: &'static str, path: &'static str) -> impl FnOnce(std::io::Error) -> NetworkError {
    move |source| NetworkError::Io {
        action,
        path: PathBuf::from(path),
        source,
    }
}

/// Runs `f` on a fresh current-thread runtime with I/O enabled (netlink
/// sockets are registered with its reactor).
fn block_on<F, T>(f: F) -> Result<T, NetworkError>
where
    F: Future<Output = Result<T, NetworkError>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(io_err("start the netlink runtime", "tokio"))?;
    rt.block_on(f)
}

/// A netlink handle in the calling thread's network namespace. Must run
/// inside [`block_on`]: the connection task is spawned on that runtime.
fn connect() -> Result<Handle, NetworkError> {
    let (conn, handle, _) =
        rtnetlink::new_connection().map_err(io_err("open a netlink socket", "NETLINK_ROUTE"))?;
    tokio::spawn(conn);
    Ok(handle)
}

/// A netlink handle bound to the network namespace `netns`: the socket is
/// created after `setns(2)` into it, and the thread returns to its own
/// namespace before anything else runs.
fn connect_in(netns: BorrowedFd<'_>) -> Result<Handle, NetworkError> {
    const SELF_NS: &str = "/proc/thread-self/ns/net";
    let home = File::open(SELF_NS).map_err(io_err("open own network namespace", SELF_NS))?;
    move_into_link_name_space(netns, Some(LinkNameSpaceType::Network))
        .map_err(|e| io_err("enter the container's network namespace", "setns")(e.into()))?;
    let made = rtnetlink::new_connection();
    // Back first, whatever happened. A thread left in the container's
    // namespace would bind the port proxy there, and every thread it
    // starts would inherit it: returning an error would leave that to the
    // caller's discipline. setns(2) back into a namespace this thread was
    // just in, as the same privileged process, has no documented way to
    // fail, so this never runs in practice.
    if let Err(e) = move_into_link_name_space(home.as_fd(), Some(LinkNameSpaceType::Network)) {
        tracing::error!(error = %e, "failed to return to the host network namespace; aborting");
        std::process::abort();
    }
    let (conn, handle, _) = made.map_err(io_err(
        "open a netlink socket in the container's namespace",
        "NETLINK_ROUTE",
    ))?;
    tokio::spawn(conn);
    Ok(handle)
}

/// The index of interface `name`, or `None` when there is none.
async fn link_index(h: &Handle, name: &str) -> Result<Option<u32>, NetworkError> {
    let mut links = h.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(msg.header.index)),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
        Err(e) => Err(nl_err("look up interface", name)(e)),
    }
}

async fn set_up(h: &Handle, index: u32, name: &str) -> Result<(), NetworkError> {
    h.link()
        .change(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl_err("bring up", name))
}

/// Creates the bridge when missing, adds the gateway address, brings it up;
/// returns its interface index.
pub(super) fn ensure_bridge(cfg: &NetworkConfig) -> Result<u32, NetworkError> {
    block_on(async {
        let h = connect()?;
        let name = cfg.bridge.as_str();
        let gateway = cfg.gateway();
        if link_index(&h, name).await?.is_none() {
            let msg = LinkBridge::new(name)
                .address(MacAddr::for_ip(gateway).0.to_vec())
                .build();
            if let Err(e) = h.link().add(msg).execute().await {
                // Another kiln made it at the same moment: fine.
                if errno(&e) != Some(EEXIST) {
                    return Err(nl_err("create bridge", name)(e));
                }
            }
        }
        let index = link_index(&h, name)
            .await?
            .ok_or_else(|| missing(name, "on the host right after creating it"))?;

        let mut has_gateway = false;
        let mut addrs = h.address().get().set_link_index_filter(index).execute();
        while let Some(msg) = addrs
            .try_next()
            .await
            .map_err(nl_err("list addresses of", name))?
        {
            let matches = msg
                .attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Address(IpAddr::V4(ip)) if *ip == gateway));
            if matches && msg.header.prefix_len == cfg.subnet.1 {
                has_gateway = true;
            }
        }
        if !has_gateway {
            let res = h
                .address()
                .add(index, IpAddr::V4(gateway), cfg.subnet.1)
                .execute()
                .await;
            if let Err(e) = res {
                if errno(&e) != Some(EEXIST) {
                    return Err(nl_err("add the gateway address to", name)(e));
                }
            }
        }
        set_up(&h, index, name).await?;
        Ok(index)
    })
}

pub(super) fn remove_bridge(cfg: &NetworkConfig) -> Result<(), NetworkError> {
    delete_links(std::slice::from_ref(&cfg.bridge))
}

/// Deletes the named interfaces of the host namespace; missing ones are
/// fine.
pub(super) fn delete_links(names: &[String]) -> Result<(), NetworkError> {
    if names.is_empty() {
        return Ok(());
    }
    block_on(async {
        let h = connect()?;
        for name in names {
            let Some(index) = link_index(&h, name).await? else {
                continue;
            };
            if let Err(e) = h.link().del(index).execute().await {
                if errno(&e) != Some(ENODEV) {
                    return Err(nl_err("delete interface", name.as_str())(e));
                }
            }
        }
        Ok(())
    })
}

/// Names of the interfaces whose controller is the bridge.
pub(super) fn bridge_ports(cfg: &NetworkConfig) -> Result<Vec<String>, NetworkError> {
    block_on(async {
        let h = connect()?;
        let Some(bridge) = link_index(&h, &cfg.bridge).await? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut links = h.link().get().execute();
        while let Some(msg) = links
            .try_next()
            .await
            .map_err(nl_err("list interfaces", "on the host"))?
        {
            let on_bridge = msg
                .attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::Controller(c) if *c == bridge));
            let name = msg.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            });
            if let (true, Some(name)) = (on_bridge, name) {
                out.push(name);
            }
        }
        Ok(out)
    })
}

/// Refuses a namespace fd that is the calling thread's own namespace (or
/// not a namespace at all): configuring `eth0`, addresses and the default
/// route there would rewire the host.
fn check_foreign_netns(netns: BorrowedFd<'_>) -> Result<(), NetworkError> {
    const SELF_NS: &str = "/proc/thread-self/ns/net";
    let theirs = rustix::fs::fstat(netns)
        .map_err(|e| io_err("inspect the container's network namespace", "fd")(e.into()))?;
    let ours = rustix::fs::stat(SELF_NS)
        .map_err(|e| io_err("inspect own network namespace", SELF_NS)(e.into()))?;
    if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino) {
        return Err(NetworkError::HostNamespace);
    }
    Ok(())
}

pub(super) fn attach(
    cfg: &NetworkConfig,
    att: &Attachment,
    netns: BorrowedFd<'_>,
) -> Result<(), NetworkError> {
    check_foreign_netns(netns)?;
    block_on(async {
        let h = connect()?;
        let host = att.host_veth.as_str();
        let bridge = link_index(&h, &cfg.bridge)
            .await?
            .ok_or_else(|| missing(&cfg.bridge, "on the host (ensure_bridge makes it)"))?;
        // A veth of the same name is left from an earlier attach of this
        // container that did not finish: replace it.
        if let Some(old) = link_index(&h, host).await? {
            h.link()
                .del(old)
                .execute()
                .await
                .map_err(nl_err("delete stale veth", host))?;
        }
        // The peer is created directly in the container's namespace as
        // `eth0` (IFLA_NET_NS_FD in the peer's message), like
        // `ip link add kvX type veth peer name eth0 netns FD`.
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name("eth0".to_owned())
            .address(att.mac.0.to_vec())
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host.to_owned())
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        h.link()
            .add(veth)
            .execute()
            .await
            .map_err(nl_err("create veth", host))?;

        let configured = async {
            let index = link_index(&h, host)
                .await?
                .ok_or_else(|| missing(host, "on the host right after creating it"))?;
            h.link()
                .change(
                    LinkUnspec::new_with_index(index)
                        .controller(bridge)
                        .up()
                        .build(),
                )
                .execute()
                .await
                .map_err(nl_err("attach veth to the bridge", host))?;
            configure_container_side(att, netns).await
        }
        .await;
        if configured.is_err() {
            if let Some(index) = link_index(&h, host).await.ok().flatten() {
                let _ = h.link().del(index).execute().await;
            }
        }
        configured
    })
}

/// Address, `up` and default route for `eth0`, and `lo` up, inside the
/// container's namespace.
async fn configure_container_side(
    att: &Attachment,
    netns: BorrowedFd<'_>,
) -> Result<(), NetworkError> {
    let c = connect_in(netns)?;
    let eth0 = link_index(&c, "eth0")
        .await?
        .ok_or_else(|| missing("eth0", "in the container's namespace"))?;
    c.address()
        .add(eth0, IpAddr::V4(att.ip), att.prefix)
        .execute()
        .await
        .map_err(nl_err(
            "add address in the container to",
            format!("eth0 ({})", att.ip),
        ))?;
    set_up(&c, eth0, "eth0").await?;
    if let Some(lo) = link_index(&c, "lo").await? {
        set_up(&c, lo, "lo").await?;
    }
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .gateway(att.gateway)
        .output_interface(eth0)
        .build();
    c.route()
        .add(route)
        .execute()
        .await
        .map_err(nl_err("add the default route via", att.gateway.to_string()))
}

/// `lo` up inside `netns` (a new network namespace starts with it down).
pub(super) fn loopback_up(netns: BorrowedFd<'_>) -> Result<(), NetworkError> {
    check_foreign_netns(netns)?;
    block_on(async {
        let c = connect_in(netns)?;
        let lo = link_index(&c, "lo")
            .await?
            .ok_or_else(|| missing("lo", "in the container's namespace"))?;
        set_up(&c, lo, "lo").await
    })
}
