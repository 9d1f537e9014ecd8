//! The values of RUN's `--mount`, `--network`, `--security` and `--device`
//! flags, parsed into typed values by BuildKit's rules.
//!
//! This module owns the syntax and the defaults of those values; it gets them
//! already variable-expanded and touches nothing else (no stage lookup, no
//! file system, no secrets store). The rules are those of BuildKit's
//! Dockerfile frontend: `instructions/commands_runmount.go`,
//! `commands_runnetwork.go`, `commands_runsecurity.go`,
//! `commands_rundevice.go`, plus the checks and defaults its dispatcher
//! (`dockerfile2llb/convert_runmount.go`, `convert_secrets.go`,
//! `convert_ssh.go`) applies without needing the stage's state. See
//! <https://docs.docker.com/reference/dockerfile/#run---mount>.
//!
//! In short: a `--mount` value is one CSV record (Go `encoding/csv` quoting:
//! a field may be wrapped in `"…"`, `""` inside is a quote, a quote anywhere
//! else is an error) of `key=value` fields; keys are case-insensitive; bare
//! `ro`/`readonly`, `rw`/`readwrite` and `required` need no value. Fields
//! are read in order, so `required` and `size` are checked against the type
//! set *so far* (`size=1g,type=tmpfs` is an error, as in BuildKit). `type`
//! defaults to `bind`; bind, secret and ssh mounts are read-only unless `rw`
//! is given, cache and tmpfs read-write. An empty value (`target=`) is the
//! same as no value, as Go's zero strings are, except `env=`.
//!
//! Defaults filled in here: a cache id defaults to Go's `path.Clean` of the
//! target (`.` without one); a secret id to its `source`, else the base name
//! of its target; a secret target to `/run/secrets/<base name of id>` unless
//! the secret goes to an `env` variable only; an ssh id to `default`. The
//! default file mode (0755 cache, 0400 secret, 0600 ssh socket, owner 0:0)
//! is given by [`Mount::file_mode`], so that `mode` keeps what the user
//! wrote; the ssh socket path (`/run/buildkit/ssh_agent.N`, N counting the
//! RUN's ssh mounts) by [`fill_ssh_targets`]. A bind, cache or tmpfs target
//! is relative to the working directory, and may be left out: BuildKit then
//! mounts at the working directory itself, and refuses only when that is
//! `/`; [`Mount::target_in`] does that resolution and check. `--device` is
//! BuildKit's `1-labs` syntax; [`parse_device`] reads it the same way.
//!
//! Decisions where kiln is stricter than BuildKit, each for a value BuildKit
//! accepts but then mis-handles: an absolute target that cleans to `/`
//! (`//`, `/.`) is refused like `/` itself; a tmpfs `size` that go-units
//! reads but that is not a finite number below 2^63 bytes (`inf b`, `1e19`)
//! is refused, after every error BuildKit would report, where BuildKit would
//! wrap it to a negative size. `size=0` means no limit, as in BuildKit.

use std::borrow::Cow;
use std::fmt;

use thiserror::Error;

use crate::paths::clean;

/// A bad `--mount`, `--network`, `--security` or `--device` value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MountError {
    /// An empty value: Go's CSV reader finds no record in it.
    #[error("failed to parse csv {what}: empty value")]
    EmptyCsv {
        /// `mounts` or `devices`.
        what: &'static str,
    },
    /// A value that is not one CSV record.
    #[error("failed to parse csv {what}: {problem} at column {column} of `{value}`")]
    Csv {
        /// `mounts` or `devices`.
        what: &'static str,
        /// What is wrong.
        problem: &'static str,
        /// 1-based byte column, as Go's `csv.ParseError` counts it.
        column: usize,
        /// The whole value.
        value: String,
    },
    /// `type=nfs`.
    #[error("unsupported mount type `{value}`{hint}", hint = did_you_mean(*.suggestion))]
    Type {
        /// The value.
        value: String,
        /// A close valid type.
        suggestion: Option<&'static str>,
    },
    /// A field without `=` that needs one.
    #[error("invalid field `{field}`: must be a key=value pair")]
    NotKeyValue {
        /// The field.
        field: String,
    },
    /// A key no mount (or device) has.
    #[error("unexpected key `{key}` in `{field}`{hint}", hint = did_you_mean(*.suggestion))]
    UnknownKey {
        /// The key, lowercased.
        key: String,
        /// The field.
        field: String,
        /// A close valid key.
        suggestion: Option<&'static str>,
    },
    /// A key the mount type set so far does not take (`required`, `size`).
    #[error("unexpected key `{key}` for mount type `{kind}`")]
    KeyForType {
        /// The key, lowercased.
        key: String,
        /// The type.
        kind: MountType,
    },
    /// A value that does not parse (boolean, octal mode, id, size).
    #[error("invalid value `{value}` for `{key}`")]
    Value {
        /// The key, lowercased.
        key: String,
        /// The value.
        value: String,
    },
    /// `sharing=bogus`.
    #[error("unsupported sharing value `{value}`{hint}", hint = did_you_mean(*.suggestion))]
    Sharing {
        /// The value.
        value: String,
        /// A close valid value.
        suggestion: Option<&'static str>,
    },
    /// An option this type does not allow (`mode` on a bind mount, `from`
    /// on a secret, `sharing` on anything but a cache).
    #[error("`{what}` not allowed for `{kind}` mounts")]
    NotAllowed {
        /// The option.
        what: &'static str,
        /// The type.
        kind: MountType,
    },
    /// A bind, cache or tmpfs mount over the container's root.
    #[error("invalid mount target `{target}` for `{kind}` mount: cannot mount over /")]
    Target {
        /// The target as written (empty: none, so the working directory).
        target: String,
        /// The type.
        kind: MountType,
    },
    /// A secret mount without source, target or id.
    #[error("invalid secret mount: one of source, target or id is required")]
    SecretWithoutName,
    /// A secret mount with both `source` and `id`.
    #[error("invalid secret mount: both source and id can't be set")]
    SecretSourceAndId,
    /// An ssh mount with a `source`.
    #[error("invalid ssh mount: ssh does not support source")]
    SshSource,
    /// A `--device` naming its device twice.
    #[error("device name already set to `{name}`")]
    DeviceName {
        /// The name set first.
        name: String,
    },
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

fn did_you_mean(suggestion: Option<&'static str>) -> String {
    suggestion
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
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

    fn takes_required(self) -> bool {
        matches!(self, MountType::Secret | MountType::Ssh)
    }
}

impl fmt::Display for MountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

impl CacheSharing {
    /// The name used in `sharing=`.
    pub fn name(self) -> &'static str {
        match self {
            CacheSharing::Shared => "shared",
            CacheSharing::Private => "private",
            CacheSharing::Locked => "locked",
        }
    }
}

impl fmt::Display for CacheSharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `RUN --mount`, with BuildKit's defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The type (`type=`, default bind).
    pub kind: MountType,
    /// Where it is mounted (`target`, `dst`, `destination`). Bind, cache and
    /// tmpfs: as written, relative to the working directory, `None` for the
    /// working directory itself (see [`Mount::target_in`]). Secret: the
    /// default `/run/secrets/<id>` is filled in, `None` only for a secret
    /// that goes to `env` alone. Ssh: `None` for BuildKit's numbered
    /// default (see [`fill_ssh_targets`]).
    pub target: Option<String>,
    /// Path in the `from` (bind, cache), or the secret's id (`source`, `src`).
    pub source: Option<String>,
    /// Stage, named context or image the files come from (any type parses
    /// it; a secret refuses it; BuildKit uses it for bind and cache and
    /// only requires it to exist for tmpfs and ssh).
    pub from: Option<String>,
    /// Mounted read-only.
    pub read_only: bool,
    /// The id (`id=`): of the cache (default: the cleaned target), the
    /// secret (default: `source`, else the target's base name) or the ssh
    /// agent (default `default`). Kept as written for bind and tmpfs, which
    /// ignore it.
    pub cache_id: Option<String>,
    /// Cache sharing mode (only cache mounts accept `sharing=`).
    pub sharing: CacheSharing,
    /// A secret or ssh mount that must be provided (`required`).
    pub required: bool,
    /// File mode as written (`mode=`, octal; cache, secret, ssh). The
    /// default is [`Mount::file_mode`].
    pub mode: Option<u32>,
    /// Owner as written (cache, secret, ssh; default 0).
    pub uid: Option<u32>,
    /// Group as written (cache, secret, ssh; default 0).
    pub gid: Option<u32>,
    /// tmpfs size limit in bytes (`size=`, docker/go-units `RAMInBytes`:
    /// binary units `k`, `m`, `g`, `t`, `p`, optional `b`/`ib`); `None` and
    /// `size=0` both mean no limit.
    pub size_limit: Option<u64>,
    /// Environment variable a secret is exposed as (`env=`; `Some("")` for
    /// `env=`, which BuildKit passes on as it is). Other types ignore it.
    pub env: Option<String>,
}

impl Mount {
    /// A mount of `kind` with every option at its default.
    pub fn new(kind: MountType) -> Mount {
        Mount {
            kind,
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
        }
    }

    /// The mode of the cache directory, secret file or ssh socket: `mode`
    /// or BuildKit's default (0755 cache, 0400 secret, 0600 ssh); `None`
    /// for bind and tmpfs mounts, which have no such option.
    pub fn file_mode(&self) -> Option<u32> {
        let default = match self.kind {
            MountType::Cache => 0o755,
            MountType::Secret => 0o400,
            MountType::Ssh => 0o600,
            MountType::Bind | MountType::Tmpfs => return None,
        };
        Some(self.mode.unwrap_or(default))
    }

    /// The absolute, cleaned mount point in a container whose working
    /// directory is `workdir`, as BuildKit's dispatcher computes it: a bind,
    /// cache or tmpfs target that is relative (or absent) is joined to the
    /// working directory, and the result may not be `/`. Secret and ssh
    /// targets are returned as they are (`None`: env-only secret, or ssh
    /// socket at its numbered default).
    pub fn target_in(&self, workdir: &str) -> Result<Option<String>, MountError> {
        if matches!(self.kind, MountType::Secret | MountType::Ssh) {
            return Ok(self.target.clone());
        }
        let target = self.target.as_deref().unwrap_or("");
        let resolved = if target.starts_with('/') {
            clean(target)
        } else {
            clean(&format!("/{workdir}/{target}"))
        };
        if resolved == "/" {
            return Err(MountError::Target {
                target: target.to_string(),
                kind: self.kind,
            });
        }
        Ok(Some(resolved))
    }
}

/// BuildKit's socket path for the `index`-th ssh mount of a RUN that gives
/// it no target (`client/llb/exec.go`).
pub fn ssh_agent_target(index: usize) -> String {
    format!("/run/buildkit/ssh_agent.{index}")
}

/// Give every ssh mount of one RUN without a target BuildKit's default,
/// `/run/buildkit/ssh_agent.N`, N being its position among the RUN's ssh
/// mounts (those with a target count too). BuildKit also sets
/// `SSH_AUTH_SOCK` to the first ssh mount's target unless the step's
/// environment has it; that is the runner's business.
pub fn fill_ssh_targets(mounts: &mut [Mount]) {
    for (n, m) in mounts
        .iter_mut()
        .filter(|m| m.kind == MountType::Ssh)
        .enumerate()
    {
        if m.target.is_none() {
            m.target = Some(ssh_agent_target(n));
        }
    }
}

/// Every key a mount field may have, in BuildKit's order (for suggestions).
const MOUNT_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
];
const MOUNT_TYPES: &[&str] = &["bind", "cache", "tmpfs", "secret", "ssh"];
const SHARING_MODES: &[&str] = &["shared", "private", "locked"];
const DEVICE_KEYS: &[&str] = &["name", "required"];

/// Parse one `--mount` value (already variable-expanded).
pub fn parse_mount(value: &str) -> Result<Mount, MountError> {
    let fields = csv_fields(value, "mounts")?;
    let mut m = Mount::new(MountType::Bind);
    let mut ro_auto = true;
    let mut sharing = None;
    // A tmpfs size go-units would wrap negative: refused, but only if it is
    // still the size of a tmpfs once every field is read, so that every
    // error BuildKit reports comes first.
    let mut wrapped_size = None;

    for field in &fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (go_lower(k), Some(v)),
            None => (go_lower(field), None),
        };
        let Some(val) = val else {
            match &*key {
                "readonly" | "ro" => {
                    m.read_only = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.read_only = false;
                    ro_auto = false;
                }
                "required" if m.kind.takes_required() => m.required = true,
                "required" => {
                    return Err(MountError::KeyForType {
                        key: key.into_owned(),
                        kind: m.kind,
                    })
                }
                _ => {
                    return Err(MountError::NotKeyValue {
                        field: field.to_string(),
                    })
                }
            }
            continue;
        };
        let bad = || MountError::Value {
            key: key.to_string(),
            value: val.to_string(),
        };
        match &*key {
            "type" => {
                m.kind = match &*go_lower(val) {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(MountError::Type {
                            value: val.to_string(),
                            suggestion: suggest(val, MOUNT_TYPES),
                        })
                    }
                }
            }
            "from" => m.from = non_empty(val),
            "source" | "src" => m.source = non_empty(val),
            "target" | "dst" | "destination" => m.target = non_empty(val),
            "readonly" | "ro" => {
                m.read_only = parse_bool(val).ok_or_else(bad)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !parse_bool(val).ok_or_else(bad)?;
                ro_auto = false;
            }
            "required" if m.kind.takes_required() => {
                m.required = parse_bool(val).ok_or_else(bad)?;
            }
            "size" if m.kind == MountType::Tmpfs => match ram_in_bytes(val).ok_or_else(bad)? {
                RamSize::Bytes(n) => {
                    m.size_limit = Some(n).filter(|&n| n > 0);
                    wrapped_size = None;
                }
                RamSize::Wraps => wrapped_size = Some(val.to_string()),
            },
            "required" | "size" => {
                return Err(MountError::KeyForType {
                    key: key.into_owned(),
                    kind: m.kind,
                })
            }
            "id" => m.cache_id = non_empty(val),
            "sharing" => {
                sharing = Some(match &*go_lower(val) {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => {
                        return Err(MountError::Sharing {
                            value: val.to_string(),
                            suggestion: suggest(val, SHARING_MODES),
                        })
                    }
                });
            }
            "mode" => m.mode = Some(parse_go_uint32(val, 8).ok_or_else(bad)?),
            "uid" => m.uid = Some(parse_go_uint32(val, 10).ok_or_else(bad)?),
            "gid" => m.gid = Some(parse_go_uint32(val, 10).ok_or_else(bad)?),
            "env" => m.env = Some(val.to_string()),
            _ => {
                return Err(MountError::UnknownKey {
                    suggestion: suggest(&key, MOUNT_KEYS),
                    key: key.into_owned(),
                    field: field.to_string(),
                })
            }
        }
    }

    // The checks BuildKit makes once all fields are read, in its order.
    let kind = m.kind;
    if !matches!(kind, MountType::Secret | MountType::Ssh | MountType::Cache) {
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
        m.read_only = !matches!(kind, MountType::Cache | MountType::Tmpfs);
    }
    if kind == MountType::Secret {
        if m.from.is_some() {
            return Err(MountError::NotAllowed { what: "from", kind });
        }
        if sharing.is_some() {
            return Err(MountError::NotAllowed {
                what: "sharing",
                kind,
            });
        }
        if m.source.is_none() && m.target.is_none() && m.cache_id.is_none() {
            return Err(MountError::SecretWithoutName);
        }
        if m.source.is_some() && m.cache_id.is_some() {
            return Err(MountError::SecretSourceAndId);
        }
    }
    if let Some(s) = sharing {
        if kind != MountType::Cache {
            return Err(MountError::NotAllowed {
                what: "sharing",
                kind,
            });
        }
        m.sharing = s;
    }

    // What BuildKit's dispatcher checks and fills in without stage state.
    match kind {
        MountType::Ssh => {
            if m.source.is_some() {
                return Err(MountError::SshSource);
            }
            m.cache_id.get_or_insert_with(|| "default".to_string());
        }
        MountType::Secret => {
            let id = match (&m.source, &m.cache_id, &m.target) {
                (Some(s), _, _) => s.clone(),
                (None, Some(id), _) => id.clone(),
                (None, None, Some(t)) => go_path_base(t).to_string(),
                (None, None, None) => return Err(MountError::SecretWithoutName),
            };
            if m.env.is_none() && m.target.is_none() {
                m.target = Some(format!("/run/secrets/{}", go_path_base(&id)));
            }
            m.cache_id = Some(id);
        }
        MountType::Bind | MountType::Cache | MountType::Tmpfs => {
            if let Some(t) = m.target.as_deref() {
                if t.starts_with('/') && clean(t) == "/" {
                    return Err(MountError::Target {
                        target: t.to_string(),
                        kind,
                    });
                }
            }
            if kind == MountType::Cache && m.cache_id.is_none() {
                m.cache_id = Some(clean(m.target.as_deref().unwrap_or("")));
            }
        }
    }
    if let Some(value) = wrapped_size.filter(|_| kind == MountType::Tmpfs) {
        return Err(MountError::Value {
            key: "size".to_string(),
            value,
        });
    }
    Ok(m)
}

/// One `RUN --device` (BuildKit 1.14-labs syntax): a CDI device request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The CDI name (`vendor.com/class`, `vendor.com/class=name`, `=*`, or
    /// a device class); BuildKit's parser lets it be empty.
    pub name: String,
    /// The build fails when the device is not available.
    pub required: bool,
}

/// Parse one `--device` value: `name[,required[=bool]]` or
/// `name=<name>[,required=…]`. As in BuildKit, the first field that is not
/// `required` and not `name=` is the name, whole (`vendor.com/gpu=0`).
pub fn parse_device(value: &str) -> Result<Device, MountError> {
    let fields = csv_fields(value, "devices")?;
    let mut d = Device {
        name: String::new(),
        required: false,
    };
    for field in &fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (go_lower(k), Some(v)),
            None => (go_lower(field), None),
        };
        match (&*key, val) {
            ("required", None) => d.required = true,
            ("required", Some(v)) => {
                d.required = parse_bool(v).ok_or_else(|| MountError::Value {
                    key: key.to_string(),
                    value: v.to_string(),
                })?;
            }
            ("name", Some(v)) => {
                if !d.name.is_empty() {
                    return Err(MountError::DeviceName { name: d.name });
                }
                d.name = v.to_string();
            }
            _ if d.name.is_empty() => d.name = field.to_string(),
            (_, None) => {
                return Err(MountError::NotKeyValue {
                    field: field.to_string(),
                })
            }
            (_, Some(_)) => {
                return Err(MountError::UnknownKey {
                    suggestion: suggest(&key, DEVICE_KEYS),
                    key: key.into_owned(),
                    field: field.to_string(),
                })
            }
        }
    }
    Ok(d)
}

/// `RUN --network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// The build's default network.
    Default,
    /// No network (only an isolated loopback).
    None,
    /// The host's network (needs the `network.host` entitlement).
    Host,
}

/// Parse a `--network` value (exact, case-sensitive, as BuildKit).
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

/// Parse a `--security` value (exact, case-sensitive, as BuildKit).
pub fn parse_security(value: &str) -> Result<SecurityMode, MountError> {
    match value {
        "sandbox" => Ok(SecurityMode::Sandbox),
        "insecure" => Ok(SecurityMode::Insecure),
        _ => Err(MountError::Security {
            value: value.to_string(),
        }),
    }
}

// ---- Go's rules, by hand ----

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// One CSV record as `github.com/tonistiigi/go-csvvalue` (Go
/// `encoding/csv` rules) reads it: one trailing newline is dropped; a field
/// that starts with `"` is quoted (`""` is a quote, the closing quote must
/// be followed by `,` or the end); a quote anywhere else is an error; empty
/// fields are kept (`a,,b`, `a,`).
fn csv_fields<'a>(line: &'a str, what: &'static str) -> Result<Vec<Cow<'a, str>>, MountError> {
    let line = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
        .unwrap_or(line);
    if line.is_empty() {
        return Err(MountError::EmptyCsv { what });
    }
    if !line.contains('"') {
        return Ok(line.split(',').map(Cow::Borrowed).collect());
    }
    let err = |problem, column| MountError::Csv {
        what,
        problem,
        column,
        value: line.to_string(),
    };
    const BARE: &str = "bare `\"` in non-quoted field";
    const QUOTE: &str = "extraneous or missing `\"` in quoted field";
    let mut fields = Vec::new();
    let mut rest = line;
    let mut pos = 0;
    'field: loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            rest = quoted;
            pos += 1;
            let mut buf = String::new();
            loop {
                let Some(i) = rest.find('"') else {
                    return Err(err(QUOTE, pos + 1));
                };
                buf.push_str(&rest[..i]);
                rest = &rest[i + 1..];
                pos += i + 1;
                match rest.chars().next() {
                    Some('"') => {
                        buf.push('"');
                        rest = &rest[1..];
                        pos += 1;
                    }
                    Some(',') => {
                        rest = &rest[1..];
                        pos += 1;
                        fields.push(Cow::Owned(buf));
                        continue 'field;
                    }
                    None => {
                        fields.push(Cow::Owned(buf));
                        break 'field;
                    }
                    Some(_) => return Err(err(QUOTE, pos)),
                }
            }
        }
        let end = rest.find(',');
        let field = &rest[..end.unwrap_or(rest.len())];
        if let Some(j) = field.find('"') {
            return Err(err(BARE, pos + j + 1));
        }
        fields.push(Cow::Borrowed(field));
        match end {
            Some(i) => {
                rest = &rest[i + 1..];
                pos += i + 1;
            }
            None => break,
        }
    }
    Ok(fields)
}

/// Go's `strings.ToLower`: simple per-character lowercase, under which
/// `İ` becomes `i` (Rust's full mapping would make it `i̇`).
fn go_lower(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        return if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        };
    }
    // Every other character has a one-character lowercase in Rust too.
    Cow::Owned(
        s.chars()
            .map(|c| match c {
                'İ' => 'i',
                c => c.to_lowercase().next().unwrap_or(c),
            })
            .collect(),
    )
}

/// Go's `strconv.ParseBool`.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(value, radix, 32)` for radix 8 or 10: digits
/// only (no sign, prefix or underscore), at most `u32::MAX`.
fn parse_go_uint32(value: &str, radix: u32) -> Option<u32> {
    if value.is_empty() || !value.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(value, radix).ok()
}

/// Go's `path.Base`.
fn go_path_base(p: &str) -> &str {
    if p.is_empty() {
        return ".";
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/";
    }
    t.rsplit('/').next().unwrap_or(t)
}

/// What go-units makes of a size it accepts.
enum RamSize {
    /// A size in bytes.
    Bytes(u64),
    /// Not a finite number below 2^63: go-units' `int64()` conversion
    /// would wrap it to a negative number.
    Wraps,
}

/// docker/go-units `RAMInBytes`: a Go float, then an optional space, then
/// an optional case-insensitive unit `b`, or `k`/`m`/`g`/`t`/`p` with an
/// optional `b` or `ib`, all binary. The number is everything up to the
/// last digit, `.` or space. `None` for what go-units rejects.
fn ram_in_bytes(size: &str) -> Option<RamSize> {
    let sep = size.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    let (num, sfx) = if size.as_bytes()[sep] == b' ' {
        (&size[..sep], &size[sep + 1..])
    } else {
        (&size[..=sep], &size[sep + 1..])
    };
    let mut n = go_parse_float(num)?;
    if n < 0.0 {
        return None;
    }
    if !sfx.is_empty() {
        if sfx.len() > 3 {
            return None;
        }
        let sfx = go_lower(sfx);
        let b = sfx.as_bytes();
        if b[0] != b'b' {
            let mult: f64 = match b[0] {
                b'k' => 1024.0,
                b'm' => 1024f64.powi(2),
                b'g' => 1024f64.powi(3),
                b't' => 1024f64.powi(4),
                b'p' => 1024f64.powi(5),
                _ => return None,
            };
            n *= mult;
            match b.len() {
                2 if b[1] != b'b' => return None,
                3 if &b[1..] != b"ib" => return None,
                _ => {}
            }
        } else if b.len() > 1 {
            return None;
        }
    }
    // 2^63: go-units converts with int64(), which wraps at and above it.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    // Truncation towards zero is what Go's int64() does.
    Some(if n.is_finite() && n < LIMIT {
        RamSize::Bytes(n as u64)
    } else {
        RamSize::Wraps
    })
}

/// Go's `strconv.ParseFloat(s, 64)` for finite numbers: an optional sign,
/// decimal digits with an optional `.` and `e` exponent, or `0x` hex digits
/// with a mandatory `p` exponent; `_` between digits; `None` on overflow.
/// The words `inf`, `infinity` and `nan` give NaN (go-units would then wrap
/// them to a negative size; the caller refuses them).
fn go_parse_float(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    let negative = match b.first() {
        Some(b'+') => {
            i = 1;
            false
        }
        Some(b'-') => {
            i = 1;
            true
        }
        _ => false,
    };
    let special = s[i..].to_ascii_lowercase();
    if matches!(special.as_str(), "inf" | "infinity" | "nan") {
        return Some(f64::NAN);
    }
    let hex = b.len() > i + 2 && b[i] == b'0' && b[i + 1].eq_ignore_ascii_case(&b'x');
    if hex {
        i += 2;
    }
    let is_digit = |c: u8| {
        if hex {
            c.is_ascii_hexdigit()
        } else {
            c.is_ascii_digit()
        }
    };
    let mut underscores = false;
    let mut saw_dot = false;
    let mut saw_digits = false;
    let mut mantissa: u64 = 0;
    let mut exp_adjust: i64 = 0;
    let mantissa_start = i;
    while i < b.len() {
        let c = b[i];
        if c == b'_' {
            underscores = true;
        } else if c == b'.' {
            if saw_dot {
                break;
            }
            saw_dot = true;
        } else if is_digit(c) {
            saw_digits = true;
            if hex {
                let d = u64::from((c as char).to_digit(16).unwrap_or(0));
                if mantissa >> 60 == 0 {
                    mantissa = mantissa << 4 | d;
                    if saw_dot {
                        exp_adjust -= 4;
                    }
                } else {
                    // Past 60 bits a digit only scales (Go would round on
                    // it; it is far below a byte of any real size).
                    if !saw_dot {
                        exp_adjust += 4;
                    }
                }
            }
        } else {
            break;
        }
        i += 1;
    }
    if !saw_digits {
        return None;
    }
    let mantissa_end = i;
    let exp_char = if hex { b'p' } else { b'e' };
    let mut exp: i64 = 0;
    if i < b.len() && b[i].eq_ignore_ascii_case(&exp_char) {
        i += 1;
        let mut exp_negative = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            exp_negative = b[i] == b'-';
            i += 1;
        }
        if i >= b.len() || !b[i].is_ascii_digit() {
            return None;
        }
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            if b[i] == b'_' {
                underscores = true;
            } else if exp < 1_000_000 {
                exp = exp * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if exp_negative {
            exp = -exp;
        }
    } else if hex {
        return None;
    }
    if i != b.len() || (underscores && !go_underscore_ok(s)) {
        return None;
    }
    let magnitude = if mantissa == 0 && hex {
        0.0
    } else if hex {
        let e = (exp + exp_adjust).clamp(-2000, 2000);
        (mantissa as f64) * 2f64.powi(i32::try_from(e).unwrap_or(0))
    } else {
        let digits: String = s[mantissa_start..mantissa_end]
            .chars()
            .filter(|&c| c != '_')
            .collect();
        format!("{digits}e{exp}").parse::<f64>().ok()?
    };
    // Go reports overflow as an error (ErrRange); only the words `inf` and
    // `nan` give a number that is not finite.
    if magnitude.is_infinite() {
        return None;
    }
    Some(if negative { -magnitude } else { magnitude })
}

/// Go's `strconv.underscoreOK`: each `_` sits between digits (or after a
/// base prefix).
fn go_underscore_ok(s: &str) -> bool {
    let mut b = s.as_bytes();
    if let Some((b'+' | b'-', r)) = b.split_first() {
        b = r;
    }
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || (hex && c.is_ascii_hexdigit()) {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// BuildKit's `suggest.Search` (case-sensitive): the first option at
/// Levenshtein distance below 3, closer ones replacing it.
fn suggest(value: &str, options: &[&'static str]) -> Option<&'static str> {
    let mut best = None;
    let mut min = 3;
    for &opt in options {
        if value == opt {
            return None;
        }
        let d = levenshtein(value, opt);
        if d < min {
            min = d;
            best = Some(opt);
        }
    }
    best
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
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

    // ---- bind ----

    #[test]
    fn bind_is_the_default_type_and_read_only() {
        let m = ok("target=/src");
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.read_only);
        assert_eq!(m.target.as_deref(), Some("/src"));
        assert_eq!(
            (&m.source, &m.from, &m.cache_id, &m.env),
            (&None, &None, &None, &None)
        );
        assert_eq!(m.sharing, CacheSharing::Shared);
        assert!(!m.required);
        assert_eq!(m.file_mode(), None);
    }

    #[test]
    fn bind_options_and_aliases() {
        let m = ok("type=bind,source=app,dst=/app,from=build,rw");
        assert!(!m.read_only);
        assert_eq!(m.source.as_deref(), Some("app"));
        assert_eq!(m.from.as_deref(), Some("build"));
        assert_eq!(m.target.as_deref(), Some("/app"));
        assert_eq!(ok("src=a,destination=/d").source.as_deref(), Some("a"));
        assert_eq!(ok("src=a,destination=/d").target.as_deref(), Some("/d"));
        // The last of repeated keys wins; an empty value unsets.
        assert_eq!(ok("target=/a,target=/b").target.as_deref(), Some("/b"));
        assert_eq!(ok("from=x,from=,target=/t").from, None);
        assert_eq!(ok("type=bind").target, None);
    }

    #[test]
    fn read_only_forms() {
        for (v, ro) in [
            ("target=/x,ro", true),
            ("target=/x,readonly", true),
            ("target=/x,rw", false),
            ("target=/x,readwrite", false),
            ("target=/x,ro=true", true),
            ("target=/x,ro=false", false),
            ("target=/x,readonly=false", false),
            ("target=/x,readonly=1", true),
            ("target=/x,rw=true", false),
            ("target=/x,rw=F", true),
            ("target=/x,readwrite=FALSE", true),
            ("target=/x,RO", true),
            ("type=cache,target=/x,ro", true),
            ("type=cache,target=/x,ro=false", false),
            ("type=tmpfs,target=/x,readonly=t", true),
            ("type=secret,id=s,rw", false),
            ("type=ssh,rw=1", false),
            ("target=/x,rw,ro", true),
            ("target=/x,ro,rw", false),
        ] {
            assert_eq!(ok(v).read_only, ro, "{v}");
        }
    }

    #[test]
    fn booleans_are_go_parse_bool() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert!(ok(&format!("target=/x,ro={t}")).read_only, "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert!(!ok(&format!("target=/x,ro={f}")).read_only, "{f}");
        }
        for bad in ["yes", "tRUE", "", "on", " true"] {
            assert_eq!(
                err(&format!("target=/x,ro={bad}")),
                MountError::Value {
                    key: "ro".into(),
                    value: bad.into()
                },
                "{bad}"
            );
        }
    }

    // ---- cache ----

    #[test]
    fn cache_defaults() {
        let m = ok("type=cache,target=/root/.cache/pip/");
        assert!(!m.read_only);
        assert_eq!(m.cache_id.as_deref(), Some("/root/.cache/pip"));
        assert_eq!(m.sharing, CacheSharing::Shared);
        assert_eq!(m.mode, None);
        assert_eq!(m.file_mode(), Some(0o755));
        // Relative targets and no target at all: the cleaned text, as
        // BuildKit (`path.Clean(mount.Target)`).
        assert_eq!(
            ok("type=cache,target=./a//b").cache_id.as_deref(),
            Some("a/b")
        );
        assert_eq!(ok("type=cache").cache_id.as_deref(), Some("."));
    }

    #[test]
    fn cache_options() {
        let m = ok("type=cache,target=/c,id=pip,sharing=locked,mode=0700,uid=1000,gid=1001,from=base,source=/s");
        assert_eq!(m.cache_id.as_deref(), Some("pip"));
        assert_eq!(m.sharing, CacheSharing::Locked);
        assert_eq!(
            (m.mode, m.uid, m.gid),
            (Some(0o700), Some(1000), Some(1001))
        );
        assert_eq!(m.file_mode(), Some(0o700));
        assert_eq!(
            (m.from.as_deref(), m.source.as_deref()),
            (Some("base"), Some("/s"))
        );
        for (v, s) in [
            ("shared", CacheSharing::Shared),
            ("private", CacheSharing::Private),
            ("locked", CacheSharing::Locked),
            ("PRIVATE", CacheSharing::Private),
            ("Locked", CacheSharing::Locked),
        ] {
            assert_eq!(ok(&format!("type=cache,target=/c,sharing={v}")).sharing, s);
        }
        assert_eq!(
            ok("type=cache,target=/c,id=").cache_id.as_deref(),
            Some("/c")
        );
    }

    #[test]
    fn modes_are_go_octal_and_ids_go_decimal() {
        for (v, mode) in [
            ("0755", 0o755),
            ("755", 0o755),
            ("0", 0),
            ("0400", 0o400),
            ("37777777777", u32::MAX),
        ] {
            assert_eq!(
                ok(&format!("type=cache,target=/c,mode={v}")).mode,
                Some(mode)
            );
        }
        for bad in [
            "",
            "8",
            "0o755",
            "+755",
            "-1",
            "0x1ed",
            "07_55",
            "40000000000",
            " 7",
        ] {
            assert_eq!(
                err(&format!("type=cache,target=/c,mode={bad}")),
                MountError::Value {
                    key: "mode".into(),
                    value: bad.into()
                },
                "{bad}"
            );
        }
        assert_eq!(
            ok("type=cache,target=/c,uid=4294967295").uid,
            Some(u32::MAX)
        );
        assert_eq!(ok("type=cache,target=/c,gid=007").gid, Some(7));
        for bad in ["", "+1", "-1", "4294967296", "1_0", "0x10", "a"] {
            assert!(
                matches!(err(&format!("type=cache,target=/c,uid={bad}")), MountError::Value { ref key, .. } if key == "uid"),
                "{bad}"
            );
            assert!(
                matches!(err(&format!("type=ssh,gid={bad}")), MountError::Value { ref key, .. } if key == "gid"),
                "{bad}"
            );
        }
    }

    // ---- tmpfs ----

    #[test]
    fn tmpfs_defaults() {
        let m = ok("type=tmpfs,target=/t");
        assert!(!m.read_only);
        assert_eq!(m.size_limit, None);
        assert_eq!(m.file_mode(), None);
    }

    #[test]
    fn tmpfs_sizes_are_go_units_ram_in_bytes() {
        for (v, n) in [
            ("100", Some(100)),
            ("64m", Some(64 << 20)),
            ("1g", Some(1 << 30)),
            ("1G", Some(1 << 30)),
            ("1gb", Some(1 << 30)),
            ("1GiB", Some(1 << 30)),
            ("1 GiB", Some(1 << 30)),
            ("1.5KiB", Some(1536)),
            ("1.5k", Some(1536)),
            (".5k", Some(512)),
            ("5.k", Some(5120)),
            ("1b", Some(1)),
            ("1t", Some(1 << 40)),
            ("2p", Some(2 << 50)),
            ("1e3", Some(1000)),
            ("1E3m", Some(1000 << 20)),
            ("+1k", Some(1024)),
            ("1_000", Some(1000)),
            ("0x1p4", Some(16)),
            ("00012", Some(12)),
            ("1 ", Some(1)),
            ("2.9", Some(2)),
            ("0", None),
            ("-0", None),
            ("1e-400", None),
            ("8191p", Some(8191 << 50)),
        ] {
            assert_eq!(
                ok(&format!("type=tmpfs,target=/t,size={v}")).size_limit,
                n,
                "{v}"
            );
        }
        for bad in [
            "", "big", "k", "-1", "1ki", "1kibb", "1bb", "1mib2", " 1", "1  k", "0x10", "1e", "1_",
            "_1", "0b101", "1.2.3", "1e400", "8192p", "inf b", "nan b", "1e19",
        ] {
            assert!(
                matches!(err(&format!("type=tmpfs,target=/t,size={bad}")), MountError::Value { ref key, .. } if key == "size"),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_are_checked_against_the_type_so_far() {
        assert_eq!(
            err("size=1m,type=tmpfs,target=/t"),
            MountError::KeyForType {
                key: "size".into(),
                kind: MountType::Bind
            }
        );
        assert_eq!(
            err("type=cache,target=/t,size=1m").to_string(),
            "unexpected key `size` for mount type `cache`"
        );
        assert_eq!(
            err("required,type=secret,id=x"),
            MountError::KeyForType {
                key: "required".into(),
                kind: MountType::Bind
            }
        );
        assert!(ok("type=secret,id=x,required,type=secret").required);
        // A size given while the type was tmpfs stays if it changes (BuildKit
        // ignores it for other types).
        assert_eq!(
            ok("type=tmpfs,size=1k,type=bind,target=/t").size_limit,
            Some(1024)
        );
        // A size that would wrap only matters if it is still a tmpfs's.
        assert!(ok("type=tmpfs,size=inf b,type=bind,target=/t").read_only);
        assert_eq!(
            ok("type=tmpfs,target=/t,size=1e19,size=1k").size_limit,
            Some(1024)
        );
    }

    // ---- secret ----

    #[test]
    fn secret_defaults() {
        let m = ok("type=secret,id=aws");
        assert_eq!(m.target.as_deref(), Some("/run/secrets/aws"));
        assert_eq!(m.cache_id.as_deref(), Some("aws"));
        assert!(m.read_only);
        assert!(!m.required);
        assert_eq!(m.file_mode(), Some(0o400));
        // The id's base name makes the default target.
        assert_eq!(
            ok("type=secret,id=a/b").target.as_deref(),
            Some("/run/secrets/b")
        );
        // No id: the target's base name.
        let m = ok("type=secret,target=/root/.npmrc,required");
        assert_eq!(m.cache_id.as_deref(), Some(".npmrc"));
        assert_eq!(m.target.as_deref(), Some("/root/.npmrc"));
        assert!(m.required);
        // `source` is the id.
        let m = ok("type=secret,source=creds,required=false");
        assert_eq!(m.cache_id.as_deref(), Some("creds"));
        assert_eq!(m.target.as_deref(), Some("/run/secrets/creds"));
        assert!(!m.required);
    }

    #[test]
    fn secret_as_env() {
        let m = ok("type=secret,id=tok,env=TOKEN");
        assert_eq!(
            (m.target.as_deref(), m.env.as_deref()),
            (None, Some("TOKEN"))
        );
        let m = ok("type=secret,id=tok,env=TOKEN,target=/t");
        assert_eq!(
            (m.target.as_deref(), m.env.as_deref()),
            (Some("/t"), Some("TOKEN"))
        );
        // `env=` is kept (BuildKit passes the empty name on).
        assert_eq!(ok("type=secret,id=tok,env=").env.as_deref(), Some(""));
        // env alone does not name a secret.
        assert_eq!(err("type=secret,env=TOKEN"), MountError::SecretWithoutName);
        // Other types accept and ignore it, as BuildKit.
        assert_eq!(ok("target=/x,env=A").env.as_deref(), Some("A"));
    }

    #[test]
    fn secret_errors() {
        assert_eq!(err("type=secret"), MountError::SecretWithoutName);
        assert_eq!(
            err("type=secret,id=,target="),
            MountError::SecretWithoutName
        );
        assert_eq!(
            err("type=secret,id=a,source=b"),
            MountError::SecretSourceAndId
        );
        assert_eq!(
            err("type=secret,id=a,from=b"),
            MountError::NotAllowed {
                what: "from",
                kind: MountType::Secret
            }
        );
        assert_eq!(
            err("type=secret,id=a,sharing=locked"),
            MountError::NotAllowed {
                what: "sharing",
                kind: MountType::Secret
            }
        );
        assert_eq!(
            ok("type=secret,id=x,mode=0440,uid=1,gid=2").mode,
            Some(0o440)
        );
    }

    // ---- ssh ----

    #[test]
    fn ssh_defaults() {
        let m = ok("type=ssh");
        assert_eq!(m.cache_id.as_deref(), Some("default"));
        assert_eq!(m.target, None);
        assert!(m.read_only);
        assert!(!m.required);
        assert_eq!(m.file_mode(), Some(0o600));
        let m = ok("type=ssh,id=github,required=true,target=/ssh.sock,mode=0666");
        assert_eq!(m.cache_id.as_deref(), Some("github"));
        assert!(m.required);
        assert_eq!(m.target.as_deref(), Some("/ssh.sock"));
        assert_eq!(m.file_mode(), Some(0o666));
        assert_eq!(err("type=ssh,source=/k"), MountError::SshSource);
        // BuildKit only requires a `from` to exist for ssh and tmpfs.
        assert_eq!(ok("type=ssh,from=base").from.as_deref(), Some("base"));
        assert_eq!(
            ok("type=tmpfs,target=/t,from=base").from.as_deref(),
            Some("base")
        );
    }

    #[test]
    fn ssh_targets_are_numbered_per_run() {
        let mut ms = vec![
            ok("type=ssh"),
            ok("type=cache,target=/c"),
            ok("type=ssh,id=b,target=/s"),
            ok("type=ssh,id=c"),
        ];
        fill_ssh_targets(&mut ms);
        assert_eq!(ms[0].target.as_deref(), Some("/run/buildkit/ssh_agent.0"));
        assert_eq!(ms[1].target.as_deref(), Some("/c"));
        assert_eq!(ms[2].target.as_deref(), Some("/s"));
        assert_eq!(ms[3].target.as_deref(), Some("/run/buildkit/ssh_agent.2"));
        assert_eq!(ssh_agent_target(7), "/run/buildkit/ssh_agent.7");
    }

    // ---- targets ----

    #[test]
    fn targets_resolve_against_the_working_directory() {
        let at = |v: &str, wd: &str| ok(v).target_in(wd);
        assert_eq!(at("target=/x/", "/app"), Ok(Some("/x".into())));
        assert_eq!(at("target=x", "/app"), Ok(Some("/app/x".into())));
        assert_eq!(at("target=../x", "app"), Ok(Some("/x".into())));
        assert_eq!(at("type=cache", "/app"), Ok(Some("/app".into())));
        assert_eq!(
            at("type=tmpfs", "/"),
            Err(MountError::Target {
                target: String::new(),
                kind: MountType::Tmpfs
            })
        );
        assert!(at("target=..", "/app").is_err());
        assert_eq!(at("type=secret,env=E,id=s", "/app"), Ok(None));
        assert_eq!(
            at("type=secret,id=s", "/app"),
            Ok(Some("/run/secrets/s".into()))
        );
        assert_eq!(at("type=ssh", "/app"), Ok(None));
    }

    #[test]
    fn root_targets_are_refused() {
        for v in [
            "target=/",
            "type=cache,target=//",
            "type=tmpfs,dst=/.",
            "target=/a/..",
        ] {
            assert!(matches!(err(v), MountError::Target { .. }), "{v}");
        }
        assert_eq!(
            err("type=bind,target=/").to_string(),
            "invalid mount target `/` for `bind` mount: cannot mount over /"
        );
    }

    // ---- errors ----

    #[test]
    fn unknown_keys_and_values() {
        assert_eq!(
            err("type=nfs,target=/x"),
            MountError::Type {
                value: "nfs".into(),
                suggestion: None
            }
        );
        assert_eq!(
            err("type=cach,target=/x").to_string(),
            "unsupported mount type `cach` (did you mean cache?)"
        );
        assert_eq!(
            err("type=,target=/x"),
            MountError::Type {
                value: String::new(),
                suggestion: None
            }
        );
        assert_eq!(
            err("target=/x,traget=/y").to_string(),
            "unexpected key `traget` in `traget=/y` (did you mean target?)"
        );
        assert_eq!(
            err("target=/x,Bogus=1"),
            MountError::UnknownKey {
                key: "bogus".into(),
                field: "Bogus=1".into(),
                suggestion: None
            }
        );
        assert_eq!(
            err("type=cache,target=/x,sharing=lock").to_string(),
            "unsupported sharing value `lock` (did you mean locked?)"
        );
        assert_eq!(
            err("target=/x,bogus").to_string(),
            "invalid field `bogus`: must be a key=value pair"
        );
        assert_eq!(
            err("target=/x,required").to_string(),
            "unexpected key `required` for mount type `bind`"
        );
        assert_eq!(
            err("type=cache,target=/x,required=true"),
            MountError::KeyForType {
                key: "required".into(),
                kind: MountType::Cache
            }
        );
    }

    #[test]
    fn file_options_only_for_cache_secret_ssh() {
        assert_eq!(
            err("target=/x,mode=0755").to_string(),
            "`mode` not allowed for `bind` mounts"
        );
        assert_eq!(
            err("type=tmpfs,target=/x,uid=1"),
            MountError::NotAllowed {
                what: "uid",
                kind: MountType::Tmpfs
            }
        );
        assert_eq!(
            err("type=bind,target=/x,gid=1"),
            MountError::NotAllowed {
                what: "gid",
                kind: MountType::Bind
            }
        );
        // mode is reported before uid, as BuildKit checks it first.
        assert!(matches!(
            err("target=/x,uid=1,mode=1"),
            MountError::NotAllowed { what: "mode", .. }
        ));
        for kind in ["bind", "tmpfs", "ssh"] {
            assert_eq!(
                err(&format!("type={kind},target=/x,sharing=shared")),
                MountError::NotAllowed {
                    what: "sharing",
                    kind: ok(&format!("type={kind},target=/x")).kind
                }
            );
        }
    }

    // ---- CSV and case ----

    #[test]
    fn csv_quoting_is_go_encoding_csv() {
        assert_eq!(
            ok("\"target=/a,b\",type=bind").target.as_deref(),
            Some("/a,b")
        );
        assert_eq!(
            ok("type=cache,\"target=/q\"\"x\"").target.as_deref(),
            Some("/q\"x")
        );
        assert_eq!(ok("\"type=cache\",\"target=/c\"").kind, MountType::Cache);
        assert_eq!(ok("type=cache,target=/c\n").target.as_deref(), Some("/c"));
        assert_eq!(ok("type=cache,target=/c\r\n").target.as_deref(), Some("/c"));
        assert_eq!(err(""), MountError::EmptyCsv { what: "mounts" });
        assert_eq!(err("\n"), MountError::EmptyCsv { what: "mounts" });
        for (v, column) in [
            ("\"target=/x", 2),
            ("target=/x\"", 10),
            ("\"tar\"get=/x", 5),
            ("a,\"b", 4),
        ] {
            assert!(
                matches!(err(v), MountError::Csv { column: c, .. } if c == column),
                "{v}: {}",
                err(v)
            );
        }
        assert_eq!(
            err("target=/x\"").to_string(),
            "failed to parse csv mounts: bare `\"` in non-quoted field at column 10 of `target=/x\"`"
        );
        // Empty fields are kept, and are not key=value pairs.
        for v in [
            "type=cache,,target=/c",
            "type=cache,target=/c,",
            ",target=/x",
        ] {
            assert_eq!(
                err(v),
                MountError::NotKeyValue {
                    field: String::new()
                },
                "{v}"
            );
        }
    }

    #[test]
    fn keys_and_enumerated_values_ignore_case() {
        let m = ok("TYPE=Cache,TARGET=/x,Sharing=LOCKED,ID=i");
        assert_eq!(m.kind, MountType::Cache);
        assert_eq!(m.sharing, CacheSharing::Locked);
        assert_eq!(m.cache_id.as_deref(), Some("i"));
        // Go's ToLower maps U+0130 to a plain `i`.
        assert_eq!(
            ok("type=cache,target=/x,İd=i").cache_id.as_deref(),
            Some("i")
        );
        assert_eq!(ok("type=BİND,target=/x").kind, MountType::Bind);
        // Values other than type and sharing keep their case.
        assert_eq!(ok("target=/X,source=A").source.as_deref(), Some("A"));
    }

    #[test]
    fn suggestions_are_buildkits() {
        assert_eq!(suggest("traget", MOUNT_KEYS), Some("target"));
        assert_eq!(suggest("sise", MOUNT_KEYS), Some("size"));
        assert_eq!(suggest("zzzzzz", MOUNT_KEYS), None);
        assert_eq!(suggest("LOCK", SHARING_MODES), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("é", "e"), 1);
    }

    // ---- network, security, device ----

    #[test]
    fn network_and_security() {
        assert_eq!(parse_network("none"), Ok(NetworkMode::None));
        assert_eq!(parse_network("host"), Ok(NetworkMode::Host));
        assert_eq!(parse_network("default"), Ok(NetworkMode::Default));
        for bad in ["bridge", "", "NONE", "Host"] {
            assert_eq!(
                parse_network(bad),
                Err(MountError::Network { value: bad.into() })
            );
        }
        assert_eq!(parse_security("insecure"), Ok(SecurityMode::Insecure));
        assert_eq!(parse_security("sandbox"), Ok(SecurityMode::Sandbox));
        for bad in ["root", "", "Insecure"] {
            assert_eq!(
                parse_security(bad),
                Err(MountError::Security { value: bad.into() })
            );
        }
        assert_eq!(
            parse_network("bridge").map_err(|e| e.to_string()),
            Err("invalid network mode `bridge` (expected default, none or host)".into())
        );
    }

    #[test]
    fn devices() {
        let d = |v: &str| parse_device(v).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(
            d("vendor.com/gpu"),
            Device {
                name: "vendor.com/gpu".into(),
                required: false
            }
        );
        assert_eq!(d("vendor.com/gpu=0,required").name, "vendor.com/gpu=0");
        assert!(d("vendor.com/gpu=0,required").required);
        assert!(!d("vendor.com/gpu,required=false").required);
        assert_eq!(d("name=class1,required=true").name, "class1");
        assert_eq!(d("required,NAME=x").name, "x");
        assert_eq!(d("required").name, "");
        assert_eq!(
            parse_device("a,name=b"),
            Err(MountError::DeviceName { name: "a".into() })
        );
        assert_eq!(
            parse_device("a,b"),
            Err(MountError::NotKeyValue { field: "b".into() })
        );
        assert_eq!(
            parse_device("a,nme=b"),
            Err(MountError::UnknownKey {
                key: "nme".into(),
                field: "nme=b".into(),
                suggestion: Some("name")
            })
        );
        assert_eq!(
            parse_device("a,required=maybe"),
            Err(MountError::Value {
                key: "required".into(),
                value: "maybe".into()
            })
        );
        assert_eq!(
            parse_device(""),
            Err(MountError::EmptyCsv { what: "devices" })
        );
        assert_eq!(d("\"a,b\"").name, "a,b");
    }

    #[test]
    fn go_helpers() {
        assert_eq!(go_path_base(""), ".");
        assert_eq!(go_path_base("/"), "/");
        assert_eq!(go_path_base("///"), "/");
        assert_eq!(go_path_base("a/b/"), "b");
        assert_eq!(go_path_base("b"), "b");
        assert!(go_underscore_ok("1_000"));
        assert!(go_underscore_ok("0x_1p4"));
        assert!(!go_underscore_ok("1__0"));
        assert!(!go_underscore_ok("1_.5"));
        assert_eq!(go_parse_float("0x1.8p1"), Some(3.0));
        assert_eq!(go_parse_float("0x0p99999"), Some(0.0));
        assert_eq!(go_parse_float("1e1_0"), Some(1e10));
        assert_eq!(go_parse_float("0x10"), None);
        assert!(go_parse_float("-Inf").is_some_and(f64::is_nan));
    }

    proptest::proptest! {
        #[test]
        fn parse_mount_never_panics(s in "[a-zA-Z=,\"/0-9 ._\\-+\n\r\u{130}\u{212a}é]{0,80}") {
            let _ = parse_mount(&s);
        }

        #[test]
        fn parse_mount_never_panics_on_any_text(s in "\\PC{0,60}") {
            let _ = parse_mount(&s);
            let _ = parse_device(&s);
        }

        #[test]
        fn size_parsing_never_panics(s in "[0-9.eEpPxX+\\-_ kKmMgGtTbBiI\u{212a}]{0,12}") {
            let _ = ram_in_bytes(&s);
        }

        #[test]
        fn accepted_mounts_have_their_defaults(
            kind in proptest::sample::select(vec!["bind", "cache", "tmpfs", "secret", "ssh"]),
            target in proptest::option::of("/[a-z]{1,8}(/[a-z]{1,8}){0,2}"),
            id in proptest::option::of("[a-z]{1,8}"),
        ) {
            let mut v = format!("type={kind}");
            if let Some(t) = &target { v.push_str(&format!(",target={t}")); }
            if let Some(i) = &id { v.push_str(&format!(",id={i}")); }
            if let Ok(m) = parse_mount(&v) {
                proptest::prop_assert_eq!(m.kind.name(), kind);
                proptest::prop_assert_eq!(m.read_only, matches!(m.kind, MountType::Bind | MountType::Secret | MountType::Ssh));
                match m.kind {
                    MountType::Cache | MountType::Secret | MountType::Ssh => proptest::prop_assert!(m.cache_id.is_some()),
                    MountType::Bind | MountType::Tmpfs => proptest::prop_assert_eq!(m.cache_id, id),
                }
                if m.kind == MountType::Secret {
                    proptest::prop_assert!(m.target.is_some());
                }
            } else {
                // Only a secret without any name fails here.
                proptest::prop_assert!(kind == "secret" && target.is_none() && id.is_none());
            }
        }
    }
}
