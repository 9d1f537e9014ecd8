//! `kiln volume create|ls|inspect|rm|prune`, as Docker's CLI prints them,
//! and the resolution of `-v NAME:/path`, `-v /path`, `--mount
//! type=volume` and the image's `VOLUME` entries into volume mounts for
//! `run`/`create` (see [`resolve_mounts`]).
//!
//! Decisions: only the `local` driver; `-o` options are validated and
//! recorded (Docker's keys) but a volume with options cannot be mounted
//! yet (kiln does not mount devices for volumes). `volume prune` removes
//! unused anonymous volumes only unless `--all` (Docker ≥ 23). `volume rm
//! -f` ignores missing volumes but still keeps a volume in use, as Docker.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};

use anyhow::{anyhow, bail, Context, Result};
use kiln_runtime::options::{MountKind, MountRequest};
use kiln_store::volumes::dir_size;
use kiln_store::{Store, VolumeRecord};
use serde_json::{json, Value};

use crate::cli::Cli;
use crate::cli_volume::{
    VolumeCommand, VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::commands::{confirm, open_store};
use crate::format::render;
use crate::format::units::human_size;
use crate::EXIT_FAILURE;

/// Column titles of `docker volume ls` (docker/cli `formatter/volume.go`).
const VOLUME_HEADERS: &[(&str, &str)] = &[
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
];

/// `docker volume ls`' default table.
const VOLUME_TABLE: &str = "table {{.Driver}}\t{{.Name}}";

/// Run a `kiln volume` subcommand.
pub(crate) fn run(cli: &Cli, cmd: &VolumeCommand) -> Result<u8> {
    match cmd {
        VolumeCommand::Create(a) => create(cli, a),
        VolumeCommand::Ls(a) => ls(cli, a),
        VolumeCommand::Inspect(a) => inspect(cli, a),
        VolumeCommand::Rm(a) => rm(cli, a),
        VolumeCommand::Prune(a) => prune(cli, a),
    }
}

/// 64 random hex digits: the name of an anonymous (or unnamed) volume.
pub(crate) fn random_name() -> Result<String> {
    let mut b = [0u8; 32];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .context("failed to read /dev/urandom")?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn pairs(flag: &str, values: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for v in values {
        let (k, val) = v.split_once('=').unwrap_or((v, ""));
        if k.is_empty() {
            bail!("invalid argument {v:?} for {flag}: expected KEY=VALUE");
        }
        out.insert(k.to_string(), val.to_string());
    }
    Ok(out)
}

fn create(cli: &Cli, args: &VolumeCreateArgs) -> Result<u8> {
    if args.driver != "local" {
        bail!(
            "volume driver {:?} is not supported (only \"local\")",
            args.driver
        );
    }
    let labels = pairs("--label", &args.label)?;
    let options = pairs("--opt", &args.opt)?;
    let store = open_store(cli)?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => random_name()?,
    };
    match store.create_volume(&name, labels, options, false) {
        Ok((v, _)) => {
            println!("{}", v.name);
            Ok(0)
        }
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            Ok(EXIT_FAILURE)
        }
    }
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn label_matches(labels: &BTreeMap<String, String>, spec: &str) -> bool {
    match spec.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(spec),
    }
}

fn inspect_object(store: &Store, v: &VolumeRecord) -> Value {
    json!({
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": if v.labels.is_empty() { Value::Null } else { json!(v.labels) },
        "Mountpoint": store.volume_data(&v.name),
        "Name": v.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": "local",
    })
}

fn ls(cli: &Cli, args: &VolumeLsArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let mut filters: Vec<(String, String)> = Vec::new();
    for f in &args.filter {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow!("bad format of filter (expected name=value): {f}"))?;
        match k {
            "dangling" if matches!(v, "true" | "false" | "1" | "0") => {}
            "dangling" => bail!("invalid filter 'dangling={v}'"),
            "name" | "label" | "driver" => {}
            _ => bail!("invalid filter '{k}'"),
        }
        filters.push((k.to_string(), v.to_string()));
    }
    let mut rows = Vec::new();
    for (v, users) in store.volumes()? {
        let keep = filters.iter().all(|(k, val)| match k.as_str() {
            "dangling" => users.is_empty() == matches!(val.as_str(), "true" | "1"),
            "name" => v.name.contains(val.as_str()),
            "label" => label_matches(&v.labels, val),
            "driver" => v.driver == *val,
            _ => true,
        });
        if !keep {
            continue;
        }
        rows.push(json!({
            "Name": v.name,
            "Driver": v.driver,
            "Scope": "local",
            "Mountpoint": store.volume_data(&v.name),
            "Labels": labels_text(&v.labels),
            "Links": "N/A",
            "Size": "N/A",
        }));
    }
    let format = if args.quiet {
        "{{.Name}}"
    } else {
        args.format.as_deref().unwrap_or(VOLUME_TABLE)
    };
    let format = if format == "table" {
        VOLUME_TABLE
    } else {
        format
    };
    render(format, &rows, VOLUME_HEADERS, &mut std::io::stdout().lock())?;
    Ok(0)
}

fn inspect(cli: &Cli, args: &VolumeInspectArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let mut objects = Vec::new();
    let mut failed = false;
    for n in &args.names {
        match store.volume(n) {
            Ok(v) => objects.push(inspect_object(&store, &v)),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match args.format.as_deref() {
        None | Some("json") => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&objects, &mut ser)?;
            out.write_all(&buf)?;
            writeln!(out)?;
        }
        Some(f) => render(f, &objects, &[], &mut out)?,
    }
    Ok(if failed { EXIT_FAILURE } else { 0 })
}

fn rm(cli: &Cli, args: &VolumeRmArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let mut code = 0;
    for n in &args.names {
        match store.remove_volume(n) {
            Ok(()) => println!("{n}"),
            Err(kiln_store::Error::Volume(kiln_store::VolumeError::NoSuch(_))) if args.force => {
                println!("{n}")
            }
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                code = EXIT_FAILURE;
            }
        }
    }
    Ok(code)
}

fn prune(cli: &Cli, args: &VolumePruneArgs) -> Result<u8> {
    let mut with: Vec<String> = Vec::new();
    let mut without: Vec<String> = Vec::new();
    for f in &args.filter {
        if let Some(v) = f.strip_prefix("label!=") {
            without.push(v.to_string());
        } else if let Some(v) = f.strip_prefix("label=") {
            with.push(v.to_string());
        } else if f == "all=true" || f == "all=1" {
        } else {
            bail!("invalid filter {f:?}: volume prune takes label=… and label!=…");
        }
    }
    let all = args.all || args.filter.iter().any(|f| f == "all=true" || f == "all=1");
    if !args.force {
        eprintln!(
            "WARNING! This will remove {} local volumes not used by at least one container.",
            if all { "all" } else { "anonymous" }
        );
        if !confirm("Are you sure you want to continue?")? {
            return Ok(0);
        }
    }
    let store = open_store(cli)?;
    let removed = store.remove_volumes_where(
        |v, _| {
            (all || v.anonymous)
                && with.iter().all(|l| label_matches(&v.labels, l))
                && !without.iter().any(|l| label_matches(&v.labels, l))
        },
        false,
    )?;
    let mut out = std::io::stdout().lock();
    if !removed.is_empty() {
        writeln!(out, "Deleted Volumes:")?;
        for (n, _) in &removed {
            writeln!(out, "{n}")?;
        }
        writeln!(out)?;
    }
    let bytes: u64 = removed.iter().map(|(_, b)| b).sum();
    writeln!(out, "Total reclaimed space: {}", human_size(bytes))?;
    Ok(0)
}

/// For `system df`: volumes, those in use, bytes they hold, bytes held by
/// those not in use.
pub(crate) fn usage(store: &Store) -> Result<(usize, usize, u64, u64)> {
    let all = store.volumes()?;
    let mut active = 0;
    let (mut bytes, mut unused) = (0, 0);
    for (v, users) in &all {
        let size = dir_size(&store.volume_data(&v.name));
        bytes += size;
        if users.is_empty() {
            unused += size;
        } else {
            active += 1;
        }
    }
    Ok((all.len(), active, bytes, unused))
}

/// Turn the volume mounts of `mounts` (their `source` is a volume name,
/// empty for an anonymous one) into mounts of the volumes' `_data`
/// directories, creating the volumes that do not exist, and add an
/// anonymous volume for each of the image's `VOLUME` paths no mount
/// covers. Returns the anonymous volumes created, for the caller to remove
/// if the container is not made after all.
pub(crate) fn resolve_mounts(
    store: &Store,
    mounts: &mut Vec<MountRequest>,
    image_volumes: &[String],
) -> Result<Vec<String>> {
    for path in image_volumes {
        // Docker makes a relative `VOLUME` path absolute.
        let clean = format!("/{}", path.trim_matches('/'));
        let clean = clean.as_str();
        if mounts
            .iter()
            .any(|m| m.target.trim_end_matches('/') == clean.trim_end_matches('/'))
        {
            continue;
        }
        mounts.push(MountRequest {
            kind: MountKind::Volume,
            source: String::new(),
            target: clean.to_string(),
            readonly: false,
            options: Vec::new(),
            name: None,
            no_copy: false,
        });
    }
    let mut created = Vec::new();
    let r = (|| {
        for m in mounts.iter_mut().filter(|m| m.kind == MountKind::Volume) {
            let anonymous = m.source.is_empty();
            let name = if anonymous {
                random_name()?
            } else {
                m.source.clone()
            };
            let (v, new) =
                store.create_volume(&name, BTreeMap::new(), BTreeMap::new(), anonymous)?;
            if new && anonymous {
                created.push(name.clone());
            }
            if !v.options.is_empty() {
                bail!(
                    "volume {name} has driver options ({}), which kiln cannot mount yet",
                    labels_text(&v.options)
                );
            }
            m.source = store.volume_data(&name).display().to_string();
            m.name = Some(name);
        }
        Ok(())
    })();
    if let Err(e) = r {
        let _ = store.remove_anonymous_volumes(&created);
        return Err(e);
    }
    Ok(created)
}

/// The `Mounts` of a container's `inspect` (Docker's shape).
pub(crate) fn inspect_mounts(mounts: &[MountRequest]) -> Value {
    Value::Array(
        mounts
            .iter()
            .map(|m| match m.kind {
                MountKind::Volume => json!({
                    "Type": "volume",
                    "Name": m.name.clone().unwrap_or_default(),
                    "Source": m.source,
                    "Destination": m.target,
                    "Driver": "local",
                    "Mode": if m.readonly { "ro" } else { "z" },
                    "RW": !m.readonly,
                    "Propagation": "",
                }),
                MountKind::Bind => json!({
                    "Type": "bind",
                    "Source": m.source,
                    "Destination": m.target,
                    "Mode": if m.readonly { "ro" } else { "" },
                    "RW": !m.readonly,
                    "Propagation": "rprivate",
                }),
                MountKind::Tmpfs => json!({
                    "Type": "tmpfs",
                    "Source": "",
                    "Destination": m.target,
                    "Mode": "",
                    "RW": !m.readonly,
                    "Propagation": "",
                }),
            })
            .collect(),
    )
}
