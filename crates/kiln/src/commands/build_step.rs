//! RUN steps of `kiln build`: the [`StepRunner`] the builder calls, and the
//! hidden `__build-step` subcommand it starts for each step.
//!
//! The build scheduler is multi-threaded, so a step's container is never
//! made by forking it: the runner spawns kiln itself (`__build-step`, from
//! the sealed copy the build opened), which runs
//! [`kiln_runtime::step::run`] single threaded. The step's request goes in
//! and its result comes back as JSON in a memory file that is the child's
//! stdin ([`Exchange`]). The child's stdout carries the container's output
//! (stdout and stderr, in order), streamed to the build's progress a line
//! at a time; its stderr carries only kiln's own diagnostics, shown when it
//! fails. The step's two private directories (kiln_runtime's `scratch` and
//! `work`) are made under the store's `ingest/` and removed after it.
//!
//! Decisions: `RUN --network=default` is a namespace of its own on kiln's
//! bridge with outbound NAT, like `docker build` (see [`default_network`]).
//! Cache mounts arrive as the directory of the instance the build holds for
//! the step (`kiln-build` seeds them and applies `sharing`).

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, Result};
use kiln_build::{MountSource, RunError, RunRequest, SecretSource, StepRunner};
use kiln_dockerfile::mounts::{MountType, NetworkMode as RunNetwork};
use kiln_runtime::options::NetworkMode;
use kiln_runtime::step::{SecretFrom, StepConfig, StepMount, StepOutcome};

use crate::cli::BuildStepArgs;

/// Exit status of a step process that could not even start (as `run`).
const EXIT_KILN: u8 = 125;

/// The build's process id, in the step process's environment.
const PARENT_ENV: &str = "KILN_BUILD_PID";

/// Runs RUN steps in containers through `kiln __build-step`.
#[derive(Debug, Clone)]
pub(crate) struct ContainerSteps {
    /// The store root (for the child's `--root` and the scratch dirs).
    pub(crate) root: PathBuf,
    /// The child's `--log-level`.
    pub(crate) log_level: String,
    /// The network of a step without `RUN --network` or with
    /// `--network=default` (`build --network`).
    pub(crate) default_network: NetworkMode,
    /// kiln's sealed copy, opened once per build, that step processes
    /// start from (so they need not re-execute themselves).
    pub(crate) exe: std::sync::Arc<kiln_runtime::memfd::SealedExe>,
    /// The helper that keeps the cgroup attach warm while RUN steps are
    /// near ([`StepRunner::prepare`]; kiln_runtime::cgroup_warm).
    pub(crate) warm: std::sync::Arc<std::sync::Mutex<Option<kiln_runtime::cgroup_warm::Helper>>>,
}

impl ContainerSteps {
    /// A descriptor of a running helper for a step process, starting one
    /// if none runs (or the one running is about to end).
    fn warm_fd(&self) -> Option<OwnedFd> {
        let mut slot = self.warm.lock().ok()?;
        if slot.as_ref().is_none_or(|h| h.ending()) {
            *slot = kiln_runtime::cgroup_warm::Helper::spawn();
        }
        slot.as_ref()?.share()
    }
}

/// The network of `RUN --network=default` (or no `--network`): the step's
/// own namespace on kiln's bridge, as `docker build` gives.
pub(crate) fn default_network() -> NetworkMode {
    NetworkMode::Bridge
}

fn network(mode: Option<RunNetwork>, default: NetworkMode) -> NetworkMode {
    match mode {
        Some(RunNetwork::None) => NetworkMode::None,
        Some(RunNetwork::Host) => NetworkMode::Host,
        Some(RunNetwork::Default) | None => default,
    }
}

fn setup(reason: impl Into<String>) -> RunError {
    RunError::Setup {
        reason: reason.into(),
    }
}

/// The mounts of a step, with their sources on the host.
fn mounts(req: &RunRequest<'_>) -> Result<Vec<StepMount>, RunError> {
    let mut out = Vec::new();
    for m in req.mounts {
        let target = m.target.clone();
        let need_target = || {
            target
                .clone()
                .ok_or_else(|| setup(format!("a {} mount without a target", m.mount.kind.name())))
        };
        let readonly = m.mount.read_only;
        match m.mount.kind {
            MountType::Bind => match &m.source {
                MountSource::Context { dir, path } => {
                    let source = dir.join(path.trim_start_matches('/'));
                    if readonly {
                        out.push(StepMount::Bind {
                            source,
                            target: need_target()?,
                            readonly,
                        });
                    } else if source.is_dir() {
                        // Writes are discarded: an overlay of the context.
                        out.push(StepMount::Layers {
                            lowers: vec![source],
                            path: "/".into(),
                            target: need_target()?,
                            readonly,
                        });
                    } else {
                        out.push(StepMount::Layers {
                            lowers: vec![dir.clone()],
                            path: path.clone(),
                            target: need_target()?,
                            readonly,
                        });
                    }
                }
                MountSource::Layers { lower, path } => out.push(StepMount::Layers {
                    lowers: lower.clone(),
                    path: path.clone(),
                    target: need_target()?,
                    readonly,
                }),
                MountSource::Files { dir } => out.push(StepMount::Bind {
                    source: dir.clone(),
                    target: need_target()?,
                    readonly: true,
                }),
                other => return Err(setup(format!("a bind mount from {other:?}"))),
            },
            MountType::Cache => match &m.source {
                MountSource::Cache { dir } => out.push(StepMount::Bind {
                    source: dir.clone(),
                    target: need_target()?,
                    readonly,
                }),
                other => return Err(setup(format!("a cache mount from {other:?}"))),
            },
            MountType::Tmpfs => out.push(StepMount::Tmpfs {
                target: need_target()?,
                size: m.mount.size_limit,
            }),
            MountType::Secret => {
                let id = m.mount.cache_id.clone().unwrap_or_default();
                // Not given and not required: not mounted (solve.rs skips
                // those already).
                let Some(source) = req.secrets.get(&id) else {
                    continue;
                };
                let source = match source {
                    SecretSource::File(p) => SecretFrom::File(p.clone()),
                    SecretSource::Env(v) => SecretFrom::Env(v.clone()),
                };
                out.push(StepMount::Secret {
                    source,
                    target,
                    env: m.mount.env.clone().filter(|e| !e.is_empty()),
                    mode: m.mount.file_mode().unwrap_or(0o400),
                    uid: m.mount.uid.unwrap_or(0),
                    gid: m.mount.gid.unwrap_or(0),
                });
            }
            MountType::Ssh => {
                let id = m.mount.cache_id.clone().unwrap_or_else(|| "default".into());
                let Some(socket) = req.ssh.get(&id).and_then(|s| s.first()) else {
                    continue;
                };
                out.push(StepMount::Ssh {
                    socket: socket.clone(),
                    target: need_target()?,
                });
            }
        }
    }
    Ok(out)
}

/// The private directories of one step (its scratch and overlay work
/// directories: kiln_runtime::step::StepConfig), removed when dropped.
struct Scratch(Vec<PathBuf>);

impl Scratch {
    /// A new private directory in `dir`, removed with the others.
    fn add(&mut self, dir: &Path) -> Result<PathBuf, RunError> {
        let path = kiln_fs::atomic::temp_path(dir);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| setup(format!("failed to create {}: {e}", path.display())))?;
        self.0.push(path.clone());
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = fs::remove_dir_all(d);
        }
    }
}

impl StepRunner for ContainerSteps {
    fn prepare(&self) {
        drop(self.warm_fd());
    }

    fn run(&self, req: &RunRequest<'_>, output: &mut dyn FnMut(&[u8])) -> Result<(), RunError> {
        let ingest = self.root.join("ingest");
        let mut dirs = Scratch(Vec::new());
        let scratch = dirs.add(&ingest)?;
        let work = dirs.add(&ingest)?;
        let id = scratch
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id: String = format!("build-{}", sanitize(&id));
        let cfg = StepConfig {
            id,
            scratch,
            work,
            lowers: req.lower.to_vec(),
            upper: req.upper.to_path_buf(),
            args: req.argv.to_vec(),
            env: req.env.to_vec(),
            user: req.user.to_string(),
            cwd: req.workdir.to_string(),
            network: network(req.network, self.default_network),
            bridge: Some(
                kiln_runtime::network::NetworkConfig::from_env(&self.root)
                    .map_err(|e| setup(e.to_string()))?,
            ),
            mounts: mounts(req)?,
            seccomp_cache: Some(kiln_store::Store::seccomp_cache(&self.root)),
        };
        let text = serde_json::to_vec(&cfg).map_err(|e| setup(e.to_string()))?;
        let mut exchange = Exchange::new(&text)
            .map_err(|e| setup(format!("failed to pass the step to its process: {e}")))?;
        let mut cmd = self.exe.command();
        cmd.arg("--root")
            .arg(&self.root)
            .args(["--log-level", &self.log_level])
            .arg("__build-step");
        let warm = self.warm_fd();
        if let Some(fd) = &warm {
            kiln_runtime::cgroup_warm::hand_to(&mut cmd, fd);
        }
        // The child closes its end once its root is mounted: the build may
        // then move the lower directories (RunRequest::lowers_mounted).
        let mounted = match req.lowers_mounted {
            Some(_) => {
                let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
                    .map_err(|e| setup(format!("failed to make a pipe: {e}")))?;
                let read = fs::File::from(read);
                let raw = kiln_runtime::monitor::pass_fd(&mut cmd, write.as_fd());
                cmd.arg("--mounted-fd").arg(raw.to_string());
                Some((read, write))
            }
            None => None,
        };
        let spawned = cmd
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(
                exchange
                    .for_child()
                    .map_err(|e| setup(format!("failed to pass the step to its process: {e}")))?,
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        drop(warm);
        let mounted = mounted.map(|(read, write)| {
            drop(write);
            read
        });
        let mut child =
            spawned.map_err(|e| setup(format!("failed to start kiln __build-step: {e}")))?;
        let mut stderr = child.stderr.take();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(e) = stderr.as_mut() {
                let _ = e.read_to_string(&mut text);
            }
            text
        });
        let status = std::thread::scope(|scope| {
            if let (Some(mut read), Some(tell)) = (mounted, req.lowers_mounted) {
                scope.spawn(move || {
                    // End of file: mounted, or the child is gone.
                    let _ = read.read_to_end(&mut Vec::new());
                    (tell.0)();
                });
            }
            if let Some(mut out) = child.stdout.take() {
                stream_lines(&mut out, output);
            }
            child.wait()
        })
        .map_err(|e| setup(format!("failed to wait for kiln __build-step: {e}")))?;
        let diagnostics = errors.join().unwrap_or_default();
        let result = exchange.outcome();
        drop(dirs);
        match result {
            Some(StepOutcome::Exited(0)) => Ok(()),
            Some(StepOutcome::Exited(code)) => Err(RunError::Exit {
                argv: req.argv.to_vec(),
                code,
            }),
            Some(StepOutcome::Failed(reason)) => Err(setup(reason)),
            None => Err(setup(format!(
                "kiln __build-step ended ({status}) without a result{}{}",
                if diagnostics.trim().is_empty() {
                    ""
                } else {
                    ": "
                },
                diagnostics.trim()
            ))),
        }
    }
}

/// The step's request and outcome, in a memory file that is the step
/// process's standard input: the process reads the request (a
/// [`StepConfig`] as JSON) from it and, when the step has ended, replaces
/// it with the outcome (a [`StepOutcome`] as JSON). Nothing on disk, and
/// nothing for the build to block on if the process ends early.
struct Exchange(fs::File);

impl Exchange {
    fn new(request: &[u8]) -> std::io::Result<Exchange> {
        let fd = rustix::fs::memfd_create("kiln-build-step", rustix::fs::MemfdFlags::CLOEXEC)?;
        let mut file = fs::File::from(fd);
        file.write_all(request)?;
        file.seek(SeekFrom::Start(0))?;
        Ok(Exchange(file))
    }

    /// The child's standard input (the same open file).
    fn for_child(&self) -> std::io::Result<Stdio> {
        Ok(Stdio::from(self.0.try_clone()?))
    }

    /// The outcome the process left, if it left one.
    fn outcome(&mut self) -> Option<StepOutcome> {
        let mut bytes = Vec::new();
        self.0.seek(SeekFrom::Start(0)).ok()?;
        self.0.read_to_end(&mut bytes).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// In the step process: replace the request on standard input (an
/// [`Exchange`]) with `outcome`.
fn answer(outcome: &StepOutcome) -> Result<()> {
    let bytes = serde_json::to_vec(outcome)?;
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    rustix::fs::ftruncate(fd, 0)?;
    let mut done = 0;
    while done < bytes.len() {
        done += rustix::io::pwrite(fd, &bytes[done..], done as u64)?;
    }
    Ok(())
}

/// Characters of a temporary name fit for a container id.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Copy `input` to `output` whole lines at a time (the rest at the end).
fn stream_lines(input: &mut dyn Read, output: &mut dyn FnMut(&[u8])) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                if let Some(last) = pending.iter().rposition(|&b| b == b'\n') {
                    let rest = pending.split_off(last + 1);
                    output(&pending);
                    pending = rest;
                } else if pending.len() >= 64 * 1024 {
                    output(&pending);
                    pending.clear();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if !pending.is_empty() {
        output(&pending);
    }
}

/// `kiln __build-step`: run the step on standard input (see the module
/// docs and [`Exchange`]).
pub(crate) fn child(args: &BuildStepArgs) -> Result<u8> {
    if let Err(e) = kiln_runtime::memfd::ensure_sealed() {
        eprintln!("kiln: cannot run a build step from a sealed copy of kiln: {e}");
        return Ok(EXIT_KILN);
    }
    // Overlaps the cgroup attach's wait with the step's preparation (the
    // build's helper, else one of its own).
    match args.warm_fd {
        Some(fd) => kiln_runtime::cgroup_warm::adopt(fd),
        None => kiln_runtime::cgroup_warm::start(),
    }
    // The step ends with the build: a build killed takes its step along
    // (the signal waits, blocked, until the step can stop its container:
    // kiln_runtime::step::run). A build that was gone before this line
    // sends no signal: the step then ends here.
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM));
    let parent = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok());
    let ppid = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
    if parent.is_some_and(|p| ppid != Some(p)) {
        eprintln!("kiln: the build that started this step is gone");
        return Ok(EXIT_KILN);
    }
    let mut text = Vec::new();
    std::io::stdin()
        .lock()
        .read_to_end(&mut text)
        .context("failed to read the build step from standard input")?;
    let cfg: StepConfig =
        serde_json::from_slice(&text).context("invalid build step on standard input")?;
    let out: OwnedFd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .context("failed to duplicate standard output")?;
    let mounted = args
        .mounted_fd
        .and_then(kiln_runtime::monitor::inherited_fd);
    let outcome = kiln_runtime::step::run(&cfg, out, mounted);
    answer(&outcome).context("failed to leave the build step's outcome on standard input")?;
    Ok(0)
}
