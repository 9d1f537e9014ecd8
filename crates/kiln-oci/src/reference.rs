//! Image references with Docker's normalisation: `busybox` is
//! `docker.io/library/busybox:latest`, `host:5000/ns/name:tag` keeps its
//! registry, `name@sha256:…` names a manifest by digest.
//!
//! The grammar is distribution's `reference` package (domain, lowercase
//! path components joined by `.`, `_`, `__` or dashes, a tag of at most 128
//! word characters, a digest); the normalisation is its
//! `ParseNormalizedNamed`: the first component is a registry only when it
//! contains `.` or `:`, or is `localhost`. kiln has its own type here rather
//! than the registry crate's because the store names images too.

use std::fmt;

use thiserror::Error;

use crate::digest::Digest;

/// Docker Hub's canonical registry name.
pub const DOCKER_HUB: &str = "docker.io";
const LEGACY_HUB: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const MAX_NAME_LEN: usize = 255;

/// A reference that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReferenceError {
    /// The general shape is wrong.
    #[error("invalid reference format: {input:?}")]
    Format {
        /// What was given.
        input: String,
    },
    /// Upper-case letters in the repository path.
    #[error("invalid reference format: repository name ({path}) must be lowercase")]
    Uppercase {
        /// The path.
        path: String,
    },
    /// A name longer than 255 characters.
    #[error("invalid reference format: repository name must not be more than 255 characters")]
    TooLong,
    /// A bad tag.
    #[error("invalid tag {tag:?}: tags are at most 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`")]
    Tag {
        /// The tag.
        tag: String,
    },
    /// A bad digest.
    #[error("invalid reference format: {input:?}: {reason}")]
    Digest {
        /// What was given.
        input: String,
        /// Why the digest is bad.
        reason: String,
    },
    /// A bare 64-hex string, which Docker reserves for image IDs.
    #[error("invalid repository name ({input}), cannot specify 64-byte hexadecimal strings")]
    HexName {
        /// What was given.
        input: String,
    },
}

/// A normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse with Docker's normalisation; a reference with neither tag nor
    /// digest gets no tag (see [`Reference::with_default_tag`]).
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        let format = || ReferenceError::Format {
            input: input.to_string(),
        };
        if input.is_empty() {
            return Err(format());
        }
        if input.len() == 64 && input.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexName {
                input: input.to_string(),
            });
        }
        let (rest, digest) = match input.split_once('@') {
            Some((rest, d)) => {
                let digest = d.parse::<Digest>().map_err(|e| ReferenceError::Digest {
                    input: input.to_string(),
                    reason: e.to_string(),
                })?;
                (rest, Some(digest))
            }
            None => (input, None),
        };
        // The tag is after the last `:` that comes after the last `/`.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let i = last_slash + i;
                (&rest[..i], Some(&rest[i + 1..]))
            }
            None => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(ReferenceError::Tag {
                    tag: tag.to_string(),
                });
            }
        }
        if name.is_empty() {
            return Err(format());
        }
        let (domain, path) = split_domain(name);
        if !valid_domain(&domain) {
            return Err(format());
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase { path });
        }
        if !path.split('/').all(valid_component) {
            return Err(format());
        }
        if domain.len() + 1 + path.len() > MAX_NAME_LEN {
            return Err(ReferenceError::TooLong);
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// This reference with tag `latest` when it has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".into());
        }
        self
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Tag {
                tag: tag.to_string(),
            });
        }
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// The same repository by digest (and no tag).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest),
        }
    }

    /// The registry host (`docker.io`, `host:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path in the registry (`library/busybox`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The full repository name (`docker.io/library/busybox`).
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The repository as Docker shows it (`busybox`, `ns/app`,
    /// `host:5000/app`).
    pub fn familiar_repository(&self) -> String {
        if self.domain == DOCKER_HUB {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.repository()
        }
    }

    /// The whole reference as Docker shows it (`busybox:latest`).
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_repository();
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.repository();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    let domain = if domain == LEGACY_HUB {
        DOCKER_HUB.to_string()
    } else {
        domain
    };
    let path = if domain == DOCKER_HUB && !path.contains('/') {
        format!("{OFFICIAL_PREFIX}{path}")
    } else {
        path
    };
    (domain, path)
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+ (([._]|__|-+) [a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// A host name or IPv4 (`[a-zA-Z0-9-]` labels joined by dots), or a
/// bracketed IPv6 address, with an optional port.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                match after {
                    "" => return true,
                    p => match p.strip_prefix(':') {
                        Some(port) => ("x", Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    host.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(s: &str) -> String {
        Reference::parse(s).unwrap().with_default_tag().to_string()
    }

    #[test]
    fn normalisation() {
        assert_eq!(full("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(full("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(full("user/app"), "docker.io/user/app:latest");
        assert_eq!(full("index.docker.io/app"), "docker.io/library/app:latest");
        assert_eq!(full("localhost/app"), "localhost/app:latest");
        assert_eq!(full("localhost:5000/a/b:t"), "localhost:5000/a/b:t");
        assert_eq!(
            full("registry-host:5000/team/httpd"),
            "registry-host:5000/team/httpd:latest"
        );
        assert_eq!(full("127.0.0.1:5000/x"), "127.0.0.1:5000/x:latest");
        assert_eq!(full("[::1]:5000/x"), "[::1]:5000/x:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            full(&format!("busybox@{d}")),
            format!("docker.io/library/busybox@{d}")
        );
        assert_eq!(
            full(&format!("busybox:1@{d}")),
            format!("docker.io/library/busybox:1@{d}")
        );
    }

    #[test]
    fn familiar() {
        let r = |s: &str| Reference::parse(s).unwrap().with_default_tag();
        assert_eq!(r("busybox").familiar(), "busybox:latest");
        assert_eq!(
            r("docker.io/library/busybox").familiar_repository(),
            "busybox"
        );
        assert_eq!(r("user/app").familiar_repository(), "user/app");
        assert_eq!(
            r("docker.io/library/a/b").familiar_repository(),
            "library/a/b"
        );
        assert_eq!(r("host:1/app:v").familiar(), "host:1/app:v");
    }

    #[test]
    fn errors() {
        for bad in [
            "",
            ":tag",
            "Busybox",
            "a//b",
            "a/-b",
            "a_",
            "a..b",
            "a:",
            "a:-x",
            "a@sha256:short",
            "host:port/x",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should fail");
        }
        assert!(matches!(
            Reference::parse(&"a".repeat(64)),
            Err(ReferenceError::HexName { .. })
        ));
        assert!(matches!(
            Reference::parse("Busybox"),
            Err(ReferenceError::Uppercase { .. })
        ));
        assert!(Reference::parse(&format!("a:{}", "t".repeat(129))).is_err());
        assert!(Reference::parse(&"a/".repeat(130)).is_err());
        // Separators as distribution allows them.
        for good in [
            "a.b",
            "a_b",
            "a__b",
            "a---b",
            "a-b/c.d_e",
            "x:_tag",
            "x:T.1-a",
        ] {
            assert!(Reference::parse(good).is_ok(), "{good:?} should parse");
        }
    }
}
