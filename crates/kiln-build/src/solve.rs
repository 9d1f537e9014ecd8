//! The solver: the build graph of a lowered Dockerfile, its scheduling,
//! and the execution of each step against the store.
//!
//! - **Graph** ([`Graph::new`]): one vertex per FROM and per step that
//!   makes a layer (COPY, ADD, RUN, WORKDIR), for the stages the target
//!   needs only (`Build::needed`: the target, default the last stage, and
//!   what it reaches through `FROM <stage>`, `COPY --from`, `RUN
//!   --mount=from=`). Config-only instructions are applied in order but
//!   are not vertices, as in BuildKit's progress.
//! - **Scheduling**: a stage starts when the stage it is `FROM` (if any)
//!   is finished; a step that takes files from another stage (`COPY
//!   --from`, `RUN --mount=from=`) waits for that stage there, so a
//!   stage's first steps overlap the stages it copies from later, as in
//!   BuildKit. Up to `jobs` stages run at once (a stage waiting for another
//!   gives its slot back meanwhile); the first failure stops stages not yet
//!   started.
//! - **Steps**: the config-only ones change the image config
//!   ([`crate::config`]); COPY/ADD and WORKDIR are file-system operations
//!   ([`crate::copy`]) staged into a fresh directory and written as a layer;
//!   RUN goes through a [`StepRunner`] (the container runtime), which
//!   leaves its changes in an overlay upper directory.
//! - **Cache**: each layer step has a `cache-v1` key ([`crate::key`]):
//!   its parent's key and its full definition. A hit reuses the layer this
//!   store made before (records in the store's `build_cache` table, kept
//!   alive by GC); base images are never a hit for a step.
//! - **Image**: the target's config with the new layers' DiffIDs and
//!   BuildKit's history (`created` filled the way its exporter fills it),
//!   written as an OCI (or Docker) manifest and tagged.
//!
//! Only the binary prints: progress goes to a [`Reporter`].

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kiln_dockerfile::instructions::{Instruction, Run};
use kiln_dockerfile::lower::{Base, Build, ImageEnv, LowerOptions, Source, Stage, Step};
use kiln_dockerfile::mounts::{Mount, MountType, NetworkMode};
use kiln_fs::layer::{write_tar, WriteOptions};
use kiln_fs::pipe::{chunk_pipe, ChunkReader};
use kiln_oci::config::History;
use kiln_oci::media_types::layer_compression;
use kiln_oci::time::format_rfc3339;
use kiln_oci::{Descriptor, Digest, ImageConfig, ImageManifest, Platform, Reference};
use kiln_store::layer::NewLayerOptions;
use kiln_store::lease::Lease;
use kiln_store::records::{chain_id, ImageRecord, LayerRecord};
use kiln_store::{CacheEntry, Store};
use thiserror::Error;

use crate::cachemount::{self, CacheInit, CacheSpec};
use crate::config::{self, StageConfig, HISTORY_COMMENT};
use crate::copy::{self, CopyError, CopySpec};
use crate::key::KeyHasher;
use crate::lineage::Lineage;
use crate::perms::{self, Chmod, PermsError};
use crate::pipeline::{AfterPublish, StageLayers};
use crate::tree::{ContextTree, LayeredTree, Tree};

/// A build that failed.
#[derive(Debug, Error)]
pub enum BuildError {
    /// A step failed; `line` is its first line in the Dockerfile.
    #[error("Dockerfile:{line}: {instruction}: {source}")]
    Step {
        /// The line.
        line: usize,
        /// The instruction as BuildKit names it in history.
        instruction: String,
        /// Why.
        #[source]
        source: Box<StepError>,
    },
    /// The store failed outside any step.
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    /// The image config or manifest cannot be written.
    #[error("failed to write the image {what}: {source}")]
    Json {
        /// config or manifest.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A scheduler thread panicked.
    #[error("a build thread stopped unexpectedly")]
    Panicked,
}

/// Why one step failed.
#[derive(Debug, Error)]
pub enum StepError {
    /// A base or `--from` image that is not in the local store.
    #[error("image {name} is not in the local store (pull it, or build with --pull)")]
    ImageNotFound {
        /// The reference.
        name: String,
    },
    /// A RUN --mount that cannot be set up.
    #[error("invalid --mount: {reason}")]
    Mount {
        /// Why.
        reason: String,
    },
    /// A base image for another platform.
    #[error("image {name} is for {image}, not {wanted} (only the host's platform can be built)")]
    Platform {
        /// The reference.
        name: String,
        /// The image's os/architecture.
        image: String,
        /// The stage's platform.
        wanted: String,
    },
    /// RUN without a container runtime.
    #[error("RUN is not supported yet: kiln has no container runtime for build steps (only COPY, ADD and config instructions can be built)")]
    RunUnsupported,
    /// A RUN that failed in its container.
    #[error(transparent)]
    Run(#[from] RunError),
    /// COPY or ADD failed.
    #[error(transparent)]
    Copy(#[from] CopyError),
    /// An owner that cannot be resolved.
    #[error(transparent)]
    Perms(#[from] PermsError),
    /// A config instruction that cannot be applied.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// An ONBUILD trigger of the base image that does not parse.
    #[error("ONBUILD trigger {trigger:?} of the base image: {reason}")]
    Onbuild {
        /// The trigger.
        trigger: String,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] kiln_store::Error),
    /// Writing the layer failed.
    #[error("failed to write the layer: {0}")]
    Layer(#[from] kiln_fs::layer::LayerWriteError),
    /// A base image whose config cannot be read.
    #[error("image {name}: invalid config: {source}")]
    BadConfig {
        /// The image.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// File-system trouble in the build's own directories.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A RUN that failed.
#[derive(Debug, Error)]
pub enum RunError {
    /// The command ran and exited non-zero (or was killed).
    #[error("process \"{}\" did not complete successfully: exit code: {code}", argv.join(" "))]
    Exit {
        /// The command.
        argv: Vec<String>,
        /// Its exit status (128 + signal when killed).
        code: i32,
    },
    /// The container could not be set up.
    #[error("failed to run the step's container: {reason}")]
    Setup {
        /// Why.
        reason: String,
    },
}

/// What a RUN step asks the runtime for.
#[derive(Debug)]
pub struct RunRequest<'a> {
    /// The command (exec form, or the shell form through SHELL).
    pub argv: &'a [String],
    /// `KEY=value` environment: the image's ENV and the build args in scope.
    pub env: &'a [String],
    /// USER (`name`, `uid`, `uid:gid`, …), empty for root.
    pub user: &'a str,
    /// The working directory.
    pub workdir: &'a str,
    /// The root file system: snapshot directories, bottom first, to stack
    /// as overlay lower directories (read-only).
    pub lower: &'a [PathBuf],
    /// An empty directory: the overlay upper directory, where the step's
    /// changes must be left (whiteouts in overlay form).
    pub upper: &'a Path,
    /// `RUN --mount`s, with their targets made absolute and their sources
    /// found (see [`MountSource`]).
    pub mounts: &'a [ResolvedMount],
    /// `--secret`s of the build, by id (for the step's secret mounts).
    pub secrets: &'a BTreeMap<String, SecretSource>,
    /// `--ssh` agent sockets of the build, by id (`default` for a bare
    /// `--ssh default`).
    pub ssh: &'a BTreeMap<String, Vec<PathBuf>>,
    /// `RUN --network` (`None`: the build's default).
    pub network: Option<NetworkMode>,
    /// The platform built for.
    pub platform: &'a Platform,
    /// The Dockerfile line, for messages.
    pub line: usize,
    /// Called (from any thread) once the step no longer needs the `lower`
    /// directories by path, its root being mounted: the build may then
    /// move them. The build calls it itself when `run` returns, so a
    /// runner need not.
    pub lowers_mounted: Option<Callback<'a>>,
}

/// A function a runner may call from any thread.
#[derive(Clone, Copy)]
pub struct Callback<'a>(pub &'a (dyn Fn() + Sync));

impl std::fmt::Debug for Callback<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Callback")
    }
}

/// A `RUN --mount` with its target and source worked out by the build.
#[derive(Debug, Clone)]
pub struct ResolvedMount {
    /// The mount as written (after expansion): type, options, ids.
    pub mount: Mount,
    /// Where it goes in the container: absolute, relative targets joined
    /// to WORKDIR (`None`: an env-only secret, or ssh at its default).
    pub target: Option<String>,
    /// Where its files come from.
    pub source: MountSource,
}

/// Where the files of a mount come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSource {
    /// A bind of a stage or an image (`from=`): its snapshot directories,
    /// bottom first (overlay lower directories), and `path` inside them
    /// (`source=`, resolved in their root).
    Layers {
        /// Snapshot directories, bottom first.
        lower: Vec<PathBuf>,
        /// The path inside, absolute.
        path: String,
    },
    /// A bind of the build context (no `from=`): the context directory and
    /// `path` inside it (resolved in it; `.dockerignore` applies to what the
    /// step may see, as in BuildKit, only through the cache key).
    Context {
        /// The context directory.
        dir: PathBuf,
        /// The path inside, absolute.
        path: String,
    },
    /// A cache directory kept between builds under the store
    /// (`cache/mounts/`), the instance this step holds for as long as it
    /// runs (see `cachemount`: names, seeding with `from=`, `sharing`).
    Cache {
        /// The directory.
        dir: PathBuf,
    },
    /// Files the build wrote for the step (a heredoc script with a
    /// shebang): a directory to bind read-only.
    Files {
        /// The directory.
        dir: PathBuf,
    },
    /// Nothing from the build: tmpfs, and secret and ssh mounts, whose
    /// contents the runtime takes from the build's `--secret`/`--ssh`.
    None,
}

/// Where a build secret (`--secret id=…`) comes from. The build never
/// reads it: only the runtime does, into the step's container (a tmpfs
/// file or an environment variable), so a secret reaches no layer, key,
/// history or log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// `src=FILE`.
    File(PathBuf),
    /// `env=VAR`: the value of this variable of kiln's environment.
    Env(String),
}

/// Runs RUN steps in containers; implemented by the runtime.
pub trait StepRunner: Send + Sync {
    /// Run one step; output goes to `output` as it comes.
    fn run(&self, req: &RunRequest<'_>, output: &mut dyn FnMut(&[u8])) -> Result<(), RunError>;

    /// A step is being built (a cache miss) and a RUN step follows it in
    /// its stage: whatever a run needs that takes time and can be had
    /// ahead may start now. Nothing by default.
    fn prepare(&self) {}
}

/// How a vertex ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It started.
    Started,
    /// Its result came from the cache.
    Cached,
    /// It finished, after this long.
    Done(Duration),
    /// It failed.
    Failed,
}

/// A progress event.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// The build graph is made: `total` vertices at most will report (the
    /// steps of a failed build that never start do not).
    Plan {
        /// How many vertices the graph has.
        total: usize,
    },
    /// A vertex changed state.
    Vertex {
        /// Its index in [`Graph::vertices`].
        id: usize,
        /// What it is.
        name: &'a str,
        /// The new state.
        status: Status,
    },
    /// Why a vertex missed the cache (`--explain-cache`).
    Explain {
        /// The vertex.
        id: usize,
        /// What changed, one input per line.
        reasons: &'a [String],
    },
    /// Output of a RUN.
    Output {
        /// The vertex.
        id: usize,
        /// Bytes as they came.
        data: &'a [u8],
    },
}

/// Receives progress events (the binary renders them).
pub trait Reporter: Send + Sync {
    /// One event.
    fn event(&self, event: &Event<'_>);
}

/// A reporter that drops everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _event: &Event<'_>) {}
}

/// What to build and how.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The build context directory (`None`: no context, `kiln build -`).
    pub context: Option<PathBuf>,
    /// Its `.dockerignore`.
    pub ignore: Option<kiln_dockerfile::ignore::IgnoreRules>,
    /// `--build-arg` values: the same the `Build` was lowered with (ARG
    /// history shows them; ONBUILD triggers are lowered with them).
    pub build_args: BTreeMap<String, String>,
    /// `--label`s.
    pub labels: BTreeMap<String, String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--no-cache-filter`: stages (names or indexes) built without the
    /// cache.
    pub no_cache_filter: Vec<String>,
    /// `--explain-cache`: a name for this Dockerfile and context (the
    /// binary uses their paths). Each layer step's inputs are remembered
    /// under it (`cache/explain/` in the store), and a step that misses is
    /// explained by what changed since ([`Event::Explain`]).
    pub explain: Option<String>,
    /// Stages run at once.
    pub jobs: usize,
    /// Names for the image.
    pub tags: Vec<Reference>,
    /// New layers' compression and media types.
    pub layer: NewLayerOptions,
    /// `SOURCE_DATE_EPOCH`: new layers' mtimes clamped and history times
    /// set to it.
    pub source_date_epoch: Option<u64>,
    /// `--secret id=…,src=…|env=…`.
    pub secrets: BTreeMap<String, SecretSource>,
    /// `--ssh ID[=SOCKET…]`.
    pub ssh: BTreeMap<String, Vec<PathBuf>>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            context: None,
            ignore: None,
            build_args: BTreeMap::new(),
            labels: BTreeMap::new(),
            no_cache: false,
            no_cache_filter: Vec::new(),
            explain: None,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            tags: Vec::new(),
            layer: NewLayerOptions::default(),
            source_date_epoch: None,
            secrets: BTreeMap::new(),
            ssh: BTreeMap::new(),
        }
    }
}

/// One vertex of the graph.
#[derive(Debug, Clone)]
pub struct Vertex {
    /// The stage (index in `Build::stages`).
    pub stage: usize,
    /// Index of the step in the stage (`None`: the FROM).
    pub step: Option<usize>,
    /// BuildKit-style name: `[stage-0 2/3] COPY a /b`.
    pub name: String,
    /// Dockerfile line.
    pub line: usize,
    /// Vertices it needs (its predecessor in the stage, and the last vertex
    /// of each stage it takes files from).
    pub deps: Vec<usize>,
}

/// The build graph of the stages the target needs.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Vertices, stage by stage in dependency order.
    pub vertices: Vec<Vertex>,
    /// For each stage index, its vertices (empty when not needed).
    pub by_stage: BTreeMap<usize, Vec<usize>>,
}

fn is_layer_step(i: &Instruction) -> bool {
    matches!(
        i,
        Instruction::Copy(_) | Instruction::Add(_) | Instruction::Run(_) | Instruction::Workdir(_)
    )
}

/// The stage a `--from`/`from=` names, if it names one.
fn source_stage(build: &Build, from: &str) -> Option<usize> {
    match build.resolve_source(from) {
        Source::Stage(i) => Some(i),
        Source::Image(_) => None,
    }
}

/// The stages a step takes files from (`COPY --from`, `RUN --mount=from=`).
fn step_stages(build: &Build, step: &Step) -> Vec<usize> {
    let froms: Vec<&str> = match &step.instruction {
        Instruction::Copy(c) => c.from.iter().map(|f| f.value.as_str()).collect(),
        Instruction::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_deref()).collect(),
        _ => Vec::new(),
    };
    froms
        .into_iter()
        .filter_map(|f| source_stage(build, f))
        .collect()
}

impl Graph {
    /// The graph of what `build.target` needs.
    pub fn new(build: &Build) -> Graph {
        let mut vertices: Vec<Vertex> = Vec::new();
        let mut by_stage: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &si in &build.needed {
            let stage = &build.stages[si];
            let name = stage.display_name();
            let layer_steps: Vec<usize> = stage
                .steps
                .iter()
                .enumerate()
                .filter(|(_, s)| is_layer_step(&s.instruction))
                .map(|(i, _)| i)
                .collect();
            let total = layer_steps.len() + 1;
            let mut ids = Vec::new();
            let from_deps = match stage.base {
                Base::Stage(j) => by_stage
                    .get(&j)
                    .and_then(|v| v.last())
                    .copied()
                    .into_iter()
                    .collect(),
                _ => Vec::new(),
            };
            ids.push(vertices.len());
            vertices.push(Vertex {
                stage: si,
                step: None,
                name: format!("[{name} 1/{total}] FROM {}", stage.base_name),
                line: stage.line,
                deps: from_deps,
            });
            for (n, &i) in layer_steps.iter().enumerate() {
                let step = &stage.steps[i];
                let mut deps = vec![*ids.last().unwrap_or(&0)];
                for j in step_stages(build, step) {
                    if let Some(&last) = by_stage.get(&j).and_then(|v| v.last()) {
                        deps.push(last);
                    }
                }
                ids.push(vertices.len());
                vertices.push(Vertex {
                    stage: si,
                    step: Some(i),
                    name: format!("[{name} {}/{total}] {}", n + 2, describe(&step.instruction)),
                    line: step.line,
                    deps,
                });
            }
            by_stage.insert(si, ids);
        }
        Graph { vertices, by_stage }
    }
}

/// A short description of a layer step, as its history shows it.
fn describe(i: &Instruction) -> String {
    match i {
        Instruction::Copy(c) if c.from.is_some() => {
            let plain = copy_created_by(
                "COPY",
                false,
                c.parents,
                c.chown.as_deref(),
                c.chmod.as_deref(),
                &c.sources,
                &c.contents,
                &c.dest,
            );
            let from = c.from.as_ref().map(|f| f.value.as_str()).unwrap_or("");
            format!("COPY --from={from}{}", &plain[4..])
        }
        Instruction::Copy(c) => copy_created_by(
            "COPY",
            false,
            c.parents,
            c.chown.as_deref(),
            c.chmod.as_deref(),
            &c.sources,
            &c.contents,
            &c.dest,
        ),
        Instruction::Add(a) => copy_created_by(
            "ADD",
            false,
            false,
            a.chown.as_deref(),
            a.chmod.as_deref(),
            &a.sources,
            &a.contents,
            &a.dest,
        ),
        Instruction::Run(r) => format!("RUN {}", r.command.args.join(" ")),
        Instruction::Workdir(w) => format!("WORKDIR {w}"),
        other => other.name().to_string(),
    }
}

/// BuildKit's history text of COPY/ADD.
#[allow(clippy::too_many_arguments)]
fn copy_created_by(
    cmd: &str,
    suffix: bool,
    parents: bool,
    chown: Option<&str>,
    chmod: Option<&str>,
    sources: &[String],
    contents: &[kiln_dockerfile::instructions::InlineFile],
    dest: &str,
) -> String {
    let mut s = String::from(cmd);
    if parents {
        s.push_str(" --parents");
    }
    if let Some(c) = chown {
        s.push_str(&format!(" --chown={c}"));
    }
    if let Some(c) = chmod {
        s.push_str(&format!(" --chmod={c}"));
    }
    for src in sources {
        s.push(' ');
        s.push_str(src);
    }
    for f in contents {
        s.push_str(&format!(" <<{}", f.name));
    }
    s.push(' ');
    s.push_str(dest);
    if suffix {
        s.push_str(" # buildkit");
    }
    s
}

/// BuildKit's `runCommandString`: `|N K=V … argv`.
fn run_created_by(argv: &[String], build_args: &[(String, String)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !build_args.is_empty() {
        parts.push(format!("|{}", build_args.len()));
        parts.extend(build_args.iter().map(|(k, v)| format!("{k}={v}")));
    }
    parts.extend(argv.iter().cloned());
    format!("RUN {} # buildkit", parts.join(" "))
}

/// What a finished stage hands on.
#[derive(Debug, Clone)]
struct StageResult {
    config: ImageConfig,
    layers: Vec<LayerRecord>,
    key: String,
}

impl StageResult {
    fn tree(&self, store: &Store) -> LayeredTree {
        LayeredTree::new(
            self.layers
                .iter()
                .map(|l| store.snapshot_path(&l.chain_id))
                .collect(),
        )
    }
}

/// What a finished build made.
#[derive(Debug, Clone)]
pub struct BuildResult {
    /// The image, as recorded in the store.
    pub image: ImageRecord,
    /// Its config.
    pub config: ImageConfig,
    /// Vertices run or taken from the cache, with their outcome.
    pub steps: Vec<(String, Status)>,
}

/// An image of the store as a build sees it.
#[derive(Debug, Clone)]
struct BaseImage {
    config: ImageConfig,
    record: ImageRecord,
}

/// Base image environments from the store, for the lowering.
#[derive(Debug)]
pub struct StoreImages<'a> {
    store: &'a Store,
}

impl<'a> StoreImages<'a> {
    /// Images of `store`.
    pub fn new(store: &'a Store) -> Self {
        StoreImages { store }
    }
}

impl ImageEnv for StoreImages<'_> {
    fn env(&self, image: &str, _platform: &Platform) -> Option<Vec<(String, String)>> {
        let base = load_image(self.store, image).ok()?;
        Some(
            base.config
                .config
                .map(|c| c.env)
                .unwrap_or_default()
                .iter()
                .map(|e| match e.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (e.clone(), String::new()),
                })
                .collect(),
        )
    }
}

fn load_image(store: &Store, name: &str) -> Result<BaseImage, StepError> {
    let image = store.resolve(name).map_err(|e| match e {
        kiln_store::Error::NoSuchImage { .. } => StepError::ImageNotFound {
            name: name.to_string(),
        },
        other => StepError::Store(other),
    })?;
    let bytes = store
        .content()
        .read(&image.record.config.digest)
        .map_err(kiln_store::Error::from)?;
    let config: ImageConfig =
        serde_json::from_slice(&bytes).map_err(|source| StepError::BadConfig {
            name: name.to_string(),
            source,
        })?;
    Ok(BaseImage {
        config,
        record: image.record,
    })
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Builds one Dockerfile into the store.
pub struct Builder<'a> {
    store: &'a Store,
    opts: &'a BuildOptions,
    reporter: &'a dyn Reporter,
    runner: Option<&'a dyn StepRunner>,
}

impl std::fmt::Debug for Builder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("opts", &self.opts)
            .field("runner", &self.runner.is_some())
            .finish_non_exhaustive()
    }
}

/// The scheduler's shared state.
#[derive(Debug, Default)]
struct Sched {
    started: Vec<bool>,
    done: BTreeMap<usize, Arc<StageResult>>,
    error: Option<BuildError>,
    running: usize,
}

/// The results of the other stages, as a stage's steps ask for them: a
/// stage not finished yet is waited for, with the waiting stage's job slot
/// given back meanwhile (so `jobs` bounds the stages doing work, and a
/// stage waiting for one not yet started cannot starve it).
struct StageDeps<'s> {
    state: &'s Mutex<Sched>,
    wake: &'s Condvar,
    jobs: usize,
}

impl StageDeps<'_> {
    /// Stage `j`'s result, once it is built; `None` when the build failed
    /// meanwhile.
    fn get(&self, j: usize) -> Option<Arc<StageResult>> {
        let mut s = self.state.lock().ok()?;
        if let Some(r) = s.done.get(&j) {
            return Some(r.clone());
        }
        s.running -= 1;
        self.wake.notify_all();
        while !s.done.contains_key(&j) && s.error.is_none() {
            s = self.wake.wait(s).ok()?;
        }
        while s.running >= self.jobs && s.error.is_none() {
            s = self.wake.wait(s).ok()?;
        }
        s.running += 1;
        s.done.get(&j).cloned()
    }
}

/// Per-vertex outcomes, for the result.
type Outcomes = Mutex<BTreeMap<usize, Status>>;

/// What every layer step needs besides its own inputs.
struct StepCtx<'x> {
    graph: &'x Graph,
    /// The step's vertex (`None` for ONBUILD triggers, which have none).
    id: Option<usize>,
    lease: &'x Lease<'x>,
    outcomes: &'x Outcomes,
    /// Look results up in the cache (not with `--no-cache`, nor in a stage
    /// of `--no-cache-filter`).
    use_cache: bool,
    /// Where step inputs are remembered, with this step's name there.
    explain: Option<(&'x Explainer, String)>,
    /// A RUN is this step or comes after it in the stage.
    run_ahead: bool,
}

/// How a copied path changed, from its notes (`file <hash>, mode 644,
/// owner 0:0`): which of content, mode and owner.
fn path_change(path: &str, old: &str, new: &str) -> String {
    let parts = |s: &str| -> Vec<String> { s.split(", ").map(str::to_string).collect() };
    let (a, b) = (parts(old), parts(new));
    if a.len() != 3 || b.len() != 3 {
        return format!("{path}: {old} -> {new}");
    }
    let mut what = Vec::new();
    if a[0] != b[0] {
        let kind = |s: &str| s.split(' ').next().unwrap_or("").to_string();
        if kind(&a[0]) == kind(&b[0]) {
            what.push("content changed".to_string());
        } else {
            what.push(format!("{} -> {}", a[0], b[0]));
        }
    }
    for i in 1..3 {
        if a[i] != b[i] {
            what.push(format!("{} -> {}", a[i], b[i]));
        }
    }
    format!("{path}: {}", what.join(", "))
}

/// The inputs of a layer step as last built, for `--explain-cache`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct StepNote {
    key: String,
    inputs: BTreeMap<String, String>,
}

/// The remembered inputs of one Dockerfile's steps (a JSON file under
/// the store's `cache/explain/`, named by the hash of the scope).
#[derive(Debug)]
struct Explainer {
    path: PathBuf,
    old: BTreeMap<String, StepNote>,
    new: Mutex<BTreeMap<String, StepNote>>,
}

impl Explainer {
    fn open(store: &Store, scope: &str) -> Explainer {
        let mut k = KeyHasher::new("explain", None);
        k.field("scope", scope.as_bytes());
        let name = k.finish();
        let path = store
            .root()
            .join("cache/explain")
            .join(format!("{}.json", name.trim_start_matches("sha256:")));
        // A missing or unreadable file only means nothing to compare with.
        let old = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Explainer {
            path,
            old,
            new: Mutex::new(BTreeMap::new()),
        }
    }

    /// Why the step `name` with `key` and `inputs` missed.
    fn reasons(
        &self,
        name: &str,
        key: &str,
        inputs: &BTreeMap<String, String>,
        use_cache: bool,
    ) -> Vec<String> {
        let Some(old) = self.old.get(name) else {
            return vec!["no earlier build of this step to compare with".into()];
        };
        if old.key == key {
            return vec![if use_cache {
                "nothing changed, but the cached result is gone (pruned)".into()
            } else {
                "the cache was not used for it (--no-cache or --no-cache-filter)".into()
            }];
        }
        let mut out = Vec::new();
        let names: std::collections::BTreeSet<&String> =
            old.inputs.keys().chain(inputs.keys()).collect();
        for n in names {
            match (old.inputs.get(n), inputs.get(n)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(_), Some(_)) if n == "parent" => {
                    out.push("the step before it (or the base image) changed".into())
                }
                (Some(a), Some(b)) => match n.strip_prefix("path ") {
                    Some(path) => out.push(path_change(path, a, b)),
                    None => out.push(format!("{n}: {a} -> {b}")),
                },
                (None, Some(b)) => match n.strip_prefix("path ") {
                    Some(path) => out.push(format!("{path}: new ({b})")),
                    None => out.push(format!("{n}: new ({b})")),
                },
                (Some(_), None) => match n.strip_prefix("path ") {
                    Some(path) => out.push(format!("{path}: no longer copied")),
                    None => out.push(format!("{n}: gone")),
                },
                (None, None) => {}
            }
        }
        if out.is_empty() {
            out.push("its definition changed".into());
        }
        const MAX: usize = 12;
        if out.len() > MAX {
            let more = out.len() - MAX;
            out.truncate(MAX);
            out.push(format!("… and {more} more"));
        }
        out
    }

    fn record(&self, name: String, key: &str, inputs: &BTreeMap<String, String>) {
        if let Ok(mut n) = self.new.lock() {
            n.insert(
                name,
                StepNote {
                    key: key.to_string(),
                    inputs: inputs.clone(),
                },
            );
        }
    }

    /// Write what this build saw (steps it did not reach keep their old
    /// notes). Best effort: explanations are advice, never a failure.
    fn save(self) {
        let mut all = self.old;
        if let Ok(n) = self.new.into_inner() {
            all.extend(n);
        }
        if let Some(dir) = self.path.parent() {
            let _ = fs::create_dir_all(dir);
        }
        if let Ok(bytes) = serde_json::to_vec(&all) {
            let _ = kiln_fs::atomic::write_file(&self.path, &bytes);
        }
    }
}

impl<'a> Builder<'a> {
    /// A builder on `store`; RUN steps go to `runner` (none: they fail).
    pub fn new(
        store: &'a Store,
        opts: &'a BuildOptions,
        reporter: &'a dyn Reporter,
        runner: Option<&'a dyn StepRunner>,
    ) -> Self {
        Builder {
            store,
            opts,
            reporter,
            runner,
        }
    }

    /// Build the target of `build`, record the image and tag it.
    pub fn build(&self, build: &Build) -> Result<BuildResult, BuildError> {
        let first_run = build
            .needed
            .iter()
            .flat_map(|&si| &build.stages[si].steps)
            .find_map(|s| match &s.instruction {
                Instruction::Run(r) => Some((s, r)),
                _ => None,
            });
        if let Some((step, r)) = first_run {
            // Without a runtime, a RUN fails before anything is built.
            let Some(runner) = self.runner else {
                return Err(BuildError::Step {
                    line: step.line,
                    instruction: describe(&Instruction::Run(r.clone())),
                    source: Box::new(StepError::RunUnsupported),
                });
            };
            // Under --no-cache every RUN runs: its preparation may start
            // now (on a miss otherwise, see StepCtx::run_ahead).
            if self.opts.no_cache {
                runner.prepare();
            }
        }
        let graph = Graph::new(build);
        self.reporter.event(&Event::Plan {
            total: graph.vertices.len(),
        });
        let lease = self.store.lease()?;
        let context: Box<dyn Tree> = match &self.opts.context {
            Some(dir) => Box::new(
                ContextTree::new(dir.clone(), self.opts.ignore.clone())
                    .with_hash_cache(self.store.root().join("cache/context-hashes.json")),
            ),
            None => Box::new(LayeredTree::new(Vec::new())),
        };
        let outcomes: Outcomes = Mutex::new(BTreeMap::new());
        let explainer = self
            .opts
            .explain
            .as_deref()
            .map(|scope| Explainer::open(self.store, scope));
        let n = build.stages.len();
        let state = Mutex::new(Sched {
            started: vec![false; n],
            ..Sched::default()
        });
        let wake = Condvar::new();
        let jobs = self.opts.jobs.max(1);
        let needed = &build.needed;
        let deps = StageDeps {
            state: &state,
            wake: &wake,
            jobs,
        };
        std::thread::scope(|scope| {
            let mut handles = Vec::new();
            // A thread per stage (a stage waiting for another holds its
            // thread but not its job slot); `jobs` bounds the work.
            for _ in 0..needed.len() {
                handles.push(scope.spawn(|| {
                    self.worker(
                        build,
                        &graph,
                        &lease,
                        context.as_ref(),
                        &deps,
                        &outcomes,
                        explainer.as_ref(),
                    )
                }));
            }
            for h in handles {
                if h.join().is_err() {
                    if let Ok(mut s) = state.lock() {
                        s.error.get_or_insert(BuildError::Panicked);
                    }
                }
            }
        });
        if let Some(ex) = explainer {
            ex.save();
        }
        let mut s = state.into_inner().map_err(|_| BuildError::Panicked)?;
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let target = s.done.remove(&build.target).ok_or(BuildError::Panicked)?;
        let steps = outcomes
            .into_inner()
            .map_err(|_| BuildError::Panicked)?
            .into_iter()
            .map(|(id, st)| (graph.vertices[id].name.clone(), st))
            .collect();
        let (image, config) = self.export(&target, &lease)?;
        Ok(BuildResult {
            image,
            config,
            steps,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn worker(
        &self,
        build: &Build,
        graph: &Graph,
        lease: &Lease<'_>,
        context: &dyn Tree,
        deps: &StageDeps<'_>,
        outcomes: &Outcomes,
        explain: Option<&Explainer>,
    ) {
        let (state, wake) = (deps.state, deps.wake);
        loop {
            let si = {
                let Ok(mut s) = state.lock() else { return };
                loop {
                    if s.error.is_some() || build.needed.iter().all(|i| s.started[*i]) {
                        return;
                    }
                    // Its FROM stage finished; the stages it copies from
                    // are waited for by the steps that need them.
                    let ready = build.needed.iter().copied().find(|&i| {
                        !s.started[i]
                            && match build.stages[i].base {
                                Base::Stage(j) => s.done.contains_key(&j),
                                _ => true,
                            }
                    });
                    if let (Some(i), true) = (ready, s.running < deps.jobs) {
                        s.started[i] = true;
                        s.running += 1;
                        break i;
                    }
                    let Ok(next) = wake.wait(s) else { return };
                    s = next;
                }
            };
            // A panic in a stage must not leave the other workers waiting
            // for its result forever.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.run_stage(build, graph, lease, context, si, deps, outcomes, explain)
            }))
            .unwrap_or(Err(BuildError::Panicked));
            let Ok(mut s) = state.lock() else { return };
            s.running -= 1;
            match result {
                Ok(r) => {
                    s.done.insert(si, Arc::new(r));
                }
                Err(e) => {
                    s.error.get_or_insert(e);
                }
            }
            wake.notify_all();
        }
    }

    fn report(&self, graph: &Graph, id: usize, status: Status, outcomes: &Outcomes) {
        self.reporter.event(&Event::Vertex {
            id,
            name: &graph.vertices[id].name,
            status,
        });
        if status != Status::Started {
            if let Ok(mut o) = outcomes.lock() {
                o.insert(id, status);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn run_stage(
        &self,
        build: &Build,
        graph: &Graph,
        lease: &Lease<'_>,
        context: &dyn Tree,
        si: usize,
        deps: &StageDeps<'_>,
        outcomes: &Outcomes,
        explain: Option<&Explainer>,
    ) -> Result<StageResult, BuildError> {
        let stage = &build.stages[si];
        let ids = graph.by_stage.get(&si).cloned().unwrap_or_default();
        let from_id = ids.first().copied().unwrap_or(0);
        let started = Instant::now();
        self.report(graph, from_id, Status::Started, outcomes);
        let step_err = |line: usize, instruction: String| {
            move |source: StepError| BuildError::Step {
                line,
                instruction: instruction.clone(),
                source: Box::new(source),
            }
        };
        let from_err = step_err(stage.line, format!("FROM {}", stage.base_name));
        let (mut image, layers, mut key, triggers) = match &stage.base {
            Base::Scratch => {
                let mut k = KeyHasher::new("scratch", None);
                k.field("platform", stage.platform.to_string().as_bytes());
                (
                    config::scratch(&stage.platform),
                    Vec::new(),
                    k.finish(),
                    Vec::new(),
                )
            }
            Base::Stage(j) => {
                let r = deps.get(*j).ok_or(BuildError::Panicked)?;
                let mut c = r.config.clone();
                config::container(&mut c).on_build.clear();
                (c, r.layers.clone(), r.key.clone(), Vec::new())
            }
            Base::Image(name) => {
                let base = match load_image(self.store, name) {
                    Ok(b) => b,
                    Err(e) => {
                        self.report(graph, from_id, Status::Failed, outcomes);
                        return Err(from_err(e));
                    }
                };
                if base.config.os != stage.platform.os
                    || base.config.architecture != stage.platform.architecture
                {
                    return Err(from_err(StepError::Platform {
                        name: name.clone(),
                        image: format!("{}/{}", base.config.os, base.config.architecture),
                        wanted: stage.platform.to_string(),
                    }));
                }
                lease
                    .protect(base.record.blobs(), base.record.snapshots())
                    .map_err(|e| from_err(StepError::Store(e)))?;
                let mut c = base.config;
                c.created = None;
                let triggers = std::mem::take(&mut config::container(&mut c).on_build);
                let mut k = KeyHasher::new("image", None);
                k.field("config", base.record.config.digest.to_string().as_bytes());
                k.field("platform", stage.platform.to_string().as_bytes());
                (c, base.record.layers, k.finish(), triggers)
            }
        };
        self.report(graph, from_id, Status::Done(started.elapsed()), outcomes);
        let trigger_steps = self.onbuild_steps(stage, &image, &triggers, build)?;
        // Each layer's tar is written beside the next step (pipeline.rs).
        std::thread::scope(|scope| {
            let mut layers = StageLayers::new(layers);
            let mut st = StageConfig::default();
            let mut vertex = ids.iter().skip(1);
            let use_cache = !self.opts.no_cache
                && !self.opts.no_cache_filter.iter().any(|f| {
                    stage.name.as_deref() == Some(f.as_str()) || *f == stage.index.to_string()
                });
            let all_steps: Vec<&Step> = trigger_steps.iter().chain(stage.steps.iter()).collect();
            let last_run = all_steps
                .iter()
                .rposition(|s| matches!(s.instruction, Instruction::Run(_)));
            for (n, step) in all_steps.into_iter().enumerate() {
                let is_trigger = step.span == stage.span && !trigger_steps.is_empty();
                let id = if is_layer_step(&step.instruction) && !is_trigger {
                    vertex.next().copied()
                } else {
                    None
                };
                let name = describe(&step.instruction);
                let err = step_err(step.line, name.clone());
                // Wait for the stages it takes files from before it shows as
                // started (its time is its own work).
                for j in step_stages(build, step) {
                    if deps.get(j).is_none() {
                        return Err(BuildError::Panicked);
                    }
                }
                let cx = StepCtx {
                    graph,
                    id,
                    lease,
                    outcomes,
                    use_cache,
                    explain: match (explain, id.and_then(|i| graph.vertices[i].step)) {
                        (Some(ex), Some(n)) => Some((ex, format!("{}#{n}", stage.display_name()))),
                        _ => None,
                    },
                    run_ahead: last_run.is_some_and(|r| n <= r),
                };
                match &step.instruction {
                    Instruction::Workdir(w) => {
                        let c = config::container(&mut image);
                        let wd = config::workdir(c.working_dir.as_deref(), w);
                        c.working_dir = Some(wd.clone());
                        let user = c.user.clone().unwrap_or_default();
                        if wd == "/" {
                            image.history.push(history(format!("WORKDIR {wd}"), false));
                            continue;
                        }
                        let tree = LayeredTree::new(layers.dirs(self.store));
                        let owner = perms::resolve_user(&tree, &user).map_err(|e| err(e.into()))?;
                        let mut k = KeyHasher::new("workdir", Some(&key));
                        k.field("path", wd.as_bytes());
                        k.field("owner", format!("{}:{}", owner.0, owner.1).as_bytes());
                        k.note("WORKDIR", wd.clone());
                        k.note("owner", format!("{}:{}", owner.0, owner.1));
                        let notes = k.notes().clone();
                        let new_key = k.finish();
                        let now = now_secs();
                        let created = self
                            .layer_step(scope, &cx, &new_key, &notes, &mut layers, false, |dir| {
                                mkdir_layer(&tree, &wd, owner, now, dir)?;
                                Ok((LayerSource::Plain, None))
                            })
                            .map_err(&err)?;
                        key = new_key;
                        image.history.push(History {
                            created: Some(created),
                            ..history(format!("WORKDIR {wd}"), true)
                        });
                    }
                    Instruction::Copy(_) | Instruction::Add(_) | Instruction::Run(_) => {
                        let made = match &step.instruction {
                            Instruction::Run(run) => self.run_step(
                                scope,
                                &cx,
                                run,
                                step,
                                &image,
                                &mut layers,
                                &key,
                                deps,
                                context,
                                build,
                            ),
                            _ => self.copy_step(
                                scope,
                                &cx,
                                step,
                                &image,
                                &mut layers,
                                &key,
                                deps,
                                context,
                                build,
                            ),
                        };
                        let (new_key, created, created_by) = made.map_err(&err)?;
                        key = new_key;
                        image.history.push(History {
                            created: Some(created),
                            ..history(created_by, true)
                        });
                    }
                    other => {
                        let value = |name: &str, default: Option<&str>| -> Option<String> {
                            self.opts
                                .build_args
                                .get(name)
                                .cloned()
                                .or_else(|| default.map(str::to_string))
                                .or_else(|| {
                                    build
                                        .meta_args
                                        .iter()
                                        .find(|m| m.name == name)
                                        .and_then(|m| m.value.clone())
                                })
                        };
                        if let Some(by) = config::apply(&mut image, &mut st, other, &value)
                            .map_err(|e| err(e.into()))?
                        {
                            image.history.push(history(by, false));
                        }
                    }
                }
            }
            image.architecture = stage.platform.architecture.clone();
            image.os = stage.platform.os.clone();
            let layers = layers.finish().map_err(|e| BuildError::Step {
                line: stage.line,
                instruction: format!("FROM {}", stage.base_name),
                source: Box::new(e),
            })?;
            Ok(StageResult {
                config: image,
                layers,
                key,
            })
        })
    }

    /// The base image's ONBUILD triggers as steps of this stage (they run
    /// first, reported at the FROM line).
    fn onbuild_steps(
        &self,
        stage: &Stage,
        image: &ImageConfig,
        triggers: &[String],
        build: &Build,
    ) -> Result<Vec<Step>, BuildError> {
        if triggers.is_empty() {
            return Ok(Vec::new());
        }
        let env: Vec<(String, String)> = image
            .config
            .as_ref()
            .map(|c| c.env.clone())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| {
                e.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        struct Known(Vec<(String, String)>);
        impl ImageEnv for Known {
            fn env(&self, _: &str, _: &Platform) -> Option<Vec<(String, String)>> {
                Some(self.0.clone())
            }
        }
        let known = Known(env);
        let mut text = format!("FROM {}\n", stage.base_name);
        for t in triggers {
            text.push_str(t);
            text.push('\n');
        }
        let fail = |reason: String| BuildError::Step {
            line: stage.line,
            instruction: format!("FROM {}", stage.base_name),
            source: Box::new(StepError::Onbuild {
                trigger: triggers.join("; "),
                reason,
            }),
        };
        let df = kiln_dockerfile::parse(&text).map_err(|e| fail(e.to_string()))?;
        let mut opts = LowerOptions::new(&self.opts.build_args, &stage.platform);
        opts.images = &known;
        let lowered = kiln_dockerfile::lower::lower(&df, &opts).map_err(|e| fail(e.to_string()))?;
        let mut steps = lowered
            .stages
            .into_iter()
            .next()
            .map(|s| s.steps)
            .unwrap_or_default();
        for s in &mut steps {
            if let Instruction::Run(_) = s.instruction {
                if self.runner.is_none() {
                    return Err(BuildError::Step {
                        line: stage.line,
                        instruction: format!("ONBUILD {}", describe(&s.instruction)),
                        source: Box::new(StepError::RunUnsupported),
                    });
                }
            }
            if let Instruction::Copy(c) = &s.instruction {
                if c.from
                    .as_ref()
                    .is_some_and(|f| source_stage(build, &f.value).is_some())
                {
                    return Err(fail(
                        "COPY --from a stage in an ONBUILD trigger is not supported".into(),
                    ));
                }
            }
            s.line = stage.line;
            s.span = stage.span;
        }
        Ok(steps)
    }

    /// Run a layer step through the cache: a hit reuses the recorded
    /// layer; a miss stages the step's files with `make` and commits them.
    #[allow(clippy::too_many_arguments)]
    fn layer_step<'s, 'e: 's>(
        &'e self,
        scope: &'s std::thread::Scope<'s, 'e>,
        cx: &StepCtx<'e>,
        key: &str,
        notes: &BTreeMap<String, String>,
        layers: &mut StageLayers<'s>,
        rebase: bool,
        make: impl FnOnce(&Path) -> Result<(LayerSource, Option<AfterPublish<'s>>), StepError>,
    ) -> Result<String, StepError> {
        let result = self.layer_step_inner(scope, cx, key, layers, rebase, make);
        if let (Some((ex, name)), Ok((_, cached))) = (&cx.explain, &result) {
            if !cached {
                if let Some(id) = cx.id {
                    let reasons = ex.reasons(name, key, notes, cx.use_cache);
                    self.reporter.event(&Event::Explain {
                        id,
                        reasons: &reasons,
                    });
                }
            }
            ex.record(name.clone(), key, notes);
        }
        result.map(|(c, _)| c)
    }

    /// [`Builder::layer_step`] without the explanations; also says whether
    /// the result came from the cache. The new layer goes on `layers`
    /// (in flight: see pipeline.rs).
    fn layer_step_inner<'s, 'e: 's>(
        &'e self,
        scope: &'s std::thread::Scope<'s, 'e>,
        cx: &StepCtx<'e>,
        key: &str,
        layers: &mut StageLayers<'s>,
        rebase: bool,
        make: impl FnOnce(&Path) -> Result<(LayerSource, Option<AfterPublish<'s>>), StepError>,
    ) -> Result<(String, bool), StepError> {
        let (graph, id, lease, outcomes) = (cx.graph, cx.id, cx.lease, cx.outcomes);
        if cx.use_cache {
            // (protected by the lease as it is read)
            let found = self.store.build_cache_use(key, lease)?;
            // A record made on the parent step's earlier result is used
            // only on that result: not while the parent, made again, is
            // still being written (a COPY --link's layer goes on any).
            if let Some(rec) = found.filter(|_| rebase || layers.latch().is_none()) {
                layers.settle()?;
                let parent = layers.records().last().map(|l| &l.chain_id);
                if chain_id(parent, &rec.layer.diff_id) == rec.layer.chain_id {
                    if let Some(id) = id {
                        self.report(graph, id, Status::Cached, outcomes);
                    }
                    layers.push(rec.layer)?;
                    return Ok((rec.created, true));
                }
                if rebase {
                    // `COPY --link`: the same layer, put on another parent
                    // (its blob is reused as it is; only a snapshot is made).
                    let blob = self
                        .store
                        .content()
                        .open_blob(&rec.layer.blob.digest)
                        .map_err(kiln_store::Error::from)?;
                    let layer = self.store.ingest_layer_blob(
                        lease,
                        blob,
                        &rec.layer.blob,
                        &rec.layer.diff_id,
                        parent,
                        &self.opts.layer.apply,
                    )?;
                    if let Some(id) = id {
                        self.report(graph, id, Status::Cached, outcomes);
                    }
                    layers.push(layer)?;
                    return Ok((rec.created, true));
                }
            }
        }
        let started = Instant::now();
        if let Some(id) = id {
            self.report(graph, id, Status::Started, outcomes);
        }
        if cx.run_ahead {
            if let Some(r) = self.runner {
                r.prepare();
            }
        }
        let result = (|| {
            let staging = StagingDir::new(self.store)?;
            let made = make(&staging.path);
            // The step no longer reads the layers below by path.
            layers.release();
            let (source, after) = made?;
            let created = match self.opts.source_date_epoch {
                Some(e) => format_rfc3339(UNIX_EPOCH + Duration::from_secs(e)),
                None => format_rfc3339(SystemTime::now()),
            };
            // The cache record goes in with the layer (one transaction).
            let entry = CacheEntry {
                key: key.to_string(),
                created: created.clone(),
            };
            self.commit(scope, layers, staging, source, lease, entry, after)?;
            Ok((created, false))
        })();
        if let Some(id) = id {
            let status = match &result {
                Ok(_) => Status::Done(started.elapsed()),
                Err(_) => Status::Failed,
            };
            self.report(graph, id, status, outcomes);
        }
        result
    }

    /// Make the staged directory a layer on top of `layers`, recorded in
    /// the build cache as `cache`: in flight when it can become its
    /// snapshot as it is, else written as a tar here.
    #[allow(clippy::too_many_arguments)]
    fn commit<'s, 'e: 's>(
        &'e self,
        scope: &'s std::thread::Scope<'s, 'e>,
        layers: &mut StageLayers<'s>,
        staging: StagingDir,
        source: LayerSource,
        lease: &'e Lease<'e>,
        cache: CacheEntry,
        after: Option<AfterPublish<'s>>,
    ) -> Result<(), StepError> {
        let layer_opts = NewLayerOptions {
            cache: Some(cache),
            ..self.opts.layer.clone()
        };
        let opts = WriteOptions {
            overlay: source == LayerSource::OverlayUpper,
            lower: None,
            source_date_epoch: self.opts.source_date_epoch,
        };
        // A COPY's tree or a RUN's upper directory becomes the snapshot as
        // it is when its tar would extract to the same (see
        // `Store::layer_dir`), as BuildKit keeps a RUN's upper directory.
        if let Some(dir) = self.store.layer_dir(&staging.path, &opts)? {
            return layers.start(
                scope, self.store, lease, dir, staging, layer_opts, opts, after,
            );
        }
        layers.settle()?;
        let parent = layers.records().last().map(|l| l.chain_id.clone());
        let dir = staging.path.as_path();
        let (out, rx) = chunk_pipe(16);
        let layer = std::thread::scope(|s| {
            let writer = s.spawn(move || {
                let out = write_tar(dir, out, &opts)?;
                out.finish()
                    .map_err(|source| kiln_fs::layer::LayerWriteError::Write {
                        path: dir.display().to_string(),
                        source,
                    })?;
                Ok::<_, kiln_fs::layer::LayerWriteError>(())
            });
            let reader = ChunkReader::new(rx);
            let result = self
                .store
                .ingest_layer_tar(lease, reader, parent.as_ref(), &layer_opts);
            let written = writer.join().map_err(|_| StepError::Io {
                action: "write a layer from",
                path: dir.to_path_buf(),
                source: io::Error::other("the layer writer panicked"),
            })?;
            written?;
            Ok::<_, StepError>(result?)
        })?;
        if let Some(after) = after {
            after(&layer);
        }
        layers.push(layer)
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_step<'s, 'e: 's>(
        &'e self,
        scope: &'s std::thread::Scope<'s, 'e>,
        cx: &StepCtx<'e>,
        step: &Step,
        image: &ImageConfig,
        layers: &mut StageLayers<'s>,
        parent_key: &str,
        deps: &StageDeps<'_>,
        context: &dyn Tree,
        build: &Build,
    ) -> Result<(String, String, String), StepError> {
        let (add, sources, contents, dest, chown, chmod, parents, exclude, unpack, from, link) =
            match &step.instruction {
                Instruction::Copy(c) => (
                    false,
                    &c.sources,
                    &c.contents,
                    &c.dest,
                    c.chown.as_deref(),
                    c.chmod.as_deref(),
                    c.parents,
                    &c.exclude,
                    None,
                    c.from.as_ref().map(|f| f.value.clone()),
                    c.link,
                ),
                Instruction::Add(a) => (
                    true,
                    &a.sources,
                    &a.contents,
                    &a.dest,
                    a.chown.as_deref(),
                    a.chmod.as_deref(),
                    false,
                    &a.exclude,
                    a.unpack,
                    None,
                    a.link,
                ),
                _ => return Err(StepError::RunUnsupported),
            };
        // `--link` (without --chmod, as BuildKit): the copy is made on an
        // empty tree and merged on top, so it neither sees nor depends on
        // the image below; its key has no parent and its layer can be put
        // on any parent.
        let linked = link && chmod.is_none();
        let image_tree = if linked {
            LayeredTree::new(Vec::new())
        } else {
            LayeredTree::new(layers.dirs(self.store))
        };
        // The source tree: the context, a stage, or an image.
        let stage_tree;
        let (src, from_context, from_key): (&dyn Tree, bool, String) = match &from {
            None => (context, true, "context".to_string()),
            Some(f) => match build.resolve_source(f) {
                Source::Stage(i) => {
                    let r = deps.get(i).ok_or(StepError::Io {
                        action: "find the stage",
                        path: PathBuf::from(f),
                        source: io::Error::other("the stage was not built"),
                    })?;
                    stage_tree = r.tree(self.store);
                    (&stage_tree, false, format!("stage {}", r.key))
                }
                Source::Image(name) => {
                    let base = load_image(self.store, &name)?;
                    cx.lease
                        .protect(base.record.blobs(), base.record.snapshots())?;
                    stage_tree = layers_tree(self.store, &base.record.layers);
                    (
                        &stage_tree,
                        false,
                        format!("image {}", base.record.config.digest),
                    )
                }
            },
        };
        let owner = match chown {
            Some(c) => Some(perms::resolve_chown(&image_tree, c)?),
            None => None,
        };
        let mode = match chmod {
            Some(m) => Some(Chmod::parse(m)?),
            None => None,
        };
        let workdir = image
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .unwrap_or_else(|| "/".into());
        // ADD's URLs and repositories, fetched now: the key depends on
        // what they hold. The directory lives until the layer is written.
        let mut fetched = BTreeMap::new();
        let mut fetch_dir = None;
        if let Instruction::Add(a) = &step.instruction {
            for source in &a.sources {
                let Some(remote) = crate::remote::classify(source) else {
                    continue;
                };
                if fetched.contains_key(source) {
                    continue;
                }
                if fetch_dir.is_none() {
                    fetch_dir = Some(
                        crate::remote::FetchDir::new(&std::env::temp_dir())
                            .map_err(CopyError::from)?,
                    );
                }
                let parent = fetch_dir
                    .as_ref()
                    .map(|d| d.path().to_path_buf())
                    .unwrap_or_default();
                let dir = parent.join(fetched.len().to_string());
                std::fs::create_dir(&dir).map_err(|source| StepError::Io {
                    action: "create",
                    path: dir.clone(),
                    source,
                })?;
                let f = match remote {
                    crate::remote::Remote::Http(url) => copy::Fetched::File(
                        crate::remote::fetch_http(&url, a.checksum.as_deref(), &dir)
                            .map_err(CopyError::from)?,
                    ),
                    crate::remote::Remote::Git(g) => copy::Fetched::Git(
                        crate::remote::fetch_git(&g, a.keep_git_dir, a.checksum.as_deref(), &dir)
                            .map_err(CopyError::from)?,
                    ),
                };
                fetched.insert(source.clone(), f);
            }
        }
        let spec = CopySpec {
            add,
            sources,
            contents,
            dest,
            workdir: &workdir,
            chown: owner,
            chmod: mode,
            parents,
            exclude,
            unpack,
            from_context,
            now: self
                .opts
                .source_date_epoch
                .map_or_else(now_secs, |e| e as i64),
            remote: &fetched,
        };
        let plan = copy::plan(&spec, src, &image_tree)?;
        let kind = match (add, linked) {
            (false, false) => "copy",
            (true, false) => "add",
            (false, true) => "copy-link",
            (true, true) => "add-link",
        };
        let mut k = KeyHasher::new(kind, (!linked).then_some(parent_key));
        k.field("from", from_key.as_bytes());
        k.note("from", from_key.clone());
        k.note("instruction", describe(&step.instruction));
        plan.hash(&mut k)?;
        let notes = k.notes().clone();
        let link_key = k.finish();
        // The chain goes on from the parent's key all the same.
        let new_key = if linked {
            let mut k = KeyHasher::new("link-on", Some(parent_key));
            k.field("link", link_key.as_bytes());
            k.finish()
        } else {
            link_key.clone()
        };
        // A miss (a source changed, or --no-cache): the files that did not
        // change are linked from what the last run of this step made
        // (lineage.rs). Not a cache hit: the step runs and makes its layer;
        // a link is how an identical file is copied (BuildKit clones them
        // where the file system can, and re-sends only changed context
        // files).
        let lineage = Lineage::new(
            self.store.root(),
            kind,
            (!linked).then_some(parent_key),
            &describe(&step.instruction),
            &workdir,
        );
        let created = self.layer_step(scope, cx, &link_key, &notes, layers, linked, |dir| {
            let reuse = lineage.load(self.store);
            plan.stage_reusing(&image_tree, dir, reuse.as_ref())?;
            // The hint names the snapshot: written once it is published.
            let after = plan.file_signatures().ok().map(|files| {
                Box::new(move |layer: &LayerRecord| lineage.save(&layer.chain_id, files))
                    as AfterPublish<'s>
            });
            Ok((LayerSource::Plain, after))
        })?;
        let created_by = copy_created_by(
            if add { "ADD" } else { "COPY" },
            true,
            parents,
            chown,
            chmod,
            sources,
            contents,
            dest,
        );
        Ok((new_key, created, created_by))
    }

    #[allow(clippy::too_many_arguments)]
    fn run_step<'s, 'e: 's>(
        &'e self,
        scope: &'s std::thread::Scope<'s, 'e>,
        cx: &StepCtx<'e>,
        run: &Run,
        step: &Step,
        image: &ImageConfig,
        layers: &mut StageLayers<'s>,
        parent_key: &str,
        deps: &StageDeps<'_>,
        context: &dyn Tree,
        build: &Build,
    ) -> Result<(String, String, String), StepError> {
        let runner = self.runner.ok_or(StepError::RunUnsupported)?;
        let c = image.config.clone().unwrap_or_default();
        let argv = config::run_argv(&c.shell, &run.command);
        let mut env = c.env.clone();
        if config::get_env(&env, "PATH").is_none() {
            config::set_env(&mut env, "PATH", config::DEFAULT_PATH);
        }
        for (k, v) in &run.build_args {
            config::set_env(&mut env, k, v);
        }
        // Proxy build args reach the command but, as in BuildKit, neither
        // the cache key nor the explanations (they may hold credentials,
        // and a proxy change does not change what a step makes).
        let mut run_env = env.clone();
        for (k, v) in &build.proxy_env {
            if config::get_env(&run_env, k).is_none() {
                config::set_env(&mut run_env, k, v);
            }
        }
        let user = c.user.clone().unwrap_or_default();
        let workdir = c.working_dir.clone().unwrap_or_else(|| "/".into());
        let platform: Platform = format!("{}/{}", image.os, image.architecture)
            .parse()
            .unwrap_or_else(|_| Platform::host());
        let mut k = KeyHasher::new("run", Some(parent_key));
        k.list("argv", &argv);
        k.list("env", &env);
        k.field("user", user.as_bytes());
        k.field("workdir", workdir.as_bytes());
        let mounts: Vec<String> = run.mounts.iter().map(|m| format!("{m:?}")).collect();
        k.list("mounts", &mounts);
        let pending = self.resolve_mounts(run, &workdir, deps, context, build, cx.lease, &mut k)?;
        k.field("network", format!("{:?}", run.network).as_bytes());
        k.field("security", format!("{:?}", run.security).as_bytes());
        k.field("platform", platform.to_string().as_bytes());
        let heredocs: Vec<String> = run
            .command
            .files
            .iter()
            .map(|f| format!("{}\0{}", f.name, f.data))
            .collect();
        k.list("heredocs", &heredocs);
        k.note("command", argv.join(" "));
        for e in &env {
            let (name, value) = e.split_once('=').unwrap_or((e.as_str(), ""));
            k.note(format!("env {name}"), value);
        }
        k.note("user", user.clone());
        k.note("workdir", workdir.clone());
        k.note("mounts", mounts.join("; "));
        k.note("network", format!("{:?}", run.network));
        for f in &run.command.files {
            k.note(format!("heredoc {}", f.name), f.data.clone());
        }
        let notes = k.notes().clone();
        let new_key = k.finish();
        let lower = layers.dirs(self.store);
        // Once the step's root is mounted, the layer below may be published.
        let latch = layers.latch();
        let in_flight = latch.is_some();
        let mounted = move || {
            if let Some(l) = &latch {
                l.release();
            }
        };
        let id = cx.id;
        let script = config::heredoc_script(&run.command);
        let created = self.layer_step(scope, cx, &new_key, &notes, layers, false, |upper| {
            // Cache directories only now that the step runs (`locked` may
            // wait for one), held until it ends.
            let (mut resolved, _held) = acquire_caches(self.store.root(), pending)?;
            let _script_dir = match script {
                Some(f) => {
                    let (dir, mount) = script_mount(self.store, f)?;
                    resolved.push(mount);
                    Some(dir)
                }
                None => None,
            };
            let req = RunRequest {
                argv: &argv,
                env: &run_env,
                user: &user,
                workdir: &workdir,
                lower: &lower,
                upper,
                mounts: &resolved,
                secrets: &self.opts.secrets,
                ssh: &self.opts.ssh,
                network: run.network,
                platform: &platform,
                line: step.line,
                lowers_mounted: in_flight.then_some(Callback(&mounted)),
            };
            let mut out = |data: &[u8]| {
                if let Some(id) = id {
                    self.reporter.event(&Event::Output { id, data });
                }
            };
            runner.run(&req, &mut out)?;
            Ok((LayerSource::OverlayUpper, None))
        })?;
        Ok((new_key, created, run_created_by(&argv, &run.build_args)))
    }

    /// Targets and sources of a RUN's mounts, and their part of its key:
    /// a bind's files by content (the stage's key, the image's config, a
    /// content hash of the context path, as BuildKit keys them); caches,
    /// tmpfs, secrets and ssh by their definition only (never a secret's
    /// value, which the build does not even read).
    #[allow(clippy::too_many_arguments)]
    fn resolve_mounts(
        &self,
        run: &Run,
        workdir: &str,
        deps: &StageDeps<'_>,
        context: &dyn Tree,
        build: &Build,
        lease: &Lease<'_>,
        key: &mut KeyHasher,
    ) -> Result<Vec<PendingMount>, StepError> {
        let mut out = Vec::new();
        for m in &run.mounts {
            let target = m.target_in(workdir).map_err(|e| StepError::Mount {
                reason: e.to_string(),
            })?;
            let path = crate::tree::clean_abs(m.source.as_deref().unwrap_or("/"));
            let source = match m.kind {
                MountType::Bind => match m.from.as_deref().map(|f| build.resolve_source(f)) {
                    Some(Source::Stage(_)) | Some(Source::Image(_)) => {
                        let from = m.from.as_deref().unwrap_or_default();
                        let (lower, tree, _) = self.mount_from(from, deps, build, lease, key)?;
                        MountSource::Layers {
                            lower,
                            path: resolve_in(&tree, &path)?,
                        }
                    }
                    None => {
                        // The context's files at `path`, by content.
                        let sources = vec![path.clone()];
                        let spec = CopySpec {
                            add: false,
                            sources: &sources,
                            contents: &[],
                            dest: "/",
                            workdir: "/",
                            chown: None,
                            chmod: None,
                            parents: false,
                            exclude: &[],
                            unpack: Some(false),
                            from_context: true,
                            now: 0,
                            remote: &BTreeMap::new(),
                        };
                        let plan = copy::plan(&spec, context, &LayeredTree::new(Vec::new()))?;
                        plan.hash(key)?;
                        let dir = self.opts.context.clone().ok_or_else(|| StepError::Mount {
                            reason: "a bind mount of the context, but the build has no context"
                                .into(),
                        })?;
                        MountSource::Context {
                            dir,
                            path: context
                                .resolve(&path, true)
                                .map_err(|source| StepError::Io {
                                    action: "resolve",
                                    path: PathBuf::from(&path),
                                    source,
                                })?,
                        }
                    }
                },
                MountType::Cache => {
                    let id = m
                        .cache_id
                        .clone()
                        .or_else(|| target.clone())
                        .unwrap_or_default();
                    let spec = self.cache_spec(m, &id, &path, deps, build, lease, key)?;
                    out.push(PendingMount::Cache {
                        mount: m.clone(),
                        target,
                        spec,
                    });
                    continue;
                }
                MountType::Secret | MountType::Ssh => {
                    let id = m.cache_id.clone().unwrap_or_else(|| "default".into());
                    let given = if m.kind == MountType::Secret {
                        self.opts.secrets.contains_key(&id)
                    } else {
                        self.opts.ssh.contains_key(&id)
                    };
                    if !given && m.required {
                        return Err(StepError::Mount {
                            reason: format!(
                                "{} {id} is required but was not given (--{} {id}…)",
                                m.kind.name(),
                                m.kind.name()
                            ),
                        });
                    }
                    if !given {
                        // An optional secret or agent that was not given is
                        // not mounted, as in BuildKit.
                        continue;
                    }
                    MountSource::None
                }
                MountType::Tmpfs => MountSource::None,
            };
            out.push(PendingMount::Ready(ResolvedMount {
                mount: m.clone(),
                target,
                source,
            }));
        }
        Ok(out)
    }

    /// The layers of a mount's `from=` (a stage or an image), as a tree,
    /// and what names their content (the stage's key, the image's config
    /// digest), which goes into the step's key.
    fn mount_from(
        &self,
        from: &str,
        deps: &StageDeps<'_>,
        build: &Build,
        lease: &Lease<'_>,
        key: &mut KeyHasher,
    ) -> Result<(Vec<PathBuf>, LayeredTree, String), StepError> {
        let (layers, base) = match build.resolve_source(from) {
            Source::Stage(i) => {
                let r = deps.get(i).ok_or_else(|| StepError::Mount {
                    reason: format!("stage {i} was not built"),
                })?;
                key.field("mount-stage", r.key.as_bytes());
                (r.layers.clone(), format!("stage {}", r.key))
            }
            Source::Image(name) => {
                let image = load_image(self.store, &name)?;
                lease.protect(image.record.blobs(), image.record.snapshots())?;
                let digest = image.record.config.digest.to_string();
                key.field("mount-image", digest.as_bytes());
                (image.record.layers, format!("image {digest}"))
            }
        };
        let lower: Vec<PathBuf> = layers
            .iter()
            .map(|l| self.store.snapshot_path(&l.chain_id))
            .collect();
        Ok((lower.clone(), LayeredTree::new(lower), base))
    }

    /// A cache mount's name, base and first contents (see
    /// [`crate::cachemount`]); its `from=` joins the step's key, as a
    /// mount's input does in BuildKit.
    #[allow(clippy::too_many_arguments)]
    fn cache_spec(
        &self,
        m: &Mount,
        id: &str,
        path: &str,
        deps: &StageDeps<'_>,
        build: &Build,
        lease: &Lease<'_>,
        key: &mut KeyHasher,
    ) -> Result<CacheSpec, StepError> {
        let perms = m.uid.is_some() || m.gid.is_some() || m.mode.is_some();
        let mode = m.file_mode().unwrap_or(0o755);
        let (uid, gid) = (m.uid.unwrap_or(0), m.gid.unwrap_or(0));
        let empty = CacheInit::Empty { mode, uid, gid };
        let perms_name = format!("dir {uid}:{gid} {mode:o}");
        let (base, init) = match m.from.as_deref() {
            Some(from) => {
                let (_, tree, base) = self.mount_from(from, deps, build, lease, key)?;
                if path != "/" {
                    let resolved = resolve_in(&tree, path)?;
                    let base = format!("{base} source {resolved}");
                    (
                        Some(base),
                        CacheInit::Seed {
                            tree,
                            path: resolved,
                        },
                    )
                } else if perms {
                    // BuildKit makes a directory with the owner and mode on
                    // top of the `from` and mounts that: an empty cache.
                    (Some(format!("{base} {perms_name}")), empty)
                } else {
                    let base = format!("{base} source /");
                    (
                        Some(base),
                        CacheInit::Seed {
                            tree,
                            path: "/".into(),
                        },
                    )
                }
            }
            None if path != "/" => {
                return Err(StepError::Mount {
                    reason: format!(
                        "cache source {path} needs a `from` (a cache without one starts empty)"
                    ),
                })
            }
            None if perms => (Some(perms_name), empty),
            None => (None, empty),
        };
        Ok(CacheSpec::new(id, base.as_deref(), m.sharing, init))
    }

    /// Write the target stage as an image into the store and tag it.
    fn export(
        &self,
        target: &StageResult,
        lease: &Lease<'_>,
    ) -> Result<(ImageRecord, ImageConfig), BuildError> {
        let mut config = target.config.clone();
        config::apply_labels(&mut config, &self.opts.labels);
        config.rootfs.kind = "layers".into();
        config.rootfs.diff_ids = target.layers.iter().map(|l| l.diff_id.clone()).collect();
        normalize_history(&mut config.history);
        config.created = config.history.iter().rev().find_map(|h| h.created.clone());
        let bytes =
            kiln_oci::json::to_canonical_json(&config).map_err(|source| BuildError::Json {
                what: "config",
                source,
            })?;
        let format = self.opts.layer.format;
        let config_digest = sha256_digest(&bytes);
        let config_desc =
            Descriptor::new(format.config(), config_digest.clone(), bytes.len() as u64);
        let layers: Vec<LayerRecord> = target
            .layers
            .iter()
            .map(|l| {
                let mut l = l.clone();
                if let Some(c) = layer_compression(&l.blob.media_type) {
                    l.blob.media_type = format.layer(c).to_string();
                }
                l
            })
            .collect();
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(format.manifest().into()),
            artifact_type: None,
            config: config_desc.clone(),
            layers: layers.iter().map(|l| l.blob.clone()).collect(),
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        };
        let manifest_bytes =
            kiln_oci::json::to_canonical_json(&manifest).map_err(|source| BuildError::Json {
                what: "manifest",
                source,
            })?;
        let manifest_digest = sha256_digest(&manifest_bytes);
        let record = ImageRecord {
            manifest: Descriptor::new(
                format.manifest(),
                manifest_digest,
                manifest_bytes.len() as u64,
            ),
            config: config_desc,
            layers,
            created: config.created.clone(),
            platform: match &config.variant {
                Some(v) => format!("{}/{}/{v}", config.os, config.architecture),
                None => format!("{}/{}", config.os, config.architecture),
            },
            added: now_secs().max(0) as u64,
            repo_digests: Default::default(),
        };
        // The config and manifest (unless there already: a rebuild with
        // nothing changed), the image and the end of the build's lease:
        // one transaction.
        self.store.add_image_releasing(
            &record,
            &self.opts.tags,
            &[
                (&record.config.digest, &bytes),
                (&record.manifest.digest, &manifest_bytes),
            ],
            lease,
        )?;
        Ok((record, config))
    }
}

/// The digest of bytes about to be stored.
fn sha256_digest(bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    Digest::sha256_from_bytes(sha2::Sha256::digest(bytes).into())
}

/// A RUN mount resolved as far as its key needs: caches get their
/// directory only when the step runs ([`acquire_caches`]).
enum PendingMount {
    /// Nothing left to do.
    Ready(ResolvedMount),
    /// A cache mount.
    Cache {
        mount: Mount,
        target: Option<String>,
        spec: CacheSpec,
    },
}

/// The mounts of a step with its cache directories found or made, and the
/// holds on them (released when dropped). Caches are taken in the order of
/// their names, so two steps waiting for `locked` caches never wait for
/// each other; a cache named twice in one step is one directory (as in
/// BuildKit, whose mounts of one step share a cache).
fn acquire_caches(
    root: &Path,
    pending: Vec<PendingMount>,
) -> Result<(Vec<ResolvedMount>, Vec<cachemount::Held>), StepError> {
    let mut order: Vec<(&str, usize)> = pending
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p {
            PendingMount::Cache { spec, .. } => Some((spec.name.as_str(), i)),
            PendingMount::Ready(_) => None,
        })
        .collect();
    order.sort();
    let mut held: Vec<cachemount::Held> = Vec::new();
    let mut dirs: BTreeMap<usize, PathBuf> = BTreeMap::new();
    let mut by_name: BTreeMap<&str, PathBuf> = BTreeMap::new();
    for (name, i) in order {
        let dir = match by_name.get(name) {
            Some(d) => d.clone(),
            None => {
                let PendingMount::Cache { spec, .. } = &pending[i] else {
                    continue;
                };
                let h = cachemount::acquire(root, spec)?;
                let d = h.dir.clone();
                held.push(h);
                by_name.insert(name, d.clone());
                d
            }
        };
        dirs.insert(i, dir);
    }
    let mut out = Vec::new();
    for (i, p) in pending.iter().enumerate() {
        match p {
            PendingMount::Ready(m) => out.push(m.clone()),
            PendingMount::Cache { mount, target, .. } => out.push(ResolvedMount {
                mount: mount.clone(),
                target: target.clone(),
                source: MountSource::Cache {
                    dir: dirs.get(&i).cloned().unwrap_or_default(),
                },
            }),
        }
    }
    Ok((out, held))
}

/// The directory with a RUN's heredoc script (mode 0755, named as the
/// heredoc) for [`config::SCRIPT_DIR`], and its read-only bind mount.
fn script_mount(
    store: &Store,
    f: &kiln_dockerfile::instructions::InlineFile,
) -> Result<(StagingDir, ResolvedMount), StepError> {
    let dir = StagingDir::new(store)?;
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| StepError::Io {
            action,
            path,
            source,
        }
    };
    fs::set_permissions(
        &dir.path,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(io("chmod", &dir.path))?;
    let file = dir.path.join(&f.name);
    fs::write(&file, &f.data).map_err(io("write", &file))?;
    fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(io("chmod", &file))?;
    let mount = Mount {
        read_only: true,
        target: Some(config::SCRIPT_DIR.into()),
        ..Mount::new(MountType::Bind)
    };
    let resolved = ResolvedMount {
        mount,
        target: Some(config::SCRIPT_DIR.into()),
        source: MountSource::Files {
            dir: dir.path.clone(),
        },
    };
    Ok((dir, resolved))
}

/// How a staged directory is to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LayerSource {
    /// A plain tree (COPY, ADD, WORKDIR).
    Plain,
    /// An overlay upper directory (RUN).
    OverlayUpper,
}

fn history(created_by: String, layer: bool) -> History {
    History {
        created: None,
        created_by: Some(created_by),
        author: None,
        comment: Some(HISTORY_COMMENT.into()),
        empty_layer: !layer,
        extra: Default::default(),
    }
}

/// BuildKit's exporter: entries without a time take the first new layer's
/// time (or the latest time seen since the first untimed entry).
fn normalize_history(history: &mut [History]) {
    let mut created: Option<String> = None;
    let mut untimed = false;
    for h in history.iter() {
        match &h.created {
            Some(t) => {
                created = Some(t.clone());
                if untimed {
                    break;
                }
            }
            None => untimed = true,
        }
    }
    untimed = false;
    for h in history.iter_mut() {
        match &h.created {
            Some(t) => {
                if untimed {
                    created = Some(t.clone());
                }
            }
            None => {
                untimed = true;
                h.created = created.clone();
            }
        }
    }
}

/// `path` resolved in `tree`'s root (symlinks and `..` stay inside).
fn resolve_in(tree: &dyn Tree, path: &str) -> Result<String, StepError> {
    tree.resolve(path, true).map_err(|source| StepError::Io {
        action: "resolve",
        path: PathBuf::from(path),
        source,
    })
}

fn layers_tree(store: &Store, layers: &[LayerRecord]) -> LayeredTree {
    LayeredTree::new(
        layers
            .iter()
            .map(|l| store.snapshot_path(&l.chain_id))
            .collect(),
    )
}

/// WORKDIR's layer: the directories of `wd` the image lacks, 0755, owned
/// by the stage's USER.
fn mkdir_layer(
    tree: &LayeredTree,
    wd: &str,
    owner: (u32, u32),
    now: i64,
    dir: &Path,
) -> Result<LayerSource, StepError> {
    let resolved = tree.resolve(wd, true).map_err(|source| StepError::Io {
        action: "resolve",
        path: PathBuf::from(wd),
        source,
    })?;
    let mut plan = copy::Plan {
        parent_owner: owner,
        dir_mode: 0o755,
        now,
        ..copy::Plan::default()
    };
    let mut p = String::from("/");
    for c in crate::tree::components(&resolved) {
        p = crate::tree::join(&p, &c);
        let exists = tree
            .lstat(&p)
            .map_err(|source| StepError::Io {
                action: "read",
                path: PathBuf::from(&p),
                source,
            })?
            .is_some();
        if !exists {
            plan.items.insert(
                p.clone(),
                copy::Item {
                    dest: p.clone(),
                    kind: copy::ItemKind::Dir,
                    mode: 0o755,
                    uid: owner.0,
                    gid: owner.1,
                    mtime: (now, 0),
                },
            );
        }
    }
    plan.stage(tree, dir)?;
    Ok(LayerSource::Plain)
}

/// A staging directory under the store's `ingest/` (collected with its
/// process if that dies), removed when dropped.
struct StagingDir {
    path: PathBuf,
}

impl StagingDir {
    fn new(store: &Store) -> Result<StagingDir, StepError> {
        let parent = store.root().join("ingest");
        let path = kiln_fs::atomic::temp_path(&parent);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|source| StepError::Io {
                action: "create",
                path: path.clone(),
                source,
            })?;
        Ok(StagingDir { path })
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Write the merged file system of `image` into the empty directory `dir`
/// (`-o type=local`): files, directories, symlinks and hard links with
/// their modes and owners (devices, fifos and sockets are skipped).
pub fn export_rootfs(store: &Store, image: &ImageRecord, dir: &Path) -> Result<(), StepError> {
    let tree = layers_tree(store, &image.layers);
    let empty = LayeredTree::new(Vec::new());
    let sources = vec!["/".to_string()];
    let spec = CopySpec {
        add: false,
        sources: &sources,
        contents: &[],
        dest: "/",
        workdir: "/",
        chown: None,
        chmod: None,
        parents: false,
        exclude: &[],
        unpack: Some(false),
        from_context: false,
        now: now_secs(),
        remote: &BTreeMap::new(),
    };
    let plan = copy::plan(&spec, &tree, &empty)?;
    plan.stage(&empty, dir)?;
    Ok(())
}

/// Write the merged file system of `image` as one tar into `out`
/// (`-o type=tar`), staged under the store's `ingest/` first.
pub fn export_rootfs_tar<W: io::Write>(
    store: &Store,
    image: &ImageRecord,
    out: W,
) -> Result<W, StepError> {
    let staging = StagingDir::new(store)?;
    export_rootfs(store, image, &staging.path)?;
    let out = write_tar(&staging.path, out, &WriteOptions::default())?;
    Ok(out)
}
