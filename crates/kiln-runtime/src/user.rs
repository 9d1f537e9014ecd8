//! `--user` / `USER` resolution against the image's own `/etc/passwd` and
//! `/etc/group`, read in-root, with Docker's rules (moby/sys/user
//! `GetExecUser`): `name|uid[:group|gid]`; a numeric uid that passwd does
//! not list still works (gid 0, HOME=/), as OpenShift's random uids need;
//! supplementary groups only when no group is given; ids outside
//! 0..=2147483647 are errors, never root.

use std::io;
use std::path::Path;

use thiserror::Error;

use crate::inroot;

/// The largest uid or gid Docker accepts.
pub const MAX_ID: u64 = (1 << 31) - 1;

/// The user a container process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub additional_gids: Vec<u32>,
    /// Home directory (passwd, else `/`).
    pub home: String,
}

/// A user that cannot be resolved.
#[derive(Debug, Error)]
pub enum UserError {
    /// No passwd entry for a user name.
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    /// No group entry for a group name.
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    /// A number out of range.
    #[error("uids and gids must be in range 0-{max}: {value}", max = MAX_ID)]
    Range {
        /// What was given.
        value: String,
    },
    /// Reading the image's files failed.
    #[error("failed to read {path} in the container: {source}")]
    Read {
        /// The file.
        path: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
}

struct Passwd {
    name: String,
    uid: u64,
    gid: u64,
    home: String,
}

struct Group {
    name: String,
    gid: u64,
    members: Vec<String>,
}

fn parse_passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 || f[0].is_empty() {
                return None;
            }
            Some(Passwd {
                name: f[0].to_string(),
                uid: f[2].trim().parse().ok()?,
                gid: f[3].trim().parse().ok()?,
                home: f.get(5).copied().unwrap_or("").to_string(),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 || f[0].is_empty() {
                return None;
            }
            Some(Group {
                name: f[0].to_string(),
                gid: f[2].trim().parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// A decimal id, range-checked; `None` if `s` is not all digits.
fn numeric(s: &str) -> Result<Option<u32>, UserError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        // A leading '-' is a negative number to Docker: out of range.
        if s.starts_with('-') && s.len() > 1 && s[1..].bytes().all(|b| b.is_ascii_digit()) {
            return Err(UserError::Range { value: s.into() });
        }
        return Ok(None);
    }
    match s.parse::<u64>() {
        Ok(v) if v <= MAX_ID => Ok(Some(v as u32)),
        _ => Err(UserError::Range { value: s.into() }),
    }
}

fn checked(v: u64) -> Result<u32, UserError> {
    if v > MAX_ID {
        return Err(UserError::Range {
            value: v.to_string(),
        });
    }
    Ok(v as u32)
}

/// Resolve `spec` (`""` is root) against the two files' contents.
pub fn resolve(spec: &str, passwd: &str, group: &str) -> Result<ExecUser, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = parse_passwd(passwd);
    let mut out = ExecUser {
        uid: 0,
        gid: 0,
        additional_gids: Vec::new(),
        home: "/".into(),
    };
    let mut name: Option<String> = None;
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    match numeric(user_part)? {
        Some(uid) => {
            out.uid = uid;
            if let Some(p) = users.iter().find(|p| p.uid == u64::from(uid)) {
                out.gid = checked(p.gid)?;
                out.home = p.home.clone();
                name = Some(p.name.clone());
            }
        }
        None => {
            let p = users
                .iter()
                .find(|p| p.name == user_part)
                .ok_or_else(|| UserError::NoUser(user_part.into()))?;
            out.uid = checked(p.uid)?;
            out.gid = checked(p.gid)?;
            out.home = p.home.clone();
            name = Some(p.name.clone());
        }
    }
    let groups = parse_group(group);
    match group_part {
        Some(g) if !g.is_empty() => match numeric(g)? {
            Some(gid) => out.gid = gid,
            None => {
                let found = groups
                    .iter()
                    .find(|x| x.name == g)
                    .ok_or_else(|| UserError::NoGroup(g.into()))?;
                out.gid = checked(found.gid)?;
            }
        },
        _ => {
            if let Some(n) = &name {
                for g in groups.iter().filter(|g| g.members.iter().any(|m| m == n)) {
                    let gid = checked(g.gid)?;
                    if !out.additional_gids.contains(&gid) {
                        out.additional_gids.push(gid);
                    }
                }
            }
        }
    }
    if out.home.is_empty() {
        out.home = "/".into();
    }
    Ok(out)
}

/// Resolve `spec` against the passwd and group files of the root file
/// system at `rootfs` (read in-root; missing files read as empty).
pub fn resolve_in_root(rootfs: &Path, spec: &str) -> Result<ExecUser, UserError> {
    let root = inroot::open_root(rootfs).map_err(|source| UserError::Read { path: "/", source })?;
    let read = |path: &'static str| -> Result<String, UserError> {
        let bytes = inroot::read_file(&root, path, 16 << 20)
            .map_err(|source| UserError::Read { path, source })?
            .unwrap_or_default();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    let passwd = read("/etc/passwd")?;
    let group = read("/etc/group")?;
    resolve(spec, &passwd, &group)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\napp:x:1000:\nstaff:x:50:app,www\nwheel:x:10:app\n";

    #[test]
    fn names_numbers_and_groups() {
        let r = resolve("", PASSWD, GROUP).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
        let r = resolve("app", PASSWD, GROUP).unwrap();
        assert_eq!((r.uid, r.gid), (1000, 1000));
        assert_eq!(r.additional_gids, vec![50, 10]);
        assert_eq!(r.home, "/home/app");
        // An explicit group: no supplementary groups.
        let r = resolve("app:www", PASSWD, GROUP).unwrap();
        assert_eq!((r.uid, r.gid), (1000, 33));
        assert!(r.additional_gids.is_empty());
        let r = resolve("33:7", PASSWD, GROUP).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (33, 7, "/var/www"));
    }

    #[test]
    fn an_unlisted_uid_runs_with_gid_0_and_home_slash() {
        let r = resolve("1000123", PASSWD, GROUP).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (1000123, 0, "/"));
        let r = resolve("1000123:0", "", "").unwrap();
        assert_eq!((r.uid, r.gid), (1000123, 0));
    }

    #[test]
    fn out_of_range_and_unknown_are_errors() {
        for bad in [
            "4294967296",
            "2147483648:0",
            "0:2147483648",
            "-1",
            "99999999999999999999999",
        ] {
            assert!(
                matches!(resolve(bad, PASSWD, GROUP), Err(UserError::Range { .. })),
                "{bad}"
            );
        }
        assert!(resolve("2147483647", PASSWD, GROUP).is_ok());
        assert!(matches!(
            resolve("nobody", PASSWD, GROUP),
            Err(UserError::NoUser(_))
        ));
        assert!(matches!(
            resolve("app:nogroup", PASSWD, GROUP),
            Err(UserError::NoGroup(_))
        ));
    }
}
