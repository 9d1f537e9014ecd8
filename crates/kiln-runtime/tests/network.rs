//! The network module against the real kernel (as root): a bridge and NAT
//! rules of a test-only name and subnet, veths into network namespaces made
//! with `unshare --net` (not by kiln's runtime), servers started inside
//! them with `nsenter`, reached from the host by address and through the
//! port proxy on 127.0.0.1. Every test uses its own bridge and subnet, and
//! removes bridge, rules and namespaces when it ends, even on failure.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_runtime::network::{
    attach, detach, ensure_bridge, loopback_up, open_netns, release_stale, remove_bridge,
    NetworkConfig, PortMapping, PortProxy, Proto,
};

/// A host tool, also when the sbin directories are not in PATH.
fn tool(name: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| name.into())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A test network; removed (bridge and iptables rules) when dropped.
struct TestNet {
    cfg: NetworkConfig,
    _dir: tempfile::TempDir,
}

impl TestNet {
    fn new(bridge: &str, third_octet: u8) -> TestNet {
        let dir = tempfile::tempdir().unwrap();
        let cfg = NetworkConfig {
            bridge: bridge.to_owned(),
            subnet: (Ipv4Addr::new(10, 251, third_octet, 0), 24),
            state_dir: dir.path().join("network"),
        };
        // Leftovers of an earlier, killed run.
        remove_bridge(&cfg).unwrap();
        TestNet { cfg, _dir: dir }
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = remove_bridge(&self.cfg);
    }
}

/// A process in its own network namespace, killed when dropped.
struct Netns {
    child: Child,
}

impl Netns {
    fn new() -> Netns {
        let child = Command::new("unshare")
            .args(["--net", "sleep", "120"])
            .spawn()
            .expect("unshare from util-linux is installed");
        let pid = child.id();
        let me = std::fs::read_link("/proc/self/ns/net").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let theirs = std::fs::read_link(format!("/proc/{pid}/ns/net"));
            if matches!(&theirs, Ok(ns) if *ns != me) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "unshare did not make a namespace"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Netns { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `nsenter -t PID -n ARGS…`, waited for.
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-n", "--"])
            .arg(tool(args[0]))
            .args(&args[1..])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `nsenter -t PID -n ARGS…` in the background.
    fn spawn(&self, args: &[&str], dir: &Path) -> Bg {
        Bg(Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-n", "--"])
            .arg(tool(args[0]))
            .args(&args[1..])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A background process, killed when dropped.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

fn rules_tagged(bridge: &str) -> usize {
    let tag = format!("kiln bridge {bridge}");
    ["filter", "nat"]
        .iter()
        .map(|table| {
            let out = Command::new(tool("iptables"))
                .args(["-w", "-t", table, "-S"])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains(&tag))
                .count()
        })
        .sum()
}

/// Packets counted by the bridge's `-i BRIDGE -j ACCEPT` FORWARD rule.
fn forward_accepts(bridge: &str) -> u64 {
    let out = Command::new(tool("iptables"))
        .args(["-w", "-t", "filter", "-L", "FORWARD", "-v", "-n", "-x"])
        .output()
        .unwrap();
    let tag = format!("/* kiln bridge {bridge} */");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(&tag) && !l.contains("ctstate"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Connects, retrying while the server inside the namespace starts.
fn connect_retry(addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(s) => return s,
            Err(e) => {
                assert!(Instant::now() < deadline, "cannot connect to {addr}: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = connect_retry(addr);
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Sends `msg` until an answer comes (the UDP server may still be starting).
fn udp_ask(to: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 1500];
    for _ in 0..30 {
        sock.send_to(msg, to).unwrap();
        if let Ok((n, _)) = sock.recv_from(&mut buf) {
            return buf[..n].to_vec();
        }
    }
    panic!("no UDP answer from {to}");
}

// One line per statement: the loop body fits on the `while` line.
const UDP_ECHO: &str = "import socket,sys\n\
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
s.bind(('0.0.0.0',int(sys.argv[1])))\n\
while True: d,a=s.recvfrom(2048); s.sendto(b'echo '+d,a)\n";

#[test]
fn bridge_attach_reach_publish_detach() {
    if !is_root() {
        return;
    }
    let net = TestNet::new("ktest-e2e", 1);
    let cfg = &net.cfg;
    ensure_bridge(cfg).unwrap();
    ensure_bridge(cfg).unwrap();
    assert!(link_exists("ktest-e2e"));
    assert_eq!(rules_tagged("ktest-e2e"), 3);
    // Without the stamp that skips the check, the rules are checked again
    // and still not duplicated.
    std::fs::remove_file(cfg.state_dir.join("rules.stamp")).unwrap();
    ensure_bridge(cfg).unwrap();
    assert_eq!(rules_tagged("ktest-e2e"), 3, "rules are never duplicated");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap()
            .trim(),
        "1"
    );

    let ns = Netns::new();
    let fd = open_netns(ns.pid()).unwrap();
    let id = "e2e0aa11bb22cc33dd44ee55ff66778899aabbccddeeff00112233445566aa";
    let att = attach(cfg, id, fd.as_fd()).unwrap();
    assert_eq!(att.ip, Ipv4Addr::new(10, 251, 1, 2));
    assert_eq!(att.gateway, Ipv4Addr::new(10, 251, 1, 1));
    assert_eq!(att.prefix, 24);
    assert_eq!(att.host_veth, "kve2e0aa11bb22");
    assert_eq!(att.mac.to_string(), "02:6b:0a:fb:01:02");
    let master = std::fs::read_link(format!("/sys/class/net/{}/master", att.host_veth)).unwrap();
    assert!(master.ends_with("ktest-e2e"), "{master:?}");

    // Inside: eth0 with the address and MAC, lo up, default route.
    let addr = ns.run(&["ip", "-o", "addr", "show", "dev", "eth0"]);
    let addr = String::from_utf8_lossy(&addr.stdout);
    assert!(addr.contains("10.251.1.2/24"), "{addr}");
    let link = String::from_utf8_lossy(&ns.run(&["ip", "-o", "link", "show"]).stdout).to_string();
    assert!(link.contains("02:6b:0a:fb:01:02"), "{link}");
    assert!(
        link.lines().any(|l| l.contains(" lo:") && l.contains("UP")),
        "{link}"
    );
    let route = ns.run(&["ip", "route"]);
    let route = String::from_utf8_lossy(&route.stdout);
    assert!(route.contains("default via 10.251.1.1 dev eth0"), "{route}");

    // Container -> gateway: ping, and a TCP listener on the gateway address.
    let ping = ns.run(&["busybox", "ping", "-c", "1", "-W", "3", "10.251.1.1"]);
    assert!(ping.status.success(), "{ping:?}");
    let gw_listener = TcpListener::bind((Ipv4Addr::new(10, 251, 1, 1), 0)).unwrap();
    let gw_port = gw_listener.local_addr().unwrap().port();
    let script = format!(
        "import socket; s=socket.create_connection(('10.251.1.1',{gw_port}),5); s.sendall(b'hi from ns'); s.close()"
    );
    let out = ns.run(&["python3", "-c", &script]);
    assert!(out.status.success(), "{out:?}");
    let (mut from_ns, peer) = gw_listener.accept().unwrap();
    assert_eq!(peer.ip(), IpAddr::V4(att.ip));
    let mut got = String::new();
    from_ns.read_to_string(&mut got).unwrap();
    assert_eq!(got, "hi from ns");

    // Host -> container by address: an HTTP server inside.
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("hello.txt"), "hello from the namespace\n").unwrap();
    let _http = ns.spawn(
        &["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0"],
        www.path(),
    );
    let direct = http_get(SocketAddr::new(IpAddr::V4(att.ip), 8000), "/hello.txt");
    assert!(direct.contains("hello from the namespace"), "{direct}");

    // Published: TCP on every address (reached on 127.0.0.1), UDP on 127.0.0.1.
    let _udp = ns.spawn(&["python3", "-c", UDP_ECHO, "9000"], www.path());
    let mappings = [
        PortMapping {
            host_ip: None,
            host_port: 0,
            container_port: 8000,
            proto: Proto::Tcp,
        },
        PortMapping {
            host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            host_port: 0,
            container_port: 9000,
            proto: Proto::Udp,
        },
    ];
    let proxy = PortProxy::start(&mappings, IpAddr::V4(att.ip)).unwrap();
    let bound = proxy.bound().to_vec();
    assert!(bound.iter().all(|m| m.host_port != 0), "{bound:?}");
    let tcp_port = bound[0].host_port;
    let udp_port = bound
        .iter()
        .find(|m| m.proto == Proto::Udp)
        .unwrap()
        .host_port;
    let via_proxy = http_get(
        SocketAddr::from((Ipv4Addr::LOCALHOST, tcp_port)),
        "/hello.txt",
    );
    assert!(
        via_proxy.contains("hello from the namespace"),
        "{via_proxy}"
    );
    let answer = udp_ask(SocketAddr::from((Ipv4Addr::LOCALHOST, udp_port)), b"ping");
    assert_eq!(answer, b"echo ping");
    proxy.stop();
    // Nothing listens any more. (Tried a few times: a process another test
    // forks at that moment holds a copy of the socket until it execs, and
    // a connect from an ephemeral port to itself can succeed by chance.)
    let closed = (0..20).any(|_| {
        let refused = TcpStream::connect((Ipv4Addr::LOCALHOST, tcp_port)).is_err();
        if !refused {
            std::thread::sleep(Duration::from_millis(50));
        }
        refused
    });
    assert!(
        closed,
        "port {tcp_port} still accepts after the proxy stopped"
    );

    // Detach: the veth is gone, the address is free again; twice is fine.
    detach(cfg, id, &att).unwrap();
    assert!(!link_exists(&att.host_veth));
    detach(cfg, id, &att).unwrap();
    let ns2 = Netns::new();
    let fd2 = open_netns(ns2.pid()).unwrap();
    let att2 = attach(cfg, "second", fd2.as_fd()).unwrap();
    assert_eq!(att2.ip, att.ip, "a freed address is reused");
    detach(cfg, "second", &att2).unwrap();

    remove_bridge(cfg).unwrap();
    assert!(!link_exists("ktest-e2e"));
    assert_eq!(rules_tagged("ktest-e2e"), 0);
    remove_bridge(cfg).unwrap();
}

#[test]
fn failed_attach_leaves_nothing_and_release_stale_cleans_up() {
    if !is_root() {
        return;
    }
    let net = TestNet::new("ktest-stale", 2);
    let cfg = &net.cfg;
    ensure_bridge(cfg).unwrap();

    let live_ns = Netns::new();
    let dead_ns = Netns::new();
    let ghost_ns = Netns::new();
    let live = attach(cfg, "live", open_netns(live_ns.pid()).unwrap().as_fd()).unwrap();
    let dead = attach(cfg, "dead", open_netns(dead_ns.pid()).unwrap().as_fd()).unwrap();
    let ghost = attach(cfg, "ghost", open_netns(ghost_ns.pid()).unwrap().as_fd()).unwrap();

    // Container to container across the bridge; with br_netfilter loaded
    // that traffic passes FORWARD, where kiln's accept rule (inserted first,
    // ahead of a DROP policy a dockerd sets) must be what lets it through.
    let before = forward_accepts("ktest-stale");
    let dead_ip = dead.ip.to_string();
    let ping = live_ns.run(&["busybox", "ping", "-c", "1", "-W", "3", &dead_ip]);
    assert!(ping.status.success(), "{ping:?}");
    let nf = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables");
    if nf.is_ok_and(|v| v.trim() == "1") {
        assert!(forward_accepts("ktest-stale") > before);
    }

    // A second attach into a namespace that already has eth0 fails, and
    // leaves neither a veth nor an address behind.
    let err = attach(cfg, "clash", open_netns(live_ns.pid()).unwrap().as_fd()).unwrap_err();
    assert!(err.to_string().contains("veth"), "{err}");
    assert!(!link_exists(&kiln_runtime::network::host_veth_name(
        "clash"
    )));

    // A veth on the bridge that the address book forgot (a crash between
    // the two): release_stale deletes it too.
    let book_path = cfg.state_dir.join("ipam.json");
    let mut book: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&book_path).unwrap()).unwrap();
    book["containers"].as_object_mut().unwrap().remove("ghost");
    // The dead container's attaching process is gone (a start time no
    // process of this pid has); the live one's (this test) still runs.
    book["containers"]["dead"]["owner_start"] = serde_json::json!(1);
    std::fs::write(&book_path, serde_json::to_vec(&book).unwrap()).unwrap();

    // The caller's store knows neither (another store's containers on the
    // same bridge): the running one's owner keeps it.
    release_stale(cfg, &|_| false).unwrap();
    assert!(link_exists(&live.host_veth));
    assert!(!link_exists(&dead.host_veth));
    assert!(!link_exists(&ghost.host_veth));

    // The dead container's address (the lowest free one) is handed out again.
    let again_ns = Netns::new();
    let again = attach(cfg, "again", open_netns(again_ns.pid()).unwrap().as_fd()).unwrap();
    assert_eq!(again.ip, dead.ip);

    detach(cfg, "live", &live).unwrap();
    detach(cfg, "again", &again).unwrap();
    remove_bridge(cfg).unwrap();
    assert!(!link_exists("ktest-stale"));
}

#[test]
fn loopback_up_for_network_none() {
    if !is_root() {
        return;
    }
    let ns = Netns::new();
    let lo_up = |ns: &Netns| {
        let out = ns.run(&["ip", "-o", "link", "show", "lo"]);
        String::from_utf8_lossy(&out.stdout).contains(",UP")
    };
    assert!(!lo_up(&ns));
    loopback_up(open_netns(ns.pid()).unwrap().as_fd()).unwrap();
    assert!(lo_up(&ns));
    let ping = ns.run(&["busybox", "ping", "-c", "1", "-W", "2", "127.0.0.1"]);
    assert!(ping.status.success(), "{ping:?}");
}

#[test]
fn twenty_parallel_attaches_all_succeed_with_distinct_addresses() {
    if !is_root() {
        return;
    }
    let net = TestNet::new("ktest-par", 3);
    let namespaces: Vec<Netns> = (0..20).map(|_| Netns::new()).collect();
    let results: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = namespaces
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                let cfg = &net.cfg;
                scope.spawn(move || {
                    // Each "monitor" ensures the bridge itself, as kiln run does.
                    ensure_bridge(cfg)?;
                    let fd = open_netns(ns.pid())?;
                    attach(cfg, &format!("par{i:02}"), fd.as_fd())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let atts: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    let ips: std::collections::BTreeSet<_> = atts.iter().map(|a| a.ip).collect();
    assert_eq!(ips.len(), 20);
    assert_eq!(rules_tagged("ktest-par"), 3);
    for (i, a) in atts.iter().enumerate() {
        assert!(link_exists(&a.host_veth));
        detach(&net.cfg, &format!("par{i:02}"), a).unwrap();
        assert!(!link_exists(&a.host_veth));
    }
}

/// A host interface made by a test (with `ip`: the code under test must use
/// netlink, its tests need not), deleted when dropped.
struct HostLink(&'static str);

impl Drop for HostLink {
    fn drop(&mut self) {
        let _ = Command::new(tool("ip"))
            .args(["link", "del", self.0])
            .output();
    }
}

fn sh(args: &[&str]) {
    let out = Command::new(tool(args[0]))
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
}

#[test]
fn outbound_traffic_is_masqueraded() {
    if !is_root() {
        return;
    }
    let net = TestNet::new("ktest-nat", 4);
    let cfg = &net.cfg;
    ensure_bridge(cfg).unwrap();

    // "The outside world": a namespace behind another host interface.
    let outside = Netns::new();
    let _ = Command::new(tool("ip"))
        .args(["link", "del", "ktnat-h"])
        .output();
    let pid = outside.pid().to_string();
    sh(&[
        "ip", "link", "add", "ktnat-h", "type", "veth", "peer", "name", "ktnat-o", "netns", &pid,
    ]);
    let _link = HostLink("ktnat-h");
    sh(&["ip", "addr", "add", "10.252.4.1/30", "dev", "ktnat-h"]);
    sh(&["ip", "link", "set", "ktnat-h", "up"]);
    for cmd in [
        &["ip", "addr", "add", "10.252.4.2/30", "dev", "ktnat-o"][..],
        &["ip", "link", "set", "ktnat-o", "up"],
    ] {
        let out = outside.run(cmd);
        assert!(out.status.success(), "{cmd:?}: {out:?}");
    }
    // It tells each client the address it sees.
    let server = "import socket\n\
        s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        s.bind(('10.252.4.2', 7000)); s.listen(5)\n\
        while True: c,a=s.accept(); c.sendall(a[0].encode()); c.close()\n";
    let dir = tempfile::tempdir().unwrap();
    let _srv = outside.spawn(&["python3", "-c", server], dir.path());

    let ctr = Netns::new();
    let att = attach(cfg, "natc", open_netns(ctr.pid()).unwrap().as_fd()).unwrap();
    let client = "import socket,time\n\
        for i in range(100):\n\
        \x20   try:\n\
        \x20       s=socket.create_connection(('10.252.4.2',7000),2); print(s.recv(100).decode()); break\n\
        \x20   except OSError: time.sleep(0.1)\n";
    let out = ctr.run(&["python3", "-c", client]);
    let seen = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(seen, "10.252.4.1", "{out:?}");
    detach(cfg, "natc", &att).unwrap();
}

#[test]
fn attach_without_the_bridge_is_a_clear_error_and_keeps_no_address() {
    if !is_root() {
        return;
    }
    let net = TestNet::new("ktest-nobr", 5);
    let ns = Netns::new();
    let err = attach(&net.cfg, "nobr", open_netns(ns.pid()).unwrap().as_fd()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("ktest-nobr") && msg.contains("ensure_bridge"),
        "{msg}"
    );
    let book = std::fs::read_to_string(net.cfg.state_dir.join("ipam.json")).unwrap();
    assert!(!book.contains("nobr"), "{book}");
}

#[test]
fn the_hosts_own_namespace_is_refused() {
    if !is_root() {
        return;
    }
    let net = TestNet::new("ktest-self", 6);
    ensure_bridge(&net.cfg).unwrap();
    let own = std::fs::File::open("/proc/thread-self/ns/net").unwrap();
    let err = attach(&net.cfg, "self", own.as_fd()).unwrap_err();
    assert!(err.to_string().contains("host's own"), "{err}");
    assert!(!link_exists(&kiln_runtime::network::host_veth_name("self")));
    let err = loopback_up(own.as_fd()).unwrap_err();
    assert!(err.to_string().contains("host's own"), "{err}");
}
