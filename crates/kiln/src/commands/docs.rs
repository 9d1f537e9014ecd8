//! The command reference in `docs/reference/`, generated from the clap
//! definitions so that it always says what `--help` says: one page per
//! top-level command (its subcommands in sections), every flag with its
//! value, default and help, and an index. `kiln debug docs DIR` writes it;
//! a test checks that the committed pages equal a fresh generation.
//! Hidden commands and flags are left out, as `--help` leaves them out.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use clap::{Arg, ArgAction, Command, CommandFactory};

use crate::cli::Cli;

/// Write the pages into `dir` (created if missing; stale pages removed).
pub(crate) fn generate(dir: &Path) -> Result<u8> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    for e in std::fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))? {
        let path = e?.path();
        if path.extension().is_some_and(|x| x == "md") {
            std::fs::remove_file(&path)
                .with_context(|| format!("failed to remove {}", path.display()))?;
        }
    }
    for (name, text) in pages() {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    Ok(0)
}

/// (file name, markdown) of every page.
fn pages() -> Vec<(String, String)> {
    let mut root = Cli::command();
    root.build();
    let mut index = String::new();
    let _ = writeln!(index, "# Command reference\n");
    let _ = writeln!(
        index,
        "Generated from kiln's command-line definitions (`kiln debug docs \
         docs/reference`); `kiln COMMAND --help` prints the same.\n"
    );
    let _ = writeln!(index, "| command | what it does |\n|---|---|");
    let mut out = Vec::new();
    for cmd in root
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
    {
        let name = cmd.get_name();
        let _ = writeln!(index, "| [`kiln {name}`]({name}.md) | {} |", about(cmd));
        let mut page = String::new();
        command(&mut page, cmd, &format!("kiln {name}"), 1);
        global_note(&mut page);
        out.push((format!("{name}.md"), page));
    }
    let _ = writeln!(index, "\n## Global options\n");
    let _ = writeln!(index, "These apply to every command.\n");
    options(
        &mut index,
        root.get_arguments().filter(|a| a.is_global_set()),
    );
    out.push(("README.md".into(), index));
    out
}

/// The one-line summary of a command.
fn about(cmd: &Command) -> String {
    cmd.get_about()
        .map(|s| s.to_string().replace('\n', " "))
        .unwrap_or_default()
}

fn global_note(page: &mut String) {
    let _ = writeln!(
        page,
        "Global options (`--root`, `--log-level`, `-D`, `--progress`): see the [index](README.md#global-options)."
    );
}

/// A command's section at heading level `level`, then its subcommands.
fn command(page: &mut String, cmd: &Command, path: &str, level: usize) {
    let hashes = "#".repeat(level);
    let _ = writeln!(page, "{hashes} {path}\n");
    let text = cmd
        .get_long_about()
        .or(cmd.get_about())
        .map(|s| s.to_string())
        .unwrap_or_default();
    if !text.is_empty() {
        let _ = writeln!(page, "{text}\n");
    }
    let aliases: Vec<&str> = cmd.get_visible_aliases().collect();
    if !aliases.is_empty() {
        let _ = writeln!(page, "Aliases: {}\n", aliases.join(", "));
    }
    let usage = cmd
        .clone()
        .bin_name(path)
        .render_usage()
        .to_string()
        .trim_start_matches("Usage: ")
        .to_string();
    let _ = writeln!(page, "```\n{usage}\n```\n");
    let positionals: Vec<&Arg> = cmd.get_positionals().filter(|a| !a.is_hide_set()).collect();
    if !positionals.is_empty() {
        let _ = writeln!(page, "| argument | description |\n|---|---|");
        for a in positionals {
            let names = a
                .get_value_names()
                .map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|| a.get_id().as_str().to_uppercase());
            let mut text = help(a);
            text.push_str(&possible_values(a));
            let _ = writeln!(page, "| `{names}` | {} |", text.trim());
        }
        let _ = writeln!(page);
    }
    options(
        page,
        cmd.get_arguments()
            .filter(|a| !a.is_positional() && !a.is_global_set()),
    );
    if let Some(after) = cmd.get_after_long_help().or(cmd.get_after_help()) {
        let _ = writeln!(page, "```\n{after}\n```\n");
    }
    for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        command(page, sub, &format!("{path} {}", sub.get_name()), level + 1);
    }
}

/// A table of flags.
fn options<'a>(page: &mut String, args: impl Iterator<Item = &'a Arg>) {
    let args: Vec<&Arg> = args
        .filter(|a| !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version"))
        .collect();
    if args.is_empty() {
        return;
    }
    let _ = writeln!(page, "| option | description |\n|---|---|");
    for a in args {
        let mut flag = String::new();
        if let Some(s) = a.get_short() {
            flag.push_str(&format!("-{s}"));
        }
        if let Some(l) = a.get_long() {
            if !flag.is_empty() {
                flag.push_str(", ");
            }
            flag.push_str(&format!("--{l}"));
        }
        if takes_value(a) {
            let v = a
                .get_value_names()
                .map(|v| v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|| a.get_id().as_str().to_uppercase());
            flag.push_str(&format!(" {v}"));
        }
        let mut text = help(a);
        if takes_value(a) {
            text.push_str(&possible_values(a));
        }
        let defaults: Vec<String> = a
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() && takes_value(a) {
            text.push_str(&format!(" [default: `{}`]", defaults.join(",")));
        }
        if let Some(env) = a.get_env() {
            text.push_str(&format!(" [env: `{}`]", env.to_string_lossy()));
        }
        let _ = writeln!(page, "| `{flag}` | {} |", text.trim());
    }
    let _ = writeln!(page);
}

/// ` (one of `a`, `b`)` for an argument with a fixed set of values.
fn possible_values(a: &Arg) -> String {
    let values: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    if values.is_empty() {
        String::new()
    } else {
        format!(" (one of {})", values.join(", "))
    }
}

fn takes_value(a: &Arg) -> bool {
    matches!(a.get_action(), ArgAction::Set | ArgAction::Append)
}

/// An argument's help on one line, `|` escaped for the table.
fn help(a: &Arg) -> String {
    a.get_long_help()
        .or(a.get_help())
        .map(|s| s.to_string())
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}
