//! The command line of the container commands (`run`, `create`, `start`,
//! `ps`, `logs`, `stop`, `kill`, `rm`, `wait`, `commit`, `diff`, `export`)
//! and the hidden monitor, kept apart from `cli.rs` so that the image,
//! registry and build commands grow there without touching these.

use std::path::PathBuf;

use clap::Args;

/// Options shared by `run` and `create` (`-h` is `--hostname`, as in
/// Docker, so help is `--help` only).
#[derive(Debug, Args, Clone)]
#[command(disable_help_flag = true)]
pub(crate) struct CreateArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub(crate) help: Option<bool>,
    /// Assign a name to the container
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub(crate) interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub(crate) tty: bool,
    /// Run an init inside the container that forwards signals and reaps
    /// processes
    #[arg(long)]
    pub(crate) init: bool,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "FILE")]
    pub(crate) env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub(crate) workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub(crate) user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub(crate) entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub(crate) hostname: Option<String>,
    /// Set metadata on a container
    #[arg(short, long = "label", value_name = "KEY=VALUE")]
    pub(crate) label: Vec<String>,
    /// Bind mount a volume (HOST:CONTAINER[:ro])
    #[arg(short, long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    pub(crate) volume: Vec<String>,
    /// Attach a filesystem mount (type=bind|tmpfs,source=…,target=…[,readonly])
    #[arg(long = "mount", value_name = "SPEC")]
    pub(crate) mount: Vec<String>,
    /// Mount a tmpfs directory (PATH[:OPTIONS])
    #[arg(long = "tmpfs", value_name = "PATH[:OPTIONS]")]
    pub(crate) tmpfs: Vec<String>,
    /// Pull the image before creating: always, missing (default) or never
    #[arg(long, value_enum, default_value_t = crate::commands::pull::PullPolicy::Missing)]
    pub(crate) pull: crate::commands::pull::PullPolicy,
    /// Platform of the image to pull (os/arch[/variant]); default the host's
    #[arg(long, value_name = "PLATFORM")]
    pub(crate) platform: Option<String>,
    /// Connect a container to a network: bridge (default), host or none
    #[arg(long = "network", alias = "net", value_name = "NETWORK")]
    pub(crate) network: Option<String>,
    /// Publish a container's port(s) to the host ([IP:][HOST:]CONTAINER[-END][/tcp|udp])
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    pub(crate) publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub(crate) publish_all: bool,
    /// Expose a port or a range of ports (PORT[-END][/PROTO])
    #[arg(long = "expose", value_name = "PORT")]
    pub(crate) expose: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip; ip host-gateway is the bridge's gateway)
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub(crate) add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long, value_name = "IP")]
    pub(crate) dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "DOMAIN")]
    pub(crate) dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "OPTION")]
    pub(crate) dns_option: Vec<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub(crate) stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout", value_name = "SECONDS")]
    pub(crate) stop_timeout: Option<i64>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub(crate) read_only: bool,
    /// Give extended privileges to this container
    #[arg(long)]
    pub(crate) privileged: bool,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "CAP")]
    pub(crate) cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub(crate) cap_drop: Vec<String>,
    /// Security options (no-new-privileges, seccomp=unconfined|FILE)
    #[arg(long = "security-opt", value_name = "OPT")]
    pub(crate) security_opt: Vec<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "N", allow_hyphen_values = true)]
    pub(crate) pids_limit: Option<i64>,
    /// Memory limit (e.g. 64m, 1g)
    #[arg(short, long, value_name = "BYTES")]
    pub(crate) memory: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "N")]
    pub(crate) cpus: Option<f64>,
    /// Ulimit options (name=soft[:hard])
    #[arg(long, value_name = "NAME=SOFT[:HARD]")]
    pub(crate) ulimit: Vec<String>,
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub(crate) rm: bool,
    /// Path to an OCI runtime (runc, crun) to use instead of the embedded one
    #[arg(long, value_name = "PATH")]
    pub(crate) runtime: Option<String>,
    /// The image
    #[arg(value_name = "IMAGE")]
    pub(crate) image: String,
    /// The command and its arguments
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) command: Vec<String>,
}

/// `kiln run`.
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub(crate) struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub(crate) detach: bool,
    /// Attach to STDIN, STDOUT or STDERR (default: STDOUT and STDERR)
    #[arg(short = 'a', long = "attach", value_name = "STREAM",
          value_parser = ["stdin", "stdout", "stderr", "STDIN", "STDOUT", "STDERR"])]
    pub(crate) attach: Vec<String>,
    #[command(flatten)]
    pub(crate) create: CreateArgs,
}

/// `kiln start`.
#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub(crate) attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub(crate) interactive: bool,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// `kiln ps`.
#[derive(Debug, Args)]
pub(crate) struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub(crate) all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub(crate) quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub(crate) no_trunc: bool,
    /// Display total file sizes (the container's upper directory)
    #[arg(short, long)]
    pub(crate) size: bool,
    /// Filter output based on conditions provided (id, name, label, status, exited, ancestor, volume)
    #[arg(short, long, value_name = "FILTER")]
    pub(crate) filter: Vec<String>,
    /// Format output with a Go template, or `json`
    #[arg(long, value_name = "FORMAT")]
    pub(crate) format: Option<String>,
}

/// `kiln logs`.
#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub(crate) follow: bool,
    /// Number of lines to show from the end of the logs ("all")
    #[arg(short = 'n', long, value_name = "N")]
    pub(crate) tail: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub(crate) timestamps: bool,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

/// `kiln stop`.
#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short, long = "time", alias = "timeout", value_name = "SECONDS")]
    pub(crate) time: Option<i64>,
    /// Signal to send to the container
    #[arg(short, long)]
    pub(crate) signal: Option<String>,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// `kiln kill`.
#[derive(Debug, Args)]
pub(crate) struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub(crate) signal: String,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// `kiln rm`.
#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub(crate) force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub(crate) volumes: bool,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// `kiln wait`.
#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}

/// `kiln commit`.
#[derive(Debug, Args)]
pub(crate) struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    pub(crate) author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long, value_name = "CHANGE")]
    pub(crate) change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub(crate) message: Option<String>,
    /// Pause container during commit (default true; --pause=false to not)
    #[arg(short, long, default_value_t = true, num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, require_equals = true)]
    pub(crate) pause: bool,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
    /// The new image's name
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub(crate) name: Option<String>,
}

/// `kiln port`.
#[derive(Debug, Args)]
pub(crate) struct PortArgs {
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
    /// Only this port of the container (PORT[/PROTO])
    #[arg(value_name = "PRIVATE_PORT")]
    pub(crate) port: Option<String>,
}

/// `kiln diff`.
#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

/// `kiln export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
}

/// The hidden monitor subcommand.
#[derive(Debug, Args)]
pub(crate) struct MonitorArgs {
    /// Copy stdio between this process and the container
    #[arg(long)]
    pub(crate) attach: bool,
    /// Report readiness on this inherited descriptor
    #[arg(long, value_name = "FD")]
    pub(crate) ready_fd: Option<i32>,
    /// Take over the cgroup-warming helper whose pipe is this inherited
    /// descriptor (kiln_runtime::cgroup_warm)
    #[arg(long, value_name = "FD")]
    pub(crate) warm_fd: Option<i32>,
    /// Only these streams are attached (stdin, stdout, stderr; default all)
    #[arg(long, value_delimiter = ',')]
    pub(crate) streams: Vec<String>,
    /// The container id
    pub(crate) id: String,
}

/// `kiln exec`.
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub(crate) detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub(crate) interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub(crate) tty: bool,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub(crate) user: Option<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub(crate) workdir: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,
    /// The container
    #[arg(value_name = "CONTAINER")]
    pub(crate) container: String,
    /// The command and its arguments
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub(crate) command: Vec<String>,
}

/// `kiln cp`.
#[derive(Debug, Args)]
pub(crate) struct CpArgs {
    /// Source: CONTAINER:SRC_PATH or a host path
    #[arg(value_name = "SRC")]
    pub(crate) src: String,
    /// Destination: CONTAINER:DEST_PATH or a host path
    #[arg(value_name = "DEST")]
    pub(crate) dest: String,
}

/// `kiln restart`.
#[derive(Debug, Args)]
pub(crate) struct RestartArgs {
    /// Seconds to wait before killing the container
    #[arg(short, long = "time", alias = "timeout", value_name = "SECONDS")]
    pub(crate) time: Option<i64>,
    /// Signal to send to the container
    #[arg(short, long)]
    pub(crate) signal: Option<String>,
    /// Containers
    #[arg(required = true, value_name = "CONTAINER")]
    pub(crate) containers: Vec<String>,
}
