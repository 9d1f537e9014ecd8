//! The user-space port proxy behind `-p`/`-P`, like Docker's
//! `docker-proxy`: the host sockets are bound by kiln itself, so published
//! ports answer on 127.0.0.1 as well as the host's other addresses without
//! DNAT or `route_localnet`, and a busy port is a clear error before the
//! container is reported as started.
//!
//! Threads: one per published TCP port (accept loop), one per TCP
//! connection (both directions, `poll(2)`-driven, half-close forwarded with
//! `shutdown(SHUT_WR)`), one per published UDP port (every client address
//! gets its own upstream socket, dropped after [`UDP_IDLE`] without
//! traffic). Every thread also polls one eventfd that [`PortProxy::stop`]
//! signals, then joins them all.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags, Timespec};
use rustix::net::{RecvFlags, SendFlags, Shutdown};

use super::{NetworkError, PortMapping, Proto};

/// How long a UDP client's association lives without traffic (Docker's
/// proxy uses 90 s).
pub(crate) const UDP_IDLE: Duration = Duration::from_secs(90);
/// Most UDP associations per published port; the least recently used is
/// dropped beyond it, so a flood of source addresses cannot exhaust fds.
const UDP_MAX_ASSOC: usize = 1024;
/// How long a TCP connection to the container may take to establish.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const BUF: usize = 64 * 1024;

/// The running proxy of one container's published ports.
#[derive(Debug)]
pub struct PortProxy {
    stop: Arc<OwnedFd>,
    threads: Vec<JoinHandle<()>>,
    bound: Vec<PortMapping>,
}

enum Bound {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl PortProxy {
    /// Binds every host port of `mappings` (all of them before serving any:
    /// a busy port is an error naming it, and nothing is left bound), then
    /// serves them, forwarding to `container_ip`.
    pub fn start(
        mappings: &[PortMapping],
        container_ip: IpAddr,
    ) -> Result<PortProxy, NetworkError> {
        let mut sockets = Vec::with_capacity(mappings.len());
        let mut bound = Vec::with_capacity(mappings.len());
        for m in mappings {
            let target = SocketAddr::new(container_ip, m.container_port);
            let addr = SocketAddr::new(m.bind_ip(), m.host_port);
            let bind_err = |addr, source| NetworkError::PortBind {
                addr,
                proto: m.proto,
                source,
            };
            let (socket, port) = bind(m.proto, addr, false).map_err(|e| bind_err(addr, e))?;
            sockets.push((socket, target));
            bound.push(PortMapping {
                host_port: port,
                ..*m
            });
            // No host address given: every address, IPv6 ones too (as
            // Docker), on the same port. A host without IPv6 just has none.
            if m.host_ip.is_none() {
                let addr6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port);
                match bind(m.proto, addr6, true) {
                    Ok((socket, _)) => {
                        sockets.push((socket, target));
                        bound.push(PortMapping {
                            host_ip: Some(addr6.ip()),
                            host_port: port,
                            ..*m
                        });
                    }
                    Err(e) if m.host_port != 0 && e.kind() == io::ErrorKind::AddrInUse => {
                        return Err(bind_err(addr6, e));
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, %addr6, "port proxy: not listening on IPv6");
                    }
                }
            }
        }
        let stop = Arc::new(
            eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)
                .map_err(|e| NetworkError::ProxyStart { source: e.into() })?,
        );
        let mut proxy = PortProxy {
            stop,
            threads: Vec::new(),
            bound,
        };
        for ((socket, target), m) in sockets.into_iter().zip(proxy.bound.clone()) {
            let stop = Arc::clone(&proxy.stop);
            let builder =
                std::thread::Builder::new().name(format!("kiln-proxy-{}-{}", m.proto, m.host_port));
            let spawned = match socket {
                Bound::Tcp(l) => builder.spawn(move || serve_tcp(l, target, stop)),
                Bound::Udp(s) => builder.spawn(move || serve_udp(s, target, stop, UDP_IDLE)),
            };
            match spawned {
                Ok(h) => proxy.threads.push(h),
                Err(source) => {
                    // Dropping `proxy` stops the threads already running.
                    return Err(NetworkError::ProxyStart { source });
                }
            }
        }
        Ok(proxy)
    }

    /// The mappings as bound: host port 0 replaced by the port the kernel
    /// gave (for `kiln port`, `-P`, `inspect`). A mapping without a host
    /// address appears twice when the host has IPv6: `0.0.0.0` (host_ip
    /// `None`) and `[::]`, on the same port, as `docker port` lists them.
    pub fn bound(&self) -> &[PortMapping] {
        &self.bound
    }

    /// Closes every host socket and connection and waits for the threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.threads.is_empty() {
            return;
        }
        if let Err(e) = rustix::io::write(&*self.stop, &1u64.to_ne_bytes()) {
            tracing::warn!(error = %e, "failed to signal the port proxy to stop");
            return;
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for PortProxy {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds a listening TCP or a UDP socket, non-blocking; with `v6only`, an
/// IPv6 socket that leaves IPv4 to the `0.0.0.0` one
/// ([ipv6(7)](https://man7.org/linux/man-pages/man7/ipv6.7.html),
/// `IPV6_V6ONLY`). Returns the port bound.
fn bind(proto: Proto, addr: SocketAddr, v6only: bool) -> io::Result<(Bound, u16)> {
    use rustix::net::{sockopt, AddressFamily, SocketFlags, SocketType};
    let socket = if v6only {
        let kind = match proto {
            Proto::Tcp => SocketType::STREAM,
            Proto::Udp => SocketType::DGRAM,
        };
        let fd = rustix::net::socket_with(AddressFamily::INET6, kind, SocketFlags::CLOEXEC, None)?;
        sockopt::set_ipv6_v6only(&fd, true)?;
        if proto == Proto::Tcp {
            // As std's TcpListener::bind: a port in TIME_WAIT is reusable.
            sockopt::set_socket_reuseaddr(&fd, true)?;
        }
        rustix::net::bind(&fd, &addr)?;
        match proto {
            Proto::Tcp => {
                rustix::net::listen(&fd, 128)?;
                Bound::Tcp(TcpListener::from(fd))
            }
            Proto::Udp => Bound::Udp(UdpSocket::from(fd)),
        }
    } else {
        match proto {
            Proto::Tcp => Bound::Tcp(TcpListener::bind(addr)?),
            Proto::Udp => Bound::Udp(UdpSocket::bind(addr)?),
        }
    };
    let local = match &socket {
        Bound::Tcp(l) => {
            l.set_nonblocking(true)?;
            l.local_addr()?
        }
        Bound::Udp(u) => {
            u.set_nonblocking(true)?;
            u.local_addr()?
        }
    };
    Ok((socket, local.port()))
}

fn readable(fd: &PollFd<'_>) -> bool {
    fd.revents()
        .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR)
}

/// Waits on `fds`; false when the poll itself failed for good.
fn wait(fds: &mut [PollFd<'_>], timeout: Option<&Timespec>) -> bool {
    match poll(fds, timeout) {
        Ok(_) => true,
        Err(rustix::io::Errno::INTR) => {
            for fd in fds.iter_mut() {
                fd.clear_revents();
            }
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "port proxy poll failed");
            false
        }
    }
}

fn serve_tcp(listener: TcpListener, target: SocketAddr, stop: Arc<OwnedFd>) {
    let mut conns: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let mut fds = [
            PollFd::new(&listener, PollFlags::IN),
            PollFd::new(&*stop, PollFlags::IN),
        ];
        if !wait(&mut fds, None) || readable(&fds[1]) {
            break;
        }
        if !readable(&fds[0]) {
            continue;
        }
        loop {
            match listener.accept() {
                Ok((client, _)) => {
                    conns.retain(|h| !h.is_finished());
                    let stop = Arc::clone(&stop);
                    let spawned = std::thread::Builder::new()
                        .name("kiln-proxy-conn".to_owned())
                        .spawn(move || forward_tcp(client, target, &stop));
                    match spawned {
                        Ok(h) => conns.push(h),
                        Err(e) => {
                            tracing::warn!(error = %e, "port proxy: no thread for a connection")
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // ECONNABORTED, EMFILE...: keep serving, but do not spin
                    // on a listener that stays readable while fds run out.
                    tracing::warn!(error = %e, "port proxy accept failed");
                    std::thread::sleep(Duration::from_millis(50));
                    break;
                }
            }
        }
    }
    drop(listener);
    for h in conns {
        let _ = h.join();
    }
}

fn forward_tcp(client: TcpStream, target: SocketAddr, stop: &OwnedFd) {
    let upstream = match TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(error = %e, %target, "port proxy: container port unreachable");
            return;
        }
    };
    if client.set_nonblocking(true).is_err() || upstream.set_nonblocking(true).is_err() {
        return;
    }
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    pump(&client, &upstream, stop.as_fd());
}

/// One direction of a connection: bytes read from one socket and not yet
/// written to the other.
struct Pipe {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    shut: bool,
}

impl Pipe {
    fn new() -> Self {
        Pipe {
            buf: vec![0; BUF],
            start: 0,
            end: 0,
            eof: false,
            shut: false,
        }
    }

    fn pending(&self) -> bool {
        self.start < self.end
    }

    fn wants_read(&self) -> bool {
        !self.eof && !self.pending()
    }

    /// Reads what `src` has (when the buffer is empty), writes what `dst`
    /// takes, and forwards the end of stream once everything is written.
    fn step(&mut self, src: &TcpStream, dst: &TcpStream) -> io::Result<()> {
        if self.wants_read() {
            match rustix::net::recv(src, &mut self.buf, RecvFlags::empty()) {
                Ok((0, _)) => self.eof = true,
                Ok((n, _)) => {
                    self.start = 0;
                    self.end = n;
                }
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        while self.pending() {
            // MSG_NOSIGNAL: a closed peer is an error here, never SIGPIPE.
            match rustix::net::send(dst, &self.buf[self.start..self.end], SendFlags::NOSIGNAL) {
                Ok(n) => self.start += n,
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if self.eof && !self.pending() && !self.shut {
            self.shut = true;
            rustix::net::shutdown(dst, Shutdown::Write)?;
        }
        Ok(())
    }
}

fn pump(a: &TcpStream, b: &TcpStream, stop: BorrowedFd<'_>) {
    let mut ab = Pipe::new();
    let mut ba = Pipe::new();
    while !(ab.shut && ba.shut) {
        let flags = |read: &Pipe, write: &Pipe| {
            let mut f = PollFlags::empty();
            if read.wants_read() {
                f |= PollFlags::IN;
            }
            if write.pending() {
                f |= PollFlags::OUT;
            }
            f
        };
        let mut fds = [
            PollFd::new(a, flags(&ab, &ba)),
            PollFd::new(b, flags(&ba, &ab)),
            PollFd::from_borrowed_fd(stop, PollFlags::IN),
        ];
        if !wait(&mut fds, None) || readable(&fds[2]) {
            return;
        }
        if fds[0].revents().contains(PollFlags::ERR) || fds[1].revents().contains(PollFlags::ERR) {
            return;
        }
        if ab.step(a, b).is_err() || ba.step(b, a).is_err() {
            return;
        }
    }
}

struct Assoc {
    upstream: UdpSocket,
    last: Instant,
}

fn serve_udp(host: UdpSocket, target: SocketAddr, stop: Arc<OwnedFd>, idle: Duration) {
    let mut assocs: HashMap<SocketAddr, Assoc> = HashMap::new();
    let mut buf = vec![0u8; 65536];
    let tick = Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    let unspecified = match target.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    loop {
        let clients: Vec<SocketAddr> = assocs.keys().copied().collect();
        let (host_ready, stop_ready, ready): (bool, bool, Vec<bool>) = {
            let mut fds = Vec::with_capacity(clients.len() + 2);
            fds.push(PollFd::new(&host, PollFlags::IN));
            fds.push(PollFd::new(&*stop, PollFlags::IN));
            for c in &clients {
                if let Some(a) = assocs.get(c) {
                    fds.push(PollFd::new(&a.upstream, PollFlags::IN));
                }
            }
            if !wait(&mut fds, Some(&tick)) {
                break;
            }
            (
                readable(&fds[0]),
                readable(&fds[1]),
                fds[2..].iter().map(readable).collect(),
            )
        };
        if stop_ready {
            break;
        }
        let now = Instant::now();
        if host_ready {
            loop {
                let (n, client) = match host.recv_from(&mut buf) {
                    Ok(x) => x,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                if !assocs.contains_key(&client) {
                    if assocs.len() >= UDP_MAX_ASSOC {
                        if let Some(oldest) =
                            assocs.iter().min_by_key(|(_, a)| a.last).map(|(k, _)| *k)
                        {
                            assocs.remove(&oldest);
                        }
                    }
                    let made = UdpSocket::bind(SocketAddr::new(unspecified, 0)).and_then(|s| {
                        s.connect(target)?;
                        s.set_nonblocking(true)?;
                        Ok(s)
                    });
                    match made {
                        Ok(upstream) => {
                            assocs.insert(
                                client,
                                Assoc {
                                    upstream,
                                    last: now,
                                },
                            );
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "port proxy: no upstream UDP socket");
                            continue;
                        }
                    }
                }
                if let Some(a) = assocs.get_mut(&client) {
                    a.last = now;
                    // A refused or dropped datagram is UDP's normal fate.
                    let _ = a.upstream.send(&buf[..n]);
                }
            }
        }
        for (client, is_ready) in clients.iter().zip(ready) {
            if !is_ready {
                continue;
            }
            let Some(a) = assocs.get_mut(client) else {
                continue;
            };
            loop {
                match a.upstream.recv(&mut buf) {
                    Ok(n) => {
                        a.last = now;
                        let _ = host.send_to(&buf[..n], client);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // WouldBlock, or ECONNREFUSED from an ICMP error.
                    Err(_) => break,
                }
            }
        }
        assocs.retain(|_, a| now.duration_since(a.last) < idle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::path::Path;

    fn lo() -> IpAddr {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }

    fn tcp(host_port: u16, container_port: u16) -> PortMapping {
        PortMapping {
            host_ip: Some(lo()),
            host_port,
            container_port,
            proto: Proto::Tcp,
        }
    }

    #[test]
    fn tcp_round_trip_with_half_close() {
        // The "container": reads everything until EOF, then answers.
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let srv = std::thread::spawn(move || {
            let (mut s, _) = server.accept().unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).unwrap();
            s.write_all(format!("got {} bytes", got.len()).as_bytes())
                .unwrap();
        });
        let proxy = PortProxy::start(&[tcp(0, port)], lo()).unwrap();
        let host_port = proxy.bound()[0].host_port;
        assert_ne!(host_port, 0);
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, host_port)).unwrap();
        let payload = vec![7u8; 300_000];
        c.write_all(&payload).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "got 300000 bytes");
        srv.join().unwrap();
        proxy.stop();
    }

    #[test]
    fn busy_port_is_an_error_naming_it_and_nothing_stays_bound() {
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let busy_port = busy.local_addr().unwrap().port();
        let free = TcpListener::bind("127.0.0.1:0").unwrap();
        let free_port = free.local_addr().unwrap().port();
        drop(free);
        let err = PortProxy::start(&[tcp(free_port, 80), tcp(busy_port, 81)], lo()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&format!("127.0.0.1:{busy_port}")), "{msg}");
        assert!(msg.contains("tcp"), "{msg}");
        // The first port was released again.
        TcpListener::bind(("127.0.0.1", free_port)).unwrap();
    }

    #[test]
    fn stop_closes_listeners_and_open_connections() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let proxy = PortProxy::start(&[tcp(0, port)], lo()).unwrap();
        let host_port = proxy.bound()[0].host_port;
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, host_port)).unwrap();
        let (_held, _) = server.accept().unwrap();
        proxy.stop();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        assert_eq!(c.read(&mut buf).unwrap_or(0), 0);
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, host_port)).is_err());
    }

    #[test]
    fn no_host_ip_listens_on_ipv4_and_ipv6_on_one_port() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let srv = std::thread::spawn(move || {
            for _ in 0..2 {
                let (mut s, _) = server.accept().unwrap();
                s.write_all(b"hi").unwrap();
            }
        });
        let m = PortMapping {
            host_ip: None,
            ..tcp(0, port)
        };
        let proxy = PortProxy::start(&[m], lo()).unwrap();
        let bound = proxy.bound().to_vec();
        let v4 = bound[0].host_port;
        assert_eq!(bound[0].host_ip, None);
        let mut targets = vec![SocketAddr::from((Ipv4Addr::LOCALHOST, v4))];
        if Path::new("/proc/net/if_inet6").exists() {
            assert_eq!(bound.len(), 2, "{bound:?}");
            assert_eq!(bound[1].host_ip, Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)));
            assert_eq!(bound[1].host_port, v4);
            targets.push(SocketAddr::from((Ipv6Addr::LOCALHOST, v4)));
        }
        for t in &targets {
            let mut c = TcpStream::connect(t).unwrap();
            let mut got = String::new();
            c.read_to_string(&mut got).unwrap();
            assert_eq!(got, "hi", "{t}");
        }
        if targets.len() == 1 {
            // Nothing to serve the second accept.
            TcpStream::connect(targets[0]).unwrap();
        }
        srv.join().unwrap();
        proxy.stop();
    }

    #[test]
    fn idle_udp_associations_are_dropped() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let target = server.local_addr().unwrap();
        let host = UdpSocket::bind("127.0.0.1:0").unwrap();
        host.set_nonblocking(true).unwrap();
        let host_addr = host.local_addr().unwrap();
        let stop = Arc::new(eventfd(0, EventfdFlags::CLOEXEC).unwrap());
        let stop2 = Arc::clone(&stop);
        let t = std::thread::spawn(move || {
            serve_udp(host, target, stop2, Duration::from_millis(200));
        });
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut buf = [0u8; 16];
        client.send_to(b"a", host_addr).unwrap();
        let (_, first) = server.recv_from(&mut buf).unwrap();
        client.send_to(b"b", host_addr).unwrap();
        let (_, again) = server.recv_from(&mut buf).unwrap();
        assert_eq!(first, again, "one association per client while active");
        // Past the idle time (and the 1 s sweep tick) the association is
        // gone: the next datagram gets a new upstream socket.
        std::thread::sleep(Duration::from_millis(1500));
        client.send_to(b"c", host_addr).unwrap();
        let (_, later) = server.recv_from(&mut buf).unwrap();
        assert_ne!(first, later);
        rustix::io::write(&*stop, &1u64.to_ne_bytes()).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn udp_round_trip_per_client() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let srv = std::thread::spawn(move || {
            let mut buf = [0u8; 100];
            for _ in 0..2 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                let mut reply = b"echo ".to_vec();
                reply.extend_from_slice(&buf[..n]);
                server.send_to(&reply, from).unwrap();
            }
        });
        let m = PortMapping {
            host_ip: Some(lo()),
            host_port: 0,
            container_port: port,
            proto: Proto::Udp,
        };
        let proxy = PortProxy::start(&[m], lo()).unwrap();
        let host_port = proxy.bound()[0].host_port;
        for who in ["a", "b"] {
            let c = UdpSocket::bind("127.0.0.1:0").unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            c.send_to(who.as_bytes(), ("127.0.0.1", host_port)).unwrap();
            let mut buf = [0u8; 100];
            let (n, from) = c.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], format!("echo {who}").as_bytes());
            assert_eq!(from.port(), host_port);
        }
        srv.join().unwrap();
        proxy.stop();
    }
}
