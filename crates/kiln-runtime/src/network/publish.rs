//! `-p` / `--publish` and `-P` / `--publish-all`, with Docker's syntax:
//! `[IP:][HOST:]CONTAINER[/PROTO]`, where HOST and CONTAINER may be ranges
//! of equal length (`8080-8081:80-81`), an empty HOST (`127.0.0.1::80`) or
//! no HOST at all (`80`) means "any free port" (host port 0 here; the
//! proxy reports the port the kernel gave), and an IPv6 IP is written in
//! brackets (`[::1]:8080:80`). A host range with a single container port
//! (Docker picks one free port of the range) is refused.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use super::NetworkError;

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PortMapping {
    /// Host address to listen on; `None` is every IPv4 address of the host
    /// (`0.0.0.0`), which includes 127.0.0.1.
    pub host_ip: Option<IpAddr>,
    /// Host port; 0 means "any free port" until the proxy has bound it.
    pub host_port: u16,
    /// Port inside the container.
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub proto: Proto,
}

impl PortMapping {
    /// The host address the proxy binds.
    pub fn bind_ip(&self) -> IpAddr {
        self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

/// `kiln port`'s line: `80/tcp -> 0.0.0.0:8080`.
impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ip = self.bind_ip();
        match ip {
            IpAddr::V4(ip) => write!(
                f,
                "{}/{} -> {}:{}",
                self.container_port, self.proto, ip, self.host_port
            ),
            IpAddr::V6(ip) => write!(
                f,
                "{}/{} -> [{}]:{}",
                self.container_port, self.proto, ip, self.host_port
            ),
        }
    }
}

/// A port or an inclusive port range.
fn parse_range(s: &str, allow_zero: bool) -> Result<(u16, u16), String> {
    let port = |p: &str| -> Result<u16, String> {
        let n: u16 = p
            .parse()
            .map_err(|_| format!("{p:?} is not a port number (0-65535)"))?;
        if n == 0 && !allow_zero {
            return Err("port 0 is not a valid container port".to_owned());
        }
        Ok(n)
    };
    match s.split_once('-') {
        None => {
            let p = port(s)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if a > b {
                return Err(format!("range {s:?} ends before it starts"));
            }
            Ok((a, b))
        }
    }
}

fn parse_proto(s: &str) -> Result<Proto, String> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Proto::Tcp),
        "udp" => Ok(Proto::Udp),
        other => Err(format!("protocol {other:?} is not supported (tcp or udp)")),
    }
}

/// Parses one `-p` value into one mapping per port.
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>, NetworkError> {
    let bad = |reason: String| NetworkError::InvalidPublish {
        spec: spec.to_owned(),
        reason,
    };
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((rest, p)) => (rest, parse_proto(p).map_err(bad)?),
        None => (spec, Proto::Tcp),
    };
    if rest.is_empty() {
        return Err(bad("no container port".to_owned()));
    }
    let (ip, ports) = if let Some(after) = rest.strip_prefix('[') {
        let (ip, tail) = after
            .split_once(']')
            .ok_or_else(|| bad("unclosed '[' around the IPv6 address".to_owned()))?;
        let tail = tail
            .strip_prefix(':')
            .ok_or_else(|| bad("expected ':' after the IPv6 address".to_owned()))?;
        (Some(ip), tail)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (None, rest),
            3 => (
                Some(parts[0]),
                rest.split_once(':').map_or(rest, |(_, t)| t),
            ),
            _ => {
                return Err(bad(
                    "too many ':' (write an IPv6 address in brackets)".to_owned()
                ))
            }
        }
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(ip) => Some(
            ip.parse::<IpAddr>()
                .map_err(|_| bad(format!("{ip:?} is not an IP address")))?,
        ),
    };
    let (host, container) = match ports.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", ports),
    };
    if ports.matches(':').count() > 1 {
        return Err(bad("too many ':'".to_owned()));
    }
    let (c_lo, c_hi) = parse_range(container, false).map_err(bad)?;
    let count = c_hi - c_lo;
    let host_start = if host.is_empty() {
        None
    } else {
        let (h_lo, h_hi) = parse_range(host, true).map_err(bad)?;
        if h_hi - h_lo != count {
            return Err(bad(if count == 0 {
                "a host port range needs a container port range of the same length".to_owned()
            } else {
                "host and container port ranges differ in length".to_owned()
            }));
        }
        if h_lo == 0 && count > 0 {
            return Err(bad("host port 0 cannot start a range".to_owned()));
        }
        Some(h_lo)
    };
    Ok((0..=count)
        .map(|i| PortMapping {
            host_ip,
            host_port: host_start.map_or(0, |h| h + i),
            container_port: c_lo + i,
            proto,
        })
        .collect())
}

/// `-P`: every exposed port (image config keys such as `80/tcp`, `53/udp`,
/// `8000-8001`) published on a free host port of every address. The host
/// ports are 0 here: [`super::PortProxy::bound`] tells which ones the kernel
/// gave.
pub fn publish_all<S: AsRef<str>>(exposed: &[S]) -> Result<Vec<PortMapping>, NetworkError> {
    let mut out = Vec::new();
    for e in exposed {
        let spec = e.as_ref();
        let bad = |reason: String| NetworkError::InvalidExposed {
            spec: spec.to_owned(),
            reason,
        };
        let (ports, proto) = match spec.rsplit_once('/') {
            Some((p, proto)) => (p, parse_proto(proto).map_err(bad)?),
            None => (spec, Proto::Tcp),
        };
        let (lo, hi) = parse_range(ports, false).map_err(bad)?;
        out.extend((lo..=hi).map(|p| PortMapping {
            host_ip: None,
            host_port: 0,
            container_port: p,
            proto,
        }));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn m(ip: Option<IpAddr>, host: u16, ctr: u16, proto: Proto) -> PortMapping {
        PortMapping {
            host_ip: ip,
            host_port: host,
            container_port: ctr,
            proto,
        }
    }

    #[test]
    fn publish_table() {
        let lo = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let v6 = Some(IpAddr::V6(Ipv6Addr::LOCALHOST));
        let cases: Vec<(&str, Vec<PortMapping>)> = vec![
            ("8080:80", vec![m(None, 8080, 80, Proto::Tcp)]),
            ("80", vec![m(None, 0, 80, Proto::Tcp)]),
            ("80/udp", vec![m(None, 0, 80, Proto::Udp)]),
            ("127.0.0.1:8080:80", vec![m(lo, 8080, 80, Proto::Tcp)]),
            ("127.0.0.1::80", vec![m(lo, 0, 80, Proto::Tcp)]),
            ("127.0.0.1::80/udp", vec![m(lo, 0, 80, Proto::Udp)]),
            ("8080:80/tcp", vec![m(None, 8080, 80, Proto::Tcp)]),
            ("5353:53/UDP", vec![m(None, 5353, 53, Proto::Udp)]),
            (":80", vec![m(None, 0, 80, Proto::Tcp)]),
            ("[::1]:8080:80", vec![m(v6, 8080, 80, Proto::Tcp)]),
            ("[::1]::80/udp", vec![m(v6, 0, 80, Proto::Udp)]),
            (
                "8080-8081:80-81",
                vec![m(None, 8080, 80, Proto::Tcp), m(None, 8081, 81, Proto::Tcp)],
            ),
            (
                "127.0.0.1:8080-8081:80-81/udp",
                vec![m(lo, 8080, 80, Proto::Udp), m(lo, 8081, 81, Proto::Udp)],
            ),
            (
                "80-81",
                vec![m(None, 0, 80, Proto::Tcp), m(None, 0, 81, Proto::Tcp)],
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(parse_publish(spec).unwrap(), want, "{spec}");
        }
    }

    #[test]
    fn publish_errors_name_the_spec() {
        for spec in [
            "",
            "/tcp",
            "abc",
            "8080:0",
            "8080:80/sctp",
            "70000:80",
            "8080-8082:80-81",
            "8080-8081:80",
            "81-80",
            "1.2.3:8080:80",
            "::1:8080:80",
            "[::1:8080:80",
            "a:b:c:d",
        ] {
            let err = parse_publish(spec).unwrap_err();
            assert!(
                matches!(err, NetworkError::InvalidPublish { .. }),
                "{spec}: {err}"
            );
            assert!(err.to_string().contains(&format!("{spec:?}")), "{err}");
        }
    }

    #[test]
    fn publish_all_maps_exposed_ports_to_free_ports() {
        let got = publish_all(&["80/tcp", "53/udp", "8000-8001", "80/tcp"]).unwrap();
        assert_eq!(
            got,
            vec![
                m(None, 0, 53, Proto::Udp),
                m(None, 0, 80, Proto::Tcp),
                m(None, 0, 8000, Proto::Tcp),
                m(None, 0, 8001, Proto::Tcp),
            ]
        );
        assert!(publish_all(&["http"]).is_err());
    }

    #[test]
    fn display_is_kiln_port_output() {
        assert_eq!(
            m(None, 8080, 80, Proto::Tcp).to_string(),
            "80/tcp -> 0.0.0.0:8080"
        );
        let v6 = Some(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(m(v6, 1, 2, Proto::Udp).to_string(), "2/udp -> [::1]:1");
    }

    #[test]
    fn serde_round_trip() {
        let x = m(Some(IpAddr::V4(Ipv4Addr::LOCALHOST)), 1, 2, Proto::Udp);
        let s = serde_json::to_string(&x).unwrap();
        assert!(s.contains("\"udp\""), "{s}");
        assert_eq!(serde_json::from_str::<PortMapping>(&s).unwrap(), x);
    }
}
