//! `--format` output as Docker's CLI does it: Go templates over each row,
//! `table` formats aligned by an elastic tabwriter under a header row,
//! `json` as one object per line, and Docker's size and age wording.
//!
//! Rows are `serde_json::Value` objects whose keys are the template's
//! field names (`Repository`, `ID`, `CreatedSince`…), holding what Docker
//! prints (sizes and ages already worded by [`units`]). This module only
//! renders: it reads nothing and decides nothing about the data.
//!
//! Mirrors docker/cli `cli/command/formatter` (`Format.templateString`,
//! `Context.postFormat`) and `templates/templates.go`.

mod gofmt;
pub(crate) mod tabwriter;
pub(crate) mod template;
pub(crate) mod units;

use std::io::{self, Write};

use serde_json::Value;

pub(crate) use self::tabwriter::{TabConfig, TabWriter};
pub(crate) use self::template::{Template, TemplateError};

/// A `--format` that could not be rendered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FormatError {
    /// Docker words parse and execution errors alike; with the cause
    /// (`{:#}`) this is its line: `template parsing error: template: :1: …`.
    #[error("template parsing error")]
    Template(#[source] Box<TemplateError>),
    #[error("failed to write the output")]
    Write(#[source] io::Error),
}

impl From<TemplateError> for FormatError {
    fn from(e: TemplateError) -> Self {
        FormatError::Template(Box::new(e))
    }
}

/// Column titles of `docker images` (docker/cli `formatter/image.go`).
pub(crate) const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
];

/// `docker images`' default table.
pub(crate) const IMAGE_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";

/// What a `--format` value asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// A header row and aligned columns.
    Table(String),
    /// One template output per row.
    Lines(String),
}

/// Docker's `Format.templateString`: `json` is `{{json .}}`; a `table`
/// prefix makes a table of what follows; surrounding spaces go, and the
/// two-character sequences `\t` and `\n` become a tab and a newline (so
/// shells need no `$'…'`). A bare `table` (or no format) is the default
/// table of the `headers` columns.
fn classify(format: &str, headers: &[(&str, &str)]) -> Kind {
    if format.is_empty() || format == "table" {
        return classify(&default_table_format(headers), headers);
    }
    if format == "json" {
        return Kind::Lines("{{json .}}".into());
    }
    match format.strip_prefix("table") {
        Some(rest) => Kind::Table(unescape(rest)),
        None => Kind::Lines(unescape(format)),
    }
}

fn unescape(template: &str) -> String {
    let t = template.trim_matches(' ');
    let mut out = String::with_capacity(t.len());
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some('t') => {
                    chars.next();
                    out.push('\t');
                    continue;
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// The default table for columns given as (field, title):
/// `table {{.A}}\t{{.B}}`.
pub(crate) fn default_table_format(columns: &[(&str, &str)]) -> String {
    let cells: Vec<String> = columns
        .iter()
        .map(|(f, _)| format!("{{{{.{f}}}}}"))
        .collect();
    format!("table {}", cells.join("\t"))
}

/// Render `rows` as `format` asks (see [`render_to_string`]) and write it
/// out in one piece.
pub(crate) fn render(
    format: &str,
    rows: &[Value],
    headers: &[(&str, &str)],
    out: &mut impl Write,
) -> Result<(), FormatError> {
    let text = render_to_string(format, rows, headers)?;
    out.write_all(text.as_bytes()).map_err(FormatError::Write)
}

/// Render `rows` for a `--format` value:
///
/// - `""` or `table`: the default table, one column per `headers` entry;
/// - `table TEMPLATE`: a header row, then a row per value, aligned as
///   Docker's tabwriter does (min width 10, padding 3) at each `\t`;
/// - `json`: each row as one line of compact JSON;
/// - anything else: the template once per row, each followed by a newline.
///
/// `headers` maps field names to column titles; a field without one is
/// titled by its name in upper case. Nothing is produced if any row fails,
/// as in Docker.
pub(crate) fn render_to_string(
    format: &str,
    rows: &[Value],
    headers: &[(&str, &str)],
) -> Result<String, FormatError> {
    match classify(format, headers) {
        Kind::Lines(t) => {
            let tmpl = Template::parse(&t)?;
            let mut out = String::new();
            for row in rows {
                out.push_str(&tmpl.execute(row)?);
                out.push('\n');
            }
            Ok(out)
        }
        Kind::Table(t) => {
            let tmpl = Template::parse(&t)?;
            let mut body = String::new();
            for row in rows {
                body.push_str(&tmpl.execute(row)?);
                body.push('\n');
            }
            let mut tw = TabWriter::new(Vec::new(), TabConfig::DOCKER);
            let header = tmpl.execute_header(headers);
            let written = tw
                .write_all(header.as_bytes())
                .and_then(|()| tw.write_all(b"\n"))
                .and_then(|()| tw.write_all(body.as_bytes()))
                .and_then(|()| tw.into_inner());
            let bytes = written.map_err(FormatError::Write)?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
    }
}

/// Print rows as a default table of `columns` (field, title).
pub(crate) fn render_table(
    columns: &[(&str, &str)],
    rows: &[Value],
    out: &mut impl Write,
) -> Result<(), FormatError> {
    render(&default_table_format(columns), rows, columns, out)
}

#[cfg(test)]
mod tests;
