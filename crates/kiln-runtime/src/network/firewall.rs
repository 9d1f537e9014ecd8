//! The iptables rules of a bridge: outbound NAT and FORWARD accepts, each
//! tagged with the comment `kiln bridge <name>`. The host's `iptables` is
//! run (iptables-nft on Debian 12), with `-w` so that a concurrent Docker or
//! kiln holding the xtables lock is waited for
//! ([iptables(8)](https://man7.org/linux/man-pages/man8/iptables.8.html)).

use std::process::{Command, Stdio};

use super::{NetworkConfig, NetworkError};

/// One rule: its table, chain and match/target arguments.
struct Rule {
    table: &'static str,
    chain: &'static str,
    args: Vec<String>,
}

impl Rule {
    fn describe(&self) -> String {
        format!("-t {} {} {}", self.table, self.chain, self.args.join(" "))
    }
}

fn rules(cfg: &NetworkConfig) -> Vec<Rule> {
    let comment = format!("kiln bridge {}", cfg.bridge);
    let tag = |mut args: Vec<String>| {
        let target = args.split_off(args.len() - 2);
        args.extend(["-m", "comment", "--comment", &comment].map(String::from));
        args.extend(target);
        args
    };
    let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let br = cfg.bridge.as_str();
    let subnet = cfg.subnet_string();
    vec![
        // Containers reach the outside world with the host's address.
        Rule {
            table: "nat",
            chain: "POSTROUTING",
            args: tag(s(&["-s", &subnet, "!", "-o", br, "-j", "MASQUERADE"])),
        },
        // Anything coming from the bridge may be forwarded (to the outside
        // and between containers when br_netfilter is loaded)...
        Rule {
            table: "filter",
            chain: "FORWARD",
            args: tag(s(&["-i", br, "-j", "ACCEPT"])),
        },
        // ...and replies to it may come back.
        Rule {
            table: "filter",
            chain: "FORWARD",
            args: tag(s(&[
                "-o",
                br,
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-j",
                "ACCEPT",
            ])),
        },
    ]
}

/// `iptables` from PATH, or from the sbin directories a non-login root
/// shell may not have in PATH.
fn iptables_path() -> &'static str {
    let in_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("iptables").is_file()));
    if in_path {
        return "iptables";
    }
    ["/usr/sbin/iptables", "/sbin/iptables"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
        .unwrap_or("iptables")
}

/// Runs `iptables -w -t TABLE OP CHAIN ARGS`; `Ok(true)` on success,
/// `Ok(false)` when iptables answered "no" (exit status 1, as `-C` does for
/// a missing rule), an error otherwise.
fn iptables(rule: &Rule, op: &str, action: &'static str) -> Result<bool, NetworkError> {
    let out = Command::new(iptables_path())
        .args(["-w", "-t", rule.table, op, rule.chain])
        .args(&rule.args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NetworkError::IptablesSpawn { source })?;
    if out.status.success() {
        return Ok(true);
    }
    if out.status.code() == Some(1) && op == "-C" {
        return Ok(false);
    }
    Err(NetworkError::Iptables {
        action,
        rule: rule.describe(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// Inserts each rule that is not there yet (at the top of its chain, ahead
/// of a DROP that another tool may have appended).
pub(super) fn ensure_rules(cfg: &NetworkConfig) -> Result<(), NetworkError> {
    for rule in rules(cfg) {
        if !iptables(&rule, "-C", "check")? {
            iptables(&rule, "-I", "insert")?;
        }
    }
    Ok(())
}

/// Deletes every copy of each rule.
pub(super) fn remove_rules(cfg: &NetworkConfig) -> Result<(), NetworkError> {
    for rule in rules(cfg) {
        // Bounded: a rule is never inserted twice, but be robust against
        // copies made by hand.
        for _ in 0..16 {
            if !iptables(&rule, "-C", "check")? {
                break;
            }
            iptables(&rule, "-D", "delete")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn rules_carry_the_comment_before_the_target() {
        let cfg = NetworkConfig {
            bridge: "kiln0".into(),
            subnet: (Ipv4Addr::new(10, 209, 0, 0), 16),
            state_dir: "/nonexistent".into(),
        };
        let r = rules(&cfg);
        assert_eq!(
            r[0].describe(),
            "-t nat POSTROUTING -s 10.209.0.0/16 ! -o kiln0 -m comment --comment kiln bridge kiln0 -j MASQUERADE"
        );
        assert_eq!(
            r[1].describe(),
            "-t filter FORWARD -i kiln0 -m comment --comment kiln bridge kiln0 -j ACCEPT"
        );
    }
}
