//! The command line, as clap definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit status:
  0    success
  1    the command failed (for `build --call check`: problems were found)
  2    bad usage: unknown command or flag, missing or invalid argument";

/// kiln: build, run and ship container images, without a daemon.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, about, after_help = EXIT_CODES, propagate_version = true)]
pub(crate) struct Cli {
    /// Store directory (images, containers, build cache)
    /// [default: /var/lib/kiln for root, $XDG_DATA_HOME/kiln otherwise]
    #[arg(long, global = true, env = "KILN_ROOT", value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,

    /// Log level: error, warn, info, debug, trace
    #[arg(long, global = true, value_name = "LEVEL", default_value = "warn")]
    pub(crate) log_level: String,

    /// Debug logging (-D debug, -DD trace); overrides --log-level. Not
    /// `-v`: commands use `-v` themselves (`system df -v`, `run -v`), as in
    /// Docker, whose debug flag this is.
    #[arg(short = 'D', long = "debug", global = true, action = clap::ArgAction::Count)]
    pub(crate) debug: u8,

    /// Progress output: auto (live on a terminal, unless TERM=dumb or CI is set; else plain), plain, tty (live; an error when stderr is not a terminal), quiet, rawjson (builds: JSON lines)
    #[arg(long, global = true, value_enum, default_value_t = Progress::Auto)]
    pub(crate) progress: Progress,

    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// The tracing filter for the chosen verbosity.
    pub(crate) fn log_level(&self) -> String {
        match self.debug {
            0 => self.log_level.clone(),
            1 => "debug".into(),
            _ => "trace".into(),
        }
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Progress {
    /// Live on a terminal (not with `TERM=dumb` or `CI` set), plain
    /// otherwise.
    Auto,
    /// One line per event.
    Plain,
    /// Live, redrawn; refused when stderr is not a terminal (as buildx).
    Tty,
    /// Nothing but errors.
    Quiet,
    /// One JSON object per line (BuildKit's `rawjson`: `vertexes` and
    /// `logs`, data base64-encoded); other commands show it plain.
    Rawjson,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Build an image from a Dockerfile, or inspect one (`--call`)
    Build(Box<BuildArgs>),
    /// List images
    Images(ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Show low-level information on images, as JSON
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Save one or more images to a tar archive (streamed to standard
    /// output by default)
    Save(SaveArgs),
    /// Load images from a tar archive or standard input
    Load(LoadArgs),
    /// Import the contents of a root file system tarball (or directory) to
    /// create an image
    Import(ImportArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Manage the store
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(crate::cli_volume::VolumeCommand),
    /// Manage the build cache
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    #[command(after_long_help = COMPLETION_HELP)]
    Completion(CompletionArgs),
    /// Internal commands for benchmarks and debugging (unstable)
    #[command(hide = true, subcommand)]
    Debug(DebugCommand),
    /// Create and run a new container from an image
    Run(crate::cli_container::RunArgs),
    /// Create a new container
    Create(crate::cli_container::CreateArgs),
    /// Start one or more stopped containers
    Start(crate::cli_container::StartArgs),
    /// List containers
    Ps(crate::cli_container::PsArgs),
    /// Fetch the logs of a container
    Logs(crate::cli_container::LogsArgs),
    /// Stop one or more running containers
    Stop(crate::cli_container::StopArgs),
    /// Restart one or more containers
    Restart(crate::cli_container::RestartArgs),
    /// Kill one or more running containers
    Kill(crate::cli_container::KillArgs),
    /// Remove one or more containers
    Rm(crate::cli_container::RmArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(crate::cli_container::WaitArgs),
    /// Execute a command in a running container
    Exec(crate::cli_container::ExecArgs),
    /// Create a new image from a container's changes
    Commit(crate::cli_container::CommitArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(crate::cli_container::DiffArgs),
    /// List port mappings or a specific mapping for the container
    Port(crate::cli_container::PortArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(crate::cli_container::CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(crate::cli_container::ExportArgs),
    /// The per-container monitor (internal)
    #[command(name = "__monitor", hide = true)]
    Monitor(crate::cli_container::MonitorArgs),
    /// Run one RUN step of a build in a container (internal)
    #[command(name = "__build-step", hide = true)]
    BuildStep(BuildStepArgs),
}

const COMPLETION_HELP: &str = "\
Load the script in the current shell, or install it for new shells:
  bash  source <(kiln completion bash)
        kiln completion bash > ~/.local/share/bash-completion/completions/kiln
  zsh   source <(kiln completion zsh)        (after compinit)
        kiln completion zsh > \"${fpath[1]}/_kiln\"
  fish  kiln completion fish > ~/.config/fish/completions/kiln.fish";

/// `kiln completion SHELL`
#[derive(Debug, Args)]
pub(crate) struct CompletionArgs {
    /// The shell to write the script for
    #[arg(value_enum, value_name = "SHELL")]
    pub(crate) shell: clap_complete::Shell,
}

/// The hidden build-step subcommand.
#[derive(Debug, Args)]
pub(crate) struct BuildStepArgs {
    /// Take over the cgroup-warming helper whose pipe is this inherited
    /// descriptor (kiln_runtime::cgroup_warm)
    #[arg(long, value_name = "FD")]
    pub(crate) warm_fd: Option<i32>,
    /// Close this inherited descriptor once the step's root is mounted
    #[arg(long, value_name = "FD")]
    pub(crate) mounted_fd: Option<i32>,
}

/// `kiln image …`
#[derive(Debug, Subcommand)]
pub(crate) enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images
    Inspect(ImageInspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Remove unused images
    Prune(ImagePruneArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Load images from a tar archive or standard input
    Load(LoadArgs),
    /// Import a root file system tarball (or directory) as an image
    Import(ImportArgs),
}

/// `kiln system …`
#[derive(Debug, Subcommand)]
pub(crate) enum SystemCommand {
    /// Show disk usage of images, containers and build cache
    Df(DfArgs),
    /// Remove unused data
    Prune(SystemPruneArgs),
    /// Re-hash every blob, check every reference and find orphans
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ImagesArgs {
    /// Show only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub(crate) repository: Option<String>,
    /// Show all images (kiln keeps no intermediate images: same as default)
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Show digests
    #[arg(long)]
    pub(crate) digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub(crate) no_trunc: bool,
    /// Filter output (dangling=true|false, reference=PATTERN,
    /// label=KEY[=VALUE], before=IMAGE, since=IMAGE)
    #[arg(short, long = "filter", value_name = "FILTER")]
    pub(crate) filters: Vec<String>,
    /// Format output: table, json, or a Go template (`table TEMPLATE` for
    /// a table with headers)
    #[arg(long, value_name = "FORMAT")]
    pub(crate) format: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Images to inspect (names or IDs)
    #[arg(required = true, value_name = "NAME|ID")]
    pub(crate) names: Vec<String>,
    /// Format output with a Go template, or `json`
    #[arg(short, long, value_name = "FORMAT")]
    pub(crate) format: Option<String>,
    /// Only this type of object (kiln has images so far)
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) kind: Option<String>,
    /// Display total file sizes (accepted for compatibility; sizes are
    /// always shown)
    #[arg(short, long)]
    pub(crate) size: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ImageInspectArgs {
    /// Images to inspect (names or IDs)
    #[arg(required = true, value_name = "IMAGE")]
    pub(crate) names: Vec<String>,
    /// Format output with a Go template, or `json`
    #[arg(short, long, value_name = "FORMAT")]
    pub(crate) format: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// The image
    #[arg(value_name = "IMAGE")]
    pub(crate) image: String,
    /// Print sizes and dates in human-readable form
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub(crate) human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub(crate) no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Format output: table, json, or a Go template
    #[arg(long, value_name = "FORMAT")]
    pub(crate) format: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TagArgs {
    /// The image to tag
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub(crate) source: String,
    /// The new name
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub(crate) target: String,
}

#[derive(Debug, Args)]
pub(crate) struct RmiArgs {
    /// Images to remove (names or IDs)
    #[arg(required = true, value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
    /// Force removal of the image
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Do not delete untagged parents (accepted for compatibility: kiln
    /// keeps no parent images)
    #[arg(long)]
    pub(crate) no_prune: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub(crate) force: bool,
}

/// Archive formats of `save`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ArchiveFormat {
    /// Docker's format (`docker load` reads it)
    DockerArchive,
    /// An OCI image layout in a tar
    OciArchive,
}

#[derive(Debug, Args)]
pub(crate) struct SaveArgs {
    /// Images to save
    #[arg(required = true, value_name = "IMAGE")]
    pub(crate) images: Vec<String>,
    /// Write to a file instead of standard output
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Archive format
    #[arg(long, value_enum, default_value_t = ArchiveFormat::DockerArchive)]
    pub(crate) format: ArchiveFormat,
}

#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// Read from a tar archive file (plain, gzip, xz or zstd) instead of
    /// standard input
    #[arg(short, long, value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// A root file system tarball (plain, gzip, xz or zstd), a directory,
    /// or `-` for standard input
    #[arg(value_name = "FILE|DIR|-")]
    pub(crate) source: String,
    /// Name for the new image
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub(crate) name: Option<String>,
    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV,
    /// EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)
    #[arg(short, long = "change", value_name = "CHANGE")]
    pub(crate) changes: Vec<String>,
    /// Commit message (the history comment)
    #[arg(short, long, value_name = "MESSAGE")]
    pub(crate) message: Option<String>,
    /// Platform of the image (os/arch[/variant]); default the host's
    #[arg(long, value_name = "PLATFORM")]
    pub(crate) platform: Option<String>,
    /// Media types of the manifest, config and layer
    #[arg(long, value_enum, default_value_t = MediaTypes::Oci)]
    pub(crate) format: MediaTypes,
}

/// Which media types to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MediaTypes {
    /// OCI image format
    Oci,
    /// Docker image manifest schema 2
    Docker,
}

#[derive(Debug, Args)]
pub(crate) struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub(crate) verbose: bool,
    /// Format output: table, json, or a Go template
    #[arg(long, value_name = "FORMAT")]
    pub(crate) format: Option<String>,
}

/// `kiln builder …`
#[derive(Debug, Subcommand)]
pub(crate) enum BuilderCommand {
    /// Remove the build cache
    Prune(BuilderPruneArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BuilderPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SystemPruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub(crate) volumes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Remove corrupt blobs, unusable images and everything unreferenced
    #[arg(long)]
    pub(crate) repair: bool,
}

/// `kiln debug …`: the layer codec alone, for benchmarks.
#[derive(Debug, Subcommand)]
pub(crate) enum DebugCommand {
    /// Write DIR as a layer blob; print its DiffID, digest and size
    LayerWrite(LayerWriteArgs),
    /// Apply a layer blob (any compression) into a new or empty DIR
    LayerApply(LayerApplyArgs),
    /// Write the command reference (markdown, from these definitions) into DIR
    Docs(DocsArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DocsArgs {
    /// The directory to write the pages into (docs/reference)
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
}

/// A layer's compression, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LayerCompression {
    /// gzip (pgzip on several threads)
    Gzip,
    /// zstd
    Zstd,
    /// An uncompressed tar
    None,
}

#[derive(Debug, Args)]
pub(crate) struct LayerWriteArgs {
    /// The directory to write as a layer
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,

    /// The blob to write
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: PathBuf,

    /// Compression
    #[arg(long, value_enum, default_value_t = LayerCompression::Gzip)]
    pub(crate) compression: LayerCompression,

    /// Level (gzip 0-9, default 6; zstd 1-19, default 3)
    #[arg(long, value_name = "N")]
    pub(crate) level: Option<i32>,

    /// Compression threads (0: all on one thread) [default: the CPU count]
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<u32>,

    /// The directory is an overlay upper directory (translate whiteouts)
    #[arg(long, conflicts_with = "lower")]
    pub(crate) overlay: bool,

    /// Write only how DIR differs from this directory (deletions as whiteouts)
    #[arg(long, value_name = "LOWER")]
    pub(crate) lower: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct LayerApplyArgs {
    /// The layer blob (gzip, zstd or plain tar, detected by content)
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,

    /// Where to apply it: must not exist, or be empty
    #[arg(value_name = "DIR")]
    pub(crate) dir: PathBuf,
}

/// What `build --call` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Call {
    /// List the stages with their descriptions
    Targets,
    /// List the build arguments, secrets and ssh mounts the target uses
    Outline,
    /// Run the build checks; exit 1 if there are findings
    Check,
}

/// Output format of `--call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Human-readable
    Text,
    /// JSON
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// Build context directory; `-` reads the Dockerfile from standard
    /// input and builds without a context
    #[arg(value_name = "CONTEXT")]
    pub(crate) context: PathBuf,

    /// Dockerfile path (default CONTEXT/Dockerfile); `-` reads standard input
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,

    /// Stage to build (default: the last one)
    #[arg(long, value_name = "STAGE")]
    pub(crate) target: Option<String>,

    /// Build-time variable; KEY alone takes the value from the environment
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub(crate) build_args: Vec<String>,

    /// Target platform (os/arch[/variant]); default the host's
    #[arg(long, value_name = "PLATFORM")]
    pub(crate) platform: Option<String>,

    /// Pull the base images: always (also a bare --pull), missing (default) or never
    #[arg(long, value_enum, num_args = 0..=1, require_equals = false,
          default_missing_value = "always", default_value_t = crate::commands::pull::PullPolicy::Missing)]
    pub(crate) pull: crate::commands::pull::PullPolicy,

    /// Instead of building: list the targets, outline the build
    /// arguments, or run the build checks
    #[arg(long, value_enum, value_name = "REQUEST")]
    pub(crate) call: Option<Call>,

    /// Name and optionally tag the image (`name:tag`); may be repeated
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    pub(crate) tags: Vec<String>,

    /// Set a label on the image; may be repeated
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub(crate) labels: Vec<String>,

    /// Do not use the build cache
    #[arg(long)]
    pub(crate) no_cache: bool,

    /// Print only the image ID (to stdout), no progress
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,

    /// Write the image ID to this file
    #[arg(long, value_name = "FILE")]
    pub(crate) iidfile: Option<PathBuf>,

    /// Push the image to each of its names (`-t`) once built
    #[arg(long)]
    pub(crate) push: bool,

    /// Stages built at once [default: the number of cores]
    #[arg(long, value_name = "N")]
    pub(crate) jobs: Option<usize>,

    /// For each step that misses the cache, say which input changed since
    /// the last build of this Dockerfile and context (the parent step, the
    /// command, an ARG or ENV value, which file)
    #[arg(long)]
    pub(crate) explain_cache: bool,

    /// A secret for `RUN --mount=type=secret`: `id=ID,src=FILE` or
    /// `id=ID,env=VAR`; may be repeated. Never stored in the image
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    pub(crate) secrets: Vec<String>,

    /// An ssh agent socket for `RUN --mount=type=ssh`: `default`
    /// ($SSH_AUTH_SOCK) or `ID=SOCKET[,SOCKET…]`; may be repeated
    #[arg(long = "ssh", value_name = "default|ID=SOCKET")]
    pub(crate) ssh: Vec<String>,

    /// The network of RUN steps that have no `--network` of their own:
    /// default (a namespace of their own on kiln's bridge, with outbound
    /// access), none (loopback only) or host
    #[arg(long, value_name = "MODE", default_value = "default", value_parser = ["default", "none", "host"])]
    pub(crate) network: String,

    /// Build this stage (name or index) without the cache; may be repeated
    #[arg(long = "no-cache-filter", value_name = "STAGE")]
    pub(crate) no_cache_filter: Vec<String>,

    /// Compression of new layers: gzip or zstd [default: none in the
    /// store (push compresses with gzip), gzip with --push or -o type=oci]
    #[arg(long, value_name = "ALGORITHM")]
    pub(crate) compression: Option<String>,

    /// Also write the image out: `type=docker,dest=FILE` (docker-archive),
    /// `type=oci,dest=FILE` (oci-archive), `type=local,dest=DIR` or
    /// `type=tar,dest=FILE` (its files); `type=image` (the default) only
    /// stores it
    #[arg(short = 'o', long = "output", value_name = "type=TYPE,dest=FILE")]
    pub(crate) output: Option<String>,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

/// `kiln pull`
#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// Platform to pull when the image has several (os/arch[/variant])
    /// [default: the host's]
    #[arg(long)]
    pub(crate) platform: Option<String>,
    /// Print only the image reference
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Pull every tagged image of the repository
    #[arg(short = 'a', long)]
    pub(crate) all_tags: bool,
    /// Layers downloaded at the same time
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) max_concurrent_downloads: u32,
    /// The image (NAME[:TAG|@DIGEST])
    pub(crate) image: String,
}

/// Layer compression for `push`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PushCompression {
    /// gzip
    Gzip,
    /// zstd
    Zstd,
}

/// `kiln push`
#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// Recompress layers that are not in this compression (the image
    /// pushed then has another manifest digest); without it, layers stored
    /// uncompressed are pushed gzip-compressed
    #[arg(long, value_enum)]
    pub(crate) compression: Option<PushCompression>,
    /// Print only the pushed manifest's digest
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// The image (NAME[:TAG])
    pub(crate) image: String,
    /// Where to push it, if not to IMAGE's own name (NAME[:TAG])
    pub(crate) destination: Option<String>,
    /// Set by `build --push`: the digest is not printed on stdout (that is
    /// the build's).
    #[arg(skip)]
    pub(crate) from_build: bool,
}

/// `kiln login`
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// User name
    #[arg(short, long)]
    pub(crate) username: Option<String>,
    /// Password (visible to other users in the process list: prefer
    /// --password-stdin)
    #[arg(short, long, conflicts_with = "password_stdin")]
    pub(crate) password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// The registry (host[:port]) [default: docker.io]
    pub(crate) server: Option<String>,
}

/// `kiln logout`
#[derive(Debug, Args)]
pub(crate) struct LogoutArgs {
    /// The registry (host[:port]) [default: docker.io]
    pub(crate) server: Option<String>,
}
