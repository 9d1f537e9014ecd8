//! The syntax tree: what the parser produces and the lowering consumes.
//!
//! The tree is deliberately close to BuildKit's `parser.Node`: one [`Node`]
//! per instruction with its `--flags`, its raw argument words (before any
//! variable expansion) and its heredocs, so that [`Dockerfile::dump`] can
//! print BuildKit's S-expression form byte for byte. Unlike BuildKit, every
//! word and flag carries the [`Span`] of its text.

use std::fmt::Write as _;

use crate::span::Span;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives (`# syntax=`, `# escape=`, `# check=`), in order.
    pub directives: Vec<Directive>,
    /// The escape character in effect (`\` unless `# escape=` said `` ` ``).
    pub escape: char,
    /// The instructions, in order.
    pub nodes: Vec<Node>,
    /// Things the parser accepted but that deserve a warning.
    pub warnings: Vec<ParseWarning>,
}

/// A parser directive at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lowercased name: `syntax`, `escape` or `check`.
    pub name: String,
    /// The value, trimmed.
    pub value: String,
    /// The whole directive line.
    pub span: Span,
}

/// A warning produced while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseWarning {
    /// What was found.
    pub kind: ParseWarningKind,
    /// The instruction it concerns.
    pub span: Span,
}

/// The kinds of parser warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseWarningKind {
    /// An empty line inside a line continuation.
    EmptyContinuationLine {
        /// The joined instruction text.
        instruction: String,
    },
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The instruction keyword as written (`copy`, `COPY`, `Copy`, …).
    pub keyword: String,
    /// Span of the keyword.
    pub keyword_span: Span,
    /// `--flag[=value]` words, quotes and escapes removed.
    pub flags: Vec<Flag>,
    /// The arguments, raw (no expansion).
    pub args: Vec<Arg>,
    /// True when the arguments were written as a JSON array (exec form).
    pub json: bool,
    /// Heredoc bodies attached to this instruction, in order.
    pub heredocs: Vec<Heredoc>,
    /// The logical line (continuations joined, comments removed).
    pub original: String,
    /// The comment lines directly above the instruction (`#` stripped).
    pub comments: Vec<String>,
    /// The whole instruction, from the keyword to the end of its last line
    /// (heredoc bodies included).
    pub span: Span,
    /// First and last line, 1-based.
    pub start_line: usize,
    /// Last line (heredoc bodies included).
    pub end_line: usize,
}

impl Node {
    /// The keyword, lowercased.
    pub fn name(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }

    /// The argument words (a nested instruction is skipped).
    pub fn words(&self) -> impl Iterator<Item = &Word> {
        self.args.iter().filter_map(|a| match a {
            Arg::Word(w) => Some(w),
            Arg::Node(_) => None,
        })
    }

    /// The span of all arguments, or the keyword's when there are none.
    pub fn args_span(&self) -> Span {
        let mut spans = self.args.iter().map(|a| match a {
            Arg::Word(w) => w.span,
            Arg::Node(n) => n.span,
        });
        match spans.next() {
            Some(first) => spans.fold(first, Span::to),
            None => self.keyword_span,
        }
    }
}

/// A `--name[=value]` flag of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The flag word as BuildKit keeps it: `--from=build`.
    pub text: String,
    /// Where it is written.
    pub span: Span,
}

/// An argument of an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A word of text.
    Word(Word),
    /// A nested instruction (the operand of `ONBUILD`).
    Node(Box<Node>),
}

/// A raw argument word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The text, as the instruction's parsing rule leaves it (quotes kept
    /// where BuildKit keeps them).
    pub value: String,
    /// Where it is written (for a JSON array element: the whole array).
    pub span: Span,
}

/// A heredoc body attached to an instruction (`RUN <<EOF`, `COPY <<A <<B /d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The terminator word, quotes removed.
    pub name: String,
    /// File descriptor written before `<<` (`3<<EOF`); 0 when none.
    pub fd: u32,
    /// True unless the terminator was quoted: the body gets variable expansion.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the body and the terminator.
    pub chomp: bool,
    /// The body as written, every line with its line ending.
    pub content: String,
    /// Where the body is (without the terminator line).
    pub span: Span,
}

impl Heredoc {
    /// The body with `<<-` tab stripping applied.
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

impl Dockerfile {
    /// BuildKit's S-expression dump of the tree, one line per instruction.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            out.push('(');
            out.push_str(&node.dump());
            out.push_str(")\n");
        }
        out
    }

    /// The value of a parser directive, if present.
    pub fn directive(&self, name: &str) -> Option<&Directive> {
        self.directives.iter().find(|d| d.name == name)
    }
}

impl Node {
    /// BuildKit's S-expression of one instruction, without the outer parens.
    pub fn dump(&self) -> String {
        let mut out = self.keyword.to_lowercase();
        if !self.flags.is_empty() {
            out.push_str(" [");
            for (i, f) in self.flags.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&go_quote(&f.text));
            }
            out.push(']');
        }
        for arg in &self.args {
            out.push(' ');
            match arg {
                Arg::Word(w) => out.push_str(&go_quote(&w.value)),
                Arg::Node(n) => {
                    let _ = write!(out, "({})", n.dump());
                }
            }
        }
        out
    }
}

/// Quote a string the way Go's `strconv.Quote` does: `"`, `\` and
/// non-printable characters escaped, printable Unicode kept.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint`: letters, marks, numbers,
/// punctuation, symbols and the ASCII space; not other spaces, controls or
/// format characters.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFFFE | 0xFFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_matches_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("tab\there\n"), r#""tab\there\n""#);
        assert_eq!(go_quote("\u{1}"), r#""\x01""#);
        assert_eq!(go_quote("\u{7f}"), r#""\x7f""#);
        assert_eq!(go_quote("한국어 é"), "\"한국어 é\"");
        assert_eq!(go_quote("\u{a0}"), r#""\u00a0""#);
        assert_eq!(go_quote("\u{feff}"), r#""\ufeff""#);
    }

    #[test]
    fn chomp_strips_leading_tabs_per_line() {
        let h = Heredoc {
            name: "EOF".into(),
            fd: 0,
            expand: true,
            chomp: true,
            content: "\t\tone\n\ttwo\n  three\n".into(),
            span: Span::default(),
        };
        assert_eq!(h.body(), "one\ntwo\n  three\n");
    }
}
