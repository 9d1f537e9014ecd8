//! Ownership and modes of copied files: `--chown` resolved against the
//! image's own `/etc/passwd` and `/etc/group` (read in-root from the image
//! being built, never the host's), `USER` for WORKDIR's directories, and
//! `--chmod` in octal or chmod(1)'s symbolic form.
//!
//! Docker's rules: `--chown=UID` alone uses the same number as the gid (the
//! Dockerfile reference); `--chown=NAME` alone takes NAME's primary group
//! from passwd (what `docker build` does, checked by `tests/compat.rs`); an
//! empty user or group (`:staff`, `app:`) and `root` are 0; a numeric id
//! needs no entry in the files. A name that is in neither file is an error
//! (BuildKit silently uses 0; `docs/compat.md`). USER for WORKDIR is
//! resolved like a container user: a name's primary group from passwd.

use std::fs;

use thiserror::Error;

use crate::tree::{Kind, Tree};

/// An owner or mode that cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PermsError {
    /// A user name not in the image's /etc/passwd.
    #[error("unable to find user {name}: no matching entries in passwd file")]
    NoUser {
        /// The name.
        name: String,
    },
    /// A group name not in the image's /etc/group.
    #[error("unable to find group {name}: no matching entries in group file")]
    NoGroup {
        /// The name.
        name: String,
    },
    /// A mode that is neither octal nor symbolic.
    #[error("invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777, or a symbolic mode")]
    Mode {
        /// As written.
        value: String,
    },
}

/// A `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// `0755`.
    Octal(u32),
    /// `u+x,go-w`: applied to each file's own mode.
    Symbolic(Vec<Clause>),
}

/// One clause of a symbolic mode: who, then operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    who: u32,
    ops: Vec<(char, Perm)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Perm {
    /// `rwxXst` letters.
    Bits(String),
    /// `u`, `g` or `o`: copy that class's bits.
    Copy(char),
}

impl Chmod {
    /// Parse `--chmod`.
    pub fn parse(value: &str) -> Result<Chmod, PermsError> {
        let bad = || PermsError::Mode {
            value: value.to_string(),
        };
        if !value.is_empty() && value.chars().all(|c| c.is_digit(8)) {
            let m = u32::from_str_radix(value, 8).map_err(|_| bad())?;
            if m > 0o7777 {
                return Err(bad());
            }
            return Ok(Chmod::Octal(m));
        }
        let mut clauses = Vec::new();
        for clause in value.split(',') {
            let who_part: String = clause.chars().take_while(|c| "ugoa".contains(*c)).collect();
            let mut who = 0;
            for c in who_part.chars() {
                who |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    _ => 0o7777,
                };
            }
            let mut rest = &clause[who_part.len()..];
            let mut ops = Vec::new();
            if rest.is_empty() {
                return Err(bad());
            }
            while let Some(op) = rest.chars().next() {
                if !"+-=".contains(op) {
                    return Err(bad());
                }
                rest = &rest[1..];
                let perm_len = rest.chars().take_while(|c| !"+-=".contains(*c)).count();
                let perm = &rest[..perm_len];
                rest = &rest[perm_len..];
                let p = match perm {
                    "u" | "g" | "o" => Perm::Copy(perm.chars().next().unwrap_or('u')),
                    p if p.chars().all(|c| "rwxXst".contains(c)) => Perm::Bits(p.to_string()),
                    _ => return Err(bad()),
                };
                ops.push((op, p));
            }
            clauses.push(Clause { who, ops });
        }
        Ok(Chmod::Symbolic(clauses))
    }

    /// The mode a file of `kind` with mode `mode` gets.
    pub fn apply(&self, mode: u32, kind: Kind) -> u32 {
        match self {
            Chmod::Octal(m) => *m,
            Chmod::Symbolic(clauses) => {
                let mut mode = mode & 0o7777;
                for c in clauses {
                    // No `who`: all, as chmod(1) with a zero umask.
                    let who = if c.who == 0 { 0o7777 } else { c.who };
                    for (op, perm) in &c.ops {
                        let bits = match perm {
                            Perm::Bits(letters) => {
                                let mut b = 0;
                                for l in letters.chars() {
                                    b |= match l {
                                        'r' => 0o444,
                                        'w' => 0o222,
                                        'x' => 0o111,
                                        'X' if kind == Kind::Dir || mode & 0o111 != 0 => 0o111,
                                        's' => 0o6000,
                                        't' => 0o1000,
                                        _ => 0,
                                    };
                                }
                                b
                            }
                            Perm::Copy(class) => {
                                let v = match class {
                                    'u' => (mode >> 6) & 7,
                                    'g' => (mode >> 3) & 7,
                                    _ => mode & 7,
                                };
                                v * 0o111
                            }
                        } & who;
                        match op {
                            '+' => mode |= bits,
                            '-' => mode &= !bits,
                            _ => mode = (mode & !(who & 0o7777)) | bits,
                        }
                    }
                }
                mode
            }
        }
    }
}

/// The content of `path` in `tree` (symlinks followed in-root), if it is
/// a regular file.
fn read_in(tree: &dyn Tree, path: &str) -> Option<String> {
    let (_, e) = tree.stat(path).ok()??;
    if e.kind != Kind::File {
        return None;
    }
    fs::read(&e.host)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// `name` → (uid, gid) from a passwd file's text.
fn passwd_lookup(text: &str, name: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            Some((f[2].parse().ok()?, f[3].parse().ok()?))
        } else {
            None
        }
    })
}

fn group_lookup(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() >= 3 && f[0] == name {
            f[2].parse().ok()
        } else {
            None
        }
    })
}

/// `--chown=USER[:GROUP]` in the image `tree`. An empty user or group
/// (`:staff`, `app:`) is id 0, as BuildKit (and Docker 20.10) make it.
pub fn resolve_chown(tree: &dyn Tree, spec: &str) -> Result<(u32, u32), PermsError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // A number alone is also the group; a name alone takes its primary
    // group from passwd (as BuildKit's file operations do).
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        // `root` is 0 without a passwd file (`FROM scratch`), as in BuildKit.
        Err(_) if user.is_empty() || user == "root" => (0, 0),
        Err(_) => {
            let passwd = read_in(tree, "/etc/passwd").unwrap_or_default();
            passwd_lookup(&passwd, user).ok_or_else(|| PermsError::NoUser {
                name: user.to_string(),
            })?
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) if g.is_empty() || g == "root" => 0,
            Err(_) => {
                let groups = read_in(tree, "/etc/group").unwrap_or_default();
                group_lookup(&groups, g).ok_or_else(|| PermsError::NoGroup {
                    name: g.to_string(),
                })?
            }
        },
    };
    Ok((uid, gid))
}

/// The image's `USER` as (uid, gid), as a container would run it: a
/// name's primary group from passwd, a bare number with gid 0 unless
/// passwd lists it.
pub fn resolve_user(tree: &dyn Tree, spec: &str) -> Result<(u32, u32), PermsError> {
    if spec.is_empty() {
        return Ok((0, 0));
    }
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let passwd = read_in(tree, "/etc/passwd").unwrap_or_default();
    let (uid, primary) = match user.parse::<u32>() {
        Ok(n) => {
            let gid = passwd
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 4 && f[2] == user).then(|| f[3].parse().ok())?
                })
                .unwrap_or(0);
            (n, gid)
        }
        Err(_) => passwd_lookup(&passwd, user).ok_or_else(|| PermsError::NoUser {
            name: user.to_string(),
        })?,
    };
    let gid = match group {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let groups = read_in(tree, "/etc/group").unwrap_or_default();
                group_lookup(&groups, g).ok_or_else(|| PermsError::NoGroup {
                    name: g.to_string(),
                })?
            }
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tree::ContextTree;

    #[test]
    fn octal_and_symbolic_modes() {
        assert_eq!(Chmod::parse("755").unwrap().apply(0o600, Kind::File), 0o755);
        assert_eq!(Chmod::parse("u+x").unwrap().apply(0o644, Kind::File), 0o744);
        assert_eq!(
            Chmod::parse("go-w").unwrap().apply(0o666, Kind::File),
            0o644
        );
        assert_eq!(Chmod::parse("a=r").unwrap().apply(0o755, Kind::File), 0o444);
        assert_eq!(Chmod::parse("+x").unwrap().apply(0o600, Kind::File), 0o711);
        assert_eq!(Chmod::parse("a+X").unwrap().apply(0o644, Kind::Dir), 0o755);
        assert_eq!(Chmod::parse("a+X").unwrap().apply(0o644, Kind::File), 0o644);
        assert_eq!(
            Chmod::parse("u=rwx,g=rx,o=").unwrap().apply(0, Kind::File),
            0o750
        );
        assert_eq!(Chmod::parse("g=u").unwrap().apply(0o640, Kind::File), 0o660);
        assert_eq!(
            Chmod::parse("u+s").unwrap().apply(0o755, Kind::File),
            0o4755
        );
        assert!(Chmod::parse("99").is_err());
        assert!(Chmod::parse("u+q").is_err());
        assert!(Chmod::parse("17777").is_err());
    }

    #[test]
    fn chown_names_come_from_the_image() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
        )
        .unwrap();
        fs::write(dir.path().join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        let t = ContextTree::new(dir.path().to_path_buf(), None);
        // A name alone: its primary group; a number alone: the same id.
        assert_eq!(resolve_chown(&t, "app").unwrap(), (1000, 1001));
        assert_eq!(resolve_chown(&t, ":staff").unwrap(), (0, 50));
        assert_eq!(resolve_chown(&t, "app:").unwrap(), (1000, 0));
        assert_eq!(resolve_chown(&t, "app:staff").unwrap(), (1000, 50));
        assert_eq!(resolve_chown(&t, "42:7").unwrap(), (42, 7));
        assert_eq!(resolve_chown(&t, "42").unwrap(), (42, 42));
        assert!(matches!(
            resolve_chown(&t, "nobody"),
            Err(PermsError::NoUser { .. })
        ));
        assert!(matches!(
            resolve_chown(&t, "app:nogroup"),
            Err(PermsError::NoGroup { .. })
        ));
        let bare = tempfile::tempdir().unwrap();
        let scratch = ContextTree::new(bare.path().to_path_buf(), None);
        assert_eq!(resolve_chown(&scratch, "root:root").unwrap(), (0, 0));
        assert_eq!(resolve_user(&t, "app").unwrap(), (1000, 1001));
        assert_eq!(resolve_user(&t, "1000").unwrap(), (1000, 1001));
        assert_eq!(resolve_user(&t, "7").unwrap(), (7, 0));
    }
}
