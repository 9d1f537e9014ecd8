//! The container commands: `run`, `create`, `start`, `ps`, `logs`,
//! `stop`, `kill`, `rm`, `wait`, `commit`, `diff`, `export`, container
//! `inspect`, and the hidden `__monitor` that runs one container
//! (kiln-runtime's monitor, with the store as its recorder).
//!
//! Exit codes as Docker's: 125 when kiln itself fails, 126 when the
//! command cannot be executed, 127 when it is not found, else the
//! container's status. `run` in the foreground *becomes* the monitor (exec,
//! same pid), so signals sent to `kiln run` reach the container; `run -d`
//! and `start` spawn the monitor in its own session and wait until it
//! reports that the container runs.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context, Result};
use kiln_oci::config::ContainerConfig;
use kiln_oci::time::parse_rfc3339;
use kiln_oci::{ImageConfig, Reference};
use kiln_runtime::monitor::{self, MonitorConfig, Recorder};
use kiln_runtime::network::{self, NetworkConfig, NetworkState, PortMapping};
use kiln_runtime::options::{
    self as ropts, MountKind, MountRequest, NetworkMode, RunOptions, SeccompMode, Ulimit,
};
use kiln_store::commit::CommitOptions;
use kiln_store::{ContainerRecord, ContainerState, Store};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::cli::Cli;
use crate::cli_container::{
    CommitArgs, CpArgs, CreateArgs, DiffArgs, ExecArgs, ExportArgs, KillArgs, LogsArgs,
    MonitorArgs, PortArgs, PsArgs, RestartArgs, RmArgs, RunArgs, StartArgs, StopArgs, WaitArgs,
};
use crate::commands::{open_store, store_root};
use crate::format::render;
use crate::format::units::human_duration;

/// kiln's own failure, as Docker's 125.
const EXIT_KILN: u8 = 125;

fn report(result: Result<u8>) -> Result<u8> {
    match result {
        Ok(c) => Ok(c),
        Err(e) => {
            eprintln!("kiln: {e:#}");
            Ok(EXIT_KILN)
        }
    }
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut b = vec![0u8; bytes];
    File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn random_name(id: &str) -> String {
    const ADJ: [&str; 16] = [
        "brave", "calm", "eager", "fervent", "gallant", "happy", "jolly", "keen", "lucid", "nifty",
        "quirky", "serene", "stoic", "tender", "vibrant", "wizardly",
    ];
    const NOUN: [&str; 16] = [
        "babbage", "curie", "darwin", "euler", "fermi", "gauss", "hopper", "knuth", "lovelace",
        "meitner", "noether", "pascal", "ritchie", "shannon", "turing", "wozniak",
    ];
    let n = u64::from_str_radix(&id[..12], 16).unwrap_or(0);
    format!(
        "{}_{}_{}",
        ADJ[(n % 16) as usize],
        NOUN[((n >> 4) % 16) as usize],
        &id[..4]
    )
}

/// `64m`, `1g`, `512k`, `1024` → bytes.
fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let v: f64 = num.parse().map_err(|_| anyhow!("invalid size: {s:?}"))?;
    Ok((v * mul as f64) as i64)
}

fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow!("invalid signal: {s}"));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map_err(|_| anyhow!("invalid signal: {s}"))
}

/// `-v HOST:CTR[:MODE]` (a bind mount), `-v NAME:CTR[:MODE]` (a named
/// volume, made if absent) or `-v CTR` (an anonymous volume). A volume's
/// `source` is its name (empty for an anonymous one) until
/// [`super::volume::resolve_mounts`] turns it into its directory.
fn parse_volume(v: &str) -> Result<MountRequest> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => bail!("invalid volume specification: {v:?}"),
    };
    if !dst.starts_with('/') {
        bail!("invalid volume specification {v:?}: the container path must be absolute");
    }
    let kind = if src.starts_with('/') {
        MountKind::Bind
    } else {
        MountKind::Volume
    };
    let mut readonly = false;
    let mut no_copy = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => readonly = true,
            "nocopy" if kind == MountKind::Volume => no_copy = true,
            "rw" | "z" | "Z" => {}
            _ => bail!("invalid mode {m:?} in volume {v:?}"),
        }
    }
    Ok(MountRequest {
        kind,
        source: src.into(),
        target: dst.into(),
        readonly,
        options: Vec::new(),
        name: None,
        no_copy,
    })
}

fn parse_mount(spec: &str) -> Result<MountRequest> {
    let mut kind = None;
    let mut source = String::new();
    let mut target = String::new();
    let mut readonly = false;
    let mut no_copy = false;
    let mut options = Vec::new();
    let flag = |v: &str| v.is_empty() || v == "true" || v == "1";
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').unwrap_or((field, ""));
        match k {
            "type" => {
                kind = Some(match v {
                    "bind" => MountKind::Bind,
                    "volume" => MountKind::Volume,
                    "tmpfs" => MountKind::Tmpfs,
                    other => bail!("mount type {other:?} is not supported (bind, volume, tmpfs)"),
                })
            }
            "source" | "src" => source = v.into(),
            "target" | "destination" | "dst" => target = v.into(),
            "readonly" | "ro" => readonly = flag(v),
            "volume-nocopy" => no_copy = flag(v),
            "tmpfs-size" => options.push(format!("size={}", parse_bytes(v)?)),
            "tmpfs-mode" => options.push(format!("mode={v}")),
            _ => bail!("unexpected key {k:?} in mount {spec:?}"),
        }
    }
    let kind =
        kind.ok_or_else(|| anyhow!("mount {spec:?} needs type=bind, type=volume or type=tmpfs"))?;
    if !target.starts_with('/') {
        bail!("mount {spec:?}: the target must be an absolute path");
    }
    if kind == MountKind::Bind && !source.starts_with('/') {
        bail!("mount {spec:?}: the source must be an absolute host path");
    }
    if kind == MountKind::Volume && source.starts_with('/') {
        bail!("mount {spec:?}: the source of a volume is its name, not a path (use type=bind)");
    }
    if no_copy && kind != MountKind::Volume {
        bail!("mount {spec:?}: volume-nocopy is for type=volume");
    }
    Ok(MountRequest {
        kind,
        source,
        target,
        readonly,
        options,
        name: None,
        no_copy,
    })
}

fn parse_ulimit(s: &str) -> Result<Ulimit> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("invalid ulimit argument: {s:?}"))?;
    if !kiln_runtime::spec::valid_ulimit(name) {
        bail!("invalid ulimit type: {name}");
    }
    let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
    let p = |v: &str| -> Result<u64> {
        if v == "-1" || v == "unlimited" {
            return Ok(u64::MAX);
        }
        v.parse()
            .map_err(|_| anyhow!("invalid ulimit value: {s:?}"))
    };
    let (soft, hard) = (p(soft)?, p(hard)?);
    if soft > hard {
        bail!("ulimit soft limit must be less than or equal to hard limit: {s}");
    }
    Ok(Ulimit {
        name: name.into(),
        soft,
        hard,
    })
}

/// Make the container record for `args` (nothing runs yet). If that
/// fails, the anonymous volumes made for it are removed again.
fn create_record(store: &Store, args: &CreateArgs) -> Result<ContainerRecord> {
    let mut anonymous = Vec::new();
    let r = make_record(store, args, &mut anonymous);
    if r.is_err() {
        let _ = store.remove_anonymous_volumes(&anonymous);
    }
    r
}

fn make_record(
    store: &Store,
    args: &CreateArgs,
    anonymous: &mut Vec<String>,
) -> Result<ContainerRecord> {
    let image = store.resolve(&args.image)?;
    let bytes = store.content().read(image.record.id())?;
    let image_config: ImageConfig = serde_json::from_slice(&bytes)
        .with_context(|| format!("image {}: invalid config", image.record.id()))?;
    let cfg = image_config.config.clone().unwrap_or_default();
    let id = random_hex(32)?;
    let hostname = args
        .hostname
        .clone()
        .unwrap_or_else(|| id[..12].to_string());
    let argv = ropts::command(&cfg, args.entrypoint.as_deref(), &args.command)?;
    let lookup = |k: &str| std::env::var(k).ok();
    let mut user_env = Vec::new();
    for f in &args.env_file {
        let text = fs::read_to_string(f)
            .with_context(|| format!("failed to read the env file {}", f.display()))?;
        user_env.extend(ropts::parse_env_file(&text, lookup)?);
    }
    for e in &args.env {
        user_env.extend(ropts::env_arg(e, lookup)?);
    }
    // HOME comes from passwd at start, when the root file system is there.
    let mut env = ropts::environment(&cfg.env, &user_env, &hostname, "");
    env.retain(|e| e != "HOME=");
    let cwd = ropts::workdir(&cfg, args.workdir.as_deref())?;
    let mut mounts = Vec::new();
    for v in &args.volume {
        mounts.push(parse_volume(v)?);
    }
    for m in &args.mount {
        mounts.push(parse_mount(m)?);
    }
    for t in &args.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t, ""));
        if !path.starts_with('/') {
            bail!("invalid tmpfs {t:?}: the path must be absolute");
        }
        mounts.push(MountRequest {
            kind: MountKind::Tmpfs,
            source: String::new(),
            target: path.into(),
            readonly: false,
            options: opts
                .split(',')
                .filter(|o| !o.is_empty())
                .map(String::from)
                .collect(),
            name: None,
            no_copy: false,
        });
    }
    let image_volumes: Vec<String> = cfg.volumes.keys().cloned().collect();
    anonymous.extend(super::volume::resolve_mounts(
        store,
        &mut mounts,
        &image_volumes,
    )?);
    let network = match args.network.as_deref() {
        None | Some("bridge" | "default") => NetworkMode::Bridge,
        Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        Some(n) => bail!("network {n} not found (kiln has bridge, host and none)"),
    };
    let net_cfg = NetworkConfig::from_env(store.root())?;
    let mut publish = Vec::new();
    for p in &args.publish {
        publish.extend(network::parse_publish(p)?);
    }
    // EXPOSE of the image and --expose; -P publishes them all.
    let mut exposed: Vec<String> = cfg.exposed_ports.keys().cloned().collect();
    for e in &args.expose {
        for m in network::publish_all(std::slice::from_ref(e))? {
            let key = format!("{}/{}", m.container_port, m.proto);
            if !exposed.contains(&key) {
                exposed.push(key);
            }
        }
    }
    if args.publish_all {
        for m in network::publish_all(&exposed)? {
            if !publish
                .iter()
                .any(|p| p.container_port == m.container_port && p.proto == m.proto)
            {
                publish.push(m);
            }
        }
    }
    if network != NetworkMode::Bridge && !publish.is_empty() {
        // Docker ignores them with the host's network and refuses nothing;
        // a silent no-op would surprise: say it.
        bail!(
            "published ports need the bridge network (--network {})",
            args.network.as_deref().unwrap_or_default()
        );
    }
    let mut seccomp = SeccompMode::Default;
    let mut no_new_privileges = false;
    for o in &args.security_opt {
        let (k, v) = o.split_once(['=', ':']).unwrap_or((o.as_str(), ""));
        match (k, v) {
            ("no-new-privileges", "" | "true") => no_new_privileges = true,
            ("no-new-privileges", "false") => no_new_privileges = false,
            ("seccomp", "unconfined") => seccomp = SeccompMode::Unconfined,
            ("seccomp", path) if !path.is_empty() => {
                let text = fs::read_to_string(path)
                    .with_context(|| format!("opening seccomp profile ({path}) failed"))?;
                kiln_runtime::seccomp::from_docker_profile(&text, &[])?;
                seccomp = SeccompMode::Profile(text);
            }
            ("label" | "apparmor", _) => {}
            _ => bail!("invalid --security-opt: {o:?}"),
        }
    }
    let stop_signal = args.stop_signal.clone().or(cfg.stop_signal.clone());
    if let Some(s) = &stop_signal {
        parse_signal(s)?;
    }
    let opts = RunOptions {
        args: argv.clone(),
        env: env.clone(),
        cwd: cwd.clone(),
        user: args.user.clone().or(cfg.user.clone()).unwrap_or_default(),
        hostname: hostname.clone(),
        tty: args.tty,
        open_stdin: args.interactive,
        init: args.init,
        read_only: args.read_only,
        privileged: args.privileged,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        no_new_privileges,
        seccomp,
        pids_limit: args.pids_limit,
        memory: args.memory.as_deref().map(parse_bytes).transpose()?,
        cpus: args.cpus,
        ulimits: args
            .ulimit
            .iter()
            .map(|u| parse_ulimit(u))
            .collect::<Result<_>>()?,
        mounts,
        network,
        stop_signal,
        stop_timeout: args.stop_timeout,
        auto_remove: args.rm,
        runtime: args.runtime.clone(),
        extra_hosts: args
            .add_host
            .iter()
            .map(|h| {
                let (name, ip) = network::parse_add_host(h, network::host_gateway(&net_cfg))?;
                Ok((name, ip.to_string()))
            })
            .collect::<Result<_>>()?,
        dns: args
            .dns
            .iter()
            .map(|d| {
                d.parse::<std::net::IpAddr>()
                    .map(|_| d.clone())
                    .map_err(|_| anyhow!("{d} is not an ip address"))
            })
            .collect::<Result<_>>()?,
        dns_search: args.dns_search.clone(),
        dns_options: args.dns_option.clone(),
        publish,
    };
    if let Some(r) = &opts.runtime {
        if !Path::new(r).is_absolute() {
            bail!("--runtime needs the absolute path of an OCI runtime, not {r:?}");
        }
        if opts.init {
            bail!("--init needs kiln's own runtime (not --runtime)");
        }
    }
    // Capabilities are checked now, not when the container starts.
    kiln_runtime::spec::capabilities(&opts)?;
    let mut labels = cfg.labels.clone();
    for l in &args.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.into(), v.into());
    }
    let merged = ContainerConfig {
        user: Some(opts.user.clone()).filter(|u| !u.is_empty()),
        env,
        cmd: Some(if args.entrypoint.is_some() || !args.command.is_empty() {
            args.command.clone()
        } else {
            cfg.cmd.clone().unwrap_or_default()
        }),
        entrypoint: match args.entrypoint.as_deref() {
            Some("") => None,
            Some(e) => Some(vec![e.to_string()]),
            None => cfg.entrypoint.clone(),
        },
        working_dir: Some(cwd),
        labels,
        stop_signal: opts.stop_signal.clone(),
        ..cfg.clone()
    };
    let mut config = serde_json::to_value(&merged)?;
    config["Hostname"] = json!(hostname);
    config["Image"] = json!(args.image);
    config["Tty"] = json!(args.tty);
    config["OpenStdin"] = json!(args.interactive);
    let name = match &args.name {
        Some(n) => n.trim_start_matches('/').to_string(),
        None => random_name(&id),
    };
    let record = ContainerRecord {
        id: id.clone(),
        name,
        image: image.record.manifest.digest.to_string(),
        image_name: args.image.clone(),
        config_digest: image.record.id().clone(),
        snapshots: image.record.snapshots().cloned().collect(),
        config,
        host_config: serde_json::to_value(&opts)?,
        path: argv[0].clone(),
        args: argv[1..].to_vec(),
        created: monitor::rfc3339_nanos(SystemTime::now()),
        state: ContainerState::Created,
        pid: 0,
        pid_start_time: 0,
        monitor_pid: 0,
        monitor_start_time: 0,
        exit_code: 0,
        error: String::new(),
        started_at: None,
        finished_at: None,
        stopped_by_user: false,
        network: Value::Null,
    };
    store.create_container(&record)?;
    Ok(record)
}

fn monitor_command(
    exe: &kiln_runtime::memfd::SealedExe,
    cli: &Cli,
    id: &str,
    attach: bool,
    ready_fd: Option<i32>,
) -> std::process::Command {
    // Started from kiln's sealed copy, the monitor need not re-execute
    // itself (`exe` must live until the spawn or exec).
    let mut c = exe.command();
    c.arg("--root").arg(store_root(cli));
    // libcontainer's own log lines would land on the user's terminal;
    // kiln reports its errors itself unless debugging was asked for.
    let level = if cli.debug > 0 {
        cli.log_level()
    } else {
        "off".into()
    };
    c.args(["--log-level", &level]);
    c.arg("__monitor");
    if attach {
        c.arg("--attach");
    }
    if let Some(fd) = ready_fd {
        c.arg("--ready-fd").arg(fd.to_string());
    }
    c.arg(id);
    c
}

/// Start the monitor in its own session and wait until the container runs
/// (or failed to start: its exit code and message).
fn start_detached(
    cli: &Cli,
    store: &Store,
    id: &str,
) -> Result<std::result::Result<(), (u8, String)>> {
    let (r, w) = nix::unistd::pipe()?;
    rustix::io::fcntl_setfd(&r, rustix::io::FdFlags::CLOEXEC)?;
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(store.container_dir(id).join("monitor.log"))?;
    let exe = kiln_runtime::memfd::SealedExe::open();
    let mut child = monitor_command(&exe, cli, id, false, Some(w.as_raw_fd()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .context("failed to start the container monitor")?;
    drop(w);
    let mut line = Vec::new();
    let mut f = File::from(r);
    let mut b = [0u8; 1];
    while f.read(&mut b)? == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    let line = String::from_utf8_lossy(&line).into_owned();
    if line == "ok" {
        // The monitor runs on in its own session; nobody waits for it
        // here, it is re-parented when kiln exits.
        std::mem::forget(child);
        return Ok(Ok(()));
    }
    let _ = child.wait();
    if let Some(rest) = line.strip_prefix("error ") {
        let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
        return Ok(Err((code.parse().unwrap_or(EXIT_KILN), msg.to_string())));
    }
    Ok(Err((
        EXIT_KILN,
        "the container monitor died before the container started".into(),
    )))
}

/// `kiln run`.
pub(crate) fn run(cli: &Cli, args: &RunArgs) -> Result<u8> {
    report((|| {
        // The cgroup attach's wait, paid from here on, across the exec
        // into the monitor, which takes the helper over (a detached
        // monitor starts its own).
        let warm = if args.detach {
            None
        } else {
            kiln_runtime::cgroup_warm::start_for_exec()
        };
        let store = open_store(cli)?;
        crate::commands::pull::ensure_image(
            cli,
            &store,
            &args.create.image,
            args.create.pull,
            args.create.platform.as_deref(),
        )?;
        if args.detach && !args.attach.is_empty() {
            bail!("conflicting options: cannot specify both --attach and --detach");
        }
        let record = create_record(&store, &args.create)?;
        if args.detach {
            return match start_detached(cli, &store, &record.id)? {
                Ok(()) => {
                    println!("{}", record.id);
                    Ok(0)
                }
                Err((code, msg)) => {
                    eprintln!("kiln: {msg}");
                    Ok(code)
                }
            };
        }
        let exe = kiln_runtime::memfd::SealedExe::open();
        let mut c = monitor_command(&exe, cli, &record.id, true, None);
        if let Some(fd) = warm {
            c.arg("--warm-fd").arg(fd.to_string());
        }
        if !args.attach.is_empty() {
            let streams: Vec<String> = args.attach.iter().map(|a| a.to_ascii_lowercase()).collect();
            c.arg("--streams").arg(streams.join(","));
        }
        let e = c.exec();
        Err(anyhow!(e).context("failed to run the container monitor"))
    })())
}

/// `kiln create`.
pub(crate) fn create(cli: &Cli, args: &CreateArgs) -> Result<u8> {
    report((|| {
        let store = open_store(cli)?;
        crate::commands::pull::ensure_image(
            cli,
            &store,
            &args.image,
            args.pull,
            args.platform.as_deref(),
        )?;
        let record = create_record(&store, args)?;
        println!("{}", record.id);
        Ok(0)
    })())
}

/// `kiln start`.
pub(crate) fn start(cli: &Cli, args: &StartArgs) -> Result<u8> {
    report((|| {
        let store = open_store(cli)?;
        if args.attach || args.interactive {
            if args.containers.len() > 1 {
                bail!("you cannot start and attach multiple containers at once");
            }
            let c = store.container(&args.containers[0])?;
            if c.state == ContainerState::Running {
                bail!("container {} is already running", c.name);
            }
            let exe = kiln_runtime::memfd::SealedExe::open();
            let e = monitor_command(&exe, cli, &c.id, true, None).exec();
            return Err(anyhow!(e).context("failed to run the container monitor"));
        }
        let mut code = 0;
        for n in &args.containers {
            let c = match store.container(n) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("Error response from daemon: {e}");
                    code = 1;
                    continue;
                }
            };
            if c.state == ContainerState::Running {
                println!("{n}");
                continue;
            }
            match start_detached(cli, &store, &c.id)? {
                Ok(()) => println!("{n}"),
                Err((_, msg)) => {
                    eprintln!("Error response from daemon: {msg}");
                    code = 1;
                }
            }
        }
        Ok(code)
    })())
}

struct StoreRecorder<'a> {
    store: &'a Store,
    id: String,
    /// `--rm`: the record is removed right after the end, so the end of a
    /// run that did start is not written (one metadata transaction less).
    auto_remove: bool,
}

impl Recorder for StoreRecorder<'_> {
    fn started(&mut self, pid: u32) -> std::result::Result<(), String> {
        let start_time = kiln_store::lease::process_start_time(pid).unwrap_or(0);
        let me = std::process::id();
        let me_start = kiln_store::lease::process_start_time(me).unwrap_or(0);
        self.store
            .update_container(&self.id, |c| {
                c.state = ContainerState::Running;
                c.pid = pid;
                c.pid_start_time = start_time;
                c.monitor_pid = me;
                c.monitor_start_time = me_start;
                c.exit_code = 0;
                c.error.clear();
                c.started_at = Some(monitor::rfc3339_nanos(SystemTime::now()));
                c.finished_at = None;
                c.stopped_by_user = false;
            })
            .map_err(|e| e.to_string())?
            .map(|_| ())
            .ok_or_else(|| "the container was removed".to_string())
    }

    fn network(&mut self, state: &NetworkState) -> std::result::Result<(), String> {
        let value = serde_json::to_value(state).map_err(|e| e.to_string())?;
        self.store
            .update_container(&self.id, |c| c.network = value)
            .map_err(|e| e.to_string())?
            .map(|_| ())
            .ok_or_else(|| "the container was removed".to_string())
    }

    fn finished(&mut self, code: i32, error: Option<&str>) {
        if self.auto_remove && error.is_none() {
            return;
        }
        let _ = self.store.update_container(&self.id, |c| {
            // A container whose process never started stays "Created",
            // with the status and error of the attempt (as Docker shows).
            c.state = if error.is_some() {
                ContainerState::Created
            } else {
                ContainerState::Exited
            };
            c.pid = 0;
            c.exit_code = code;
            c.error = error.unwrap_or_default().to_string();
            c.finished_at = Some(monitor::rfc3339_nanos(SystemTime::now()));
        });
    }
}

/// `kiln __monitor`: run one container to its end.
pub(crate) fn monitor(cli: &Cli, args: &MonitorArgs) -> Result<u8> {
    if let Err(e) = kiln_runtime::memfd::ensure_sealed() {
        eprintln!("kiln: cannot run the monitor from a sealed copy of kiln: {e}");
        return Ok(EXIT_KILN);
    }
    // Overlaps the cgroup attach's wait with the preparation below.
    match args.warm_fd {
        Some(fd) => kiln_runtime::cgroup_warm::adopt(fd),
        None => kiln_runtime::cgroup_warm::start(),
    }
    let ready = args.ready_fd.and_then(monitor::inherited_fd);
    if !args.attach {
        let _ = rustix::process::setsid();
    }
    let store = open_store(cli)?;
    let c = match store.container(&args.id) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kiln: {e}");
            return Ok(EXIT_KILN);
        }
    };
    if c.state == ContainerState::Running {
        eprintln!("kiln: container {} is already running", c.name);
        return Ok(EXIT_KILN);
    }
    let opts: RunOptions = serde_json::from_value(c.host_config.clone())
        .context("the container's options do not decode")?;
    let cfg = MonitorConfig {
        id: c.id.clone(),
        dir: store.container_dir(&c.id),
        lowers: c.snapshots.iter().map(|s| store.snapshot_path(s)).collect(),
        opts: opts.clone(),
        attach: args.attach,
        streams: if args.streams.is_empty() {
            monitor::Streams::default()
        } else {
            monitor::Streams {
                stdin: args.streams.iter().any(|s| s == "stdin"),
                stdout: args.streams.iter().any(|s| s == "stdout"),
                stderr: args.streams.iter().any(|s| s == "stderr"),
            }
        },
        network: NetworkConfig::from_env(store.root())?,
        seccomp_cache: Some(Store::seccomp_cache(store.root())),
    };
    let mut rec = StoreRecorder {
        store: &store,
        id: c.id.clone(),
        auto_remove: opts.auto_remove,
    };
    let outcome = monitor::run(&cfg, &mut rec, ready);
    if let Some(e) = &outcome.error {
        if args.attach {
            eprintln!("kiln: {e}");
        }
    }
    if opts.auto_remove {
        monitor::cleanup_dir(&c.id, &cfg.dir);
        let _ = store.remove_container(&c.id);
        // Docker removes a `--rm` container's anonymous volumes too.
        let _ = store.remove_anonymous_volumes(&kiln_store::volumes::volumes_of(&c.host_config));
    }
    Ok(u8::try_from(outcome.code).unwrap_or(EXIT_KILN))
}

fn status_text(c: &ContainerRecord, now: SystemTime) -> String {
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(parse_rfc3339)
            .and_then(|t| now.duration_since(t).ok())
            .map(human_duration)
            .unwrap_or_else(|| "Less than a second".into())
    };
    match c.state {
        ContainerState::Created => "Created".into(),
        ContainerState::Running => format!("Up {}", since(&c.started_at)),
        ContainerState::Exited => format!("Exited ({}) {} ago", c.exit_code, since(&c.finished_at)),
        ContainerState::Removing => "Removal In Progress".into(),
    }
}

fn quote_command(c: &ContainerRecord) -> String {
    let mut parts = vec![c.path.clone()];
    parts.extend(c.args.iter().cloned());
    parts.join(" ")
}

fn matches_filter(c: &ContainerRecord, f: &str) -> Result<bool> {
    let (k, v) = f
        .split_once('=')
        .ok_or_else(|| anyhow!("bad format of filter (expected name=value): {f}"))?;
    Ok(match k {
        "id" => c.id.starts_with(v),
        "name" => c.name.contains(v.trim_start_matches('/')),
        "status" => c.state.as_str() == v,
        "exited" => c.state == ContainerState::Exited && v.parse::<i32>().ok() == Some(c.exit_code),
        "ancestor" => {
            c.image_name == v
                || c.config_digest
                    .hex()
                    .starts_with(v.trim_start_matches("sha256:"))
        }
        "label" => {
            let labels = c.config.get("Labels").and_then(Value::as_object);
            let (lk, lv) = v.split_once('=').map_or((v, None), |(a, b)| (a, Some(b)));
            labels
                .and_then(|l| l.get(lk))
                .is_some_and(|x| lv.is_none_or(|lv| x.as_str() == Some(lv)))
        }
        // A volume's name or a mount's destination, as Docker.
        "volume" => serde_json::from_value::<RunOptions>(c.host_config.clone())
            .map(|o| o.mounts)
            .unwrap_or_default()
            .iter()
            .any(|m| m.name.as_deref() == Some(v) || m.target == v),
        _ => bail!("invalid filter '{k}'"),
    })
}

/// `kiln ps`.
pub(crate) fn ps(cli: &Cli, args: &PsArgs) -> Result<u8> {
    report((|| {
        let store = open_store(cli)?;
        let now = SystemTime::now();
        let mut rows = Vec::new();
        for c in store.containers()? {
            let explicit_status = args
                .filter
                .iter()
                .any(|f| f.starts_with("status=") || f.starts_with("exited="));
            if !args.all && !explicit_status && c.state != ContainerState::Running {
                continue;
            }
            let mut keep = true;
            for f in &args.filter {
                keep &= matches_filter(&c, f)?;
            }
            if !keep {
                continue;
            }
            let id = if args.no_trunc {
                c.id.clone()
            } else {
                c.short_id().to_string()
            };
            let mut command = quote_command(&c);
            if !args.no_trunc && command.chars().count() > 20 {
                command = command.chars().take(19).collect::<String>() + "…";
            }
            let created = c.created.as_str();
            let created_ago = parse_rfc3339(created)
                .and_then(|t| now.duration_since(t).ok())
                .map(|d| format!("{} ago", human_duration(d)))
                .unwrap_or_default();
            rows.push(json!({
                "ID": id,
                "Image": c.image_name,
                "Command": format!("\"{command}\""),
                "CreatedAt": created,
                "RunningFor": created_ago,
                "Status": status_text(&c, now),
                "State": c.state.as_str(),
                "Ports": ports_text(&c),
                "Names": c.name,
                "Labels": c.config.get("Labels").cloned().unwrap_or(json!({})),
                "Mounts": "",
                "Networks": "",
                "Size": if args.size {
                    crate::format::units::human_size(dir_size(&store.container_dir(&c.id).join("upper")))
                } else {
                    String::new()
                },
            }));
        }
        let mut out = io::stdout().lock();
        if args.quiet {
            for r in &rows {
                writeln!(out, "{}", r["ID"].as_str().unwrap_or_default())?;
            }
            return Ok(0);
        }
        let mut columns = vec![
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("Ports", "PORTS"),
            ("Names", "NAMES"),
        ];
        if args.size {
            columns.push(("Size", "SIZE"));
        }
        let format = args
            .format
            .clone()
            .unwrap_or_else(|| crate::format::default_table_format(&columns));
        render(&format, &rows, &columns, &mut out)?;
        Ok(0)
    })())
}

/// Bytes of the regular files under `dir` (not following links).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) if m.is_file() => m.len(),
            _ => 0,
        })
        .sum()
}

fn print_log_line(line: &str, timestamps: bool) -> Result<()> {
    let Ok(v) = serde_json::from_str::<Value>(line) else {
        return Ok(());
    };
    let text = v["log"].as_str().unwrap_or_default();
    let mut s = String::new();
    if timestamps {
        s.push_str(v["time"].as_str().unwrap_or_default());
        s.push(' ');
    }
    s.push_str(text);
    if v["stream"] == "stderr" {
        io::stderr().write_all(s.as_bytes())?;
    } else {
        let mut o = io::stdout().lock();
        o.write_all(s.as_bytes())?;
        o.flush()?;
    }
    Ok(())
}

/// `kiln logs`.
pub(crate) fn logs(cli: &Cli, args: &LogsArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let c = match store.container(&args.container) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            return Ok(1);
        }
    };
    let path = monitor::log_path(&store.container_dir(&c.id));
    let mut file = match File::open(&path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
    };
    let mut pos = 0u64;
    if let Some(f) = &mut file {
        let mut text = String::new();
        f.read_to_string(&mut text)?;
        pos = text.len() as u64;
        let lines: Vec<&str> = text.lines().collect();
        let skip = match args.tail.as_deref() {
            None | Some("all") => 0,
            Some(n) => {
                let n: usize = n.parse().map_err(|_| anyhow!("invalid --tail: {n}"))?;
                lines.len().saturating_sub(n)
            }
        };
        for l in &lines[skip..] {
            print_log_line(l, args.timestamps)?;
        }
    }
    if !args.follow {
        return Ok(0);
    }
    let mut partial = String::new();
    loop {
        let running = store
            .container(&c.id)
            .map(|c| {
                c.state == ContainerState::Running
                    || c.state == ContainerState::Created
                        && c.started_at.is_none()
                        && c.monitor_alive()
            })
            .unwrap_or(false);
        if file.is_none() {
            file = File::open(&path).ok();
        }
        if let Some(f) = &mut file {
            f.seek(io::SeekFrom::Start(pos))?;
            let mut more = String::new();
            f.read_to_string(&mut more)?;
            pos += more.len() as u64;
            partial.push_str(&more);
            while let Some(nl) = partial.find('\n') {
                let line: String = partial.drain(..=nl).collect();
                print_log_line(line.trim_end(), args.timestamps)?;
            }
        }
        if !running {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_exited(store: &Store, id: &str, timeout: Duration) -> Result<Option<ContainerRecord>> {
    let deadline = Instant::now() + timeout;
    loop {
        let c = match store.container(id) {
            Ok(c) => c,
            Err(kiln_store::Error::Container(kiln_store::ContainerError::NoSuch(_))) => {
                return Ok(None)
            }
            Err(e) => return Err(e.into()),
        };
        if c.state != ContainerState::Running {
            return Ok(Some(c));
        }
        if Instant::now() >= deadline {
            return Ok(Some(c));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal_container(c: &ContainerRecord, sig: Signal) -> bool {
    if !c.process_alive() {
        return false;
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.pid as i32), sig).is_ok()
}

/// Stop one container: its stop signal, then SIGKILL after the timeout.
fn stop_one(
    store: &Store,
    c: &ContainerRecord,
    signal: Option<&str>,
    time: Option<i64>,
) -> Result<()> {
    if c.state != ContainerState::Running {
        return Ok(());
    }
    let opts: RunOptions = serde_json::from_value(c.host_config.clone()).unwrap_or_default();
    let sig = parse_signal(signal.or(opts.stop_signal.as_deref()).unwrap_or("SIGTERM"))?;
    let timeout = time.or(opts.stop_timeout).unwrap_or(10);
    store.update_container(&c.id, |c| c.stopped_by_user = true)?;
    signal_container(c, sig);
    let deadline = Instant::now() + Duration::from_secs(timeout.max(0) as u64);
    while c.process_alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if c.process_alive() {
        signal_container(c, Signal::SIGKILL);
    }
    wait_exited(store, &c.id, Duration::from_secs(10))?;
    Ok(())
}

/// `kiln stop`.
pub(crate) fn stop(cli: &Cli, args: &StopArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let mut code = 0;
    for n in &args.containers {
        match store
            .container(n)
            .map_err(anyhow::Error::from)
            .and_then(|c| stop_one(&store, &c, args.signal.as_deref(), args.time))
        {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `kiln restart`: stop (as `stop` does), then start detached.
pub(crate) fn restart(cli: &Cli, args: &RestartArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let mut code = 0;
    for n in &args.containers {
        let r = store
            .container(n)
            .map_err(anyhow::Error::from)
            .and_then(|c| {
                stop_one(&store, &c, args.signal.as_deref(), args.time)?;
                match start_detached(cli, &store, &c.id)? {
                    Ok(()) => Ok(()),
                    Err((_, msg)) => Err(anyhow!(msg)),
                }
            });
        match r {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `kiln kill`.
pub(crate) fn kill(cli: &Cli, args: &KillArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let sig = parse_signal(&args.signal)?;
    let mut code = 0;
    for n in &args.containers {
        let r = store
            .container(n)
            .map_err(anyhow::Error::from)
            .and_then(|c| {
                if c.state != ContainerState::Running || !signal_container(&c, sig) {
                    bail!(
                        "cannot kill container: {n}: container {} is not running",
                        c.id
                    );
                }
                store.update_container(&c.id, |c| c.stopped_by_user = true)?;
                Ok(())
            });
        match r {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// Gives back the container's address and veth when its monitor could
/// not (it was killed); idempotent, so harmless after a normal exit.
fn release_network(store: &Store, c: &ContainerRecord) -> Result<()> {
    let Ok(state) = serde_json::from_value::<NetworkState>(c.network.clone()) else {
        return Ok(());
    };
    if let Some(a) = &state.attachment {
        let cfg = NetworkConfig::from_env(store.root())?;
        network::detach(&cfg, &c.id, a)
            .with_context(|| format!("failed to release the network of container {}", c.name))?;
    }
    Ok(())
}

/// `kiln rm`.
pub(crate) fn rm(cli: &Cli, args: &RmArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let mut code = 0;
    for n in &args.containers {
        let r = store.container(n).map_err(anyhow::Error::from).and_then(|c| {
            if c.state == ContainerState::Running {
                if !args.force {
                    bail!("cannot remove container \"/{}\": container is running: stop the container before removing or force remove", c.name);
                }
                signal_container(&c, Signal::SIGKILL);
                wait_exited(&store, &c.id, Duration::from_secs(10))?;
            }
            monitor::cleanup_dir(&c.id, &store.container_dir(&c.id));
            release_network(&store, &c)?;
            store.remove_container(&c.id)?;
            if args.volumes {
                let names = kiln_store::volumes::volumes_of(&c.host_config);
                store.remove_anonymous_volumes(&names)?;
            }
            Ok(())
        });
        match r {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `kiln wait`.
pub(crate) fn wait(cli: &Cli, args: &WaitArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let mut code = 0;
    for n in &args.containers {
        let r = store
            .container(n)
            .map_err(anyhow::Error::from)
            .and_then(|c| {
                let mut c = c;
                while c.state == ContainerState::Running
                    || (c.state == ContainerState::Created && c.monitor_alive())
                {
                    std::thread::sleep(Duration::from_millis(50));
                    c = store.container(&c.id)?;
                }
                Ok(c.exit_code)
            });
        match r {
            Ok(status) => println!("{status}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `kiln exec`: this process runs the command in the container (from a
/// sealed copy of kiln, single threaded, as the monitor does).
pub(crate) fn exec(cli: &Cli, args: &ExecArgs) -> Result<u8> {
    if let Err(e) = kiln_runtime::memfd::ensure_sealed() {
        eprintln!("kiln: cannot run from a sealed copy of kiln: {e}");
        return Ok(EXIT_KILN);
    }
    kiln_runtime::cgroup_warm::start();
    let store = open_store(cli)?;
    let c = match store.container(&args.container) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("Error response from daemon: {e}");
            return Ok(1);
        }
    };
    if c.state != ContainerState::Running || !c.process_alive() {
        eprintln!(
            "Error response from daemon: container {} is not running",
            c.id
        );
        return Ok(1);
    }
    let lookup = |k: &str| std::env::var(k).ok();
    let mut env = Vec::new();
    for e in &args.env {
        env.extend(ropts::env_arg(e, lookup)?);
    }
    let req = monitor::ExecRequest {
        args: args.command.clone(),
        env,
        user: args.user.clone(),
        cwd: args.workdir.clone(),
        tty: args.tty,
        open_stdin: args.interactive,
        detach: args.detach,
        seccomp_cache: Some(Store::seccomp_cache(store.root())),
    };
    let out = monitor::exec(&c.id, &store.container_dir(&c.id), &req);
    if let Some(e) = &out.error {
        eprintln!("kiln: {e}");
    }
    Ok(u8::try_from(out.code).unwrap_or(EXIT_KILN))
}

/// `kiln commit`.
pub(crate) fn commit(cli: &Cli, args: &CommitArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let c = store.container(&args.container)?;
    let image = store.resolve(c.config_digest.hex())?;
    let mut config: ContainerConfig = serde_json::from_value(c.config.clone())
        .context("the container's configuration does not decode")?;
    super::archive::apply_changes(&mut config, &args.change)?;
    let names = match &args.name {
        Some(n) => vec![Reference::parse(n)?],
        None => Vec::new(),
    };
    let upper = store.container_dir(&c.id).join("upper");
    if !upper.is_dir() {
        fs::create_dir_all(&upper)?;
    }
    let opts = CommitOptions {
        config,
        comment: args.message.clone(),
        author: args.author.clone(),
        created_by: Some(quote_command(&c)),
    };
    // A running container is frozen while its changes are read (Docker's
    // default), so that the layer is one moment of its file system.
    let _frozen = if args.pause && c.state == ContainerState::Running && c.process_alive() {
        Some(
            kiln_runtime::freeze::freeze(&c.id)
                .with_context(|| format!("failed to pause container {}", c.name))?,
        )
    } else {
        None
    };
    let record = store.commit(&image.record, &upper, &opts, &names)?;
    drop(_frozen);
    println!("{}", record.id());
    Ok(0)
}

/// Whether `rel` exists in one of the lower directories (top first).
fn in_lowers(lowers: &[PathBuf], rel: &Path) -> bool {
    lowers
        .iter()
        .rev()
        .any(|l| fs::symlink_metadata(l.join(rel)).is_ok())
}

fn walk_diff(dir: &Path, rel: &Path, lowers: &[PathBuf], out: &mut Vec<String>) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let r = rel.join(e.file_name());
        let md = e.metadata()?;
        let shown = Path::new("/").join(&r).display().to_string();
        if monitor::GENERATED.contains(&shown.as_str()) {
            continue;
        }
        if md.file_type().is_char_device() && md.len() == 0 && {
            use std::os::unix::fs::MetadataExt;
            md.rdev() == 0
        } {
            out.push(format!("D {shown}"));
            continue;
        }
        out.push(format!(
            "{} {shown}",
            if in_lowers(lowers, &r) { "C" } else { "A" }
        ));
        if md.is_dir() {
            walk_diff(&e.path(), &r, lowers, out)?;
        }
    }
    Ok(())
}

/// `kiln diff`.
pub(crate) fn diff(cli: &Cli, args: &DiffArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let c = store.container(&args.container)?;
    let upper = store.container_dir(&c.id).join("upper");
    let lowers: Vec<PathBuf> = c.snapshots.iter().map(|s| store.snapshot_path(s)).collect();
    let mut out = Vec::new();
    if upper.is_dir() {
        walk_diff(&upper, Path::new(""), &lowers, &mut out)?;
    }
    let mut o = io::stdout().lock();
    for l in out {
        writeln!(o, "{l}")?;
    }
    Ok(0)
}

/// `kiln export`.
pub(crate) fn export(cli: &Cli, args: &ExportArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let c = store.container(&args.container)?;
    let dir = store.container_dir(&c.id);
    let lowers: Vec<PathBuf> = c.snapshots.iter().map(|s| store.snapshot_path(s)).collect();
    let overlay = kiln_runtime::rootfs::Overlay::in_dir(&dir, lowers);
    // A running container's tree is mounted already; else mount it for
    // the export on a private mount point.
    let (root, temp) = if c.state == ContainerState::Running && overlay.is_mounted() {
        (overlay.target.clone(), None)
    } else {
        let t = kiln_runtime::rootfs::Overlay {
            target: dir.join(format!("export-{}", std::process::id())),
            ..overlay.clone()
        };
        t.mount()?;
        (t.target.clone(), Some(t))
    };
    let result = (|| -> Result<()> {
        let opts = kiln_fs::layer::WriteOptions::default();
        match &args.output {
            Some(p) => {
                let f = io::BufWriter::new(File::create(p)?);
                let mut f = kiln_fs::layer::write_tar(&root, f, &opts)?;
                f.flush()?;
            }
            None => {
                let out = io::BufWriter::new(io::stdout().lock());
                let mut out = kiln_fs::layer::write_tar(&root, out, &opts)?;
                out.flush()?;
            }
        }
        Ok(())
    })();
    if let Some(t) = temp {
        let _ = t.unmount();
        let _ = fs::remove_dir(&t.target);
    }
    result?;
    Ok(0)
}

/// The container's merged tree: the running container's mount, or a
/// private mount made for the caller (unmounted by [`Mounted::release`]).
struct Mounted {
    root: PathBuf,
    temp: Option<kiln_runtime::rootfs::Overlay>,
}

impl Mounted {
    fn new(store: &Store, c: &ContainerRecord) -> Result<Mounted> {
        let dir = store.container_dir(&c.id);
        let lowers: Vec<PathBuf> = c.snapshots.iter().map(|s| store.snapshot_path(s)).collect();
        let overlay = kiln_runtime::rootfs::Overlay::in_dir(&dir, lowers);
        if c.state == ContainerState::Running && overlay.is_mounted() {
            return Ok(Mounted {
                root: overlay.target.clone(),
                temp: None,
            });
        }
        let t = kiln_runtime::rootfs::Overlay {
            target: dir.join(format!("mnt-{}", std::process::id())),
            ..overlay
        };
        t.mount()?;
        Ok(Mounted {
            root: t.target.clone(),
            temp: Some(t),
        })
    }

    fn release(self) {
        if let Some(t) = self.temp {
            let _ = t.unmount();
            let _ = fs::remove_dir(&t.target);
        }
    }
}

/// Stream the tree at `src` as a tar into the safe layer applier at
/// `dest` (both directories).
fn copy_tree(src: &Path, dest: &Path) -> Result<()> {
    let (reader, writer) = nix::unistd::pipe()?;
    let (reader, writer) = (File::from(reader), File::from(writer));
    let src = src.to_path_buf();
    let producer = std::thread::spawn(move || -> Result<()> {
        let w = io::BufWriter::new(writer);
        let mut w = kiln_fs::layer::write_tar(&src, w, &Default::default())?;
        w.flush()?;
        Ok(())
    });
    let applied = kiln_fs::apply::apply_layer(reader, dest, &Default::default());
    let produced = producer
        .join()
        .map_err(|_| anyhow!("the copying thread panicked"))?;
    produced?;
    applied?;
    Ok(())
}

fn split_container_path(s: &str) -> Option<(&str, &str)> {
    let (c, p) = s.split_once(':')?;
    (!c.is_empty() && !c.contains('/')).then_some((c, p))
}

/// `kiln cp`: every path inside the container is resolved in-root
/// (symlinks in the container cannot lead to the host), and what is
/// written into the container goes through the safe layer applier.
pub(crate) fn cp(cli: &Cli, args: &CpArgs) -> Result<u8> {
    use kiln_runtime::inroot;
    use rustix::fs::OFlags;
    let store = open_store(cli)?;
    let (from_ctr, to_ctr) = (
        split_container_path(&args.src),
        split_container_path(&args.dest),
    );
    match (from_ctr, to_ctr) {
        (Some((name, path)), None) => {
            let c = store.container(name)?;
            let m = Mounted::new(&store, &c)?;
            let result = (|| -> Result<()> {
                let root = inroot::open_root(&m.root)?;
                let fd = inroot::open(&root, path, OFlags::PATH | OFlags::NOFOLLOW, 0)
                    .with_context(|| format!("Could not find the file {path} in container {name}"))?;
                let proc_path = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
                let st = rustix::fs::fstat(&fd)?;
                let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
                let dest = Path::new(&args.dest);
                let base = Path::new(path).file_name().map(PathBuf::from).unwrap_or_else(|| "root".into());
                let target = if dest.is_dir() { dest.join(&base) } else { dest.to_path_buf() };
                if kind == rustix::fs::FileType::Directory {
                    fs::create_dir_all(&target)?;
                    copy_tree(&proc_path, &target)?;
                } else if kind == rustix::fs::FileType::RegularFile {
                    let f = inroot::open(&root, path, OFlags::RDONLY | OFlags::NOFOLLOW, 0)?;
                    let mut src = File::from(f);
                    let mut out = File::create(&target)
                        .with_context(|| format!("failed to create {}", target.display()))?;
                    io::copy(&mut src, &mut out)?;
                    use std::os::unix::fs::PermissionsExt;
                    out.set_permissions(fs::Permissions::from_mode(st.st_mode & 0o7777))?;
                } else {
                    bail!("{path} in container {name} is neither a file nor a directory");
                }
                Ok(())
            })();
            m.release();
            result?;
        }
        (None, Some((name, path))) => {
            let c = store.container(name)?;
            let m = Mounted::new(&store, &c)?;
            let result = (|| -> Result<()> {
                let src = Path::new(&args.src);
                let md = fs::metadata(src).with_context(|| format!("failed to read {}", src.display()))?;
                let root = inroot::open_root(&m.root)?;
                let base = src.file_name().map(|b| b.to_string_lossy().into_owned()).unwrap_or_default();
                // An existing directory receives the source by its name.
                let into_dir = inroot::open(&root, path, OFlags::DIRECTORY | OFlags::RDONLY, 0).is_ok();
                let target = if into_dir {
                    format!("{}/{base}", path.trim_end_matches('/'))
                } else {
                    path.to_string()
                };
                if md.is_dir() {
                    inroot::mkdir_all(&root, &target)?;
                    let dir = inroot::open(&root, &target, OFlags::DIRECTORY | OFlags::RDONLY, 0)?;
                    copy_tree(src, Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())))?;
                } else {
                    let (parent, file) = target.rsplit_once('/').unwrap_or(("", &target));
                    let dir = inroot::open(&root, if parent.is_empty() { "/" } else { parent }, OFlags::DIRECTORY | OFlags::RDONLY, 0)
                        .with_context(|| format!("no such directory {parent} in container {name}"))?;
                    use std::os::unix::fs::PermissionsExt;
                    let f = rustix::fs::openat(
                        &dir,
                        file,
                        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        rustix::fs::Mode::from_raw_mode(md.permissions().mode() & 0o7777),
                    )
                    .with_context(|| format!("failed to create {target} in container {name}"))?;
                    io::copy(&mut File::open(src)?, &mut File::from(f))?;
                }
                Ok(())
            })();
            m.release();
            result?;
        }
        _ => bail!("copying between containers or between host paths is not supported: one of SRC and DEST must be CONTAINER:PATH"),
    }
    Ok(0)
}

/// The `inspect` object of a container (Docker's shape, the fields kiln
/// has).
pub(crate) fn inspect_object(store: &Store, c: &ContainerRecord) -> Value {
    let dir = store.container_dir(&c.id);
    let running = c.state == ContainerState::Running;
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.path,
        "Args": c.args,
        "State": {
            "Status": c.state.as_str(),
            "Running": running,
            "Paused": false,
            "Restarting": false,
            "OOMKilled": false,
            "Dead": false,
            "Pid": if running { c.pid } else { 0 },
            "MonitorPid": if running { c.monitor_pid } else { 0 },
            "ExitCode": c.exit_code,
            "Error": c.error,
            "StartedAt": c.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "FinishedAt": c.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
        "Image": c.config_digest.to_string(),
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": monitor::log_path(&dir),
        "Name": format!("/{}", c.name),
        "Driver": "overlay",
        "HostConfig": c.host_config,
        "Mounts": super::volume::inspect_mounts(
            &serde_json::from_value::<RunOptions>(c.host_config.clone())
                .map(|o| o.mounts)
                .unwrap_or_default(),
        ),
        "GraphDriver": {
            "Name": "overlay",
            "Data": {
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
                "MergedDir": dir.join("rootfs"),
                "LowerDir": c.snapshots.iter().rev().map(|s| store.snapshot_path(s).display().to_string()).collect::<Vec<_>>().join(":"),
            }
        },
        "NetworkSettings": network_settings(c),
        "Config": c.config,
    })
}

/// The network the runtime recorded for the container's current run.
fn network_state(c: &ContainerRecord) -> NetworkState {
    if c.state != ContainerState::Running {
        return NetworkState::default();
    }
    serde_json::from_value(c.network.clone()).unwrap_or_default()
}

/// The container's exposed ports (`80/tcp`) from its config.
fn exposed_ports(c: &ContainerRecord) -> Vec<String> {
    c.config
        .get("ExposedPorts")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// `docker inspect`'s host address of a mapping: `0.0.0.0`, `::`.
fn host_ip_text(m: &PortMapping) -> String {
    m.bind_ip().to_string()
}

/// `ps`'s PORTS: `0.0.0.0:8080->80/tcp, :::8080->80/tcp, 443/tcp`.
fn ports_text(c: &ContainerRecord) -> String {
    if c.state != ContainerState::Running {
        return String::new();
    }
    let state = network_state(c);
    let mut parts: Vec<String> = state
        .ports
        .iter()
        .map(|m| {
            format!(
                "{}:{}->{}/{}",
                host_ip_text(m),
                m.host_port,
                m.container_port,
                m.proto
            )
        })
        .collect();
    for e in exposed_ports(c) {
        let published = state
            .ports
            .iter()
            .any(|m| format!("{}/{}", m.container_port, m.proto) == e);
        if !published {
            parts.push(e);
        }
    }
    parts.join(", ")
}

/// `inspect`'s NetworkSettings, in Docker's shape.
fn network_settings(c: &ContainerRecord) -> Value {
    let state = network_state(c);
    let mut ports = serde_json::Map::new();
    for e in exposed_ports(c) {
        ports.insert(e, Value::Null);
    }
    for m in &state.ports {
        let key = format!("{}/{}", m.container_port, m.proto);
        let entry = ports.entry(key).or_insert(Value::Null);
        if !entry.is_array() {
            *entry = json!([]);
        }
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({"HostIp": host_ip_text(m), "HostPort": m.host_port.to_string()}));
        }
    }
    let (ip, prefix, gateway, mac) = match &state.attachment {
        Some(a) => (
            a.ip.to_string(),
            a.prefix,
            a.gateway.to_string(),
            a.mac.to_string(),
        ),
        None => (String::new(), 0, String::new(), String::new()),
    };
    let mode: NetworkMode =
        serde_json::from_value(c.host_config["network"].clone()).unwrap_or_default();
    let name = match mode {
        NetworkMode::Bridge => "bridge",
        NetworkMode::Host => "host",
        NetworkMode::None => "none",
    };
    json!({
        "Bridge": state.bridge,
        "Ports": ports,
        "IPAddress": ip,
        "IPPrefixLen": prefix,
        "Gateway": gateway,
        "MacAddress": mac,
        "Networks": {
            name: {
                "IPAddress": ip,
                "IPPrefixLen": prefix,
                "Gateway": gateway,
                "MacAddress": mac,
            }
        },
    })
}

/// `kiln port`.
pub(crate) fn port(cli: &Cli, args: &PortArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let c = store.container(&args.container)?;
    let state = network_state(&c);
    let mut out = io::stdout().lock();
    match &args.port {
        None => {
            for m in &state.ports {
                writeln!(out, "{m}")?;
            }
        }
        Some(p) => {
            let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
            let num: u16 = num
                .parse()
                .map_err(|_| anyhow!("invalid port {p:?}: expected PORT[/PROTO]"))?;
            let found: Vec<&PortMapping> = state
                .ports
                .iter()
                .filter(|m| m.container_port == num && m.proto.to_string() == proto)
                .collect();
            if found.is_empty() {
                bail!("No public port '{num}/{proto}' published for {}", c.name);
            }
            for m in found {
                let text = m.to_string();
                let addr = text.split_once(" -> ").map_or(text.as_str(), |(_, a)| a);
                writeln!(out, "{addr}")?;
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags_parse_as_docker() {
        let m = parse_volume("/host:/ctr:ro").unwrap();
        assert_eq!((m.kind, m.readonly), (MountKind::Bind, true));
        let m = parse_volume("data:/ctr").unwrap();
        assert_eq!((m.kind, m.source.as_str()), (MountKind::Volume, "data"));
        let m = parse_volume("/ctr").unwrap();
        assert_eq!((m.kind, m.source.as_str()), (MountKind::Volume, ""));
        assert!(parse_volume("data:/ctr:nocopy").unwrap().no_copy);
        assert!(parse_volume("/host:/ctr:nocopy").is_err());
        assert!(parse_volume("data:rel").is_err());
        assert!(parse_volume("a:b:c:d").is_err());

        let m = parse_mount("type=volume,src=v,dst=/x,ro,volume-nocopy").unwrap();
        assert_eq!(m.kind, MountKind::Volume);
        assert!(m.readonly && m.no_copy);
        assert_eq!((m.source.as_str(), m.target.as_str()), ("v", "/x"));
        let m = parse_mount("type=volume,target=/x").unwrap();
        assert_eq!(m.source, "");
        assert!(parse_mount("type=volume,source=/abs,target=/x").is_err());
        assert!(parse_mount("type=bind,source=/a,target=/x,volume-nocopy").is_err());
    }
}
