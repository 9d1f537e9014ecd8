//! Text → syntax tree.
//!
//! The rules are BuildKit's (`frontend/dockerfile/parser`), reimplemented:
//! parser directives only before the first instruction, blank line or
//! ordinary comment; line continuations with the escape character; comment
//! and empty lines inside continuations skipped (the latter with a warning);
//! heredocs for `RUN`, `COPY` and `ADD` (also under `ONBUILD`); per
//! instruction argument rules (JSON or shell form, whitespace-delimited
//! words, `key=value` pairs). A UTF-8 BOM and CRLF line endings are accepted.
//! Unknown instructions are kept (with one empty argument, as BuildKit
//! dumps them); the lowering rejects them with a suggestion.
//!
//! The parser never expands variables: words are raw.

use thiserror::Error;

use crate::ast::{
    Arg, Directive, Dockerfile, Flag, Heredoc, Node, ParseWarning, ParseWarningKind, Word,
};
use crate::diagnostic::Located;
use crate::shell::Lexer;
use crate::span::Span;

/// No variables: heredoc terminators are lexed without an environment.
const NO_ENV: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();

/// A Dockerfile that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind}")]
pub struct ParseError {
    /// What is wrong.
    pub kind: ParseErrorKind,
    /// Where.
    pub span: Span,
}

impl Located for ParseError {
    fn span(&self) -> Span {
        self.span
    }
}

/// The ways parsing can fail.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    /// Nothing but comments and blank lines.
    #[error("file with no instructions")]
    NoInstructions,
    /// A directive given twice.
    #[error("only one {name} parser directive can be used")]
    DuplicateDirective {
        /// The directive.
        name: String,
    },
    /// `# escape=` with something other than `\` or `` ` ``.
    #[error("invalid escape token `{value}` does not match ` or \\")]
    InvalidEscape {
        /// What was given.
        value: String,
    },
    /// A heredoc whose terminator never comes.
    #[error("unterminated heredoc `{name}` that began on line {line}")]
    UnterminatedHeredoc {
        /// The terminator word that was expected.
        name: String,
        /// The line of the instruction that opened it.
        line: usize,
    },
    /// A heredoc terminator with unbalanced quotes.
    #[error("invalid heredoc terminator `{word}`: unterminated quote")]
    InvalidHeredoc {
        /// The word after `<<`.
        word: String,
    },
    /// A JSON array with something else than strings in it.
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray,
    /// `ENV name` / `LABEL name` without a value.
    #[error("{instruction} must have two arguments")]
    MissingValue {
        /// `ENV` or `LABEL`.
        instruction: &'static str,
    },
    /// `ENV a=b c` mixing the forms.
    #[error("syntax error - can't find = in `{word}`; must be of the form: name=value")]
    MissingEquals {
        /// The word without `=`.
        word: String,
    },
}

/// Parse a Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    Parser::new(text).run()
}

/// The characters of BuildKit's `reWhitespace` (`[\t\v\f\r ]`).
fn is_sep(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Go's `\s` in regular expressions.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

/// One physical line of the source.
#[derive(Debug, Clone, Copy)]
struct RawLine<'a> {
    /// The text with its line ending (and without a BOM on line 1).
    text: &'a str,
    /// Byte offset of `text` in the source.
    offset: usize,
    /// 1-based line number.
    number: usize,
}

impl<'a> RawLine<'a> {
    fn without_newline(&self) -> &'a str {
        self.text.trim_end_matches(['\r', '\n'])
    }
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// A logical line: continuation lines joined, with a map back to the source.
#[derive(Debug, Default)]
struct Logical {
    text: String,
    /// (offset in `text`, offset in the source) for each joined piece.
    segments: Vec<(usize, usize)>,
}

impl Logical {
    fn clear(&mut self) {
        self.text.clear();
        self.segments.clear();
    }

    fn push(&mut self, piece: &str, source_offset: usize) {
        self.segments.push((self.text.len(), source_offset));
        self.text.push_str(piece);
    }

    fn source_offset(&self, offset: usize) -> usize {
        let i = self.segments.partition_point(|&(l, _)| l <= offset).max(1) - 1;
        match self.segments.get(i) {
            Some(&(l, s)) => s + (offset - l),
            None => offset,
        }
    }

    /// The source span of `start..end` (offsets into `text`).
    fn span(&self, start: usize, end: usize) -> Span {
        let s = self.source_offset(start);
        let e = if end > start {
            self.source_offset(end - 1) + 1
        } else {
            s
        };
        Span::new(s, e)
    }
}

struct Parser<'a> {
    lines: Vec<RawLine<'a>>,
    escape: char,
    directives: Vec<Directive>,
    directives_done: bool,
    source_len: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        let mut lines = Vec::new();
        let mut offset = 0;
        for (i, l) in text.split_inclusive('\n').enumerate() {
            let (l, skip) = match (i, l.strip_prefix('\u{feff}')) {
                (0, Some(rest)) => (rest, '\u{feff}'.len_utf8()),
                _ => (l, 0),
            };
            lines.push(RawLine {
                text: l,
                offset: offset + skip,
                number: i + 1,
            });
            offset += skip + l.len();
        }
        Parser {
            lines,
            escape: '\\',
            directives: Vec::new(),
            directives_done: false,
            source_len: text.len(),
        }
    }

    /// BuildKit's `processLine`: strip the line ending (and leading space on
    /// a first line), give the directive parser a look, and blank comments.
    /// Returns the remaining text and its source offset.
    fn process_line(
        &mut self,
        line: RawLine<'a>,
        strip_left: bool,
    ) -> Result<(&'a str, usize, bool), ParseError> {
        let mut text = line.without_newline();
        let mut offset = line.offset;
        if strip_left {
            let trimmed = text.trim_start();
            offset += text.len() - trimmed.len();
            text = trimmed;
        }
        let is_directive = self.possible_directive(text, offset)?;
        if is_comment(text) {
            Ok(("", offset, is_directive))
        } else {
            Ok((text, offset, is_directive))
        }
    }

    fn possible_directive(&mut self, line: &str, offset: usize) -> Result<bool, ParseError> {
        if self.directives_done {
            return Ok(false);
        }
        let Some((name, value)) = directive_parts(line) else {
            self.directives_done = true;
            return Ok(false);
        };
        let name = name.to_ascii_lowercase();
        if !matches!(name.as_str(), "syntax" | "escape" | "check") {
            self.directives_done = true;
            return Ok(false);
        }
        let span = Span::new(offset, offset + line.len());
        if self.directives.iter().any(|d| d.name == name) {
            return Err(ParseError {
                kind: ParseErrorKind::DuplicateDirective { name },
                span,
            });
        }
        if name == "escape" {
            self.escape = match value {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return Err(ParseError {
                        kind: ParseErrorKind::InvalidEscape {
                            value: value.to_string(),
                        },
                        span,
                    })
                }
            };
        }
        self.directives.push(Directive {
            name,
            value: value.to_string(),
            span,
        });
        Ok(true)
    }

    /// Remove a trailing line-continuation escape. Returns the text and
    /// whether the logical line ends here.
    fn trim_continuation<'s>(&self, line: &'s str) -> (&'s str, bool) {
        let trimmed = line.trim_end_matches([' ', '\t']);
        let Some(before) = trimmed.strip_suffix(self.escape) else {
            return (line, true);
        };
        if before.is_empty() {
            return ("", false);
        }
        // An escaped escape at the end is not a continuation (BuildKit's
        // regular expression needs a non-escape character before it).
        if before.ends_with(self.escape) {
            return (line, true);
        }
        (before, false)
    }

    fn run(mut self) -> Result<Dockerfile, ParseError> {
        // Instructions are rarely fewer than one per three lines.
        let mut nodes = Vec::with_capacity(self.lines.len() / 3 + 1);
        let mut warnings = Vec::new();
        let mut comments: Vec<String> = Vec::new();
        let mut i = 0;
        // One buffer for every logical line.
        let mut logical = Logical::default();
        while i < self.lines.len() {
            let raw = self.lines[i];
            i += 1;
            if is_comment(raw.text) {
                let t = raw.text;
                let first = t.chars().next().map_or(0, char::len_utf8);
                let comment = t[first..].trim();
                if comment.is_empty() {
                    comments.clear();
                } else {
                    comments.push(comment.to_string());
                }
            }
            let (text, offset, is_directive) = self.process_line(raw, true)?;
            if is_directive {
                comments.pop();
            }
            let start_line = raw.number;
            let (text, mut ended) = self.trim_continuation(text);
            if ended && text.is_empty() {
                continue;
            }
            logical.clear();
            logical.push(text, offset);
            let mut end_line = start_line;
            let mut empty_continuation = false;
            while !ended && i < self.lines.len() {
                let raw = self.lines[i];
                i += 1;
                let (text, offset, _) = self.process_line(raw, false)?;
                end_line = raw.number;
                if is_comment(raw.text) {
                    continue;
                }
                if text.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (text, e) = self.trim_continuation(text);
                ended = e;
                logical.push(text, offset);
            }
            let end_offset = self
                .lines
                .get(end_line - 1)
                .map_or(self.source_len, |l| l.offset + l.without_newline().len());
            let instr_span = Span::new(logical.source_offset(0), end_offset);
            if empty_continuation {
                warnings.push(ParseWarning {
                    kind: ParseWarningKind::EmptyContinuationLine {
                        instruction: logical.text.clone(),
                    },
                    span: instr_span,
                });
            }
            let mut node = self.node_from_line(&logical, 0, std::mem::take(&mut comments))?;
            node.start_line = start_line;
            node.end_line = end_line;
            node.span = instr_span;

            if can_contain_heredoc(&node) && logical.text.contains("<<") {
                let heads = heredocs_from_line(&logical.text).map_err(|kind| ParseError {
                    kind,
                    span: instr_span,
                })?;
                for head in heads {
                    let body_start = self.lines.get(i).map_or(self.source_len, |l| l.offset);
                    let mut content = String::new();
                    let mut terminated = false;
                    while i < self.lines.len() {
                        let raw = self.lines[i];
                        i += 1;
                        end_line = raw.number;
                        let mut candidate = raw.without_newline();
                        if head.chomp {
                            candidate = candidate.trim_start_matches('\t');
                        }
                        if candidate == head.name {
                            terminated = true;
                            break;
                        }
                        content.push_str(raw.text);
                    }
                    if !terminated {
                        return Err(ParseError {
                            kind: ParseErrorKind::UnterminatedHeredoc {
                                name: head.name,
                                line: start_line,
                            },
                            span: instr_span,
                        });
                    }
                    node.heredocs.push(Heredoc {
                        span: Span::new(body_start, body_start + content.len()),
                        content,
                        ..head
                    });
                }
                node.end_line = end_line;
                let last = &self.lines[end_line - 1];
                node.span = Span::new(instr_span.start, last.offset + last.without_newline().len());
            }
            nodes.push(node);
        }
        if nodes.is_empty() {
            let end = self.source_len;
            return Err(ParseError {
                kind: ParseErrorKind::NoInstructions,
                span: Span::new(end, end),
            });
        }
        Ok(Dockerfile {
            directives: self.directives,
            escape: self.escape,
            nodes,
            warnings,
        })
    }

    /// BuildKit's `newNodeFromLine` on `logical.text[base..]`.
    fn node_from_line(
        &self,
        logical: &Logical,
        base: usize,
        comments: Vec<String>,
    ) -> Result<Node, ParseError> {
        let line = &logical.text[base..];
        let lead = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        let cmd_end = trimmed.find(is_sep).unwrap_or(trimmed.len());
        let keyword = &trimmed[..cmd_end];
        let keyword_start = base + lead;
        let keyword_span = logical.span(keyword_start, keyword_start + cmd_end);
        let after = &trimmed[cmd_end..];
        let rest_rel = after.len() - after.trim_start_matches(is_sep).len();
        let rest_start = keyword_start + cmd_end + rest_rel;
        let rest = &trimmed[cmd_end + rest_rel..];

        let (args_rel, flags) = extract_flags(rest, self.escape);
        let flags = flags
            .into_iter()
            .map(|(text, s, e)| Flag {
                text,
                span: logical.span(rest_start + s, rest_start + e),
            })
            .collect();
        let args_raw = &rest[args_rel..];
        let args_lead = args_raw.len() - args_raw.trim_start().len();
        let args = args_raw.trim();
        let args_start = rest_start + args_rel + args_lead;
        let err = |kind| ParseError {
            kind,
            span: logical.span(args_start, args_start + args.len()),
        };
        let word = |value: String, s: usize, e: usize| {
            Arg::Word(Word {
                value,
                span: logical.span(args_start + s, args_start + e),
            })
        };

        let mut json = false;
        let lower = keyword.to_ascii_lowercase();
        let parsed: Vec<Arg> = match lower.as_str() {
            "add" | "copy" | "volume" => match parse_json(args) {
                Json::Array(items) => {
                    json = true;
                    items.into_iter().map(|v| word(v, 0, args.len())).collect()
                }
                Json::NotStrings => return Err(err(ParseErrorKind::NotStringArray)),
                Json::Other => split_whitespace(args)
                    .into_iter()
                    .map(|(s, e)| word(args[s..e].to_string(), s, e))
                    .collect(),
            },
            "cmd" | "entrypoint" | "run" | "shell" => {
                let (words, j) = maybe_json(args).map_err(err)?;
                json = j;
                words.into_iter().map(|(v, s, e)| word(v, s, e)).collect()
            }
            "healthcheck" => {
                let sep = args.find(char::is_whitespace).unwrap_or(args.len());
                if sep == 0 {
                    Vec::new()
                } else {
                    let after = &args[sep..];
                    let next = sep + (after.len() - after.trim_start().len());
                    let (words, j) = maybe_json(&args[next..]).map_err(err)?;
                    json = j;
                    let mut out = vec![word(args[..sep].to_string(), 0, sep)];
                    out.extend(
                        words
                            .into_iter()
                            .map(|(v, s, e)| word(v, next + s, next + e)),
                    );
                    out
                }
            }
            "env" | "label" => {
                let instruction = if lower == "env" { "ENV" } else { "LABEL" };
                parse_name_val(args, self.escape, instruction)
                    .map_err(err)?
                    .into_iter()
                    .map(|(v, s, e)| word(v, s, e))
                    .collect()
            }
            "arg" => parse_words(args, self.escape)
                .into_iter()
                .map(|(v, s, e)| word(v, s, e))
                .collect(),
            "expose" | "from" => split_whitespace(args)
                .into_iter()
                .map(|(s, e)| word(args[s..e].to_string(), s, e))
                .collect(),
            "maintainer" | "stopsignal" | "user" | "workdir" => {
                if args.is_empty() {
                    Vec::new()
                } else {
                    vec![word(args.to_string(), 0, args.len())]
                }
            }
            "onbuild" => {
                if args.is_empty() {
                    Vec::new()
                } else {
                    let mut child = self.node_from_line(logical, args_start, Vec::new())?;
                    child.span = logical.span(args_start, args_start + args.len());
                    vec![Arg::Node(Box::new(child))]
                }
            }
            // Unknown instructions keep one empty argument, like BuildKit's
            // parseIgnore; the lowering reports them.
            _ => vec![word(String::new(), 0, args.len())],
        };

        let span = logical.span(keyword_start, base + lead + trimmed.len());
        Ok(Node {
            keyword: keyword.to_string(),
            keyword_span,
            flags,
            args: parsed,
            json,
            heredocs: Vec::new(),
            original: line.to_string(),
            comments,
            span,
            start_line: 0,
            end_line: 0,
        })
    }
}

/// The `name` and `value` of a `#name=value` directive line, per BuildKit's
/// `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` after the `#`.
fn directive_parts(line: &str) -> Option<(&str, &str)> {
    let body = line.strip_prefix('#')?.trim_start();
    let name_end = body
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(body.len(), |(i, _)| i);
    if name_end == 0 {
        return None;
    }
    let name = &body[..name_end];
    let rest = body[name_end..].trim_start_matches(is_re_space);
    let rest = rest.strip_prefix('=')?;
    if rest.is_empty() || rest.contains('\n') {
        return None;
    }
    let value = rest
        .trim_start_matches(is_re_space)
        .trim_end_matches(is_re_space);
    if value.is_empty() {
        // `.+?` needs one character: with only spaces left it takes the last.
        let last = rest.char_indices().last().map_or(0, |(i, _)| i);
        return Some((name, &rest[last..]));
    }
    Some((name, value))
}

/// Instructions whose text may open heredocs: RUN, COPY, ADD, also as the
/// operand of ONBUILD; not in exec (JSON) form.
fn can_contain_heredoc(node: &Node) -> bool {
    let mut node = node;
    if node.keyword.eq_ignore_ascii_case("onbuild") {
        if let Some(Arg::Node(child)) = node.args.first() {
            node = child;
        }
    }
    ["run", "copy", "add"]
        .iter()
        .any(|k| node.keyword.eq_ignore_ascii_case(k))
        && !node.json
}

/// The flags at the start of `line` (BuildKit's `extractBuilderFlags`):
/// returns where the rest of the line starts and each flag with its range.
fn extract_flags(line: &str, escape: char) -> (usize, Vec<(String, usize, usize)>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut flags = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut word_start = 0;
    let mut blank_ok = false;
    let mut chars = line.char_indices().peekable();
    // Characters before this offset were taken by the fast path.
    let mut skip_to = 0;
    while let Some((pos, ch)) = chars.next() {
        if pos < skip_to {
            continue;
        }
        match phase {
            Phase::Spaces => {
                if ch.is_whitespace() {
                    continue;
                }
                if !(line[pos..].starts_with("--")) {
                    return (pos, flags);
                }
                // Most flags have no quotes or escapes: take the slice.
                let rest = &line[pos..];
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == escape)
                    .unwrap_or(rest.len());
                if !rest[end..].starts_with(['\'', '"', escape]) {
                    if &rest[..end] == "--" {
                        return (pos + end, flags);
                    }
                    flags.push((rest[..end].to_string(), pos, pos + end));
                    skip_to = pos + end;
                    continue;
                }
                phase = Phase::Word;
                word_start = pos;
                word.clear();
                blank_ok = false;
                word.push(ch);
            }
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (pos, flags);
                    }
                    if blank_ok || !word.is_empty() {
                        flags.push((std::mem::take(&mut word), word_start, pos));
                    }
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                    continue;
                }
                if ch == escape {
                    match chars.next() {
                        Some((_, next)) => word.push(next),
                        None => continue,
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                    continue;
                }
                if ch == escape {
                    match chars.next() {
                        Some((_, next)) => word.push(next),
                        None => phase = Phase::Word,
                    }
                    continue;
                }
                word.push(ch);
            }
        }
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        flags.push((word, word_start, line.len()));
    }
    (line.len(), flags)
}

enum Json {
    Array(Vec<String>),
    NotStrings,
    Other,
}

fn parse_json(text: &str) -> Json {
    let text = text.trim_start();
    if !text.starts_with('[') {
        return Json::Other;
    }
    match serde_json::from_str::<Vec<serde_json::Value>>(text) {
        Ok(values) => {
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Array(out)
        }
        Err(_) => Json::Other,
    }
}

type Words = Vec<(String, usize, usize)>;

/// BuildKit's `parseMaybeJSON`: a JSON array of strings, else the whole text
/// as one word.
fn maybe_json(args: &str) -> Result<(Words, bool), ParseErrorKind> {
    if args.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(args) {
        Json::Array(items) => Ok((
            items.into_iter().map(|v| (v, 0, args.len())).collect(),
            true,
        )),
        Json::NotStrings => Err(ParseErrorKind::NotStringArray),
        Json::Other => Ok((vec![(args.to_string(), 0, args.len())], false)),
    }
}

/// Ranges of the runs of text between `[\t\v\f\r ]+` separators.
fn split_whitespace(text: &str) -> Vec<(usize, usize)> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_sep = false;
    for (i, c) in text.char_indices() {
        if is_sep(c) {
            if !in_sep {
                out.push((start, i));
                in_sep = true;
            }
        } else if in_sep {
            start = i;
            in_sep = false;
        }
    }
    if in_sep {
        out.push((text.len(), text.len()));
    } else {
        out.push((start, text.len()));
    }
    out
}

/// BuildKit's `parseWords`: split on whitespace, keeping quotes and escapes
/// in the words (they are removed later, at expansion).
fn parse_words(rest: &str, escape: char) -> Words {
    // Quotes and escapes stay in the words, so a word is a slice of `rest`
    // (less an escape at the very end of the text, which is dropped).
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    let mut quote: Option<char> = None;
    let mut chars = rest.char_indices();
    let mut end = rest.len();
    while let Some((pos, ch)) = chars.next() {
        let Some(s) = start else {
            if !ch.is_whitespace() {
                start = Some(pos);
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                } else if ch == escape && chars.next().is_none() {
                    end = pos;
                }
            }
            continue;
        };
        match quote {
            None if ch.is_whitespace() => {
                words.push((rest[s..pos].to_string(), s, pos));
                start = None;
            }
            None => {
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                } else if ch == escape && chars.next().is_none() {
                    end = pos;
                }
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                } else if ch == escape && q != '\'' && chars.next().is_none() {
                    end = pos;
                }
            }
        }
    }
    if let Some(s) = start {
        if end > s {
            words.push((rest[s..end].to_string(), s, rest.len()));
        }
    }
    words
}

/// BuildKit's `parseNameVal` for ENV and LABEL: `k=v k2=v2` gives triples
/// (key, value, "="); the legacy `k v…` gives (key, rest, "").
fn parse_name_val(
    rest: &str,
    escape: char,
    instruction: &'static str,
) -> Result<Words, ParseErrorKind> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    if !first.0.contains('=') {
        let parts = split_whitespace(rest);
        let (Some(&(ks, ke)), Some(&(vs, _))) = (parts.first(), parts.get(1)) else {
            return Err(ParseErrorKind::MissingValue { instruction });
        };
        return Ok(vec![
            (rest[ks..ke].to_string(), ks, ke),
            (rest[vs..].to_string(), vs, rest.len()),
            (String::new(), rest.len(), rest.len()),
        ]);
    }
    let mut out = Vec::with_capacity(words.len() * 3);
    for (w, s, e) in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ParseErrorKind::MissingEquals { word: w });
        };
        out.push((k.to_string(), s, s + k.len()));
        out.push((v.to_string(), s + k.len() + 1, e));
        out.push(("=".to_string(), s + k.len(), s + k.len() + 1));
    }
    Ok(out)
}

/// The heredoc openers in an instruction line, in order.
fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, ParseErrorKind> {
    let mut out = Vec::new();
    for word in heredoc_candidate_words(line) {
        if let Some(h) = parse_heredoc_word(&word)? {
            out.push(h);
        }
    }
    Ok(out)
}

/// Split a line into shell words, keeping quotes and escapes as written, and
/// keeping `<<` together with the spaces that follow it, so that `<< EOF`
/// is one word. Like BuildKit, always with `\\` as the escape whatever the
/// escape directive says, and a line that does not lex has no heredocs.
fn heredoc_candidate_words(line: &str) -> Vec<String> {
    Lexer::new('\\')
        .raw_quotes(true)
        .raw_escapes(true)
        .skip_unset_env(true)
        .process_words(line, &NO_ENV)
        .unwrap_or_default()
}

/// BuildKit's `ParseHeredoc`: `^(\d*)<<(-?)\s*([^<]*)$`, then the terminator
/// word unquoted; a quoted terminator disables expansion.
pub(crate) fn parse_heredoc_word(word: &str) -> Result<Option<Heredoc>, ParseErrorKind> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let Some(rest) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(is_re_space);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = word[..digits].parse::<u32>().unwrap_or(0);
    // The terminator is the word with quotes removed; it was quoted (and
    // the body is not expanded) if removing quotes removed any.
    let invalid = |_| ParseErrorKind::InvalidHeredoc {
        word: rest.to_string(),
    };
    let lexer = Lexer::new('\\').skip_unset_env(true);
    let words = lexer.process_words(rest, &NO_ENV).map_err(invalid)?;
    let Ok([name]) = <[String; 1]>::try_from(words) else {
        return Ok(None);
    };
    let raw = lexer
        .raw_quotes(true)
        .process_words(rest, &NO_ENV)
        .map_err(invalid)?;
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let removed_quotes = raw.first().map_or(0, |r| quotes(r)) != quotes(&name);
    Ok(Some(Heredoc {
        name,
        fd,
        expand: !removed_quotes,
        chomp,
        content: String::new(),
        span: Span::default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Seen = (String, String, bool, bool, u32);

    fn heredocs(src: &str) -> Vec<Vec<Seen>> {
        let df = parse(src).expect("parses");
        df.nodes
            .iter()
            .map(|n| {
                n.heredocs
                    .iter()
                    .map(|h| (h.name.clone(), h.content.clone(), h.expand, h.chomp, h.fd))
                    .collect()
            })
            .collect()
    }

    fn h(name: &str, content: &str, expand: bool) -> Seen {
        (name.into(), content.into(), expand, false, 0)
    }

    #[test]
    fn heredoc_forms() {
        let got = heredocs(
            "FROM a\nUSER <<INVALID\nINVALID\nRUN <<EMPTY\nEMPTY\nRUN 3<<E2\nE2\nRUN \"<<NO\"\n\
             RUN <<-UN\n\tbaz\n\tUN\nRUN <<-'NOEXP'\n\t$X\nNOEXP\n\
             COPY <<F1 <<F2 /dest\nc1\nF1\nc2\nF2\nRUN <<eo'f'\nx\neof\nRUN <<eo\\'f\nx\neo'f\n\
             RUN <<'e'o\\'f\nx\neo'f\nRUN <<'one two'\nx\none two\nRUN <<$EOF\n$EOF\n\
             RUN <<  EOF  > foo\nEOF\nRUN [\"<<EOF\"]\n",
        );
        let none = Vec::new;
        assert_eq!(got[0], none());
        assert_eq!(got[1], none()); // USER
        assert_eq!(got[2], none()); // INVALID (an unknown instruction)
        assert_eq!(got[3], vec![h("EMPTY", "", true)]);
        assert_eq!(got[4], vec![("E2".into(), String::new(), true, false, 3)]);
        assert_eq!(got[5], none());
        assert_eq!(got[6], vec![("UN".into(), "\tbaz\n".into(), true, true, 0)]);
        assert_eq!(
            got[7],
            vec![("NOEXP".into(), "\t$X\n".into(), false, true, 0)]
        );
        assert_eq!(got[8], vec![h("F1", "c1\n", true), h("F2", "c2\n", true)]);
        assert_eq!(got[9], vec![h("eof", "x\n", false)]);
        assert_eq!(got[10], vec![h("eo'f", "x\n", true)]);
        assert_eq!(got[11], vec![h("eo'f", "x\n", false)]);
        assert_eq!(got[12], vec![h("one two", "x\n", false)]);
        assert_eq!(got[13], vec![h("$EOF", "", true)]);
        assert_eq!(got[14], vec![h("EOF", "", true)]);
        assert_eq!(got[15], none());
    }

    #[test]
    fn heredoc_word_rules() {
        for ok in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<EO\"F\"",
            "<< EOF",
        ] {
            let h = parse_heredoc_word(ok).expect("valid").expect("a heredoc");
            assert_eq!(h.name, "EOF", "{ok}");
        }
        for bad in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc_word(bad).is_err(), "{bad}");
        }
        for not in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert_eq!(parse_heredoc_word(not), Ok(None), "{not}");
        }
    }

    #[test]
    fn unterminated_heredoc_names_its_line() {
        let err = parse("FROM a\n\nRUN <<EOF\necho hi\n").expect_err("unterminated");
        assert_eq!(
            err.kind,
            ParseErrorKind::UnterminatedHeredoc {
                name: "EOF".into(),
                line: 3
            }
        );
        assert_eq!(err.span.start, 8);
    }

    #[test]
    fn spans_point_at_flags_across_continuations() {
        let src = "FROM a\nCOPY \\\n  --from=b x y\n";
        let df = parse(src).expect("parses");
        let flag = &df.nodes[1].flags[0];
        assert_eq!(&src[flag.span.start..flag.span.end], "--from=b");
        assert_eq!(df.nodes[1].start_line, 2);
        assert_eq!(df.nodes[1].end_line, 3);
    }

    #[test]
    fn bom_crlf_and_case() {
        let df = parse("\u{feff}# escape=`\r\nfrom a\r\nrun echo `\r\n  hi\r\n").expect("parses");
        assert_eq!(df.escape, '`');
        assert_eq!(df.dump(), "(from \"a\")\n(run \"echo   hi\")\n");
    }

    #[test]
    fn directives_stop_at_first_other_line() {
        let df = parse("# syntax=x\n# hello\n# escape=`\nFROM a\n").expect("parses");
        assert_eq!(df.directives.len(), 1);
        assert_eq!(df.escape, '\\');
        let err = parse("# escape=\\\n# escape=`\nFROM a\n").expect_err("duplicate");
        assert_eq!(
            err.kind,
            ParseErrorKind::DuplicateDirective {
                name: "escape".into()
            }
        );
        let err = parse("# escape=x\nFROM a\n").expect_err("bad escape");
        assert!(matches!(err.kind, ParseErrorKind::InvalidEscape { .. }));
    }

    #[test]
    fn empty_continuation_warns() {
        let df = parse("FROM a\nRUN a \\\n\n  b\n").expect("parses");
        assert_eq!(df.warnings.len(), 1);
        assert_eq!(df.dump(), "(from \"a\")\n(run \"a   b\")\n");
    }

    #[test]
    fn comments_above_an_instruction() {
        let df = parse("# a base\n# for things\nFROM x AS b\n\n# unrelated\n\nFROM y\n")
            .expect("parses");
        assert_eq!(
            df.nodes[0].comments,
            vec!["a base".to_string(), "for things".to_string()]
        );
        // Blank lines do not separate a comment from the next instruction.
        assert_eq!(df.nodes[1].comments, vec!["unrelated".to_string()]);
    }
}
