//! The command line of `kiln volume …` (create, ls, inspect, rm, prune),
//! kept apart from `cli.rs` as the container commands are.

use clap::{Args, Subcommand};

/// `kiln volume …`
#[derive(Debug, Subcommand)]
pub(crate) enum VolumeCommand {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Display detailed information on one or more volumes
    Inspect(VolumeInspectArgs),
    /// Remove one or more volumes (a volume in use is never removed)
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove unused anonymous volumes (all unused volumes with --all)
    Prune(VolumePruneArgs),
}

/// `kiln volume create`.
#[derive(Debug, Args)]
pub(crate) struct VolumeCreateArgs {
    /// Volume name (a random one if none is given)
    #[arg(value_name = "VOLUME")]
    pub(crate) name: Option<String>,
    /// Specify volume driver name (only "local")
    #[arg(short, long, default_value = "local")]
    pub(crate) driver: String,
    /// Set metadata for a volume (KEY=VALUE)
    #[arg(long)]
    pub(crate) label: Vec<String>,
    /// Set driver specific options (KEY=VALUE; recorded, not applied yet)
    #[arg(short = 'o', long = "opt")]
    pub(crate) opt: Vec<String>,
}

/// `kiln volume ls`.
#[derive(Debug, Args)]
pub(crate) struct VolumeLsArgs {
    /// Only display volume names
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Filter output (dangling=true|false, name=TEXT, label=KEY[=VALUE],
    /// driver=NAME)
    #[arg(short, long)]
    pub(crate) filter: Vec<String>,
    /// Format output: table, json, or a Go template
    #[arg(long)]
    pub(crate) format: Option<String>,
}

/// `kiln volume inspect`.
#[derive(Debug, Args)]
pub(crate) struct VolumeInspectArgs {
    /// Format output: json, or a Go template
    #[arg(short, long)]
    pub(crate) format: Option<String>,
    /// Volumes
    #[arg(required = true, value_name = "VOLUME")]
    pub(crate) names: Vec<String>,
}

/// `kiln volume rm`.
#[derive(Debug, Args)]
pub(crate) struct VolumeRmArgs {
    /// Do not fail on a volume that does not exist (a volume in use is
    /// still kept, as in Docker)
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Volumes
    #[arg(required = true, value_name = "VOLUME")]
    pub(crate) names: Vec<String>,
}

/// `kiln volume prune`.
#[derive(Debug, Args)]
pub(crate) struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Provide filter values (label=KEY[=VALUE], label!=KEY[=VALUE])
    #[arg(long)]
    pub(crate) filter: Vec<String>,
}
