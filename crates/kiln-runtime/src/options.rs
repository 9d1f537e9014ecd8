//! What a container is asked to be: the run options, stored with the
//! container record (Docker's `HostConfig` plus the process), and the rules
//! that merge them with the image configuration: ENTRYPOINT and CMD exactly
//! as Docker combines them, the environment (image, `-e`, `--env-file`,
//! Docker's default `PATH`, `HOSTNAME`, `HOME`), the working directory.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use kiln_oci::config::ContainerConfig;

/// Docker's default PATH, used when neither the image nor `-e` sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A mount requested with `-v`, `--mount` or `--tmpfs`, or an anonymous
/// volume for one of the image's `VOLUME` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRequest {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: MountKind,
    /// Host path (bind; for a volume its `_data` directory, resolved by the
    /// caller from the store) or empty (tmpfs).
    pub source: String,
    /// Absolute path in the container.
    pub target: String,
    /// Read-only.
    pub readonly: bool,
    /// Extra options (`size=64m`, `mode=1777`).
    #[serde(default)]
    pub options: Vec<String>,
    /// The volume's name (volumes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `volume-nocopy`: do not copy the image's content at the target into
    /// an empty volume.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_copy: bool,
}

/// Kinds of mounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    /// A host directory or file.
    Bind,
    /// A volume: a bind mount of its `_data` directory, filled from the
    /// image at the target on first use (see [`crate::volume`]).
    Volume,
    /// A fresh tmpfs.
    Tmpfs,
}

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// Its own network namespace on kiln's bridge (the default): an
    /// address, a default route, outbound NAT, published ports.
    #[default]
    Bridge,
    /// A network namespace with only loopback.
    None,
    /// The host's network namespace.
    Host,
}

/// `--security-opt seccomp=…`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompMode {
    /// Docker's default profile.
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile in Docker's JSON format (its contents, read at create).
    Profile(String),
}

/// A `--ulimit name=soft[:hard]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// `nofile`, `nproc`, … (Docker's names).
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Everything about a container that is not the image.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunOptions {
    /// The process: argv after ENTRYPOINT/CMD combination.
    pub args: Vec<String>,
    /// Final environment, `KEY=value`.
    pub env: Vec<String>,
    /// Working directory (absolute).
    pub cwd: String,
    /// `--user` or the image's USER.
    pub user: String,
    /// Host name.
    pub hostname: String,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub open_stdin: bool,
    /// `--init`.
    pub init: bool,
    /// `--read-only`.
    pub read_only: bool,
    /// `--privileged`.
    pub privileged: bool,
    /// `--cap-add`.
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// Seccomp.
    pub seccomp: SeccompMode,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--memory` in bytes.
    pub memory: Option<i64>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// Mounts.
    pub mounts: Vec<MountRequest>,
    /// `--network`.
    pub network: NetworkMode,
    /// `--stop-signal` or the image's STOPSIGNAL.
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds.
    pub stop_timeout: Option<i64>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--runtime PATH`: an external OCI runtime instead of libcontainer.
    pub runtime: Option<String>,
    /// `--add-host NAME:IP` lines for /etc/hosts.
    #[serde(default)]
    pub extra_hosts: Vec<(String, String)>,
    /// `--dns` servers (replace the host's in /etc/resolv.conf).
    #[serde(default)]
    pub dns: Vec<String>,
    /// `--dns-search` domains.
    #[serde(default)]
    pub dns_search: Vec<String>,
    /// `--dns-option` options.
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// `-p` and `-P`: ports to publish on the host (bridge network only);
    /// host port 0 is chosen when the container starts.
    #[serde(default)]
    pub publish: Vec<crate::network::PortMapping>,
}

/// Options that cannot be turned into a container.
#[derive(Debug, Error)]
pub enum OptionsError {
    /// Neither the image nor the command line gives a command.
    #[error("no command specified")]
    NoCommand,
    /// An `--env-file` line or `-e` that is not a variable.
    #[error("invalid environment variable: {0:?}")]
    BadEnv(String),
    /// A working directory that is not absolute.
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    RelativeWorkdir(String),
}

/// ENTRYPOINT and CMD as Docker combines them. `entrypoint` is the
/// `--entrypoint` flag: `Some("")` clears the image's entrypoint; any
/// `--entrypoint` also drops the image's CMD. Run arguments replace CMD.
pub fn command(
    image: &ContainerConfig,
    entrypoint: Option<&str>,
    args: &[String],
) -> Result<Vec<String>, OptionsError> {
    let (ep, cmd): (Vec<String>, Vec<String>) = match entrypoint {
        Some("") => (Vec::new(), args.to_vec()),
        Some(e) => (vec![e.to_string()], args.to_vec()),
        None => (
            image.entrypoint.clone().unwrap_or_default(),
            if args.is_empty() {
                image.cmd.clone().unwrap_or_default()
            } else {
                args.to_vec()
            },
        ),
    };
    let all: Vec<String> = ep.into_iter().chain(cmd).collect();
    if all.is_empty() {
        return Err(OptionsError::NoCommand);
    }
    Ok(all)
}

/// Parse an `--env-file`: `KEY=value` lines, `KEY` alone takes the
/// variable from `lookup` (kiln's environment) or is dropped, `#` comments
/// and blank lines skipped (Docker's rules: no quotes, no expansion).
pub fn parse_env_file(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, OptionsError> {
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        out.extend(env_arg(line, &lookup)?);
    }
    Ok(out)
}

/// One `-e` argument: `KEY=value`, or `KEY` taken from `lookup`.
pub fn env_arg(
    arg: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, OptionsError> {
    match arg.split_once('=') {
        Some(("", _)) => Err(OptionsError::BadEnv(arg.into())),
        Some(_) => Ok(Some(arg.to_string())),
        None if arg.trim().is_empty() || arg.contains(char::is_whitespace) => {
            Err(OptionsError::BadEnv(arg.into()))
        }
        None => Ok(lookup(arg).map(|v| format!("{arg}={v}"))),
    }
}

/// The container's environment: Docker's PATH default first (if the image
/// has none), then HOSTNAME, then the image's, then the user's (later
/// entries replace earlier ones of the same name, keeping the first
/// position), then HOME from passwd if still unset.
pub fn environment(
    image_env: &[String],
    user_env: &[String],
    hostname: &str,
    home: &str,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut set = |kv: &str| {
        let key = kv.split_once('=').map_or(kv, |(k, _)| k);
        if let Some(slot) = out
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
        {
            *slot = kv.to_string();
        } else {
            out.push(kv.to_string());
        }
    };
    set(&format!("PATH={DEFAULT_PATH}"));
    set(&format!("HOSTNAME={hostname}"));
    for e in image_env.iter().chain(user_env) {
        set(e);
    }
    if !out.iter().any(|e| e.starts_with("HOME=")) {
        out.push(format!("HOME={home}"));
    }
    out
}

/// The working directory: `-w`, else the image's, else `/`; must be
/// absolute.
pub fn workdir(image: &ContainerConfig, flag: Option<&str>) -> Result<String, OptionsError> {
    let w = flag
        .filter(|w| !w.is_empty())
        .or(image.working_dir.as_deref().filter(|w| !w.is_empty()))
        .unwrap_or("/");
    if !w.starts_with('/') {
        return Err(OptionsError::RelativeWorkdir(w.into()));
    }
    Ok(w.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(ep: Option<&[&str]>, cmd: Option<&[&str]>) -> ContainerConfig {
        ContainerConfig {
            entrypoint: ep.map(|v| v.iter().map(|s| s.to_string()).collect()),
            cmd: cmd.map(|v| v.iter().map(|s| s.to_string()).collect()),
            ..ContainerConfig::default()
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn entrypoint_and_cmd_combine_as_docker() {
        let img = image(Some(&["/ep", "-x"]), Some(&["default"]));
        assert_eq!(
            command(&img, None, &[]).unwrap(),
            s(&["/ep", "-x", "default"])
        );
        assert_eq!(
            command(&img, None, &s(&["a", "b"])).unwrap(),
            s(&["/ep", "-x", "a", "b"])
        );
        // --entrypoint drops the image's CMD as well.
        assert_eq!(command(&img, Some("sh"), &[]).unwrap(), s(&["sh"]));
        assert_eq!(
            command(&img, Some("sh"), &s(&["-c", "x"])).unwrap(),
            s(&["sh", "-c", "x"])
        );
        assert_eq!(
            command(&img, Some(""), &s(&["echo"])).unwrap(),
            s(&["echo"])
        );
        assert!(matches!(
            command(&img, Some(""), &[]),
            Err(OptionsError::NoCommand)
        ));
        // Shell-form CMD as stored by a build.
        let img = image(None, Some(&["/bin/sh", "-c", "echo hi"]));
        assert_eq!(
            command(&img, None, &[]).unwrap(),
            s(&["/bin/sh", "-c", "echo hi"])
        );
        assert_eq!(command(&img, None, &s(&["ls"])).unwrap(), s(&["ls"]));
        // Shell-form ENTRYPOINT ignores run arguments only by its shell.
        let img = image(Some(&["/bin/sh", "-c", "exec top"]), Some(&["x"]));
        assert_eq!(
            command(&img, None, &[]).unwrap(),
            s(&["/bin/sh", "-c", "exec top", "x"])
        );
        assert!(matches!(
            command(&image(None, None), None, &[]),
            Err(OptionsError::NoCommand)
        ));
        // An empty ENTRYPOINT list is no entrypoint.
        let img = image(Some(&[]), Some(&["true"]));
        assert_eq!(command(&img, None, &[]).unwrap(), s(&["true"]));
    }

    #[test]
    fn environment_order_and_overrides() {
        let env = environment(
            &s(&["PATH=/img/bin", "A=1"]),
            &s(&["A=2", "B=3"]),
            "h1",
            "/root",
        );
        assert_eq!(
            env,
            s(&["PATH=/img/bin", "HOSTNAME=h1", "A=2", "B=3", "HOME=/root"])
        );
        let env = environment(&[], &s(&["HOME=/x"]), "h", "/root");
        assert_eq!(env[0], format!("PATH={DEFAULT_PATH}"));
        assert!(env.contains(&"HOME=/x".to_string()));
        assert_eq!(env.iter().filter(|e| e.starts_with("HOME=")).count(), 1);
    }

    #[test]
    fn env_files_and_flags() {
        let look = |k: &str| (k == "FROM_HOST").then(|| "v".to_string());
        let got = parse_env_file("# c\n\nA=1\nFROM_HOST\nMISSING\nB=x=y\n", look).unwrap();
        assert_eq!(got, s(&["A=1", "FROM_HOST=v", "B=x=y"]));
        assert!(env_arg("=x", look).is_err());
        assert_eq!(env_arg("E=", look).unwrap(), Some("E=".into()));
    }

    #[test]
    fn workdir_defaults_and_must_be_absolute() {
        let mut img = image(None, None);
        assert_eq!(workdir(&img, None).unwrap(), "/");
        img.working_dir = Some("/srv".into());
        assert_eq!(workdir(&img, None).unwrap(), "/srv");
        assert_eq!(workdir(&img, Some("/x")).unwrap(), "/x");
        assert!(workdir(&img, Some("rel")).is_err());
    }
}
