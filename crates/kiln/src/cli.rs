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

    /// More logging (-v info, -vv debug, -vvv trace); overrides --log-level
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// Progress output: auto (live on a terminal), plain, tty, quiet
    #[arg(long, global = true, value_enum, default_value_t = Progress::Auto)]
    pub(crate) progress: Progress,

    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// The tracing filter for the chosen verbosity.
    pub(crate) fn log_level(&self) -> String {
        match self.verbose {
            0 => self.log_level.clone(),
            1 => "info".into(),
            2 => "debug".into(),
            _ => "trace".into(),
        }
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Progress {
    /// Live on a terminal, plain otherwise.
    Auto,
    /// One line per event.
    Plain,
    /// Live, redrawn.
    Tty,
    /// Nothing but errors.
    Quiet,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Inspect a Dockerfile: list its targets, outline its build arguments
    /// and secrets, or run the build checks (`--call`)
    Build(BuildArgs),
    /// Internal commands for benchmarks and debugging (unstable)
    #[command(hide = true, subcommand)]
    Debug(DebugCommand),
}

/// `kiln debug …`: the layer codec alone, for benchmarks.
#[derive(Debug, Subcommand)]
pub(crate) enum DebugCommand {
    /// Write DIR as a layer blob; print its DiffID, digest and size
    LayerWrite(LayerWriteArgs),
    /// Apply a layer blob (any compression) into a new or empty DIR
    LayerApply(LayerApplyArgs),
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
    #[arg(long)]
    pub(crate) overlay: bool,
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
    /// Build context directory
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

    /// What to do with the Dockerfile
    #[arg(long, value_enum, value_name = "REQUEST", required = true)]
    pub(crate) call: Option<Call>,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}
