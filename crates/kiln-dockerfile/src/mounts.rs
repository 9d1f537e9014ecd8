//! The values of RUN's `--mount`, `--network` and `--security` flags.
//!
//! Rules are BuildKit's (`instructions/commands_runmount.go` and the
//! dispatch code that applies defaults): a `--mount` value is one CSV record
//! of `key=value` fields (bare `ro`, `rw` and `required` allowed); `type`
//! defaults to `bind`; bind and secret/ssh mounts are read-only unless `rw`
//! is given, cache and tmpfs read-write; a cache id defaults to its target,
//! a secret id to its source or the base name of its target, and a secret
//! target to `/run/secrets/<id>` (unless it goes to an `env`); an ssh id
//! defaults to `default`. Values arrive already variable-expanded.

use std::borrow::Cow;

use thiserror::Error;

use crate::paths::clean;

/// A bad mount, network or security value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MountError {
    /// A quoted field that does not end.
    #[error("failed to parse csv mounts: unterminated quote in `{value}`")]
    Csv {
        /// The value.
        value: String,
    },
    /// `type=nfs`.
    #[error("unsupported mount type `{value}` (expected bind, cache, tmpfs, secret or ssh)")]
    Type {
        /// The value.
        value: String,
    },
    /// A field without `=` that needs one.
    #[error("invalid field `{field}`: must be a key=value pair")]
    NotKeyValue {
        /// The field.
        field: String,
    },
    /// A key no mount has.
    #[error("unexpected key `{key}` in `{field}`")]
    UnknownKey {
        /// The key.
        key: String,
        /// The field.
        field: String,
    },
    /// A key this mount type does not take.
    #[error("unexpected key `{key}` for mount type `{kind}`")]
    KeyForType {
        /// The key.
        key: String,
        /// The type.
        kind: &'static str,
    },
    /// A value that does not parse.
    #[error("invalid value `{value}` for {key}")]
    Value {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// `sharing=bogus`.
    #[error("unsupported sharing value `{value}` (expected shared, private or locked)")]
    Sharing {
        /// The value.
        value: String,
    },
    /// Something this type does not allow (mode on a bind mount, …).
    #[error("{what} not allowed for `{kind}` type mounts")]
    NotAllowed {
        /// What.
        what: &'static str,
        /// The type.
        kind: &'static str,
    },
    /// A bind, cache or tmpfs mount without a target, or a target of `/`.
    #[error(
        "invalid mount target `{target}` for `{kind}` mount: a target other than / is required"
    )]
    Target {
        /// The target given.
        target: String,
        /// The type.
        kind: &'static str,
    },
    /// A secret mount without source, target, id or env.
    #[error("invalid secret mount: one of source, target, id or env is required")]
    SecretWithoutName,
    /// A secret mount with both `source` and `id`.
    #[error("invalid secret mount: both source and id can't be set")]
    SecretSourceAndId,
    /// `--network=bogus`.
    #[error("invalid network mode `{value}` (expected default, none or host)")]
    Network {
        /// The value.
        value: String,
    },
    /// `--security=bogus`.
    #[error("security `{value}` is not valid (expected sandbox or insecure)")]
    Security {
        /// The value.
        value: String,
    },
}

/// The kind of a RUN mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// Files from the context, a stage or an image.
    Bind,
    /// A persistent cache directory.
    Cache,
    /// A tmpfs.
    Tmpfs,
    /// A build secret as a file or an environment variable.
    Secret,
    /// The ssh agent socket.
    Ssh,
}

impl MountType {
    /// The name used in `type=`.
    pub fn name(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share a cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSharing {
    /// Used by all writers at once (the default).
    Shared,
    /// A new one for each concurrent writer.
    Private,
    /// Writers wait for each other.
    Locked,
}

/// One `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The type.
    pub kind: MountType,
    /// Where it is mounted (relative targets are relative to WORKDIR).
    pub target: Option<String>,
    /// Path in the source (context, stage, image; the secret's source).
    pub source: Option<String>,
    /// Stage or image to take files from (bind and cache).
    pub from: Option<String>,
    /// Mounted read-only.
    pub read_only: bool,
    /// The id of a cache, secret or ssh mount.
    pub cache_id: Option<String>,
    /// Cache sharing mode.
    pub sharing: CacheSharing,
    /// A secret or ssh mount that must be provided.
    pub required: bool,
    /// File mode (cache, secret, ssh).
    pub mode: Option<u32>,
    /// Owner (cache, secret, ssh).
    pub uid: Option<u32>,
    /// Group (cache, secret, ssh).
    pub gid: Option<u32>,
    /// tmpfs size in bytes.
    pub size_limit: Option<u64>,
    /// Environment variable a secret is exposed as.
    pub env: Option<String>,
}

/// One CSV record, as Go's `encoding/csv` reads it: quotes are special at
/// the start of a field only, `""` inside quotes is a quote.
fn csv_fields(value: &str) -> Result<Vec<Cow<'_, str>>, MountError> {
    if !value.contains('"') {
        return Ok(value.split(',').map(Cow::Borrowed).collect());
    }
    let mut fields = Vec::new();
    let mut chars = value.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => {
                        return Err(MountError::Csv {
                            value: value.to_string(),
                        })
                    }
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            // Text after the closing quote up to the comma stays.
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                field.push(c);
                chars.next();
            }
        }
        fields.push(Cow::Owned(field));
        if chars.next().is_none() {
            break;
        }
    }
    Ok(fields)
}

fn parse_bool(key: &str, value: &str) -> Result<bool, MountError> {
    // Go's strconv.ParseBool.
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(MountError::Value {
            key: key.into(),
            value: value.into(),
        }),
    }
}

/// docker/go-units `RAMInBytes`: a number with an optional binary unit.
fn ram_in_bytes(value: &str) -> Option<u64> {
    let v = value.trim();
    let num_end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let bytes = n * mult;
    (bytes.is_finite() && bytes <= u64::MAX as f64).then_some(bytes as u64)
}

fn base_name(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// `s` in ASCII lowercase, without a copy when it already is.
fn lowercase(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Parse one `--mount` value.
pub fn parse_mount(value: &str) -> Result<Mount, MountError> {
    let mut m = Mount {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        read_only: false,
        cache_id: None,
        sharing: CacheSharing::Shared,
        required: false,
        mode: None,
        uid: None,
        gid: None,
        size_limit: None,
        env: None,
    };
    let mut ro_auto = true;
    let mut sharing_set = false;
    let mut fields = csv_fields(value)?;
    // The type decides which keys are allowed, wherever it is written.
    if let Some(t) = fields.iter().find_map(|f| {
        let (k, v) = f.split_once('=')?;
        k.eq_ignore_ascii_case("type").then(|| v.to_string())
    }) {
        m.kind = match t.to_ascii_lowercase().as_str() {
            "bind" => MountType::Bind,
            "cache" => MountType::Cache,
            "tmpfs" => MountType::Tmpfs,
            "secret" => MountType::Secret,
            "ssh" => MountType::Ssh,
            _ => return Err(MountError::Type { value: t }),
        };
    }
    fields.retain(|f| !f.is_empty());
    let kind = m.kind.name();
    let secret_or_ssh = matches!(m.kind, MountType::Secret | MountType::Ssh);
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (lowercase(k), Some(v)),
            None => (lowercase(field), None),
        };
        let Some(value) = value else {
            match &*key {
                "readonly" | "ro" => m.read_only = true,
                "readwrite" | "rw" => m.read_only = false,
                "required" if secret_or_ssh => m.required = true,
                "required" => {
                    return Err(MountError::KeyForType {
                        key: key.into_owned(),
                        kind,
                    })
                }
                _ => {
                    return Err(MountError::NotKeyValue {
                        field: field.to_string(),
                    })
                }
            }
            if key != "required" {
                ro_auto = false;
            }
            continue;
        };
        let bad = || MountError::Value {
            key: key.to_string(),
            value: value.to_string(),
        };
        match &*key {
            "type" => {}
            "from" => m.from = Some(value.to_string()),
            "source" | "src" => m.source = Some(value.to_string()),
            "target" | "dst" | "destination" => m.target = Some(value.to_string()),
            "readonly" | "ro" => {
                m.read_only = parse_bool(&key, value)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !parse_bool(&key, value)?;
                ro_auto = false;
            }
            "required" if secret_or_ssh => m.required = parse_bool(&key, value)?,
            "size" if m.kind == MountType::Tmpfs => {
                m.size_limit = Some(ram_in_bytes(value).ok_or_else(bad)?)
            }
            "required" | "size" => {
                return Err(MountError::KeyForType {
                    key: key.into_owned(),
                    kind,
                })
            }
            "id" => m.cache_id = Some(value.to_string()),
            "sharing" => {
                m.sharing = match value.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => {
                        return Err(MountError::Sharing {
                            value: value.to_string(),
                        })
                    }
                };
                sharing_set = true;
            }
            "mode" => m.mode = Some(u32::from_str_radix(value, 8).map_err(|_| bad())?),
            "uid" => m.uid = Some(value.parse().map_err(|_| bad())?),
            "gid" => m.gid = Some(value.parse().map_err(|_| bad())?),
            "env" => m.env = Some(value.to_string()),
            _ => {
                return Err(MountError::UnknownKey {
                    key: key.into_owned(),
                    field: field.to_string(),
                })
            }
        }
    }

    let file_info_allowed = secret_or_ssh || m.kind == MountType::Cache;
    if !file_info_allowed {
        for (what, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(MountError::NotAllowed { what, kind });
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if sharing_set && m.kind != MountType::Cache {
        return Err(MountError::NotAllowed {
            what: "cache sharing",
            kind,
        });
    }
    if m.from.is_some() && !matches!(m.kind, MountType::Bind | MountType::Cache) {
        return Err(MountError::NotAllowed { what: "from", kind });
    }
    if m.env.is_some() && m.kind != MountType::Secret {
        return Err(MountError::NotAllowed { what: "env", kind });
    }
    match m.kind {
        MountType::Bind | MountType::Cache | MountType::Tmpfs => {
            let target = m.target.clone().unwrap_or_default();
            if target.is_empty() || target.trim_end_matches('/').is_empty() {
                return Err(MountError::Target { target, kind });
            }
            if m.kind == MountType::Cache && m.cache_id.is_none() {
                m.cache_id = Some(clean(&target));
            }
        }
        MountType::Secret => {
            if m.source.is_some() && m.cache_id.is_some() {
                return Err(MountError::SecretSourceAndId);
            }
            if m.cache_id.is_none() {
                m.cache_id = match (&m.source, &m.target) {
                    (Some(s), _) => Some(s.clone()),
                    (None, Some(t)) => Some(base_name(t)),
                    (None, None) if m.env.is_some() => m.env.clone(),
                    (None, None) => return Err(MountError::SecretWithoutName),
                };
            }
            if m.target.is_none() && m.env.is_none() {
                let id = m.cache_id.clone().unwrap_or_default();
                m.target = Some(format!("/run/secrets/{}", base_name(&id)));
            }
        }
        MountType::Ssh => {
            if m.cache_id.is_none() {
                m.cache_id = Some("default".into());
            }
        }
    }
    Ok(m)
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// The build's default network.
    Default,
    /// No network.
    None,
    /// The host's network.
    Host,
}

/// Parse a `--network` value.
pub fn parse_network(value: &str) -> Result<NetworkMode, MountError> {
    match value {
        "default" => Ok(NetworkMode::Default),
        "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        _ => Err(MountError::Network {
            value: value.to_string(),
        }),
    }
}

/// `RUN --security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityMode {
    /// The default confinement.
    Sandbox,
    /// Privileged (needs the `security.insecure` entitlement).
    Insecure,
}

/// Parse a `--security` value.
pub fn parse_security(value: &str) -> Result<SecurityMode, MountError> {
    match value {
        "sandbox" => Ok(SecurityMode::Sandbox),
        "insecure" => Ok(SecurityMode::Insecure),
        _ => Err(MountError::Security {
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: &str) -> Mount {
        parse_mount(v).unwrap_or_else(|e| panic!("{v}: {e}"))
    }

    fn err(v: &str) -> MountError {
        parse_mount(v).expect_err(v)
    }

    #[test]
    fn bind_defaults() {
        let m = ok("target=/src");
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.read_only);
        assert_eq!(m.target.as_deref(), Some("/src"));
        let m = ok("type=bind,source=app,dst=/app,from=build,rw");
        assert!(!m.read_only);
        assert_eq!(
            (m.source.as_deref(), m.from.as_deref()),
            (Some("app"), Some("build"))
        );
        assert!(!ok("type=bind,destination=/x,readwrite=true").read_only);
        assert!(!ok("type=bind,target=/x,ro=false").read_only);
        assert!(ok("type=bind,target=/x,readonly").read_only);
    }

    #[test]
    fn cache_defaults_and_options() {
        let m = ok("type=cache,target=/root/.cache/pip/");
        assert!(!m.read_only);
        assert_eq!(m.cache_id.as_deref(), Some("/root/.cache/pip"));
        assert_eq!(m.sharing, CacheSharing::Shared);
        let m = ok("type=cache,target=/c,id=pip,sharing=locked,mode=0700,uid=1000,gid=1000,from=base,source=/s");
        assert_eq!(m.cache_id.as_deref(), Some("pip"));
        assert_eq!(m.sharing, CacheSharing::Locked);
        assert_eq!(
            (m.mode, m.uid, m.gid),
            (Some(0o700), Some(1000), Some(1000))
        );
        assert_eq!(
            ok("type=cache,target=/c,sharing=PRIVATE").sharing,
            CacheSharing::Private
        );
        assert!(ok("type=cache,target=/c,ro").read_only);
    }

    #[test]
    fn tmpfs_size_units() {
        assert_eq!(
            ok("type=tmpfs,target=/t,size=64m").size_limit,
            Some(64 << 20)
        );
        assert_eq!(ok("type=tmpfs,target=/t,size=1g").size_limit, Some(1 << 30));
        assert_eq!(
            ok("type=tmpfs,target=/t,size=1.5KiB").size_limit,
            Some(1536)
        );
        assert_eq!(ok("type=tmpfs,target=/t,size=100").size_limit, Some(100));
        assert!(!ok("type=tmpfs,target=/t").read_only);
        assert!(matches!(
            err("type=tmpfs,target=/t,size=big"),
            MountError::Value { .. }
        ));
        assert!(matches!(
            err("type=cache,target=/t,size=1m"),
            MountError::KeyForType { .. }
        ));
    }

    #[test]
    fn secret_defaults() {
        let m = ok("type=secret,id=aws");
        assert_eq!(m.target.as_deref(), Some("/run/secrets/aws"));
        assert!(m.read_only);
        assert!(!m.required);
        let m = ok("type=secret,target=/root/.npmrc,required");
        assert_eq!(m.cache_id.as_deref(), Some(".npmrc"));
        assert!(m.required);
        let m = ok("type=secret,id=tok,env=TOKEN");
        assert_eq!((m.target, m.env.as_deref()), (None, Some("TOKEN")));
        let m = ok("type=secret,source=creds,required=false");
        assert_eq!(m.cache_id.as_deref(), Some("creds"));
        assert_eq!(ok("type=secret,id=x,mode=0440,uid=1").mode, Some(0o440));
        assert_eq!(err("type=secret"), MountError::SecretWithoutName);
        assert_eq!(
            err("type=secret,id=a,source=b"),
            MountError::SecretSourceAndId
        );
        assert!(matches!(
            err("type=secret,id=a,from=b"),
            MountError::NotAllowed { what: "from", .. }
        ));
        assert!(matches!(
            err("type=secret,id=a,sharing=locked"),
            MountError::NotAllowed { .. }
        ));
    }

    #[test]
    fn ssh_defaults() {
        let m = ok("type=ssh");
        assert_eq!(m.cache_id.as_deref(), Some("default"));
        assert_eq!(m.target, None);
        assert!(m.read_only);
        let m = ok("type=ssh,id=github,required=true,target=/ssh.sock");
        assert_eq!((m.cache_id.as_deref(), m.required), (Some("github"), true));
    }

    #[test]
    fn errors() {
        assert!(matches!(err("type=nfs,target=/x"), MountError::Type { .. }));
        assert!(matches!(
            err("target=/x,bogus=1"),
            MountError::UnknownKey { .. }
        ));
        assert!(matches!(
            err("target=/x,bogus"),
            MountError::NotKeyValue { .. }
        ));
        assert!(matches!(
            err("target=/x,required"),
            MountError::KeyForType { .. }
        ));
        assert!(matches!(
            err("target=/x,mode=0755"),
            MountError::NotAllowed { what: "mode", .. }
        ));
        assert!(matches!(
            err("type=tmpfs,target=/x,uid=1"),
            MountError::NotAllowed { what: "uid", .. }
        ));
        assert!(matches!(
            err("type=bind,target=/x,gid=1"),
            MountError::NotAllowed { what: "gid", .. }
        ));
        assert!(matches!(
            err("type=cache,target=/x,mode=999"),
            MountError::Value { .. }
        ));
        assert!(matches!(
            err("type=cache,target=/x,uid=-1"),
            MountError::Value { .. }
        ));
        assert!(matches!(
            err("type=cache,target=/x,ro=maybe"),
            MountError::Value { .. }
        ));
        assert!(matches!(
            err("type=cache,target=/x,sharing=maybe"),
            MountError::Sharing { .. }
        ));
        assert!(matches!(err("type=cache"), MountError::Target { .. }));
        assert!(matches!(
            err("type=bind,target=/"),
            MountError::Target { .. }
        ));
        assert!(matches!(
            err("type=tmpfs,target=/t,from=x"),
            MountError::NotAllowed { what: "from", .. }
        ));
        assert!(matches!(err("\"target=/x"), MountError::Csv { .. }));
        assert!(matches!(
            err("type=bind,target=/x,env=A"),
            MountError::NotAllowed { what: "env", .. }
        ));
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(
            ok("\"target=/a,b\",type=bind").target.as_deref(),
            Some("/a,b")
        );
        assert_eq!(
            ok("type=cache,\"target=/q\"\"x\"").target.as_deref(),
            Some("/q\"x")
        );
        assert_eq!(ok("TYPE=Cache,TARGET=/x").kind, MountType::Cache);
    }

    #[test]
    fn network_and_security() {
        assert_eq!(parse_network("none"), Ok(NetworkMode::None));
        assert_eq!(parse_network("host"), Ok(NetworkMode::Host));
        assert_eq!(parse_network("default"), Ok(NetworkMode::Default));
        assert!(parse_network("bridge").is_err());
        assert_eq!(parse_security("insecure"), Ok(SecurityMode::Insecure));
        assert_eq!(parse_security("sandbox"), Ok(SecurityMode::Sandbox));
        assert!(parse_security("root").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "[a-z=,\"/0-9 .]{0,60}") {
            let _ = parse_mount(&s);
        }
    }
}
