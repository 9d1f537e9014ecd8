//! The per-container monitor (DESIGN.md, "Process model"): kiln
//! re-executed as a hidden subcommand, single threaded, from a sealed copy
//! of itself. It mounts the root file system, resolves the user in the
//! image, writes the runtime spec, creates and starts the container through
//! libcontainer, owns the container's stdio (pipes, or a real pty for `-t`
//! resized on SIGWINCH), writes the log (`json-file` lines: `log`, `stream`,
//! `time`), forwards signals to the container, waits for it, reports the
//! exit status through [`Recorder`], and cleans up (runtime state, cgroup,
//! mounts). `run -d` leaves it running in its own session.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
use nix::sys::termios::{self, SetArg, Termios};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{pipe, Pid};

use crate::engine::{self, EngineError, Stdio};
use crate::network::{self, Attachment, NetworkConfig, NetworkState, PortProxy};
use crate::options::{NetworkMode, RunOptions};
use crate::rootfs::{MountPointParents, Overlay};
use crate::spec::{self, Generated};
use crate::{inroot, user};

/// What the monitor tells the store.
pub trait Recorder {
    /// The container runs; `pid` is its init on the host.
    fn started(&mut self, pid: u32) -> Result<(), String>;
    /// It ended with `code` (or never started: `error`).
    fn finished(&mut self, code: i32, error: Option<&str>);
    /// Its network is set up (before [`Recorder::started`]), or its
    /// published ports are bound (after).
    fn network(&mut self, state: &NetworkState) -> Result<(), String>;
}

/// One container to run.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// The container id.
    pub id: String,
    /// `containers/<id>/`.
    pub dir: PathBuf,
    /// The image's snapshot directories, bottom first.
    pub lowers: Vec<PathBuf>,
    /// The run options.
    pub opts: RunOptions,
    /// Copy the container's output to this process's stdout/stderr and
    /// this process's stdin to the container (foreground `run`, `start -a`).
    pub attach: bool,
    /// The bridge network (used with [`NetworkMode::Bridge`]).
    pub network: NetworkConfig,
    /// With `attach`: which streams (`run -a`).
    pub streams: Streams,
    /// Where compiled seccomp filters are kept (`cache/seccomp` in the
    /// store; [`crate::bpf`]).
    pub seccomp_cache: Option<PathBuf>,
}

/// The streams an attached client gets (`run -a STREAM`); all by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    /// The client's stdin goes to the container (with `-i`).
    pub stdin: bool,
    /// The container's stdout goes to the client.
    pub stdout: bool,
    /// The container's stderr goes to the client.
    pub stderr: bool,
}

impl Default for Streams {
    fn default() -> Self {
        Streams {
            stdin: true,
            stdout: true,
            stderr: true,
        }
    }
}

/// How the container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Exit status (Docker's 125/126/127 for failures to start).
    pub code: i32,
    /// Why it did not start.
    pub error: Option<String>,
}

/// Take ownership of a descriptor this process inherited by number (the
/// `--ready-fd` pipe of `run -d`), made close-on-exec; `None` if that
/// number is not open.
pub fn inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    if fd < 3 || fcntl(fd, FcntlArg::F_GETFD).is_err() {
        return None;
    }
    let _ = fcntl(fd, FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    // SAFETY: the descriptor is open (F_GETFD succeeded), was handed to
    // this process by its parent for this purpose, and nothing else in
    // this process refers to it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Make `cmd`'s process inherit `fd` (by the same number, which the caller
/// passes on, for [`inherited_fd`] there). The caller keeps `fd` open until
/// the spawn returned; only the child's copy loses close-on-exec.
pub fn pass_fd(cmd: &mut std::process::Command, fd: std::os::fd::BorrowedFd<'_>) -> RawFd {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let raw = fd.as_raw_fd();
    // SAFETY: between fork and exec the closure only clears the
    // close-on-exec flag of a descriptor the caller keeps open until the
    // spawn returned (fcntl is async-signal-safe).
    unsafe {
        cmd.pre_exec(move || {
            let fd = std::os::fd::BorrowedFd::borrow_raw(raw);
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            Ok(())
        });
    }
    raw
}

/// Paths inside the container directory.
pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("container.log")
}

fn state_root(dir: &Path) -> PathBuf {
    dir.join("state")
}

/// The cgroup path of a container.
pub fn cgroup_path(id: &str) -> String {
    format!("/kiln/{id}")
}

/// Run the container to its end. `ready`, if given, receives `ok\n` once
/// the container runs, or `error CODE MESSAGE\n`.
pub fn run(cfg: &MonitorConfig, rec: &mut dyn Recorder, ready: Option<OwnedFd>) -> Outcome {
    let mut overlay = Overlay::in_dir(&cfg.dir, cfg.lowers.clone());
    overlay.volatile = cfg.opts.auto_remove;
    let mut net = Net::default();
    // Ok: the container's process ended and was reaped.
    let result = prepare_and_run(cfg, &overlay, rec, ready.as_ref(), &mut net);
    let reaped = result.is_ok();
    let out = match result {
        Ok(code) => Outcome { code, error: None },
        Err((code, msg)) => {
            if let Some(fd) = &ready {
                let _ = nix::unistd::write(fd, format!("error {code} {msg}\n").as_bytes());
            }
            rec.finished(code, Some(&msg));
            Outcome {
                code,
                error: Some(msg),
            }
        }
    };
    net.release(cfg);
    cleanup(cfg, &overlay, reaped);
    out
}

/// What the monitor set up on the host network, to undo at the end.
#[derive(Default)]
struct Net {
    attachment: Option<Attachment>,
    proxy: Option<PortProxy>,
}

impl Net {
    /// Stop serving the published ports, leave the bridge (after the
    /// container ended: the kernel already removed its veth with its
    /// namespace, so this mostly frees the address).
    fn release(&mut self, cfg: &MonitorConfig) {
        if let Some(p) = self.proxy.take() {
            p.stop();
        }
        if let Some(a) = self.attachment.take() {
            if let Err(e) = network::detach(&cfg.network, &cfg.id, &a) {
                tracing::warn!(error = %e, id = %cfg.id, "failed to detach the container's network");
            }
        }
    }
}

/// Remove what a run leaves behind: runtime state and cgroup, the mount.
/// Also what `rm` calls after a monitor died.
pub fn cleanup_dir(id: &str, dir: &Path) {
    let _ = engine::delete(&state_root(dir), id);
    let _ = Overlay::in_dir(dir, Vec::new()).unmount();
}

fn cleanup(cfg: &MonitorConfig, overlay: &Overlay, reaped: bool) {
    if reaped {
        let _ = engine::delete_exited(&state_root(&cfg.dir), &cfg.id, &cgroup_path(&cfg.id));
    } else {
        let _ = engine::delete(&state_root(&cfg.dir), &cfg.id);
    }
    if let Some(p) = &cfg.opts.runtime {
        let ext = engine::External {
            path: PathBuf::from(p),
            state_root: state_root(&cfg.dir).join("external"),
        };
        let _ = ext.delete(&cfg.id);
    }
    let _ = overlay.unmount();
    let _ = fs::remove_file(cfg.dir.join("console.sock"));
    // Only the files kiln generates: the mount points of volumes, binds and
    // tmpfs (and the directories made for them) stay in the container's
    // changes, as Docker keeps them (`docker diff` lists them, `docker
    // commit` takes them).
    overlay.remove_mount_points(&GENERATED, MountPointParents::InImage);
}

/// The files kiln generates and binds into every container.
pub const GENERATED: [&str; 3] = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

type Failure = (i32, String);

fn fail<E: std::fmt::Display>(code: i32) -> impl FnOnce(E) -> Failure {
    move |e| (code, e.to_string())
}

/// Writes the container's `/etc/hostname`, `/etc/hosts` and
/// `/etc/resolv.conf` (bound into it read-write, as Docker does). With the
/// host's network, the host's hosts and resolv.conf (plus `--add-host`,
/// `--dns`); otherwise Docker's generated ones (see `network/files.rs`),
/// `hosts` rewritten in place with the address once it is known.
fn write_etc_files(
    cfg: &MonitorConfig,
    ip: Option<IpAddr>,
) -> io::Result<(PathBuf, PathBuf, PathBuf)> {
    let hosts = cfg.dir.join("hosts");
    let hostname = cfg.dir.join("hostname");
    let resolv = cfg.dir.join("resolv.conf");
    let h = &cfg.opts.hostname;
    fs::write(&hostname, format!("{h}\n"))?;
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    let extra: Vec<(String, IpAddr)> = cfg
        .opts
        .extra_hosts
        .iter()
        .map(|(n, a)| {
            a.parse::<IpAddr>()
                .map(|ip| (n.clone(), ip))
                .map_err(|_| invalid(format!("invalid IP address in add-host: {a:?}")))
        })
        .collect::<io::Result<_>>()?;
    let dns: Vec<IpAddr> = cfg
        .opts
        .dns
        .iter()
        .map(|d| {
            d.parse::<IpAddr>()
                .map_err(|_| invalid(format!("{d} is not an ip address")))
        })
        .collect::<io::Result<_>>()?;
    let host_resolv = fs::read_to_string(network::host_resolv_conf_path()).unwrap_or_default();
    let (hosts_text, resolv_text) = if cfg.opts.network == NetworkMode::Host {
        let mut hosts_text = fs::read_to_string("/etc/hosts").unwrap_or_default();
        for (name, ip) in &extra {
            hosts_text.push_str(&format!("{ip}\t{name}\n"));
        }
        let resolv_text = if dns.is_empty()
            && cfg.opts.dns_search.is_empty()
            && cfg.opts.dns_options.is_empty()
        {
            fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        } else {
            network::resolv_conf(
                &host_resolv,
                &dns,
                &cfg.opts.dns_search,
                &cfg.opts.dns_options,
            )
        };
        (hosts_text, resolv_text)
    } else {
        (
            network::hosts_file(h, ip, &extra),
            network::resolv_conf(
                &host_resolv,
                &dns,
                &cfg.opts.dns_search,
                &cfg.opts.dns_options,
            ),
        )
    };
    fs::write(&hosts, hosts_text)?;
    fs::write(&resolv, resolv_text)?;
    Ok((hosts, hostname, resolv))
}

/// Puts the created (not yet started) container `pid` on its network:
/// bridge (address, veth, `/etc/hosts` with the address) or loopback only.
fn connect(
    cfg: &MonitorConfig,
    pid: i32,
    rec: &mut dyn Recorder,
    net: &mut Net,
) -> Result<(), Failure> {
    match cfg.opts.network {
        NetworkMode::Host => Ok(()),
        NetworkMode::None => {
            let ns = network::open_netns(pid as u32).map_err(fail(125))?;
            network::loopback_up(ns.as_fd()).map_err(fail(125))
        }
        NetworkMode::Bridge => {
            network::ensure_bridge(&cfg.network).map_err(fail(125))?;
            let ns = network::open_netns(pid as u32).map_err(fail(125))?;
            let a = network::attach(&cfg.network, &cfg.id, ns.as_fd()).map_err(fail(125))?;
            drop(ns);
            let ip = IpAddr::V4(a.ip);
            net.attachment = Some(a.clone());
            write_etc_files(cfg, Some(ip)).map_err(fail(125))?;
            rec.network(&NetworkState {
                bridge: cfg.network.bridge.clone(),
                attachment: Some(a),
                ports: Vec::new(),
            })
            .map_err(|e| (125, e))
        }
    }
}

/// Serves the published ports of the running container (after it started:
/// the proxy runs threads). A port that cannot be bound fails the run, as
/// Docker's "port is already allocated".
fn publish(cfg: &MonitorConfig, rec: &mut dyn Recorder, net: &mut Net) -> Result<(), Failure> {
    let Some(a) = net.attachment.clone() else {
        return Ok(());
    };
    if cfg.opts.publish.is_empty() {
        return Ok(());
    }
    let proxy = PortProxy::start(&cfg.opts.publish, IpAddr::V4(a.ip)).map_err(|e| {
        (
            125,
            format!(
                "driver failed programming external connectivity on endpoint {}: {e}",
                cfg.id
            ),
        )
    })?;
    let state = NetworkState {
        bridge: cfg.network.bridge.clone(),
        attachment: Some(a),
        ports: proxy.bound().to_vec(),
    };
    net.proxy = Some(proxy);
    rec.network(&state).map_err(|e| (125, e))
}

fn prepare_and_run(
    cfg: &MonitorConfig,
    overlay: &Overlay,
    rec: &mut dyn Recorder,
    ready: Option<&OwnedFd>,
    net: &mut Net,
) -> Result<i32, Failure> {
    let state = state_root(&cfg.dir);
    // A run that died left runtime state behind: clear it.
    let _ = engine::delete(&state, &cfg.id);
    let _ = fs::remove_dir_all(state.join(&cfg.id));
    fs::create_dir_all(&state).map_err(fail(125))?;
    overlay.mount().map_err(fail(125))?;
    let u = user::resolve_in_root(&overlay.target, &cfg.opts.user).map_err(fail(125))?;
    let root = inroot::open_root(&overlay.target).map_err(fail(125))?;
    inroot::mkdir_all(&root, &cfg.opts.cwd).map_err(|e| {
        (
            125,
            format!(
                "failed to create the working directory {}: {e}",
                cfg.opts.cwd
            ),
        )
    })?;
    crate::volume::copy_up_all(&root, &cfg.opts.mounts).map_err(fail(125))?;
    drop(root);
    let mut opts = cfg.opts.clone();
    if !opts.env.iter().any(|e| e.starts_with("HOME=")) {
        opts.env.push(format!("HOME={}", u.home));
    }
    let (hosts, hostname, resolv) = write_etc_files(cfg, None).map_err(fail(125))?;
    let files = Generated {
        hosts: &hosts,
        hostname: &hostname,
        resolv_conf: &resolv,
    };
    let spec = spec::build(&opts, &u, &overlay.target, &files, &cgroup_path(&cfg.id))
        .map_err(fail(125))?;
    let bundle = cfg.dir.join("bundle");
    fs::create_dir_all(&bundle).map_err(fail(125))?;
    let spec_text = serde_json::to_vec_pretty(&spec).map_err(fail(125))?;
    fs::write(bundle.join("config.json"), spec_text).map_err(fail(125))?;

    // stdio
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(&cfg.dir))
        .map_err(fail(125))?;
    let (stdio, mut ends, console_listener) =
        setup_stdio(&cfg.dir, "console.sock", opts.tty, opts.open_stdin).map_err(fail(125))?;
    let external = opts.runtime.as_ref().map(|p| engine::External {
        path: PathBuf::from(p),
        state_root: state.join("external"),
    });
    // With an external runtime the container's process is cloned by it:
    // signals are blocked from here on, and its create starts
    // it with the default mask (runc and crun reset it).
    let mut container = None;
    // Before any signal is blocked: the thread must not outlive that.
    crate::cgroup_warm::settle();
    let pid = match &external {
        Some(ext) => {
            if opts.init {
                return Err((
                    125,
                    "--init needs kiln's own runtime (not --runtime)".into(),
                ));
            }
            let sfd_early = block_signals().map_err(fail(125))?;
            let pid = ext
                .create(&cfg.id, &bundle, stdio, &cfg.dir.join("runtime.pid"))
                .map_err(|e| {
                    // The runtime reports on the stderr it was given,
                    // which is the container's.
                    let said = ends
                        .stderr
                        .as_ref()
                        .map(|f| drain(f.as_fd()))
                        .unwrap_or_default();
                    let e = match e {
                        EngineError::Create(m) => {
                            EngineError::Create(format!("{m}{}", said.trim()))
                        }
                        other => other,
                    };
                    (e.exit_code(), e.to_string())
                })?;
            drop(sfd_early);
            pid
        }
        None => {
            // kiln's executor loads the filter, compiled once (bpf.rs):
            // libcontainer gets the spec without it, beside the bundle that
            // `kiln exec` and external runtimes read.
            let mut engine_spec = spec.clone();
            let seccomp = crate::bpf::prepare(&mut engine_spec, cfg.seccomp_cache.as_deref());
            let engine_bundle = if seccomp.is_some() {
                let dir = cfg.dir.join("engine");
                fs::create_dir_all(&dir).map_err(fail(125))?;
                let text = serde_json::to_vec(&engine_spec).map_err(fail(125))?;
                fs::write(dir.join("config.json"), text).map_err(fail(125))?;
                dir
            } else {
                bundle.clone()
            };
            let (c, pid) =
                engine::create(&cfg.id, &state, &engine_bundle, stdio, opts.init, seccomp)
                    .map_err(|e: EngineError| (e.exit_code(), e.to_string()))?;
            container = Some(c);
            pid
        }
    };
    if let Some(l) = console_listener {
        let master = receive_master(&l).map_err(fail(125))?;
        ends.pty = Some(master);
    }

    // Signals: block and read them from a signalfd from now on (the
    // container's processes were cloned before, with the mask unchanged).
    let sfd = block_signals().map_err(fail(125))?;

    connect(cfg, pid, rec, net)?;
    if let Some(c) = &mut container {
        engine::start(c).map_err(|e| (e.exit_code(), e.to_string()))?;
    } else if let Some(ext) = &external {
        ext.start(&cfg.id)
            .map_err(|e| (e.exit_code(), e.to_string()))?;
    }
    if let Err(e) = rec
        .started(pid as u32)
        .and_then(|()| publish(cfg, rec, net).map_err(|f| f.1))
    {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        return Err((125, e));
    }
    if let Some(fd) = ready {
        // Detached: nobody waits on this monitor, which lives as long as
        // the container; its binary's set-up pages go before it says it
        // runs, so its memory is small from the start (again a second
        // later, for what the first moments touched).
        crate::trim::release_clean_file_pages();
        let _ = nix::unistd::write(fd, b"ok\n");
    }
    let code = supervise(
        cfg.attach,
        cfg.streams,
        opts.open_stdin,
        pid,
        &sfd,
        ends,
        log,
    );
    rec.finished(code, None);
    Ok(code)
}

/// The container side of its stdio and what the monitor keeps: pipes, or
/// a console socket (bound as `sock_name` in `dir`: a full path may not
/// fit in `sun_path`) to receive a pty master on.
fn setup_stdio(
    dir: &Path,
    sock_name: &str,
    tty: bool,
    open_stdin: bool,
) -> io::Result<(Stdio, Ends, Option<UnixListener>)> {
    let mut ends = Ends::default();
    if tty {
        std::env::set_current_dir(dir)?;
        let _ = fs::remove_file(sock_name);
        let l = UnixListener::bind(sock_name)?;
        return Ok((Stdio::Console(dir.join(sock_name)), ends, Some(l)));
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let stdin = if open_stdin {
        let (in_r, in_w) = pipe()?;
        ends.stdin = Some(in_w);
        in_r
    } else {
        File::open("/dev/null")?.into()
    };
    ends.stdout = Some(out_r);
    ends.stderr = Some(err_r);
    Ok((
        Stdio::Fds {
            stdin,
            stdout: out_w,
            stderr: err_w,
        },
        ends,
        None,
    ))
}

fn block_signals() -> nix::Result<SignalFd> {
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGPIPE,
    ] {
        mask.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

/// A process to run in a running container (`kiln exec`).
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The command.
    pub args: Vec<String>,
    /// `-e` (added to the container's environment).
    pub env: Vec<String>,
    /// `-u`, resolved in the container's root file system.
    pub user: Option<String>,
    /// `-w`.
    pub cwd: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`.
    pub open_stdin: bool,
    /// `-d`: start it and return.
    pub detach: bool,
    /// Where compiled seccomp filters are kept ([`crate::bpf`]).
    pub seccomp_cache: Option<PathBuf>,
}

/// Run `req` in the running container `id` whose directory is `dir`,
/// attached to this process's stdio (unless detached), with the
/// container's capabilities, seccomp filter (plus no_new_privs, which
/// loading it needs) and namespaces. Returns its exit status.
pub fn exec(id: &str, dir: &Path, req: &ExecRequest) -> Outcome {
    match exec_inner(id, dir, req) {
        Ok(code) => Outcome { code, error: None },
        Err((code, msg)) => Outcome {
            code,
            error: Some(msg),
        },
    }
}

fn exec_inner(id: &str, dir: &Path, req: &ExecRequest) -> Result<i32, Failure> {
    let spec_text = fs::read(dir.join("bundle").join("config.json")).map_err(fail(125))?;
    let spec: serde_json::Value = serde_json::from_slice(&spec_text).map_err(fail(125))?;
    let mut process = spec["process"].clone();
    process["args"] = serde_json::json!(req.args);
    let mut env: Vec<String> = process["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for e in &req.env {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        env.retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != key);
        env.push(e.clone());
    }
    if let Some(u) = &req.user {
        let resolved = user::resolve_in_root(&dir.join("rootfs"), u).map_err(fail(125))?;
        process["user"] = serde_json::json!({
            "uid": resolved.uid, "gid": resolved.gid,
            "additionalGids": resolved.additional_gids, "umask": 0o022
        });
        if resolved.uid != 0 {
            process["capabilities"]["effective"] = serde_json::json!([]);
            process["capabilities"]["permitted"] = serde_json::json!([]);
        }
        env.retain(|x| !x.starts_with("HOME="));
        env.push(format!("HOME={}", resolved.home));
    }
    process["env"] = serde_json::json!(env);
    if let Some(w) = &req.cwd {
        process["cwd"] = serde_json::json!(w);
    }
    process["terminal"] = serde_json::json!(req.tty);
    let seccomp = spec["linux"]
        .get("seccomp")
        .map(|s| serde_json::from_value(s.clone()))
        .transpose()
        .map_err(fail(125))?
        .map(|p| crate::bpf::Filter::cached(req.seccomp_cache.as_deref(), &p))
        .transpose()
        .map_err(fail(125))?
        .map(crate::bpf::Seccomp::with_no_new_privs);
    let me = std::process::id();
    let process_path = dir.join(format!("exec-{me}.json"));
    fs::write(
        &process_path,
        serde_json::to_vec(&process).map_err(fail(125))?,
    )
    .map_err(fail(125))?;
    let sock = format!("exec-{me}.sock");
    let detach = req.detach;
    let (stdio, mut ends, listener) = if detach {
        let null = || File::open("/dev/null").map(OwnedFd::from);
        let out = OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(fail(125))?;
        let err = out.try_clone().map_err(fail(125))?;
        (
            Stdio::Fds {
                stdin: null().map_err(fail(125))?,
                stdout: out.into(),
                stderr: err.into(),
            },
            Ends::default(),
            None,
        )
    } else {
        setup_stdio(dir, &sock, req.tty, req.open_stdin).map_err(fail(125))?
    };
    let result = engine::exec(id, &state_root(dir), &process_path, stdio, seccomp);
    let _ = fs::remove_file(&process_path);
    let pid = result.map_err(|e| (e.exit_code(), e.to_string()))?;
    if let Some(l) = listener {
        let master = receive_master(&l);
        let _ = fs::remove_file(dir.join(&sock));
        ends.pty = Some(master.map_err(fail(125))?);
    }
    if detach {
        return Ok(0);
    }
    let sfd = block_signals().map_err(fail(125))?;
    // Output of exec'd processes is not logged (as Docker).
    let log = OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(fail(125))?;
    Ok(supervise(
        true,
        Streams::default(),
        req.open_stdin,
        pid,
        &sfd,
        ends,
        log,
    ))
}

/// Receive the pty master libcontainer sends over the console socket.
fn receive_master(l: &UnixListener) -> io::Result<OwnedFd> {
    let (conn, _) = l.accept()?;
    let mut buf = [0u8; 256];
    let mut iov = [io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us;
                // nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(io::Error::other("no pty master on the console socket"))
}

#[derive(Default)]
struct Ends {
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    pty: Option<OwnedFd>,
}

/// What is in a pipe now (without waiting).
fn drain(fd: BorrowedFd<'_>) -> String {
    set_nonblocking(fd);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = nix::unistd::read(fd.as_raw_fd(), &mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn set_nonblocking(fd: BorrowedFd<'_>) {
    if let Ok(fl) = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd.as_raw_fd(),
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK),
        );
    }
}

/// A json-file log writer: one JSON object per line of output.
struct Log {
    file: File,
    partial: [Vec<u8>; 2],
}

impl Log {
    fn write(&mut self, stream: usize, data: &[u8]) {
        self.partial[stream].extend_from_slice(data);
        while let Some(nl) = self.partial[stream].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial[stream].drain(..=nl).collect();
            self.emit(stream, &line);
        }
        if self.partial[stream].len() >= 16 * 1024 {
            let line = std::mem::take(&mut self.partial[stream]);
            self.emit(stream, &line);
        }
    }

    fn flush(&mut self) {
        for s in 0..2 {
            let line = std::mem::take(&mut self.partial[s]);
            if !line.is_empty() {
                self.emit(s, &line);
            }
        }
    }

    fn emit(&mut self, stream: usize, line: &[u8]) {
        let entry = serde_json::json!({
            "log": String::from_utf8_lossy(line),
            "stream": if stream == 0 { "stdout" } else { "stderr" },
            "time": rfc3339_nanos(SystemTime::now()),
        });
        let mut text = entry.to_string();
        text.push('\n');
        let _ = self.file.write_all(text.as_bytes());
    }
}

/// RFC 3339 UTC with nanoseconds, as Docker's log timestamps.
pub fn rfc3339_nanos(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil date from days since the epoch (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = if month <= 2 { y + 1 } else { y };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

fn write_all_fd(fd: BorrowedFd<'_>, mut data: &[u8]) {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return,
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                let mut p = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut p, PollTimeout::from(1000u16));
            }
            Err(_) => return,
        }
    }
}

struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(&stdin).ok()?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

fn copy_winsize(pty: BorrowedFd<'_>) {
    let mut ws: nix::libc::winsize = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct we own.
    let ok = unsafe { nix::libc::ioctl(0, nix::libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_row > 0 {
        // SAFETY: TIOCSWINSZ reads the winsize we pass.
        unsafe {
            nix::libc::ioctl(pty.as_raw_fd(), nix::libc::TIOCSWINSZ, &ws);
        }
    }
}

/// Copy stdio, forward signals and wait for `pid`; returns its status.
fn supervise(
    attach: bool,
    streams: Streams,
    open_stdin: bool,
    pid: i32,
    sfd: &SignalFd,
    mut ends: Ends,
    log: File,
) -> i32 {
    let mut log = Log {
        file: log,
        partial: [Vec::new(), Vec::new()],
    };
    let _raw = if attach && ends.pty.is_some() && nix::unistd::isatty(0).unwrap_or(false) {
        RawMode::enter()
    } else {
        None
    };
    if let Some(p) = &ends.pty {
        set_nonblocking(p.as_fd());
        // A terminal's size to start with (Docker's 80x24), then the
        // user's if there is one.
        let ws = nix::libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the winsize we pass.
        unsafe {
            nix::libc::ioctl(p.as_raw_fd(), nix::libc::TIOCSWINSZ, &ws);
        }
        if attach {
            copy_winsize(p.as_fd());
        }
    }
    for f in [&ends.stdout, &ends.stderr].into_iter().flatten() {
        set_nonblocking(f.as_fd());
    }
    let stdin_fd = io::stdin();
    let mut read_stdin = attach && open_stdin && streams.stdin;
    let mut status: Option<i32> = None;
    // It may have ended before its SIGCHLD could be read from the
    // signalfd (exec blocks signals only once the process exists).
    reap(pid, &mut status);
    let mut drain_deadline: Option<Instant> =
        status.map(|_| Instant::now() + Duration::from_secs(2));
    let mut buf = vec![0u8; 64 * 1024];
    // Once the container has run for a second, give back the pages of
    // kiln's binary that setting it up touched (see `trim`).
    let mut trim_at = Some(Instant::now() + Duration::from_secs(1));
    loop {
        if let Some(t) = trim_at {
            if Instant::now() >= t {
                crate::trim::release_clean_file_pages();
                trim_at = None;
            }
        }
        if let Some(d) = drain_deadline {
            let open = ends.stdout.is_some() || ends.stderr.is_some() || ends.pty.is_some();
            if !open || Instant::now() >= d {
                break;
            }
        }
        let mut fds: Vec<PollFd<'_>> = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let mut kinds: Vec<u8> = vec![0];
        if let Some(f) = &ends.stdout {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            kinds.push(1);
        }
        if let Some(f) = &ends.stderr {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            kinds.push(2);
        }
        if let Some(f) = &ends.pty {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            kinds.push(3);
        }
        if read_stdin && status.is_none() {
            fds.push(PollFd::new(stdin_fd.as_fd(), PollFlags::POLLIN));
            kinds.push(4);
        }
        let timeout = if drain_deadline.is_some() {
            PollTimeout::from(100u16)
        } else if let Some(t) = trim_at {
            let ms = t.saturating_duration_since(Instant::now()).as_millis() + 1;
            PollTimeout::from(u16::try_from(ms).unwrap_or(u16::MAX))
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        }
        let ready: Vec<(u8, PollFlags)> = fds
            .iter()
            .zip(&kinds)
            .filter_map(|(p, k)| p.revents().filter(|r| !r.is_empty()).map(|r| (*k, r)))
            .collect();
        drop(fds);
        for (kind, _) in ready {
            match kind {
                0 => {
                    while let Ok(Some(si)) = sfd.read_signal() {
                        let sig = si.ssi_signo as i32;
                        if sig == Signal::SIGCHLD as i32 {
                            reap(pid, &mut status);
                        } else if sig == Signal::SIGWINCH as i32 {
                            if let Some(p) = &ends.pty {
                                copy_winsize(p.as_fd());
                            }
                        } else if sig != Signal::SIGPIPE as i32 && status.is_none() {
                            // SAFETY: kill(2) with a signal number the
                            // kernel gave us; no memory involved.
                            unsafe {
                                nix::libc::kill(pid, sig);
                            }
                        }
                    }
                    if status.is_some() && drain_deadline.is_none() {
                        drain_deadline = Some(Instant::now() + Duration::from_secs(2));
                        // Nothing reads the container's stdin any more.
                        ends.stdin = None;
                    }
                }
                1..=3 => {
                    let slot = match kind {
                        1 => &mut ends.stdout,
                        2 => &mut ends.stderr,
                        _ => &mut ends.pty,
                    };
                    let Some(fd) = slot.as_ref() else { continue };
                    loop {
                        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
                            Ok(0) => {
                                *slot = None;
                                break;
                            }
                            Ok(n) => {
                                let stream = if kind == 2 { 1 } else { 0 };
                                log.write(stream, &buf[..n]);
                                if attach {
                                    if stream == 0 && streams.stdout {
                                        write_all_fd(io::stdout().as_fd(), &buf[..n]);
                                    } else if stream == 1 && streams.stderr {
                                        write_all_fd(io::stderr().as_fd(), &buf[..n]);
                                    }
                                }
                            }
                            Err(nix::errno::Errno::EINTR) => {}
                            Err(nix::errno::Errno::EAGAIN) => break,
                            // EIO: the pty's last slave closed.
                            Err(_) => {
                                *slot = None;
                                break;
                            }
                        }
                    }
                }
                4 => match nix::unistd::read(stdin_fd.as_raw_fd(), &mut buf) {
                    Ok(0) | Err(_) => {
                        read_stdin = false;
                        if ends.pty.is_none() {
                            ends.stdin = None;
                        }
                    }
                    Ok(n) => {
                        if let Some(p) = &ends.pty {
                            write_all_fd(p.as_fd(), &buf[..n]);
                        } else if let Some(i) = &ends.stdin {
                            write_all_fd(i.as_fd(), &buf[..n]);
                        }
                    }
                },
                _ => {}
            }
        }
    }
    log.flush();
    status.unwrap_or(137)
}

fn reap(pid: i32, status: &mut Option<i32>) {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => *status = Some(code),
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => {
                *status = Some(128 + s as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_with_nanoseconds() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5);
        assert_eq!(rfc3339_nanos(t), "2023-11-14T22:13:20.000000005Z");
        assert_eq!(rfc3339_nanos(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
    }
}
