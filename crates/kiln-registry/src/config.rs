//! The registries file: which registry (and which mirrors) serve a
//! reference, and which of them may be reached over plain HTTP.
//!
//! The format is containers-registries.conf(5) version 2, the one Podman,
//! Buildah and skopeo read, so a user's existing file works:
//!
//! ```toml
//! [[registry]]
//! prefix = "docker.io"          # optional, defaults to `location`
//! location = "docker.io"
//! insecure = false
//! blocked = false
//! mirror-by-digest-only = false
//! [[registry.mirror]]
//! location = "127.0.0.1:5000"
//! insecure = true
//! ```
//!
//! Decisions, written down here because the man page leaves room:
//! - Files: `KILN_REGISTRIES_CONF` alone when set (tests); otherwise
//!   `/etc/kiln/registries.toml` then `$XDG_CONFIG_HOME/kiln/registries.toml`
//!   (default `~/.config`), the user's entries replacing the system's entry
//!   with the same prefix. A missing file is no error.
//! - The entry with the longest matching prefix wins; a prefix matches the
//!   whole repository name or a leading part of it ending at `/`;
//!   `*.example.com` matches any sub-domain (and rewrites nothing).
//! - Endpoints are the mirrors in file order, then the location itself;
//!   `mirror-by-digest-only` keeps mirrors for references by digest.
//! - `insecure` allows plain HTTP for that host (TLS is tried first and a
//!   certificate error is never a reason to fall back). Loopback hosts
//!   (`localhost`, `127.0.0.0/8`, `[::1]`) are treated as insecure, as
//!   Docker does.
//! - Docker Hub's API lives on `registry-1.docker.io`; its credentials are
//!   filed under `docker.io`.
//!
//! This module reads files and computes endpoints; it does no networking.

use std::path::{Path, PathBuf};

use kiln_oci::reference::DOCKER_HUB;
use kiln_oci::Reference;
use serde::Deserialize;
use thiserror::Error;

/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A registries file that cannot be used, or a reference it blocks.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("failed to read registries file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML for the format.
    #[error("invalid registries file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error.
        message: String,
    },
    /// An entry with neither prefix nor location, or a bad location.
    #[error("invalid registries file {path}: {message}")]
    Entry {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The reference is in a blocked registry.
    #[error("registry {prefix} is blocked in the registries file: refusing to access {reference}")]
    Blocked {
        /// The entry's prefix.
        prefix: String,
        /// The reference.
        reference: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FileV2 {
    #[serde(default)]
    registry: Vec<RawRegistry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawRegistry {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    mirror: Vec<RawMirror>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMirror {
    location: String,
    #[serde(default)]
    insecure: bool,
}

/// One `[[registry]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    /// What it applies to (`docker.io`, `example.com/team`, `*.corp`).
    pub prefix: String,
    /// Where it is served (replaces the prefix); empty for a wildcard.
    pub location: String,
    /// Plain HTTP allowed.
    pub insecure: bool,
    /// No access at all.
    pub blocked: bool,
    /// Mirrors only for references by digest.
    pub mirror_by_digest_only: bool,
    /// Tried in order before the location.
    pub mirrors: Vec<MirrorEntry>,
}

/// One `[[registry.mirror]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorEntry {
    /// Where (`host[:port][/path]`).
    pub location: String,
    /// Plain HTTP allowed.
    pub insecure: bool,
}

/// The merged registries configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistriesConf {
    entries: Vec<RegistryEntry>,
}

/// Where a repository is served: a host and the repository's path there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The registry name as users write it (`docker.io`, `host:5000`):
    /// the key for credentials.
    pub registry: String,
    /// The host (and port) the API is on (`registry-1.docker.io`).
    pub host: String,
    /// The repository path on that host (`library/busybox`).
    pub path: String,
    /// Plain HTTP allowed.
    pub insecure: bool,
    /// A mirror rather than the registry itself.
    pub mirror: bool,
}

impl RegistriesConf {
    /// Parse one file's text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &Path) -> Result<RegistriesConf, ConfigError> {
        let raw: FileV2 = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string(),
        })?;
        let bad = |message: String| ConfigError::Entry {
            path: origin.to_path_buf(),
            message,
        };
        let mut entries = Vec::new();
        for r in raw.registry {
            let location = r.location.unwrap_or_default();
            let prefix = match r.prefix {
                Some(p) if !p.is_empty() => p,
                _ if !location.is_empty() => location.clone(),
                _ => {
                    return Err(bad(
                        "a [[registry]] entry needs a prefix or a location".into()
                    ))
                }
            };
            let wildcard = prefix.starts_with("*.");
            if !wildcard && location.is_empty() {
                return Err(bad(format!("registry {prefix:?} has no location")));
            }
            if wildcard && !location.is_empty() && location != prefix {
                return Err(bad(format!(
                    "wildcard prefix {prefix:?} cannot have a location"
                )));
            }
            for l in std::iter::once(&location)
                .filter(|l| !l.is_empty() && !wildcard)
                .chain(r.mirror.iter().map(|m| &m.location))
            {
                check_location(l).map_err(|m| bad(format!("location {l:?}: {m}")))?;
            }
            entries.push(RegistryEntry {
                prefix,
                location: if wildcard { String::new() } else { location },
                insecure: r.insecure,
                blocked: r.blocked,
                mirror_by_digest_only: r.mirror_by_digest_only,
                mirrors: r
                    .mirror
                    .into_iter()
                    .map(|m| MirrorEntry {
                        location: m.location,
                        insecure: m.insecure,
                    })
                    .collect(),
            });
        }
        Ok(RegistriesConf { entries })
    }

    /// The files kiln reads, in order (see the module docs).
    pub fn default_paths() -> Vec<PathBuf> {
        if let Some(p) = std::env::var_os("KILN_REGISTRIES_CONF").filter(|v| !v.is_empty()) {
            return vec![PathBuf::from(p)];
        }
        let mut paths = vec![PathBuf::from("/etc/kiln/registries.toml")];
        if let Some(dir) = config_home() {
            paths.push(dir.join("kiln/registries.toml"));
        }
        paths
    }

    /// Read and merge the default files.
    pub fn load() -> Result<RegistriesConf, ConfigError> {
        Self::load_files(&Self::default_paths())
    }

    /// Read and merge `paths` (missing files skipped); a later file's entry
    /// replaces an earlier one with the same prefix.
    pub fn load_files(paths: &[PathBuf]) -> Result<RegistriesConf, ConfigError> {
        let mut conf = RegistriesConf::default();
        for path in paths {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => {
                    return Err(ConfigError::Read {
                        path: path.clone(),
                        source,
                    })
                }
            };
            let file = RegistriesConf::parse(&text, path)?;
            for e in file.entries {
                conf.entries.retain(|old| old.prefix != e.prefix);
                conf.entries.push(e);
            }
        }
        Ok(conf)
    }

    /// The entries.
    pub fn entries(&self) -> &[RegistryEntry] {
        &self.entries
    }

    /// The entry that applies to a repository name (`docker.io/library/x`).
    fn entry_for(&self, repository: &str) -> Option<&RegistryEntry> {
        self.entries
            .iter()
            .filter(|e| prefix_matches(&e.prefix, repository))
            .max_by_key(|e| e.prefix.len())
    }

    /// Where to look for `reference`, in order: mirrors, then the registry.
    pub fn endpoints(&self, reference: &Reference) -> Result<Vec<Endpoint>, ConfigError> {
        let repository = reference.repository();
        let Some(entry) = self.entry_for(&repository) else {
            return Ok(vec![endpoint(
                reference.domain(),
                reference.path(),
                self.host_insecure(reference.domain()),
                false,
            )]);
        };
        if entry.blocked {
            return Err(ConfigError::Blocked {
                prefix: entry.prefix.clone(),
                reference: reference.to_string(),
            });
        }
        let mut out = Vec::new();
        if entry.location.is_empty() {
            // A wildcard: the reference's own registry, with the entry's
            // settings.
            return Ok(vec![endpoint(
                reference.domain(),
                reference.path(),
                entry.insecure,
                false,
            )]);
        }
        let rest = &repository[entry.prefix.len()..];
        if reference.digest().is_some() || !entry.mirror_by_digest_only {
            for m in &entry.mirrors {
                let (host, path) = split_location(&format!("{}{rest}", m.location));
                out.push(endpoint(&host, &path, m.insecure, true));
            }
        }
        let (host, path) = split_location(&format!("{}{rest}", entry.location));
        out.push(endpoint(&host, &path, entry.insecure, false));
        Ok(out)
    }

    /// Whether plain HTTP is allowed for a host (`host[:port]`): loopback,
    /// or an entry (registry or mirror) for exactly that host says so.
    pub fn host_insecure(&self, host: &str) -> bool {
        if is_loopback(host) {
            return true;
        }
        self.entries.iter().any(|e| {
            (e.insecure && split_location(&e.location).0 == host)
                || e.mirrors
                    .iter()
                    .any(|m| m.insecure && split_location(&m.location).0 == host)
        })
    }
}

fn endpoint(registry: &str, path: &str, insecure: bool, mirror: bool) -> Endpoint {
    let host = if registry == DOCKER_HUB {
        DOCKER_HUB_API.to_string()
    } else {
        registry.to_string()
    };
    Endpoint {
        registry: registry.to_string(),
        insecure: insecure || is_loopback(&host),
        host,
        path: path.to_string(),
        mirror,
    }
}

/// `host[:port][/path]` → (`host[:port]`, `path`); Docker Hub's official
/// images get their `library/` back when the location is `docker.io`.
fn split_location(location: &str) -> (String, String) {
    let (host, path) = match location.split_once('/') {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => (location.to_string(), String::new()),
    };
    let host = if host == "index.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        host
    };
    let path = if host == DOCKER_HUB && !path.is_empty() && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    (host, path)
}

fn check_location(l: &str) -> Result<(), String> {
    if l.contains("://") {
        return Err("must be host[:port][/path], without a scheme".into());
    }
    let host = l.split('/').next().unwrap_or("");
    if host.is_empty() || l.ends_with('/') {
        return Err("must be host[:port][/path]".into());
    }
    Ok(())
}

fn prefix_matches(prefix: &str, repository: &str) -> bool {
    if let Some(suffix) = prefix.strip_prefix("*.") {
        let domain = repository.split('/').next().unwrap_or("");
        let host = domain.split(':').next().unwrap_or("");
        return host.ends_with(&format!(".{suffix}"));
    }
    repository == prefix
        || repository
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `localhost`, `127.0.0.0/8` or `[::1]`, with or without a port.
pub fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next() == Some("::1");
    } else {
        host.split(':').next().unwrap_or("")
    };
    if name == "localhost" {
        return true;
    }
    let octets: Vec<&str> = name.split('.').collect();
    octets.len() == 4
        && octets[0] == "127"
        && octets
            .iter()
            .all(|o| !o.is_empty() && o.parse::<u8>().is_ok())
}

/// `$XDG_CONFIG_HOME`, default `~/.config`.
pub(crate) fn config_home() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        RegistriesConf::parse(text, Path::new("test.toml")).unwrap()
    }

    fn hosts(c: &RegistriesConf, r: &str) -> Vec<(String, String, bool, bool)> {
        let r = Reference::parse(r).unwrap().with_default_tag();
        c.endpoints(&r)
            .unwrap()
            .into_iter()
            .map(|e| (e.host, e.path, e.insecure, e.mirror))
            .collect()
    }

    #[test]
    fn docker_hub_mirrored() {
        let c = conf(
            r#"
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "127.0.0.1:5000"
[[registry.mirror]]
location = "mirror.example.com/hub"
insecure = true
"#,
        );
        assert_eq!(
            hosts(&c, "debian:bookworm-slim"),
            vec![
                ("127.0.0.1:5000".into(), "library/debian".into(), true, true),
                (
                    "mirror.example.com".into(),
                    "hub/library/debian".into(),
                    true,
                    true
                ),
                (
                    "registry-1.docker.io".into(),
                    "library/debian".into(),
                    false,
                    false
                ),
            ]
        );
        assert!(c.host_insecure("mirror.example.com"));
        assert!(!c.host_insecure("registry-1.docker.io"));
        // Another registry is not touched.
        assert_eq!(
            hosts(&c, "quay.io/a/b"),
            vec![("quay.io".into(), "a/b".into(), false, false)]
        );
    }

    #[test]
    fn longest_prefix_and_rewrite() {
        let c = conf(
            r#"
[[registry]]
prefix = "example.com"
location = "example.com"
blocked = true
[[registry]]
prefix = "example.com/team"
location = "internal:5000/mirror/team"
insecure = true
[[registry]]
prefix = "*.corp"
insecure = true
"#,
        );
        assert_eq!(
            hosts(&c, "example.com/team/app:1"),
            vec![(
                "internal:5000".into(),
                "mirror/team/app".into(),
                true,
                false
            )]
        );
        // `example.com/teamx` is not under `example.com/team`.
        let r = Reference::parse("example.com/teamx/app").unwrap();
        assert!(matches!(c.endpoints(&r), Err(ConfigError::Blocked { .. })));
        assert_eq!(
            hosts(&c, "reg.corp:444/x"),
            vec![("reg.corp:444".into(), "x".into(), true, false)]
        );
        assert!(c.host_insecure("internal:5000"));
    }

    #[test]
    fn digest_only_mirrors() {
        let c = conf(
            r#"
[[registry]]
prefix = "docker.io"
location = "docker.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m:1"
"#,
        );
        assert_eq!(hosts(&c, "busybox").len(), 1);
        let d = format!("busybox@sha256:{}", "a".repeat(64));
        assert_eq!(hosts(&c, &d)[0].0, "m:1");
    }

    #[test]
    fn bad_files() {
        for bad in [
            "[[registry]]\ninsecure = true\n",
            "[[registry]]\nprefix = \"a.com\"\n",
            "[[registry]]\nlocation = \"https://a.com\"\n",
            "[[registry]]\nlocation = \"a.com\"\n[[registry.mirror]]\nlocation = \"\"\n",
            "registry = 3\n",
        ] {
            assert!(
                RegistriesConf::parse(bad, Path::new("x")).is_err(),
                "{bad:?} should fail"
            );
        }
    }

    #[test]
    fn later_files_replace_entries() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.toml");
        let b = dir.path().join("b.toml");
        std::fs::write(
            &a,
            "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"old:1\"\n",
        )
        .unwrap();
        std::fs::write(
            &b,
            "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"new:1\"\n",
        )
        .unwrap();
        let c = RegistriesConf::load_files(&[a, b, dir.path().join("missing")]).unwrap();
        assert_eq!(c.entries().len(), 1);
        assert_eq!(hosts(&c, "busybox")[0].0, "new:1");
    }

    #[test]
    fn loopback() {
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:1",
            "127.9.8.7",
            "[::1]:5000",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "127.0.0.1.example.com",
            "128.0.0.1",
            "localhostx",
            "[::2]",
            "10.0.0.1",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
