//! Rendering of errors and warnings that point into a Dockerfile.
//!
//! Every error of this crate that concerns the Dockerfile text carries a
//! [`Span`]; [`render`] turns it into the form users know from compilers:
//!
//! ```text
//! Dockerfile:3:1: unknown instruction `COPPY` (did you mean COPY?)
//!     3 | COPPY . /app
//!       | ^^^^^
//! ```
//!
//! Rendering is pure string work; printing belongs to the binary.

use crate::span::{LineIndex, Span};

/// An error or finding located in the Dockerfile.
pub trait Located: std::fmt::Display {
    /// Where in the source it is.
    fn span(&self) -> Span;
}

/// Render `message` at `span` of `source` (named `file` in the output), with
/// the source line and a caret under the offending text.
pub fn render(file: &str, source: &str, span: Span, message: &str) -> String {
    let index = LineIndex::new(source);
    let start = index.position(span.start);
    let line_text = index.line_text(start.line);
    let mut out = format!("{file}:{}:{}: {message}\n", start.line, start.column);
    let gutter = start.line.to_string().len().max(4);
    let shown = line_text.replace('\t', " ");
    out.push_str(&format!("{:>gutter$} | {shown}\n", start.line));
    // Underline from the start column to the end of the span, or of the line
    // when the span continues on later lines.
    let end = index.position(span.end.max(span.start));
    let width = if end.line == start.line {
        end.column.saturating_sub(start.column).max(1)
    } else {
        (line_text.chars().count() + 1)
            .saturating_sub(start.column)
            .max(1)
    };
    out.push_str(&format!(
        "{:>gutter$} | {}{}",
        "",
        " ".repeat(start.column - 1),
        "^".repeat(width)
    ));
    out
}

/// Render a [`Located`] error.
pub fn render_located(file: &str, source: &str, err: &dyn Located) -> String {
    render(file, source, err.span(), &err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caret_under_the_span() {
        let src = "FROM a\nCOPPY . /app\n";
        let out = render("Dockerfile", src, Span::new(7, 12), "unknown instruction");
        assert_eq!(
            out,
            "Dockerfile:2:1: unknown instruction\n   2 | COPPY . /app\n     | ^^^^^"
        );
    }

    #[test]
    fn span_past_the_line_end_is_clamped() {
        let src = "RUN a \\\n  b";
        let out = render("Dockerfile", src, Span::new(4, src.len()), "bad");
        assert!(out.starts_with("Dockerfile:1:5: bad\n"), "{out}");
        assert!(out.ends_with("|     ^^^"), "{out}");
    }
}
