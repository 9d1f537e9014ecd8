//! The `kiln` binary: command-line parsing, output and exit codes.
//!
//! Only this crate prints, reads the terminal or exits. Each verb lives in
//! `commands/<verb>.rs`; libraries return typed errors that are rendered
//! here.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod cli_container;
mod cli_volume;
mod commands;
mod format;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{BuilderCommand, Cli, Command, ImageCommand, SystemCommand};

/// mimalloc instead of glibc's malloc: the frontend (and later the tar and
/// JSON work) makes many small allocations, and glibc's malloc/free were a
/// fifth of the instructions of parsing and lowering a large Dockerfile
/// (callgrind: 173.8M -> 135.7M instructions for the same work).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status of a failed command (the operation failed, or `build --call
/// check` found problems).
pub(crate) const EXIT_FAILURE: u8 = 1;
/// Exit status for bad usage (unknown flag, missing argument).
pub(crate) const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_logging(&cli);
    let result = match &cli.command {
        Command::Build(args) => commands::build::run(&cli, args),
        Command::Images(args) => commands::images::images(&cli, args),
        Command::Inspect(args) => commands::images::inspect(&cli, args),
        Command::History(args) => commands::images::history(&cli, args),
        Command::Tag(args) => commands::images::tag(&cli, args),
        Command::Rmi(args) => commands::images::rmi(&cli, args),
        Command::Save(args) => commands::archive::save(&cli, args),
        Command::Load(args) => commands::archive::load(&cli, args),
        Command::Import(args) => commands::archive::import(&cli, args),
        Command::Image(sub) => match sub {
            ImageCommand::Ls(args) => commands::images::images(&cli, args),
            ImageCommand::Inspect(args) => commands::images::image_inspect(&cli, args),
            ImageCommand::History(args) => commands::images::history(&cli, args),
            ImageCommand::Tag(args) => commands::images::tag(&cli, args),
            ImageCommand::Rm(args) => commands::images::rmi(&cli, args),
            ImageCommand::Prune(args) => commands::images::prune(&cli, args),
            ImageCommand::Save(args) => commands::archive::save(&cli, args),
            ImageCommand::Load(args) => commands::archive::load(&cli, args),
            ImageCommand::Import(args) => commands::archive::import(&cli, args),
        },
        Command::Pull(args) => commands::pull::run(&cli, args),
        Command::Push(args) => commands::push::run(&cli, args),
        Command::Login(args) => commands::login::login(&cli, args),
        Command::Logout(args) => commands::login::logout(&cli, args),
        Command::System(sub) => match sub {
            SystemCommand::Df(args) => commands::system::df(&cli, args),
            SystemCommand::Prune(args) => commands::system::prune(&cli, args),
            SystemCommand::Check(args) => commands::system::check(&cli, args),
        },
        Command::Volume(sub) => commands::volume::run(&cli, sub),
        Command::Builder(BuilderCommand::Prune(args)) => {
            commands::system::builder_prune(&cli, args)
        }
        Command::Completion(args) => commands::completion::run(args),
        Command::Debug(cmd) => commands::debug::run(cmd),
        Command::Run(args) => commands::container::run(&cli, args),
        Command::Create(args) => commands::container::create(&cli, args),
        Command::Start(args) => commands::container::start(&cli, args),
        Command::Ps(args) => commands::container::ps(&cli, args),
        Command::Logs(args) => commands::container::logs(&cli, args),
        Command::Stop(args) => commands::container::stop(&cli, args),
        Command::Restart(args) => commands::container::restart(&cli, args),
        Command::Kill(args) => commands::container::kill(&cli, args),
        Command::Rm(args) => commands::container::rm(&cli, args),
        Command::Wait(args) => commands::container::wait(&cli, args),
        Command::Exec(args) => commands::container::exec(&cli, args),
        Command::Commit(args) => commands::container::commit(&cli, args),
        Command::Diff(args) => commands::container::diff(&cli, args),
        Command::Port(args) => commands::container::port(&cli, args),
        Command::Cp(args) => commands::container::cp(&cli, args),
        Command::Export(args) => commands::container::export(&cli, args),
        Command::Monitor(args) => commands::container::monitor(&cli, args),
        Command::BuildStep(args) => commands::build_step::child(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`kiln images | head -1`) is not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(0)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn init_logging(cli: &Cli) {
    let level = cli.log_level();
    // libcontainer and libcgroups warn about what this kernel lacks (no
    // hugetlb controller, …) on every container and log the errors kiln
    // reports itself: they are quiet unless debugging.
    let level = if cli.debug == 0 && level != "off" {
        format!("{level},libcgroups=off,libcontainer=off")
    } else {
        level
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KILN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
