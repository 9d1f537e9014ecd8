//! Go's `text/template`, as far as Docker's `--format` needs it, evaluated
//! against a `serde_json::Value` (the stand-in for Go's `interface{}`
//! data, like `docker inspect`'s raw JSON).
//!
//! Supported: text and `{{- -}}` trimming, comments, fields (`.A.B`),
//! `.`, variables (`$`, `$x := …`, `$x = …`, `$x.A`), literals (strings
//! with Go escapes, raw strings, chars, numbers, `true`/`false`/`nil`),
//! parenthesised pipelines and chains (`(index . "a").B`), pipelines
//! (`.A | json`), `if`/`else if`/`else`, `with`/`else with`, `range`
//! (arrays, maps in key order, integers; one or two variables; `else`;
//! `break`/`continue`). Functions: Go's `and or not len index slice print
//! printf println eq ne lt le gt ge html js urlquery` and Docker's `json
//! split join title lower upper pad truncate`.
//!
//! Not supported: `define`, `template`, `block` and `call` (Docker's
//! formats have no use for them), complex numbers, method calls.
//!
//! Where JSON loses Go's types, we pick Docker's typed behaviour: a `null`
//! is a nil map (its fields are `<no value>`, not an error), integral
//! numbers are ints, and `index` of a missing key in a map of strings (or
//! `null`) is `""`, as on Docker's `map[string]string` labels.
//!
//! Error messages are Go's (`template: :1: function "foo" not defined`,
//! `template: :1:2: executing "" at <.A>: …`); the caller adds Docker's
//! `template parsing error: ` prefix. Reference:
//! <https://pkg.go.dev/text/template>.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Number, Value};

use super::gofmt::{self, go_type, sprint_value};

/// How deeply controls and parentheses may nest; a hostile format cannot
/// exhaust the stack.
const MAX_DEPTH: usize = 100;

/// A failure to parse or execute a template, worded as Go words it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TemplateError {
    #[error("template: :{line}: {kind}{}", action_started(.kind, *.started))]
    Parse {
        line: usize,
        /// The line where the unclosed action began, when elsewhere.
        started: Option<usize>,
        kind: ParseErrorKind,
    },
    #[error("template: :{line}:{column}: executing \"\" at <{context}>: {kind}")]
    Exec {
        line: usize,
        /// Byte offset in the line, from 0 (Go's convention).
        column: usize,
        /// The source of the node being executed, as Go prints it.
        context: String,
        kind: ExecErrorKind,
    },
}

fn action_started(kind: &ParseErrorKind, started: Option<usize>) -> String {
    match started {
        // Go avoids "action in action".
        Some(l) if kind.to_string().ends_with(" action") => format!(" started at :{l}"),
        Some(l) => format!(" in action started at :{l}"),
        None => String::new(),
    }
}

/// Why a template does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ParseErrorKind {
    #[error("unclosed action")]
    UnclosedAction,
    #[error("unclosed comment")]
    UnclosedComment,
    #[error("comment ends before closing delimiter")]
    CommentNotClosed,
    #[error("unclosed left paren")]
    UnclosedLeftParen,
    #[error("unexpected right paren U+0029 ')'")]
    UnexpectedRightParen,
    #[error("expected :=")]
    ExpectedDeclare,
    #[error("unrecognized character in action: {}", go_char(*.0))]
    UnrecognizedCharacter(char),
    #[error("bad character {}", go_char(*.0))]
    BadCharacter(char),
    #[error("bad number syntax: {}", gofmt::quote(.0))]
    BadNumber(String),
    #[error("illegal number syntax: {}", gofmt::quote(.0))]
    IllegalNumber(String),
    #[error("unterminated quoted string")]
    UnterminatedString,
    #[error("unterminated raw quoted string")]
    UnterminatedRawString,
    #[error("unterminated character constant")]
    UnterminatedChar,
    #[error("invalid syntax")]
    InvalidSyntax,
    #[error("malformed character constant: {0}")]
    MalformedChar(String),
    #[error("function {} not defined", gofmt::quote(.0))]
    FunctionNotDefined(String),
    #[error("undefined variable {}", gofmt::quote(.0))]
    UndefinedVariable(String),
    #[error("unexpected {token} in {context}")]
    Unexpected { token: String, context: String },
    #[error("unexpected {0}")]
    UnexpectedEndOrElse(&'static str),
    #[error("unexpected EOF")]
    UnexpectedEof,
    #[error("missing value for {0}")]
    MissingValue(String),
    #[error("non executable command in pipeline stage {0}")]
    NonExecutable(usize),
    #[error("expected end; found {0}")]
    ExpectedEnd(&'static str),
    #[error("empty command")]
    EmptyCommand,
    #[error("unexpected . after term {}", gofmt::quote(.0))]
    DotAfterTerm(String),
    #[error("{{{{{0}}}}} outside {{{{range}}}}")]
    OutsideRange(&'static str),
    #[error("range can only initialize variables")]
    RangeVariables,
    #[error("too many declarations in {0}")]
    TooManyDeclarations(String),
    #[error("max expression depth exceeded")]
    TooDeep,
    #[error("{0} is not supported")]
    Unsupported(&'static str),
}

/// Go's `%#U`: `U+0021 '!'`.
fn go_char(c: char) -> String {
    if gofmt::is_print(c) {
        format!("U+{:04X} '{c}'", c as u32)
    } else {
        format!("U+{:04X}", c as u32)
    }
}

/// Why executing a template failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ExecErrorKind {
    #[error("can't evaluate field {field} in type {typ}")]
    CantEvaluateField { field: String, typ: &'static str },
    #[error("{0} is not a method but has arguments")]
    NotAMethod(String),
    #[error("can't give argument to non-function {0}")]
    NotAFunction(String),
    #[error("nil is not a command")]
    NilIsNotACommand,
    #[error("range can't iterate over {0}")]
    CantIterate(String),
    #[error("wrong number of args for {name}: want {}{want} got {got}", if *.at_least { "at least " } else { "" })]
    WrongArgCount {
        name: String,
        want: usize,
        got: usize,
        at_least: bool,
    },
    #[error("invalid value; expected {0}")]
    InvalidValue(&'static str),
    #[error("wrong type for value; expected {want}; got {got}")]
    WrongType {
        want: &'static str,
        got: &'static str,
    },
    #[error("expected {want}; found {found}")]
    ExpectedLiteral { want: &'static str, found: String },
    #[error("undefined variable: {0}")]
    UndefinedVariable(String),
    #[error("cannot assign nil to {0}")]
    CannotAssignNil(&'static str),
    #[error("{0} overflows int")]
    Overflow(String),
    #[error("error calling {name}: {source}")]
    Call {
        name: String,
        #[source]
        source: CallError,
    },
}

/// Why a template function refused its arguments.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CallError {
    #[error("index out of range: {0}")]
    IndexOutOfRange(i128),
    #[error("cannot index slice/array with nil")]
    IndexWithNil,
    #[error("cannot index slice/array with type {0}")]
    IndexWithType(&'static str),
    #[error("index of untyped nil")]
    IndexOfNil,
    #[error("can't index item of type {0}")]
    CantIndex(&'static str),
    #[error("value has type {0}; should be string")]
    KeyType(&'static str),
    #[error("slice of untyped nil")]
    SliceOfNil,
    #[error("too many slice indexes: {0}")]
    TooManySliceIndexes(usize),
    #[error("cannot 3-index slice a string")]
    ThreeIndexString,
    #[error("can't slice item of type {0}")]
    CantSlice(&'static str),
    #[error("invalid slice index: {0} > {1}")]
    InvalidSliceIndex(i128, i128),
    #[error("len of nil pointer")]
    LenOfNil,
    #[error("len of type {0}")]
    LenOfType(&'static str),
    #[error("missing argument for comparison")]
    NoComparison,
    #[error("invalid type for comparison")]
    BadComparisonType,
    #[error("incompatible types for comparison")]
    BadComparison,
    #[error("expected slice, got {0}")]
    ExpectedSlice(&'static str),
    #[error("strings: negative Repeat count")]
    NegativeCount,
    /// kiln's limit, so that a typo cannot exhaust memory.
    #[error("pad count {0} is over {MAX_PAD}")]
    PadTooLarge(i128),
    #[error("runtime error: slice bounds out of range [:{0}]")]
    SliceBounds(i128),
}

/// The most spaces `pad` adds on one side.
const MAX_PAD: i128 = 1 << 20;

// ---------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

impl Keyword {
    fn from_word(w: &str) -> Option<Keyword> {
        Some(match w {
            "block" => Keyword::Block,
            "break" => Keyword::Break,
            "continue" => Keyword::Continue,
            "define" => Keyword::Define,
            "else" => Keyword::Else,
            "end" => Keyword::End,
            "if" => Keyword::If,
            "range" => Keyword::Range,
            "template" => Keyword::Template,
            "with" => Keyword::With,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Text,
    LeftDelim,
    RightDelim,
    Space,
    Ident,
    Field,
    Dot,
    Variable,
    Str,
    RawStr,
    CharConst,
    Number,
    Complex,
    Bool,
    Nil,
    Pipe,
    LeftParen,
    RightParen,
    Declare,
    Assign,
    /// A lone printable ASCII character such as `,`.
    Char,
    Keyword(Keyword),
    Eof,
    Error(ParseErrorKind),
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    /// Byte offset of the token in the source.
    pos: usize,
    line: usize,
    /// The token's source text (for text, the text after trimming).
    val: String,
}

impl fmt::Display for Token {
    /// As Go's `item.String`, for "unexpected X in Y".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Tok::Eof => f.write_str("EOF"),
            Tok::Error(e) => write!(f, "{e}"),
            Tok::Keyword(_) | Tok::Dot | Tok::Nil => write!(f, "<{}>", self.val),
            _ if self.val.chars().count() > 10 => {
                let head: String = self.val.chars().take(10).collect();
                write!(f, "{}...", gofmt::quote(&head))
            }
            _ => f.write_str(&gofmt::quote(&self.val)),
        }
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

fn has_left_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && b[0] == b'-' && is_space(char::from(b[1]))
}

fn has_right_trim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 2 && is_space(char::from(b[0])) && b[1] == b'-'
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    start: usize,
    paren_depth: i64,
    toks: Vec<Token>,
}

impl<'a> Lexer<'a> {
    /// All the tokens, ending with `Eof` or an `Error` token (which the
    /// parser reports when it gets there, as Go's does).
    fn lex(src: &'a str) -> Vec<Token> {
        let mut l = Lexer {
            src,
            pos: 0,
            start: 0,
            paren_depth: 0,
            toks: Vec::new(),
        };
        l.run();
        l.toks
    }

    fn line_at(&self, pos: usize) -> usize {
        1 + self.src[..pos].matches('\n').count()
    }

    fn emit(&mut self, kind: Tok) {
        let val = self.src[self.start..self.pos].to_string();
        self.toks.push(Token {
            kind,
            pos: self.start,
            line: self.line_at(self.start),
            val,
        });
        self.start = self.pos;
    }

    fn fail(&mut self, kind: ParseErrorKind) {
        self.toks.push(Token {
            kind: Tok::Error(kind),
            pos: self.start,
            line: self.line_at(self.start),
            val: String::new(),
        });
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn accept(&mut self, set: &str) -> bool {
        match self.peek() {
            Some(c) if set.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn accept_run(&mut self, set: &str) {
        while self.accept(set) {}
    }

    fn run(&mut self) {
        loop {
            // Text up to the next "{{".
            let Some(x) = self.rest().find("{{") else {
                self.pos = self.src.len();
                if self.pos > self.start {
                    self.emit(Tok::Text);
                }
                self.emit(Tok::Eof);
                return;
            };
            let delim = self.pos + x;
            let mut text_end = delim;
            if has_left_trim(&self.src[delim + 2..]) {
                let text = &self.src[self.start..delim];
                text_end = self.start + text.trim_end_matches(is_space).len();
            }
            if text_end > self.start {
                self.pos = text_end;
                self.emit(Tok::Text);
            }
            self.pos = delim;
            self.start = delim;
            if !self.left_delim() {
                return;
            }
        }
    }

    fn right_trim_len(&self) -> usize {
        self.rest().len() - self.rest().trim_start_matches(is_space).len()
    }

    /// Just after `{{`, maybe `{{- `; false once an error token is out.
    fn left_delim(&mut self) -> bool {
        self.pos += 2;
        let trim = has_left_trim(self.rest());
        let after = if trim { 2 } else { 0 };
        if self.src[self.pos + after..].starts_with("/*") {
            self.pos += after;
            self.start = self.pos;
            return self.comment();
        }
        self.emit(Tok::LeftDelim);
        self.pos += after;
        self.start = self.pos;
        self.paren_depth = 0;
        self.inside_action()
    }

    fn comment(&mut self) -> bool {
        self.pos += 2;
        let Some(i) = self.rest().find("*/") else {
            self.fail(ParseErrorKind::UnclosedComment);
            return false;
        };
        self.pos += i + 2;
        let Some(trim) = self.at_right_delim() else {
            self.fail(ParseErrorKind::CommentNotClosed);
            return false;
        };
        self.pos += if trim { 4 } else { 2 };
        if trim {
            self.pos += self.right_trim_len();
        }
        self.start = self.pos;
        true
    }

    /// At `}}` or ` -}}`: Some(whether trimming).
    fn at_right_delim(&self) -> Option<bool> {
        let rest = self.rest();
        if has_right_trim(rest) && rest[2..].starts_with("}}") {
            Some(true)
        } else if rest.starts_with("}}") {
            Some(false)
        } else {
            None
        }
    }

    fn right_delim(&mut self, trim: bool) {
        if trim {
            self.pos += 2;
            self.start = self.pos;
        }
        self.pos += 2;
        self.emit(Tok::RightDelim);
        if trim {
            self.pos += self.right_trim_len();
            self.start = self.pos;
        }
    }

    fn at_terminator(&self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) => true,
            Some('.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => self.rest().starts_with("}}"),
        }
    }

    fn inside_action(&mut self) -> bool {
        loop {
            if let Some(trim) = self.at_right_delim() {
                if self.paren_depth == 0 {
                    self.right_delim(trim);
                    return true;
                }
                self.fail(ParseErrorKind::UnclosedLeftParen);
                return false;
            }
            let Some(c) = self.next() else {
                self.fail(ParseErrorKind::UnclosedAction);
                return false;
            };
            let ok = match c {
                c if is_space(c) => {
                    self.pos -= c.len_utf8();
                    self.space();
                    true
                }
                '=' => {
                    self.emit(Tok::Assign);
                    true
                }
                ':' => {
                    if self.next() == Some('=') {
                        self.emit(Tok::Declare);
                        true
                    } else {
                        self.fail(ParseErrorKind::ExpectedDeclare);
                        false
                    }
                }
                '|' => {
                    self.emit(Tok::Pipe);
                    true
                }
                '"' => self.quote(),
                '`' => self.raw_quote(),
                '$' => self.field_or_variable(Tok::Variable),
                '\'' => self.char_constant(),
                '.' if self.peek().is_some_and(|c| !c.is_ascii_digit()) => {
                    self.field_or_variable(Tok::Field)
                }
                '.' | '+' | '-' | '0'..='9' => {
                    self.pos -= 1;
                    self.number()
                }
                c if is_alphanumeric(c) => {
                    self.pos -= c.len_utf8();
                    self.identifier()
                }
                '(' => {
                    self.emit(Tok::LeftParen);
                    self.paren_depth += 1;
                    true
                }
                ')' => {
                    self.emit(Tok::RightParen);
                    self.paren_depth -= 1;
                    if self.paren_depth < 0 {
                        self.fail(ParseErrorKind::UnexpectedRightParen);
                        false
                    } else {
                        true
                    }
                }
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.emit(Tok::Char);
                    true
                }
                c => {
                    self.fail(ParseErrorKind::UnrecognizedCharacter(c));
                    false
                }
            };
            if !ok {
                return false;
            }
        }
    }

    /// A run of spaces; the last one stays when it starts ` -}}`.
    fn space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
        let before = &self.src[self.pos - 1..];
        if has_right_trim(before) && before[2..].starts_with("}}") {
            self.pos -= 1;
        }
        if self.pos > self.start {
            self.emit(Tok::Space);
        }
    }

    fn identifier(&mut self) -> bool {
        while self.peek().is_some_and(is_alphanumeric) {
            self.next();
        }
        if !self.at_terminator() {
            let c = self.peek().unwrap_or('\0');
            self.fail(ParseErrorKind::BadCharacter(c));
            return false;
        }
        let word = &self.src[self.start..self.pos];
        let kind = match word {
            "true" | "false" => Tok::Bool,
            "nil" => Tok::Nil,
            w => Keyword::from_word(w).map_or(Tok::Ident, Tok::Keyword),
        };
        self.emit(kind);
        true
    }

    /// After `.` or `$`: `.Name`, `$name`, or a lone `.` / `$`.
    fn field_or_variable(&mut self, kind: Tok) -> bool {
        if self.at_terminator() {
            self.emit(if kind == Tok::Field { Tok::Dot } else { kind });
            return true;
        }
        while self.peek().is_some_and(is_alphanumeric) {
            self.next();
        }
        if !self.at_terminator() {
            let c = self.peek().unwrap_or('\0');
            self.fail(ParseErrorKind::BadCharacter(c));
            return false;
        }
        self.emit(kind);
        true
    }

    fn char_constant(&mut self) -> bool {
        loop {
            match self.next() {
                Some('\\') => {
                    if matches!(self.next(), None | Some('\n')) {
                        self.fail(ParseErrorKind::UnterminatedChar);
                        return false;
                    }
                }
                None | Some('\n') => {
                    self.fail(ParseErrorKind::UnterminatedChar);
                    return false;
                }
                Some('\'') => break,
                Some(_) => {}
            }
        }
        self.emit(Tok::CharConst);
        true
    }

    fn quote(&mut self) -> bool {
        loop {
            match self.next() {
                Some('\\') => {
                    if matches!(self.next(), None | Some('\n')) {
                        self.fail(ParseErrorKind::UnterminatedString);
                        return false;
                    }
                }
                None | Some('\n') => {
                    self.fail(ParseErrorKind::UnterminatedString);
                    return false;
                }
                Some('"') => break,
                Some(_) => {}
            }
        }
        self.emit(Tok::Str);
        true
    }

    fn raw_quote(&mut self) -> bool {
        loop {
            match self.next() {
                None => {
                    self.fail(ParseErrorKind::UnterminatedRawString);
                    return false;
                }
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.emit(Tok::RawStr);
        true
    }

    fn number(&mut self) -> bool {
        if !self.scan_number() {
            let text = self.src[self.start..self.pos].to_string();
            self.fail(ParseErrorKind::BadNumber(text));
            return false;
        }
        if matches!(self.peek(), Some('+' | '-')) {
            if !self.scan_number() || !self.src[..self.pos].ends_with('i') {
                let text = self.src[self.start..self.pos].to_string();
                self.fail(ParseErrorKind::BadNumber(text));
                return false;
            }
            self.emit(Tok::Complex);
        } else {
            self.emit(Tok::Number);
        }
        true
    }

    /// Go's permissive number scanner; the parser checks the syntax.
    fn scan_number(&mut self) -> bool {
        const DECIMAL: &str = "0123456789_";
        const HEX: &str = "0123456789abcdefABCDEF_";
        self.accept("+-");
        let mut digits = DECIMAL;
        if self.accept("0") {
            if self.accept("xX") {
                digits = HEX;
            } else if self.accept("oO") {
                digits = "01234567_";
            } else if self.accept("bB") {
                digits = "01_";
            }
        }
        self.accept_run(digits);
        if self.accept(".") {
            self.accept_run(digits);
        }
        if digits == DECIMAL && self.accept("eE") {
            self.accept("+-");
            self.accept_run(DECIMAL);
        }
        if digits == HEX && self.accept("pP") {
            self.accept("+-");
            self.accept_run(DECIMAL);
        }
        self.accept("i");
        if self.peek().is_some_and(is_alphanumeric) {
            self.next();
            return false;
        }
        true
    }
}

// ---------------------------------------------------------------------------
// Syntax tree

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipe),
    If(Control),
    With(Control),
    Range(Control),
    Break,
    Continue,
}

#[derive(Debug, Clone)]
struct Control {
    pipe: Pipe,
    list: Vec<Node>,
    else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
struct Pipe {
    pos: usize,
    decl: Vec<String>,
    is_assign: bool,
    cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
struct Cmd {
    pos: usize,
    args: Vec<Arg>,
}

#[derive(Debug, Clone)]
enum Arg {
    Field {
        pos: usize,
        names: Vec<String>,
    },
    Variable {
        pos: usize,
        name: String,
        names: Vec<String>,
    },
    Chain {
        pos: usize,
        term: Box<Arg>,
        names: Vec<String>,
    },
    Func {
        pos: usize,
        name: String,
    },
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number {
        pos: usize,
        text: String,
        value: Value,
    },
    Str {
        pos: usize,
        quoted: String,
        value: String,
    },
    Pipe(Box<Pipe>),
}

impl Arg {
    fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Variable { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Func { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::Number { pos, .. }
            | Arg::Str { pos, .. } => *pos,
            Arg::Pipe(p) => p.pos,
        }
    }

    /// A literal that cannot start a later pipeline stage.
    fn is_literal(&self) -> bool {
        matches!(
            self,
            Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number { .. } | Arg::Str { .. }
        )
    }
}

// Go's node String() forms, for error contexts.

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = |f: &mut fmt::Formatter<'_>, names: &[String]| -> fmt::Result {
            for n in names {
                write!(f, ".{n}")?;
            }
            Ok(())
        };
        match self {
            Arg::Field { names, .. } => fields(f, names),
            Arg::Variable { name, names, .. } => {
                f.write_str(name)?;
                fields(f, names)
            }
            Arg::Chain { term, names, .. } => {
                write!(f, "{term}")?;
                fields(f, names)
            }
            Arg::Func { name, .. } => f.write_str(name),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number { text, .. } => f.write_str(text),
            Arg::Str { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "({p})"),
        }
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, list: &[Node]) -> fmt::Result {
    for n in list {
        write!(f, "{n}")?;
    }
    Ok(())
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let control = |f: &mut fmt::Formatter<'_>, name: &str, c: &Control| -> fmt::Result {
            write!(f, "{{{{{name} {}}}}}", c.pipe)?;
            write_list(f, &c.list)?;
            if let Some(e) = &c.else_list {
                f.write_str("{{else}}")?;
                write_list(f, e)?;
            }
            f.write_str("{{end}}")
        };
        match self {
            Node::Text(t) => f.write_str(t),
            Node::Action(p) => write!(f, "{{{{{p}}}}}"),
            Node::If(c) => control(f, "if", c),
            Node::With(c) => control(f, "with", c),
            Node::Range(c) => control(f, "range", c),
            Node::Break => f.write_str("{{break}}"),
            Node::Continue => f.write_str("{{continue}}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Functions

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    And,
    Or,
    Not,
    Len,
    Index,
    Slice,
    Print,
    Printf,
    Println,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Html,
    Js,
    Urlquery,
    Json,
    Split,
    Join,
    Title,
    Lower,
    Upper,
    Pad,
    Truncate,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "and" => Func::And,
            "or" => Func::Or,
            "not" => Func::Not,
            "len" => Func::Len,
            "index" => Func::Index,
            "slice" => Func::Slice,
            "print" => Func::Print,
            "printf" => Func::Printf,
            "println" => Func::Println,
            "eq" => Func::Eq,
            "ne" => Func::Ne,
            "lt" => Func::Lt,
            "le" => Func::Le,
            "gt" => Func::Gt,
            "ge" => Func::Ge,
            "html" => Func::Html,
            "js" => Func::Js,
            "urlquery" => Func::Urlquery,
            "json" => Func::Json,
            "split" => Func::Split,
            "join" => Func::Join,
            "title" => Func::Title,
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "pad" => Func::Pad,
            "truncate" => Func::Truncate,
            _ => return None,
        })
    }

    /// Fixed parameters, and the type of the variadic rest if any. For
    /// the header row Docker swaps in functions that return their first
    /// argument (`templates.HeaderFunctions`), with string parameters.
    fn signature(self, header: bool) -> (&'static [Param], Option<Param>) {
        use Param::{Any, Int, Str};
        if header {
            match self {
                Func::Json | Func::Title | Func::Lower | Func::Upper => return (&[Str], None),
                Func::Split | Func::Join => return (&[Str, Str], None),
                Func::Truncate => return (&[Str, Int], None),
                _ => {}
            }
        }
        match self {
            Func::And | Func::Or | Func::Eq | Func::Index | Func::Slice => (&[Any], Some(Any)),
            Func::Not | Func::Len | Func::Json => (&[Any], None),
            Func::Print | Func::Println | Func::Html | Func::Js | Func::Urlquery => {
                (&[], Some(Any))
            }
            Func::Printf => (&[Str], Some(Any)),
            Func::Ne | Func::Lt | Func::Le | Func::Gt | Func::Ge => (&[Any, Any], None),
            Func::Split => (&[Str, Str], None),
            Func::Join => (&[Any, Str], None),
            Func::Title | Func::Lower | Func::Upper => (&[Str], None),
            Func::Pad => (&[Str, Int, Int], None),
            Func::Truncate => (&[Str, Int], None),
        }
    }
}

/// The Go type a function parameter wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    Any,
    Str,
    Int,
}

impl Param {
    fn go_name(self) -> &'static str {
        match self {
            Param::Any => "interface {}",
            Param::Str => "string",
            Param::Int => "int",
        }
    }
}

// ---------------------------------------------------------------------------
// Parser

/// Recursive descent over the tokens, with Go's grammar and messages.
struct Parser<'a> {
    toks: &'a [Token],
    /// The next token; may run past the end (see `next`).
    i: usize,
    /// The furthest token looked at: Go reports errors at its line.
    furthest: usize,
    /// Variables in scope (`$` always is).
    vars: Vec<String>,
    /// How many `range`s enclose us, for `break` and `continue`.
    range_depth: usize,
    /// Nesting of controls and parentheses, against `MAX_DEPTH`.
    depth: usize,
    /// The line of the action being parsed, for "started at" messages.
    action_line: Option<usize>,
}

/// What `text_or_action` found.
enum Item {
    Node(Node),
    End,
    /// `{{else}}`, or `{{else if …`/`{{else with …` with the keyword left
    /// to read.
    Else(Option<Keyword>),
}

type PResult<T> = Result<T, TemplateError>;

impl<'a> Parser<'a> {
    fn new(toks: &'a [Token]) -> Self {
        Parser {
            toks,
            i: 0,
            furthest: 0,
            vars: vec!["$".into()],
            range_depth: 0,
            depth: 0,
            action_line: None,
        }
    }

    fn tok(&self, i: usize) -> &'a Token {
        // The lexer always ends the list with Eof or an error, and the
        // parser stops at either.
        let last = self.toks.len().saturating_sub(1);
        &self.toks[i.min(last)]
    }

    fn peek(&mut self) -> &'a Token {
        self.furthest = self.furthest.max(self.i);
        self.tok(self.i)
    }

    /// The next token. Past the end, the last (`Eof` or an error) again;
    /// the index keeps counting so that a backup stays exact.
    fn next(&mut self) -> &'a Token {
        let t = self.peek();
        self.i += 1;
        t
    }

    fn skip_spaces(&mut self) {
        while self.peek().kind == Tok::Space {
            self.i += 1;
        }
    }

    fn peek_non_space(&mut self) -> &'a Token {
        self.skip_spaces();
        self.peek()
    }

    fn next_non_space(&mut self) -> &'a Token {
        self.skip_spaces();
        self.next()
    }

    /// An error at the most recently read token's line, as Go reports.
    fn error(&self, kind: ParseErrorKind) -> TemplateError {
        TemplateError::Parse {
            line: self.tok(self.furthest).line,
            started: None,
            kind,
        }
    }

    fn unexpected(&self, tok: &Token, context: &str) -> TemplateError {
        if let Tok::Error(kind) = &tok.kind {
            let started = self.action_line.filter(|l| *l != tok.line);
            return TemplateError::Parse {
                line: tok.line,
                started,
                kind: kind.clone(),
            };
        }
        self.error(ParseErrorKind::Unexpected {
            token: tok.to_string(),
            context: context.to_string(),
        })
    }

    fn expect(&mut self, kind: &Tok, context: &str) -> PResult<&'a Token> {
        let t = self.next_non_space();
        if &t.kind != kind {
            return Err(self.unexpected(t, context));
        }
        Ok(t)
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(ParseErrorKind::TooDeep));
        }
        Ok(())
    }

    fn parse(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek().kind != Tok::Eof {
            match self.text_or_action()? {
                Item::Node(n) => root.push(n),
                Item::End => return Err(self.error(ParseErrorKind::UnexpectedEndOrElse("{{end}}"))),
                Item::Else(_) => {
                    return Err(self.error(ParseErrorKind::UnexpectedEndOrElse("{{else}}")))
                }
            }
        }
        Ok(root)
    }

    /// Nodes up to `{{end}}` or `{{else}}`, which is returned too.
    fn item_list(&mut self) -> PResult<(Vec<Node>, Item)> {
        let mut list = Vec::new();
        while self.peek_non_space().kind != Tok::Eof {
            match self.text_or_action()? {
                Item::Node(n) => list.push(n),
                end => return Ok((list, end)),
            }
        }
        Err(self.error(ParseErrorKind::UnexpectedEof))
    }

    fn text_or_action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        match t.kind {
            Tok::Text => Ok(Item::Node(Node::Text(t.val.clone()))),
            Tok::LeftDelim => {
                let outer = self.action_line.replace(t.line);
                let item = self.action();
                self.action_line = outer;
                item
            }
            _ => Err(self.unexpected(t, "input")),
        }
    }

    fn action(&mut self) -> PResult<Item> {
        let t = self.next_non_space();
        match t.kind {
            Tok::Keyword(Keyword::Block) => {
                Err(self.error(ParseErrorKind::Unsupported("{{block}}")))
            }
            Tok::Keyword(Keyword::Define) => {
                Err(self.error(ParseErrorKind::Unsupported("{{define}}")))
            }
            Tok::Keyword(Keyword::Template) => {
                Err(self.error(ParseErrorKind::Unsupported("{{template}}")))
            }
            Tok::Keyword(k @ (Keyword::Break | Keyword::Continue)) => {
                let (name, node) = if k == Keyword::Break {
                    ("break", Node::Break)
                } else {
                    ("continue", Node::Continue)
                };
                let t = self.next_non_space();
                if t.kind != Tok::RightDelim {
                    return Err(self.unexpected(t, &format!("{{{{{name}}}}}")));
                }
                if self.range_depth == 0 {
                    return Err(self.error(ParseErrorKind::OutsideRange(name)));
                }
                Ok(Item::Node(node))
            }
            Tok::Keyword(Keyword::Else) => {
                let p = self.peek_non_space();
                match p.kind {
                    Tok::Keyword(k @ (Keyword::If | Keyword::With)) => Ok(Item::Else(Some(k))),
                    _ => {
                        self.expect(&Tok::RightDelim, "else")?;
                        Ok(Item::Else(None))
                    }
                }
            }
            Tok::Keyword(Keyword::End) => {
                self.expect(&Tok::RightDelim, "end")?;
                Ok(Item::End)
            }
            Tok::Keyword(Keyword::If) => Ok(Item::Node(Node::If(self.control("if")?))),
            Tok::Keyword(Keyword::With) => Ok(Item::Node(Node::With(self.control("with")?))),
            Tok::Keyword(Keyword::Range) => Ok(Item::Node(Node::Range(self.control("range")?))),
            _ => {
                self.i -= 1;
                let pipe = self.pipeline("command", &Tok::RightDelim)?;
                Ok(Item::Node(Node::Action(pipe)))
            }
        }
    }

    /// `if`, `with` or `range`, after the keyword: pipeline, list, and an
    /// optional else list; `{{else if …}}` (and `{{else with …}}` in a
    /// `with`) nests a new control that shares the `{{end}}`.
    fn control(&mut self, context: &'static str) -> PResult<Control> {
        self.enter()?;
        let mark = self.vars.len();
        let pipe = self.pipeline(context, &Tok::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        // (`item_list` ends only at `{{end}}` or `{{else}}`.)
        let else_list = match next {
            Item::End | Item::Node(_) => None,
            Item::Else(chained) => {
                let nested = match (context, chained) {
                    ("if", Some(Keyword::If)) => Some(("if", Node::If as fn(Control) -> Node)),
                    ("with", Some(Keyword::With)) => {
                        Some(("with", Node::With as fn(Control) -> Node))
                    }
                    _ => None,
                };
                if let Some((kw, make)) = nested {
                    self.next_non_space();
                    Some(vec![make(self.control(kw)?)])
                } else {
                    let (list, end) = self.item_list()?;
                    if let Item::Else(_) = end {
                        return Err(self.error(ParseErrorKind::ExpectedEnd("{{else}}")));
                    }
                    Some(list)
                }
            }
        };
        self.vars.truncate(mark);
        self.depth -= 1;
        Ok(Control {
            pipe,
            list,
            else_list,
        })
    }

    fn pipeline(&mut self, context: &str, end: &Tok) -> PResult<Pipe> {
        let first = self.peek_non_space();
        let mut pipe = Pipe {
            pos: first.pos,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, `$i, $e :=` (range only).
        loop {
            let v = self.peek_non_space();
            if v.kind != Tok::Variable {
                break;
            }
            let save = self.i;
            self.next();
            let n = self.peek_non_space();
            match &n.kind {
                Tok::Assign | Tok::Declare => {
                    pipe.is_assign = n.kind == Tok::Assign;
                    self.next();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val.clone());
                    break;
                }
                Tok::Char if n.val == "," => {
                    self.next();
                    pipe.decl.push(v.val.clone());
                    self.vars.push(v.val.clone());
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().kind {
                            Tok::Variable | Tok::RightDelim | Tok::RightParen => continue,
                            _ => return Err(self.error(ParseErrorKind::RangeVariables)),
                        }
                    }
                    return Err(self.error(ParseErrorKind::TooManyDeclarations(context.into())));
                }
                _ => {
                    self.i = save;
                    break;
                }
            }
        }
        loop {
            let t = self.next_non_space();
            if &t.kind == end {
                if pipe.cmds.is_empty() {
                    return Err(self.error(ParseErrorKind::MissingValue(context.into())));
                }
                for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if c.args.first().is_some_and(Arg::is_literal) {
                        return Err(self.error(ParseErrorKind::NonExecutable(i + 1)));
                    }
                }
                return Ok(pipe);
            }
            match t.kind {
                Tok::Bool
                | Tok::CharConst
                | Tok::Complex
                | Tok::Dot
                | Tok::Field
                | Tok::Ident
                | Tok::Number
                | Tok::Nil
                | Tok::RawStr
                | Tok::Str
                | Tok::Variable
                | Tok::LeftParen => {
                    self.i -= 1;
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(t, context)),
            }
        }
    }

    fn command(&mut self) -> PResult<Cmd> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.skip_spaces();
            if let Some(a) = self.operand()? {
                args.push(a);
            }
            let t = self.next();
            match t.kind {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => {
                    self.i -= 1;
                    break;
                }
                Tok::Pipe => break,
                _ => return Err(self.unexpected(t, "operand")),
            }
        }
        if args.is_empty() {
            return Err(self.error(ParseErrorKind::EmptyCommand));
        }
        Ok(Cmd { pos, args })
    }

    /// A term and the fields that follow it without a space.
    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Tok::Field {
            return Ok(Some(term));
        }
        let pos = self.peek().pos;
        let mut more = Vec::new();
        while self.peek().kind == Tok::Field {
            more.push(self.next().val[1..].to_string());
        }
        Ok(Some(match term {
            Arg::Field { mut names, .. } => {
                names.extend(more);
                Arg::Field { pos, names }
            }
            Arg::Variable {
                name, mut names, ..
            } => {
                names.extend(more);
                Arg::Variable { pos, name, names }
            }
            t if t.is_literal() => {
                return Err(self.error(ParseErrorKind::DotAfterTerm(t.to_string())))
            }
            t => Arg::Chain {
                pos,
                term: Box::new(t),
                names: more,
            },
        }))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let t = self.next_non_space();
        let pos = t.pos;
        Ok(Some(match t.kind {
            Tok::Ident => {
                if Func::from_name(&t.val).is_none() {
                    return Err(self.error(ParseErrorKind::FunctionNotDefined(t.val.clone())));
                }
                Arg::Func {
                    pos,
                    name: t.val.clone(),
                }
            }
            Tok::Dot => Arg::Dot(pos),
            Tok::Nil => Arg::Nil(pos),
            Tok::Variable => {
                if !self.vars.contains(&t.val) {
                    return Err(self.error(ParseErrorKind::UndefinedVariable(t.val.clone())));
                }
                Arg::Variable {
                    pos,
                    name: t.val.clone(),
                    names: Vec::new(),
                }
            }
            Tok::Field => Arg::Field {
                pos,
                names: vec![t.val[1..].to_string()],
            },
            Tok::Bool => Arg::Bool(pos, t.val == "true"),
            Tok::Complex => return Err(self.error(ParseErrorKind::Unsupported("complex numbers"))),
            Tok::CharConst => {
                let c = unquote_char(&t.val)
                    .ok_or_else(|| self.error(ParseErrorKind::MalformedChar(t.val.clone())))?;
                Arg::Number {
                    pos,
                    text: t.val.clone(),
                    value: Value::from(u32::from(c)),
                }
            }
            Tok::Number => Arg::Number {
                pos,
                text: t.val.clone(),
                value: parse_number(&t.val)
                    .ok_or_else(|| self.error(ParseErrorKind::IllegalNumber(t.val.clone())))?,
            },
            Tok::LeftParen => {
                self.enter()?;
                let p = self.pipeline("parenthesized pipeline", &Tok::RightParen)?;
                self.depth -= 1;
                Arg::Pipe(Box::new(p))
            }
            Tok::Str | Tok::RawStr => Arg::Str {
                pos,
                quoted: t.val.clone(),
                value: unquote(&t.val).ok_or_else(|| self.error(ParseErrorKind::InvalidSyntax))?,
            },
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }
}

/// A Go number literal: integers in any base (`0x1f`, `0o17`, `017`,
/// `0b101`, `1_000`), else a float.
fn parse_number(text: &str) -> Option<Value> {
    let clean = text.replace('_', "");
    let (neg, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, &clean[..]),
    };
    let lower = body.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        u64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        u64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        u64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.bytes().all(|b| b.is_ascii_digit())
    {
        u64::from_str_radix(&lower[1..], 8).ok()
    } else if lower.bytes().all(|b| b.is_ascii_digit()) && !lower.is_empty() {
        lower.parse::<u64>().ok()
    } else {
        None
    };
    if let Some(u) = int {
        return if neg {
            i64::try_from(u).ok().map(|i| Value::from(-i))
        } else {
            Some(Value::from(u))
        };
    }
    if lower.starts_with("0x") || lower.contains("inf") || lower.contains("nan") {
        return None;
    }
    let f: f64 = clean.parse().ok()?;
    Number::from_f64(f).map(Value::Number)
}

/// Go's `strconv.Unquote` for `"…"` and `` `…` `` literals.
fn unquote(s: &str) -> Option<String> {
    if let Some(raw) = s.strip_prefix('`').and_then(|r| r.strip_suffix('`')) {
        // Carriage returns are dropped from raw strings.
        return Some(raw.replace('\r', ""));
    }
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = Vec::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        unescape(&mut chars, &mut out, '"')?;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// The rune of a `'…'` literal.
fn unquote_char(s: &str) -> Option<char> {
    let inner = s.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut chars = inner.chars();
    let c = chars.next()?;
    let c = if c == '\\' {
        let mut out = Vec::new();
        unescape(&mut chars, &mut out, '\'')?;
        let s = std::str::from_utf8(&out).ok()?;
        let mut it = s.chars();
        let c = it.next()?;
        if it.next().is_some() {
            return None;
        }
        c
    } else {
        c
    };
    if chars.next().is_some() {
        return None;
    }
    Some(c)
}

/// One escape after a backslash, as bytes (`\xff` is a byte in Go).
fn unescape(chars: &mut std::str::Chars<'_>, out: &mut Vec<u8>, quote: char) -> Option<()> {
    let c = chars.next()?;
    let simple = match c {
        'a' => Some(0x07),
        'b' => Some(0x08),
        'f' => Some(0x0c),
        'n' => Some(b'\n'),
        'r' => Some(b'\r'),
        't' => Some(b'\t'),
        'v' => Some(0x0b),
        '\\' => Some(b'\\'),
        c if c == quote => Some(c as u8),
        _ => None,
    };
    if let Some(b) = simple {
        out.push(b);
        return Some(());
    }
    let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<u32> {
        let s: String = chars.take(n).collect();
        if s.len() != n {
            return None;
        }
        u32::from_str_radix(&s, 16).ok()
    };
    match c {
        'x' => out.push(u8::try_from(hex(chars, 2)?).ok()?),
        'u' | 'U' => {
            let v = hex(chars, if c == 'u' { 4 } else { 8 })?;
            let ch = char::from_u32(v)?;
            let mut b = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
        }
        '0'..='7' => {
            let rest: String = chars.take(2).collect();
            let v = u32::from_str_radix(&format!("{c}{rest}"), 8).ok()?;
            if rest.len() != 2 {
                return None;
            }
            out.push(u8::try_from(v).ok()?);
        }
        _ => return None,
    }
    Some(())
}

// ---------------------------------------------------------------------------
// Template

/// A parsed template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    src: String,
    root: Vec<Node>,
}

impl Template {
    pub(crate) fn parse(src: &str) -> Result<Template, TemplateError> {
        let toks = Lexer::lex(src);
        let root = Parser::new(&toks).parse()?;
        Ok(Template {
            src: src.to_string(),
            root,
        })
    }

    /// Run the template with `data` as `.` and `$`.
    pub(crate) fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        let (out, result) = self.run(data, false);
        result.map(|()| out)
    }

    /// The header row of a `table` format: the template run on a map of
    /// each field it names to its title (`titles`, else the name in upper
    /// case), with Docker's header functions (`json`, `upper`, … return
    /// their argument). As in Docker, an error ends the header where it
    /// happened rather than failing the command.
    pub(crate) fn execute_header(&self, titles: &[(&str, &str)]) -> String {
        let mut header = Map::new();
        for name in self.field_names() {
            let title = titles
                .iter()
                .find(|(n, _)| *n == name)
                .map_or_else(|| name.to_uppercase(), |(_, t)| (*t).to_string());
            header.insert(name, Value::String(title));
        }
        for (n, t) in titles {
            header
                .entry((*n).to_string())
                .or_insert_with(|| Value::String((*t).to_string()));
        }
        self.run(&Value::Object(header), true).0
    }

    /// The first name of every field chain (`.A.B` gives `A`).
    fn field_names(&self) -> BTreeSet<String> {
        fn pipe(p: &Pipe, out: &mut BTreeSet<String>) {
            for c in &p.cmds {
                for a in &c.args {
                    arg(a, out);
                }
            }
        }
        fn arg(a: &Arg, out: &mut BTreeSet<String>) {
            match a {
                Arg::Field { names, .. } | Arg::Variable { names, .. } => {
                    if let Some(n) = names.first() {
                        out.insert(n.clone());
                    }
                }
                Arg::Chain { term, .. } => arg(term, out),
                Arg::Pipe(p) => pipe(p, out),
                _ => {}
            }
        }
        fn list(nodes: &[Node], out: &mut BTreeSet<String>) {
            for n in nodes {
                match n {
                    Node::Action(p) => pipe(p, out),
                    Node::If(c) | Node::With(c) | Node::Range(c) => {
                        pipe(&c.pipe, out);
                        list(&c.list, out);
                        if let Some(e) = &c.else_list {
                            list(e, out);
                        }
                    }
                    Node::Text(_) | Node::Break | Node::Continue => {}
                }
            }
        }
        let mut out = BTreeSet::new();
        list(&self.root, &mut out);
        out
    }

    fn run(&self, data: &Value, header: bool) -> (String, Result<(), TemplateError>) {
        let mut ex = Exec {
            src: &self.src,
            vars: vec![("$".into(), data.clone())],
            header,
            out: String::new(),
        };
        let result = ex.walk(data, &self.root).map(|_| ());
        (ex.out, result)
    }
}

// ---------------------------------------------------------------------------
// Execution

/// How a list of nodes ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'t> {
    src: &'t str,
    vars: Vec<(String, Value)>,
    header: bool,
    out: String,
}

type EResult<T> = Result<T, TemplateError>;

/// Go's truth: false, 0, nil, and empty strings, arrays and maps are
/// false.
fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

fn int_of(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => gofmt::as_int(n),
        _ => None,
    }
}

impl Exec<'_> {
    fn error(&self, pos: usize, context: &dyn fmt::Display, kind: ExecErrorKind) -> TemplateError {
        let before = &self.src[..pos.min(self.src.len())];
        let line = 1 + before.matches('\n').count();
        let column = before.rfind('\n').map_or(pos, |nl| pos - nl - 1);
        TemplateError::Exec {
            line,
            column,
            context: context.to_string(),
            kind,
        }
    }

    fn walk(&mut self, dot: &Value, nodes: &[Node]) -> EResult<Flow> {
        for node in nodes {
            let flow = match node {
                Node::Text(t) => {
                    self.out.push_str(t);
                    Flow::Normal
                }
                Node::Action(p) => {
                    let v = self.pipeline(dot, p)?;
                    if p.decl.is_empty() {
                        if v.is_null() {
                            self.out.push_str("<no value>");
                        } else {
                            self.out.push_str(&sprint_value(&v));
                        }
                    }
                    Flow::Normal
                }
                Node::If(c) | Node::With(c) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(dot, &c.pipe)?;
                    let flow = if truth(&v) {
                        let inner = if matches!(node, Node::With(_)) {
                            &v
                        } else {
                            dot
                        };
                        self.walk(inner, &c.list)?
                    } else if let Some(e) = &c.else_list {
                        self.walk(dot, e)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    flow
                }
                Node::Range(c) => {
                    let mark = self.vars.len();
                    self.range(dot, c)?;
                    self.vars.truncate(mark);
                    Flow::Normal
                }
                Node::Break => Flow::Break,
                Node::Continue => Flow::Continue,
            };
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, dot: &Value, c: &Control) -> EResult<()> {
        let v = self.commands(dot, &c.pipe)?;
        let items: Vec<(Value, Value)> = match v {
            Value::Array(a) => a
                .into_iter()
                .enumerate()
                .map(|(i, e)| (Value::from(i), e))
                .collect(),
            Value::Object(m) => {
                let mut entries: Vec<_> = m.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                entries
                    .into_iter()
                    .map(|(k, e)| (Value::String(k), e))
                    .collect()
            }
            Value::Null => Vec::new(),
            // Go 1.22: range over an integer counts from 0.
            Value::Number(ref n) if gofmt::as_int(n).is_some_and(|i| i >= 0) => {
                let n = gofmt::as_int(n)
                    .and_then(|i| u64::try_from(i).ok())
                    .unwrap_or(0);
                (0..n).map(|i| (Value::from(i), Value::from(i))).collect()
            }
            other => {
                let (pos, at) = last_evaluated(&c.pipe);
                let kind = ExecErrorKind::CantIterate(sprint_value(&other));
                return Err(self.error(pos, at, kind));
            }
        };
        if items.is_empty() {
            if let Some(e) = &c.else_list {
                self.walk(dot, e)?;
            }
            return Ok(());
        }
        for (key, elem) in items {
            let mark = self.vars.len();
            match c.pipe.decl.as_slice() {
                [e] => self.vars.push((e.clone(), elem.clone())),
                [k, e] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((e.clone(), elem.clone()));
                }
                _ => {}
            }
            let flow = self.walk(&elem, &c.list)?;
            self.vars.truncate(mark);
            if flow == Flow::Break {
                break;
            }
        }
        Ok(())
    }

    /// A pipeline's value, declaring or assigning its variables.
    fn pipeline(&mut self, dot: &Value, p: &Pipe) -> EResult<Value> {
        let v = self.commands(dot, p)?;
        for d in &p.decl {
            if p.is_assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == d) {
                    Some(slot) => slot.1 = v.clone(),
                    None => {
                        let (pos, at) = last_evaluated(p);
                        let kind = ExecErrorKind::UndefinedVariable(d.clone());
                        return Err(self.error(pos, at, kind));
                    }
                }
            } else {
                self.vars.push((d.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    /// Each command's value is the last argument of the next.
    fn commands(&mut self, dot: &Value, p: &Pipe) -> EResult<Value> {
        let mut last: Option<Value> = None;
        for c in &p.cmds {
            last = Some(self.command(dot, c, last)?);
        }
        Ok(last.unwrap_or(Value::Null))
    }

    fn variable(&self, name: &str) -> Value {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or(Value::Null, |(_, v)| v.clone())
    }

    fn not_a_function(&self, c: &Cmd, final_: Option<&Value>) -> EResult<()> {
        if c.args.len() > 1 || final_.is_some() {
            let first = &c.args[0];
            return Err(self.error(
                first.pos(),
                first,
                ExecErrorKind::NotAFunction(first.to_string()),
            ));
        }
        Ok(())
    }

    fn command(&mut self, dot: &Value, c: &Cmd, final_: Option<Value>) -> EResult<Value> {
        let first = &c.args[0];
        let has_args = c.args.len() > 1 || final_.is_some();
        match first {
            Arg::Field { names, .. } => self.fields(dot, names, has_args, first),
            Arg::Chain { term, names, .. } => {
                let receiver = self.arg(dot, term)?;
                self.fields(&receiver, names, has_args, first)
            }
            Arg::Variable { name, names, .. } => {
                let v = self.variable(name);
                if names.is_empty() {
                    self.not_a_function(c, final_.as_ref())?;
                    return Ok(v);
                }
                self.fields(&v, names, has_args, first)
            }
            Arg::Func { pos, name } => self.call(dot, name, *pos, c, &c.args[1..], final_),
            Arg::Pipe(p) => {
                self.not_a_function(c, final_.as_ref())?;
                self.commands(dot, p)
            }
            Arg::Nil(pos) => {
                self.not_a_function(c, final_.as_ref())?;
                Err(self.error(*pos, first, ExecErrorKind::NilIsNotACommand))
            }
            literal => {
                self.not_a_function(c, final_.as_ref())?;
                self.arg(dot, literal)
            }
        }
    }

    /// `.A.B…` on `receiver`; only the last field may be given arguments
    /// (which a map's entry refuses).
    fn fields(
        &self,
        receiver: &Value,
        names: &[String],
        has_args: bool,
        at: &Arg,
    ) -> EResult<Value> {
        let mut cur = receiver;
        for (i, name) in names.iter().enumerate() {
            let last = i + 1 == names.len();
            cur = match cur {
                // Missing data, or a nil map: the field has no value.
                Value::Null => return Ok(Value::Null),
                Value::Object(m) => {
                    if last && has_args {
                        return Err(self.error(
                            at.pos(),
                            at,
                            ExecErrorKind::NotAMethod(name.clone()),
                        ));
                    }
                    match m.get(name) {
                        Some(v) => v,
                        None => return Ok(Value::Null),
                    }
                }
                // A header cell is a title, whatever is inside the field.
                Value::String(_) if self.header => cur,
                _ => {
                    return Err(self.error(
                        at.pos(),
                        at,
                        // Data reaches a template as interface{} values.
                        ExecErrorKind::CantEvaluateField {
                            field: name.clone(),
                            typ: "interface {}",
                        },
                    ));
                }
            };
        }
        Ok(cur.clone())
    }

    /// The value of an argument (not a command: no arguments of its own).
    fn arg(&mut self, dot: &Value, a: &Arg) -> EResult<Value> {
        match a {
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Ok(Value::Null),
            Arg::Bool(_, b) => Ok(Value::Bool(*b)),
            Arg::Number { text, value, .. } => {
                if let Value::Number(n) = value {
                    if n.as_u64().is_some_and(|u| u > i64::MAX as u64) {
                        return Err(self.error(a.pos(), a, ExecErrorKind::Overflow(text.clone())));
                    }
                }
                Ok(value.clone())
            }
            Arg::Str { value, .. } => Ok(Value::String(value.clone())),
            Arg::Field { names, .. } => self.fields(dot, names, false, a),
            Arg::Variable { name, names, .. } => {
                let v = self.variable(name);
                self.fields(&v, names, false, a)
            }
            Arg::Chain { term, names, .. } => {
                let receiver = self.arg(dot, term)?;
                self.fields(&receiver, names, false, a)
            }
            Arg::Pipe(p) => self.pipeline(dot, p),
            Arg::Func { pos, name } => {
                let cmd = Cmd {
                    pos: *pos,
                    args: vec![a.clone()],
                };
                self.call(dot, name, *pos, &cmd, &[], None)
            }
        }
    }

    fn check_type(
        &self,
        v: Value,
        want: Param,
        pos: usize,
        at: &dyn fmt::Display,
    ) -> EResult<Value> {
        let ok = match (&v, want) {
            (_, Param::Any) | (Value::String(_), Param::Str) => true,
            (Value::Number(n), Param::Int) => gofmt::as_int(n).is_some(),
            _ => false,
        };
        if ok {
            return Ok(v);
        }
        let kind = if v.is_null() {
            ExecErrorKind::InvalidValue(want.go_name())
        } else {
            ExecErrorKind::WrongType {
                want: want.go_name(),
                got: go_type(&v),
            }
        };
        Err(self.error(pos, at, kind))
    }

    fn typed_arg(&mut self, dot: &Value, a: &Arg, want: Param) -> EResult<Value> {
        if matches!(a, Arg::Nil(_)) && want != Param::Any {
            return Err(self.error(a.pos(), a, ExecErrorKind::CannotAssignNil(want.go_name())));
        }
        // A literal of the wrong kind is refused before evaluation.
        let literal_ok = match (a, want) {
            (Arg::Str { .. }, Param::Str) | (_, Param::Any) => true,
            (Arg::Number { value, .. }, Param::Int) => int_of(value).is_some(),
            (Arg::Bool(..) | Arg::Number { .. } | Arg::Str { .. }, _) => false,
            _ => true,
        };
        if !literal_ok {
            let want = if want == Param::Int {
                "integer"
            } else {
                want.go_name()
            };
            return Err(self.error(
                a.pos(),
                a,
                ExecErrorKind::ExpectedLiteral {
                    want,
                    found: a.to_string(),
                },
            ));
        }
        let v = self.arg(dot, a)?;
        self.check_type(v, want, a.pos(), a)
    }

    fn call(
        &mut self,
        dot: &Value,
        name: &str,
        pos: usize,
        cmd: &Cmd,
        args: &[Arg],
        final_: Option<Value>,
    ) -> EResult<Value> {
        let Some(func) = Func::from_name(name) else {
            // The parser refused unknown names.
            return Err(self.error(pos, &name, ExecErrorKind::NotAFunction(name.into())));
        };
        let (fixed, rest) = func.signature(self.header);
        let num_in = args.len() + usize::from(final_.is_some());
        let arity = if rest.is_some() {
            (num_in < fixed.len()).then_some((fixed.len(), args.len(), true))
        } else {
            (num_in != fixed.len()).then_some((fixed.len(), num_in, false))
        };
        if let Some((want, got, at_least)) = arity {
            return Err(self.error(
                pos,
                &name,
                ExecErrorKind::WrongArgCount {
                    name: name.into(),
                    want,
                    got,
                    at_least,
                },
            ));
        }
        let param = |i: usize| fixed.get(i).copied().or(rest).unwrap_or(Param::Any);
        // and/or stop at the first argument that decides.
        if matches!(func, Func::And | Func::Or) {
            let mut last = Value::Null;
            for a in args {
                last = self.arg(dot, a)?;
                if truth(&last) == (func == Func::Or) {
                    return Ok(last);
                }
            }
            return Ok(final_.unwrap_or(last));
        }
        let mut argv = Vec::with_capacity(num_in);
        for (i, a) in args.iter().enumerate() {
            argv.push(self.typed_arg(dot, a, param(i))?);
        }
        if let Some(f) = final_ {
            argv.push(self.check_type(f, param(args.len()), pos, &name)?);
        }
        self.apply(func, argv).map_err(|source| {
            self.error(
                cmd.pos,
                cmd,
                ExecErrorKind::Call {
                    name: name.into(),
                    source,
                },
            )
        })
    }

    /// Run a function on checked arguments.
    fn apply(&self, func: Func, mut argv: Vec<Value>) -> Result<Value, CallError> {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let first = argv.first().cloned().unwrap_or(Value::Null);
        if self.header
            && matches!(
                func,
                Func::Json
                    | Func::Split
                    | Func::Join
                    | Func::Title
                    | Func::Lower
                    | Func::Upper
                    | Func::Truncate
            )
        {
            return Ok(first);
        }
        Ok(match func {
            // `call` evaluates these itself, stopping at the deciding
            // argument; this is the same rule on evaluated arguments.
            Func::And | Func::Or => {
                let want = func == Func::Or;
                argv.iter()
                    .find(|v| truth(v) == want)
                    .cloned()
                    .unwrap_or_else(|| argv.pop().unwrap_or(Value::Null))
            }
            Func::Not => Value::Bool(!truth(&first)),
            Func::Len => Value::from(length(&first)?),
            Func::Index => index(first, &argv[1..])?,
            Func::Slice => slice(first, &argv[1..])?,
            Func::Print => Value::String(gofmt::sprint(&argv)),
            Func::Println => Value::String(gofmt::sprintln(&argv)),
            Func::Printf => Value::String(gofmt::sprintf(&s(&first), &argv[1..])),
            Func::Eq => Value::Bool(eq(&first, &argv[1..])?),
            Func::Ne => Value::Bool(!eq(&first, &argv[1..])?),
            Func::Lt => Value::Bool(less(&first, &argv[1])?),
            Func::Le => Value::Bool(less(&first, &argv[1])? || eq(&first, &argv[1..])?),
            Func::Gt => Value::Bool(!(less(&first, &argv[1])? || eq(&first, &argv[1..])?)),
            Func::Ge => Value::Bool(!less(&first, &argv[1])?),
            Func::Html => Value::String(html_escape(&escaper_text(&argv))),
            Func::Js => Value::String(js_escape(&escaper_text(&argv))),
            Func::Urlquery => Value::String(query_escape(&escaper_text(&argv))),
            Func::Json => Value::String(gofmt::json(&first)),
            Func::Split => Value::Array(
                go_split(&s(&first), &s(&argv[1]))
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            ),
            Func::Join => Value::String(join(&first, &s(&argv[1]))?),
            Func::Title => Value::String(title(&s(&first))),
            Func::Lower => Value::String(map_chars(&s(&first), char::to_lowercase)),
            Func::Upper => Value::String(map_chars(&s(&first), char::to_uppercase)),
            Func::Pad => {
                let (pre, post) = (int_of(&argv[1]).unwrap_or(0), int_of(&argv[2]).unwrap_or(0));
                let text = s(&first);
                if text.is_empty() {
                    Value::String(text)
                } else {
                    let count = |n: i128| match usize::try_from(n) {
                        Err(_) => Err(CallError::NegativeCount),
                        Ok(_) if n > MAX_PAD => Err(CallError::PadTooLarge(n)),
                        Ok(u) => Ok(u),
                    };
                    Value::String(format!(
                        "{}{text}{}",
                        " ".repeat(count(pre)?),
                        " ".repeat(count(post)?)
                    ))
                }
            }
            Func::Truncate => {
                let text = s(&first);
                let n = int_of(&argv[1]).unwrap_or(0);
                let n = usize::try_from(n).map_err(|_| CallError::SliceBounds(n))?;
                if text.len() < n {
                    Value::String(text)
                } else {
                    // Go cuts bytes; cut at the last whole character.
                    let mut end = n;
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    Value::String(text[..end].to_string())
                }
            }
        })
    }
}

/// Where Go reports an error found after a pipeline ran: at the node it
/// evaluated last (the last command's first word, for simple pipelines).
fn last_evaluated(p: &Pipe) -> (usize, &dyn fmt::Display) {
    match p.cmds.last() {
        Some(c) => match c.args.first() {
            Some(a) => (c.pos, a),
            None => (c.pos, c),
        },
        None => (p.pos, p),
    }
}

fn length(v: &Value) -> Result<usize, CallError> {
    match v {
        Value::String(s) => Ok(s.len()),
        Value::Array(a) => Ok(a.len()),
        Value::Object(m) => Ok(m.len()),
        Value::Null => Err(CallError::LenOfNil),
        other => Err(CallError::LenOfType(go_type(other))),
    }
}

/// Go's `index`, with Docker's typed zero values: a missing key of a map
/// of strings (or of `null`) is `""`.
fn index(mut item: Value, keys: &[Value]) -> Result<Value, CallError> {
    for key in keys {
        item = match item {
            Value::Array(mut a) => {
                let i = array_index(key, a.len())?;
                a.swap_remove(i)
            }
            Value::String(s) => {
                let i = array_index(key, s.len())?;
                Value::from(s.as_bytes()[i])
            }
            Value::Object(mut m) => {
                let Value::String(k) = key else {
                    return Err(CallError::KeyType(go_type(key)));
                };
                match m.remove(k) {
                    Some(v) => v,
                    None if m.values().all(Value::is_string) => Value::String(String::new()),
                    None => Value::Null,
                }
            }
            Value::Null => match key {
                Value::String(_) => Value::String(String::new()),
                _ => return Err(CallError::IndexOfNil),
            },
            other => return Err(CallError::CantIndex(go_type(&other))),
        };
    }
    Ok(item)
}

fn array_index(key: &Value, len: usize) -> Result<usize, CallError> {
    let i = match key {
        Value::Null => return Err(CallError::IndexWithNil),
        Value::Number(n) => gofmt::as_int(n).ok_or(CallError::IndexWithType("float64"))?,
        other => return Err(CallError::IndexWithType(go_type(other))),
    };
    usize::try_from(i)
        .ok()
        .filter(|u| *u < len)
        .ok_or(CallError::IndexOutOfRange(i))
}

fn slice(item: Value, idx: &[Value]) -> Result<Value, CallError> {
    let len = match &item {
        Value::String(s) => s.len(),
        Value::Array(a) => a.len(),
        Value::Null => return Err(CallError::SliceOfNil),
        other => return Err(CallError::CantSlice(go_type(other))),
    };
    if idx.len() > 3 {
        return Err(CallError::TooManySliceIndexes(idx.len()));
    }
    if idx.len() == 3 && item.is_string() {
        return Err(CallError::ThreeIndexString);
    }
    let mut bounds = [0usize, len, len];
    for (k, v) in idx.iter().enumerate() {
        bounds[k] = array_index(v, len + 1)?;
    }
    if bounds[0] > bounds[1] {
        return Err(CallError::InvalidSliceIndex(
            bounds[0] as i128,
            bounds[1] as i128,
        ));
    }
    if idx.len() == 3 && bounds[1] > bounds[2] {
        return Err(CallError::InvalidSliceIndex(
            bounds[1] as i128,
            bounds[2] as i128,
        ));
    }
    Ok(match item {
        Value::String(s) => {
            Value::String(String::from_utf8_lossy(&s.as_bytes()[bounds[0]..bounds[1]]).into_owned())
        }
        Value::Array(a) => Value::Array(a[bounds[0]..bounds[1]].to_vec()),
        _ => Value::Null,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nil,
    Bool,
    Number,
    Str,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Nil,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Number,
        Value::String(_) => Kind::Str,
        _ => Kind::Other,
    }
}

fn num_cmp(a: &Number, b: &Number) -> Option<std::cmp::Ordering> {
    match (gofmt::as_int(a), gofmt::as_int(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// Go's `eq arg1 arg2…`: true if arg1 equals any of the others. Numbers
/// compare by value whatever their JSON form; nil equals only nil.
fn eq(a: &Value, others: &[Value]) -> Result<bool, CallError> {
    if others.is_empty() {
        return Err(CallError::NoComparison);
    }
    for b in others {
        let (ka, kb) = (kind(a), kind(b));
        let equal = if ka != kb {
            if ka != Kind::Nil && kb != Kind::Nil {
                return Err(CallError::BadComparison);
            }
            false
        } else {
            match (a, b) {
                (Value::Number(x), Value::Number(y)) => {
                    num_cmp(x, y) == Some(std::cmp::Ordering::Equal)
                }
                (Value::Null, Value::Null) => true,
                (Value::Bool(_) | Value::String(_), _) => a == b,
                _ => return Err(CallError::BadComparisonType),
            }
        };
        if equal {
            return Ok(true);
        }
    }
    Ok(false)
}

fn less(a: &Value, b: &Value) -> Result<bool, CallError> {
    let (ka, kb) = (kind(a), kind(b));
    if matches!(ka, Kind::Nil | Kind::Other) || matches!(kb, Kind::Nil | Kind::Other) {
        return Err(CallError::BadComparisonType);
    }
    if ka != kb {
        return Err(CallError::BadComparison);
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Ok(num_cmp(x, y) == Some(std::cmp::Ordering::Less)),
        (Value::String(x), Value::String(y)) => Ok(x < y),
        _ => Err(CallError::BadComparisonType),
    }
}

/// Docker's `join`: elements printed with `%v`; a map's values sorted.
fn join(v: &Value, sep: &str) -> Result<String, CallError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::Array(a) => Ok(a.iter().map(sprint_value).collect::<Vec<_>>().join(sep)),
        Value::Object(m) => {
            let mut vals: Vec<String> = m.values().map(sprint_value).collect();
            vals.sort();
            Ok(vals.join(sep))
        }
        other => Err(CallError::ExpectedSlice(go_type(other))),
    }
}

/// Go's `strings.Split`: an empty separator splits into characters.
fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(String::from).collect();
    }
    s.split(sep).map(String::from).collect()
}

/// Go maps one character to one (simple case mapping); where Rust's full
/// mapping gives several, keep the character.
fn map_chars<I: Iterator<Item = char>>(s: &str, f: impl Fn(char) -> I) -> String {
    s.chars()
        .map(|c| {
            let mut it = f(c);
            match (it.next(), it.next()) {
                (Some(m), None) => m,
                _ => c,
            }
        })
        .collect()
}

/// Go's deprecated `strings.Title`: upper-case the first letter of each
/// word, words being split by anything but letters, digits and `_`.
fn title(s: &str) -> String {
    let is_separator = |c: char| {
        if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphabetic() || c.is_numeric() {
            false
        } else {
            c.is_whitespace()
        }
    };
    let mut prev = ' ';
    s.chars()
        .map(|c| {
            let out = if is_separator(prev) {
                map_chars(&c.to_string(), char::to_uppercase)
                    .chars()
                    .next()
                    .unwrap_or(c)
            } else {
                c
            };
            prev = c;
            out
        })
        .collect()
}

/// The text `html`, `js` and `urlquery` escape: a lone string argument,
/// else `fmt.Sprint` of all of them.
fn escaper_text(args: &[Value]) -> String {
    match args {
        [Value::String(s)] => s.clone(),
        _ => gofmt::sprint(args),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_ascii() || gofmt::is_print(c) => out.push(c),
            c => out.push_str(&format!("\\u{:04X}", c as u32)),
        }
    }
    out
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests;
