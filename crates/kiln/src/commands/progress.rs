//! How progress is shown, for every command that shows some (`build`,
//! `pull`, `push`): the choice between a live view, plain lines and
//! nothing, from `--progress`, `-q` and the terminal. The views themselves
//! are the commands' own ([`super::registry::LayerProgress`],
//! [`super::build_progress`]).
//!
//! Decisions, after BuildKit and buildx: `auto` is live only when stderr is
//! a terminal that can move its cursor (not `TERM=dumb`) and not in CI (a
//! non-empty `CI`, which CI services set, often with a pseudo-terminal that
//! only records the output); `tty` on something else than a terminal is an
//! error, as in `docker buildx build --progress=tty` (docker/buildx#1371:
//! "failed to get console"), not a silent fallback; `rawjson` is the
//! build's own, other commands show it plain.

use std::io::IsTerminal;

use crate::cli::{Cli, Progress};

/// What a command shows of its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Nothing.
    Quiet,
    /// One line per event.
    Plain,
    /// Live, redrawn on stderr.
    Tty,
}

/// `--progress tty` where stderr is no terminal.
#[derive(Debug, thiserror::Error)]
#[error(
    "--progress tty needs a terminal, and standard error is not one: use --progress plain (or auto)"
)]
pub(crate) struct NotATerminal;

/// The mode for `cli.progress`, quiet when `quiet` (`-q`).
pub(crate) fn mode(cli: &Cli, quiet: bool) -> Result<Mode, NotATerminal> {
    if quiet {
        return Ok(Mode::Quiet);
    }
    let terminal = std::io::stderr().is_terminal();
    Ok(match cli.progress {
        Progress::Quiet => Mode::Quiet,
        Progress::Plain | Progress::Rawjson => Mode::Plain,
        Progress::Tty if terminal => Mode::Tty,
        Progress::Tty => return Err(NotATerminal),
        Progress::Auto if terminal && live_terminal(|k| std::env::var_os(k)) => Mode::Tty,
        Progress::Auto => Mode::Plain,
    })
}

/// Whether the environment (`var`) lets `auto` draw on a terminal.
fn live_terminal(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    let set = |k: &str| var(k).is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
    let dumb = var("TERM").is_some_and(|t| t == "dumb");
    !dumb && !set("CI")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| std::ffi::OsString::from(v))
        }
    }

    #[test]
    fn auto_is_live_unless_dumb_or_ci() {
        assert!(live_terminal(env(&[("TERM", "xterm-256color")])));
        assert!(live_terminal(env(&[])));
        assert!(!live_terminal(env(&[("TERM", "dumb")])));
        assert!(!live_terminal(env(&[("TERM", "xterm"), ("CI", "true")])));
        assert!(!live_terminal(env(&[("CI", "1")])));
        assert!(live_terminal(env(&[("CI", "")])));
        assert!(live_terminal(env(&[("CI", "false")])));
    }
}
