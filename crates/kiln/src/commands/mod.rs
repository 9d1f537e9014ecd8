pub(crate) mod archive;
pub(crate) mod build;
pub(crate) mod build_progress;
pub(crate) mod build_step;
pub(crate) mod completion;
pub(crate) mod container;
pub(crate) mod debug;
pub(crate) mod docs;
pub(crate) mod images;
pub(crate) mod login;
pub(crate) mod progress;
pub(crate) mod pull;
pub(crate) mod push;
pub(crate) mod registry;
pub(crate) mod system;
pub(crate) mod volume;

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use kiln_store::Store;

use crate::cli::Cli;

/// The store root: `--root`/`KILN_ROOT`, else `/var/lib/kiln` for root and
/// `$XDG_DATA_HOME/kiln` (default `~/.local/share/kiln`) for anyone else.
pub(crate) fn store_root(cli: &Cli) -> PathBuf {
    if let Some(r) = &cli.root {
        return r.clone();
    }
    if rustix::process::geteuid().is_root() {
        return PathBuf::from("/var/lib/kiln");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("kiln")
}

/// Open the store.
pub(crate) fn open_store(cli: &Cli) -> Result<Store> {
    let root = store_root(cli);
    Store::open(&root).with_context(|| format!("failed to open the store at {}", root.display()))
}

/// Ask `question [y/N]` on stderr and read the answer from stdin; no
/// answer (end of input) is no.
pub(crate) fn confirm(question: &str) -> Result<bool> {
    let mut err = std::io::stderr();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut line = String::new();
    let stdin = std::io::stdin();
    if stdin.lock().read_line(&mut line)? == 0 {
        if !stdin.is_terminal() {
            writeln!(err)?;
        }
        return Ok(false);
    }
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
