//! Output formatting (interim: `{{.Field}}` templates only; the full Go
//! template engine replaces this module).

pub(crate) mod units;

use std::io::Write;

use anyhow::{bail, Result};
use serde_json::Value;

/// Render rows with a Docker `--format` value.
pub(crate) fn render(
    format: &str,
    rows: &[Value],
    headers: &[(&str, &str)],
    out: &mut impl Write,
) -> Result<()> {
    if format == "json" {
        for r in rows {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        }
        return Ok(());
    }
    let (table, tpl) = match format.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, format),
    };
    let mut lines: Vec<String> = Vec::new();
    if table {
        lines.push(expand(tpl, &|f| {
            headers
                .iter()
                .find(|(k, _)| *k == f)
                .map_or_else(|| f.to_ascii_uppercase(), |(_, v)| v.to_string())
        })?);
    }
    for r in rows {
        lines.push(expand(tpl, &|f| match r.get(f) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => "<no value>".into(),
        })?);
    }
    let lines: Vec<String> = lines.iter().map(|l| l.replace("\\t", "\t")).collect();
    let cells: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let cols = cells.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; cols];
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            if i + 1 < row.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    for row in &cells {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            line.push_str(c);
            if i + 1 < row.len() {
                let pad = widths[i] - c.chars().count() + 3;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn expand(tpl: &str, field: &dyn Fn(&str) -> String) -> Result<String> {
    let mut out = String::new();
    let mut rest = tpl;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else {
            bail!("template parsing error: unclosed action");
        };
        let action = rest[i + 2..i + j].trim();
        let Some(name) = action.strip_prefix('.') else {
            bail!("template: unsupported action {action:?}");
        };
        out.push_str(&field(name));
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}
