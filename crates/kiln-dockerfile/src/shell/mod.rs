//! Shell-word lexing and variable expansion, as BuildKit's Dockerfile
//! frontend does it (`frontend/dockerfile/shell/lex.go`, the functions
//! `ProcessWord`, `ProcessWords` and `ProcessWordWithMatches`).
//!
//! This module owns turning one word of Dockerfile text into its expanded
//! value (or list of words) given an environment; it must not parse
//! instructions, decide which variables are in scope, or report build
//! checks: callers hand it the environment and read back which names were
//! looked up ([`Expansion`]). It is pure: no I/O, no process environment.
//!
//! Supported: `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`,
//! `${V:?m}`, `${V?m}`, `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`,
//! `${V/p/r}`, `${V//p/r}`, single and double quotes, and the escape
//! character of the Dockerfile's `escape` directive. Behaviour follows
//! BuildKit exactly, including its surprises, which are kept on purpose so
//! that kiln builds what `docker build` builds:
//!
//! - Names are runs of letters, digits and `_` in Go's Unicode sense
//!   (general categories L and Nd, Unicode 15.0). A name starting
//!   with a digit is all the digits that follow (`$10x` looks up `10`); one
//!   of `@ * # ? - $ ! 0` alone is a special parameter. Positional and
//!   special parameters are plain lookups, so they are normally unset and
//!   expand to nothing: `$1`, `$@`, `${#}` give "", `${1:-d}` gives `d`.
//!   `$` followed by anything else stays a literal `$`.
//! - `${#V}` (length) and `${V:=w}` are not supported and are errors;
//!   `:#`, `:%` are errors; `${V:x...}` for another `x` is an error, found
//!   only after the word up to `}` was expanded.
//! - The pattern operators use Go regular-expression semantics, not POSIX
//!   glob: see the `pattern` submodule. Notably `[...]` is literal (BuildKit
//!   has no bracket expressions), and `*` and `?` do not match a newline.
//!   In `${V//p/r}` the replacement is a Go template
//!   (`$0` is the match, `$$` a dollar sign); in `${V/p/r}` it is literal.
//!   Quotes inside a pattern are removed before it is interpreted, so a
//!   quoted `*` is still a wildcard.
//! - In the word of `${V:-w}` and friends the escape character escapes the
//!   next character as usual; in a pattern or replacement it is kept
//!   (`\*` reaches the pattern matcher as an escaped star).
//! - With [`Lexer::skip_unset_env`], an unset variable is written back as
//!   `${name<op><expanded word>}` even when the operator is invalid, and
//!   `${V//p/r}` is written back with a single slash (`${V/p/r}`).
//! - [`Lexer::process_words`] splits on Unicode white space after
//!   expansion, except for quoted text, escaped characters and the spaces
//!   right after a `<<` heredoc marker. An empty quoted string does not make
//!   a word on its own (`a "" b` gives `a`, `b`). Text of the current word
//!   that precedes a `${V<op>word}` form is dropped, because BuildKit reuses
//!   one buffer for nested words: `abc${X:-def}ghi` gives the single word
//!   `defghi`. [`Lexer::process_word`] is not affected.
//! - A byte-order mark at the very start of the word is skipped (Go's
//!   `text/scanner` does that).
//!
//! Deliberate differences: error messages are kiln's own; a failed
//! expansion returns only the error (BuildKit also hands back the names
//! looked up so far); and nesting of `${...}` inside `${...}` is limited to
//! [`MAX_NESTING`] levels, where Go would keep recursing, so that hostile
//! input cannot overflow the stack.

mod pattern;
mod unicode_tables;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher;

/// How deep `${V:-${W:-...}}` forms (and quotes inside them) may nest.
pub const MAX_NESTING: usize = 128;

/// Where the lexer looks up variables.
pub trait Env {
    /// The value of `name`, or `None` when it is not set. A variable that
    /// is set to the empty string is `Some("")`: the `:` forms of the
    /// operators tell the two apart.
    fn get(&self, name: &str) -> Option<&str>;
}

impl<T: Env + ?Sized> Env for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

impl<V: AsRef<str>> Env for BTreeMap<String, V> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(AsRef::as_ref)
    }
}

impl<V: AsRef<str>, S: BuildHasher> Env for HashMap<String, V, S> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(AsRef::as_ref)
    }
}

/// A list of `(name, value)` pairs; when a name appears twice the last one
/// wins, as with `ENV` lines in order.
impl<K: AsRef<str>, V: AsRef<str>> Env for [(K, V)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(key, _)| key.as_ref() == name)
            .map(|(_, value)| value.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Env for Vec<(K, V)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> Env for [(K, V); N] {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// An environment in which nothing is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmptyEnv;

impl Env for EmptyEnv {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// The result of [`Lexer::process_word_with_matches`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The expanded word.
    pub value: String,
    /// Names that were looked up and were set (possibly to "").
    pub matched: BTreeSet<String>,
    /// Names that were looked up and were not set. A name counts whenever
    /// its expansion was evaluated, whatever the operator: `${X:-d}` with
    /// `X` unset puts `X` here, and so does `$1`. Names only inside a
    /// default that was not needed still count, because BuildKit expands
    /// the word before it looks at the variable.
    pub unmatched: BTreeSet<String>,
}

/// Why a word could not be expanded. Every variant names the whole word
/// that was being processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShellError {
    /// A `'` or `"` without its closing partner.
    #[error("unterminated quote ({quote}) in `{word}`")]
    UnterminatedQuote {
        /// The opening quote character.
        quote: char,
        /// The word being expanded.
        word: String,
    },
    /// `${` without the closing `}`.
    #[error("missing `}}` in variable substitution in `{word}`")]
    MissingBrace {
        /// The word being expanded.
        word: String,
    },
    /// `${V/pattern` without the `/` that starts the replacement.
    #[error("missing `/` after the pattern in variable substitution in `{word}`")]
    MissingSlash {
        /// The word being expanded.
        word: String,
    },
    /// `${}`, `${{...}`, `${:...}`.
    #[error("bad substitution in `{word}`")]
    BadSubstitution {
        /// The word being expanded.
        word: String,
    },
    /// `${V<op>...}` with an operator BuildKit does not implement, such as
    /// `:=`, `:#` or the `.` of `${.}`.
    #[error("unsupported modifier `{modifier}` in variable substitution in `{word}`")]
    UnsupportedModifier {
        /// The operator as written (`:=`, `:#`, `.`).
        modifier: String,
        /// The word being expanded.
        word: String,
    },
    /// `${V?message}` with `V` unset, or `${V:?message}` with `V` unset or
    /// empty.
    #[error("{name}: {} in `{word}`", required_message(.message.as_deref(), *.empty))]
    Required {
        /// The variable.
        name: String,
        /// The expanded message, if the word gave one.
        message: Option<String>,
        /// True when the variable was set but empty (`:?` form).
        empty: bool,
        /// The word being expanded.
        word: String,
    },
    /// A pattern with a backslash that escapes something other than `*`,
    /// `?` or `\` (`escaped` is `None` for a backslash at the end).
    #[error("invalid pattern `{pattern}` in variable substitution in `{word}`: a backslash may only escape `*`, `?`, `\\`, `}}` or `/`")]
    InvalidPattern {
        /// The pattern after expansion.
        pattern: String,
        /// The character after the offending backslash.
        escaped: Option<char>,
        /// The word being expanded.
        word: String,
    },
    /// `${...}` forms nested deeper than [`MAX_NESTING`].
    #[error("variable substitutions nested deeper than {limit} levels in `{word}`")]
    NestingTooDeep {
        /// The limit, [`MAX_NESTING`].
        limit: usize,
        /// The word being expanded.
        word: String,
    },
}

fn required_message(message: Option<&str>, empty: bool) -> &str {
    match message {
        Some(message) => message,
        None if empty => "is not allowed to be empty",
        None => "is not allowed to be unset",
    }
}

/// Expands variables in Dockerfile words. Cheap to copy; holds no state
/// between calls.
///
/// ```
/// use std::collections::BTreeMap;
/// use kiln_dockerfile::shell::Lexer;
///
/// let env = BTreeMap::from([("NAME".to_owned(), "kiln".to_owned())]);
/// let lexer = Lexer::new('\\');
/// assert_eq!(lexer.process_word("hi ${NAME:-x} ${TAG:-latest}", &env)?, "hi kiln latest");
/// assert_eq!(lexer.process_words("a 'b c' $NAME", &env)?, ["a", "b c", "kiln"]);
/// let expansion = lexer.process_word_with_matches("$NAME:$TAG", &env)?;
/// assert!(expansion.matched.contains("NAME") && expansion.unmatched.contains("TAG"));
/// # Ok::<(), kiln_dockerfile::shell::ShellError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    skip_unset_env: bool,
    skip_process_quotes: bool,
    raw_quotes: bool,
    raw_escapes: bool,
}

impl Default for Lexer {
    /// A lexer with the default escape character `\`.
    fn default() -> Self {
        Self::new('\\')
    }
}

impl Lexer {
    /// A lexer whose escape character is `escape` (`\` by default, `` ` ``
    /// after `# escape=``` `).
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            skip_unset_env: false,
            skip_process_quotes: false,
            raw_quotes: false,
            raw_escapes: false,
        }
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Leave references to unset variables as written (`$FOO`, `${FOO}`,
    /// `${FOO:-x}`) instead of expanding them to "".
    #[must_use]
    pub fn skip_unset_env(self, yes: bool) -> Self {
        Self {
            skip_unset_env: yes,
            ..self
        }
    }

    /// Treat quotes as ordinary characters (for heredoc bodies, where
    /// BuildKit expands variables but keeps quotes). The escape character
    /// still escapes.
    #[must_use]
    pub fn skip_process_quotes(self, yes: bool) -> Self {
        Self {
            skip_process_quotes: yes,
            ..self
        }
    }

    /// Keep quote characters in the output while still honouring them
    /// (BuildKit's `RawQuotes`; the parser uses it to find out whether a
    /// heredoc delimiter was quoted).
    #[must_use]
    pub fn raw_quotes(self, yes: bool) -> Self {
        Self {
            raw_quotes: yes,
            ..self
        }
    }

    /// Keep escape characters in the output while still honouring them
    /// (BuildKit's `RawEscapes`; the parser uses it to split a line into
    /// words without altering them).
    #[must_use]
    pub fn raw_escapes(self, yes: bool) -> Self {
        Self {
            raw_escapes: yes,
            ..self
        }
    }

    /// Whether expanding `word` to one string gives `word` itself: no `$`,
    /// no escape character, no quote that would be removed, no leading
    /// byte-order mark. Most Dockerfile words are like that; they skip the
    /// scanner.
    pub fn is_literal(&self, word: &str) -> bool {
        let quotes = !self.skip_process_quotes;
        if word.starts_with('\u{FEFF}') {
            return false;
        }
        // The escape character is `\` or `` ` ``: every special character
        // is ASCII, so bytes will do.
        match u8::try_from(self.escape) {
            Ok(esc) => !word
                .bytes()
                .any(|b| b == b'$' || b == esc || (quotes && (b == b'\'' || b == b'"'))),
            Err(_) => !word
                .chars()
                .any(|c| c == '$' || c == self.escape || (quotes && (c == '\'' || c == '"'))),
        }
    }

    /// Expands `word` into one string: quotes removed, escapes applied,
    /// variables substituted, white space kept.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ShellError> {
        if self.is_literal(word) {
            return Ok(word.to_string());
        }
        let mut run = Run::new(self, word, env);
        let (value, _) = run.process()?;
        Ok(value)
    }

    /// Expands `word` and splits the result into words on white space that
    /// was not quoted or escaped (see the module documentation for the
    /// details BuildKit adds).
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        let mut run = Run::new(self, word, env);
        run.split = true;
        let (_, words) = run.process()?;
        Ok(words)
    }

    /// Like [`Lexer::process_word`], and also reports which variable names
    /// were looked up and whether they were set (for the `UndefinedVar`
    /// build check).
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> Result<Expansion, ShellError> {
        if self.is_literal(word) {
            return Ok(Expansion {
                value: word.to_string(),
                ..Expansion::default()
            });
        }
        let mut run = Run::new(self, word, env);
        let (value, _) = run.process()?;
        Ok(Expansion {
            value,
            matched: run.matched,
            unmatched: run.unmatched,
        })
    }
}

/// The split words of one nesting level. The text of the word in progress
/// lives in [`Run::word_buf`], shared by all levels (see the module
/// documentation for why).
#[derive(Debug, Default)]
struct Words {
    done: Vec<String>,
    in_word: bool,
    /// Only `process_words` wants the words; the others skip the work.
    enabled: bool,
}

impl Words {
    fn new(enabled: bool) -> Self {
        Words {
            enabled,
            ..Words::default()
        }
    }

    /// Adds an unquoted character: white space ends the current word.
    fn add_char(&mut self, buf: &mut String, ch: char) {
        if !self.enabled {
            return;
        }
        if ch.is_whitespace() {
            if self.in_word && !buf.is_empty() {
                self.done.push(std::mem::take(buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(buf, ch);
        }
    }

    /// Adds a character that cannot split the word (quoted or escaped).
    fn add_raw_char(&mut self, buf: &mut String, ch: char) {
        if !self.enabled {
            return;
        }
        buf.push(ch);
        self.in_word = true;
    }

    fn add_str(&mut self, buf: &mut String, text: &str) {
        if !self.enabled {
            return;
        }
        for ch in text.chars() {
            self.add_char(buf, ch);
        }
    }

    fn add_raw_str(&mut self, buf: &mut String, text: &str) {
        if !self.enabled {
            return;
        }
        buf.push_str(text);
        self.in_word = true;
    }

    fn finish(mut self, buf: &mut String) -> Vec<String> {
        if !buf.is_empty() {
            self.done.push(std::mem::take(buf));
        }
        self.done
    }
}

/// The state of one call: a cursor over the word plus what was looked up.
struct Run<'a> {
    lexer: &'a Lexer,
    env: &'a dyn Env,
    source: &'a str,
    /// Byte offset of the next character of `source`.
    pos: usize,
    /// Whether escape characters are currently kept in the output; changes
    /// while inside a pattern or replacement.
    raw_escapes: bool,
    /// The word being split, shared by every nesting level, as in BuildKit.
    word_buf: String,
    /// Whether words are wanted (`process_words`).
    split: bool,
    depth: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<'a> Run<'a> {
    fn new(lexer: &'a Lexer, source: &'a str, env: &'a dyn Env) -> Self {
        // Go's text/scanner skips a byte-order mark at the very start.
        let pos = if source.starts_with('\u{FEFF}') {
            '\u{FEFF}'.len_utf8()
        } else {
            0
        };
        Self {
            lexer,
            env,
            source,
            pos,
            raw_escapes: lexer.raw_escapes,
            word_buf: String::new(),
            split: false,
            depth: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.source
            .get(self.pos..)
            .and_then(|rest| rest.chars().next())
    }

    fn next_char(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.source.len()
    }

    fn process(&mut self) -> Result<(String, Vec<String>), ShellError> {
        self.process_until(None, self.lexer.raw_escapes)
    }

    /// Processes text up to `stop` (consumed) or the end of the word when
    /// `stop` is `None`. Returns the expanded text and its split words.
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let result = self.process_until_inner(stop);
        self.raw_escapes = saved;
        result
    }

    fn process_until_inner(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        let mut words = Words::new(self.split);
        // Every level starts the shared word buffer afresh, which is what
        // drops the text before a nested `${V:-w}` from the outer word.
        self.word_buf.clear();
        let quotes = !self.lexer.skip_process_quotes;
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.pos += ch.len_utf8();
                return Ok((result, words.finish(&mut self.word_buf)));
            }
            match ch {
                '$' => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                    words.add_str(&mut self.word_buf, &value);
                }
                '<' => {
                    let text = self.process_possible_heredoc();
                    result.push_str(&text);
                    words.add_raw_str(&mut self.word_buf, &text);
                }
                '\'' if quotes => {
                    let text = self.process_single_quote()?;
                    result.push_str(&text);
                    words.add_raw_str(&mut self.word_buf, &text);
                }
                '"' if quotes => {
                    let text = self.process_double_quote()?;
                    result.push_str(&text);
                    words.add_raw_str(&mut self.word_buf, &text);
                }
                _ => {
                    self.pos += ch.len_utf8();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            words.add_raw_char(&mut self.word_buf, ch);
                            result.push(ch);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next_char() else {
                            break;
                        };
                        words.add_raw_char(&mut self.word_buf, escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(&mut self.word_buf, ch);
                        result.push(ch);
                    }
                }
            }
        }
        match stop {
            Some('/') => Err(ShellError::MissingSlash {
                word: self.source.to_owned(),
            }),
            Some(_) => Err(ShellError::MissingBrace {
                word: self.source.to_owned(),
            }),
            None => Ok((result, words.finish(&mut self.word_buf))),
        }
    }

    /// `'...'`: everything up to the next `'` is literal; nothing escapes.
    fn process_single_quote(&mut self) -> Result<String, ShellError> {
        let mut result = String::new();
        self.next_char();
        if self.lexer.raw_quotes {
            result.push('\'');
        }
        loop {
            match self.next_char() {
                None => {
                    return Err(ShellError::UnterminatedQuote {
                        quote: '\'',
                        word: self.source.to_owned(),
                    })
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    /// `"..."`: variables expand; the escape character escapes only `"`,
    /// `$` and itself, and is kept before anything else.
    fn process_double_quote(&mut self) -> Result<String, ShellError> {
        let mut result = String::new();
        self.next_char();
        if self.lexer.raw_quotes {
            result.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return Err(ShellError::UnterminatedQuote {
                        quote: '"',
                        word: self.source.to_owned(),
                    })
                }
                Some('"') => {
                    self.next_char();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.pos += ch.len_utf8();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // Dropped here; the loop then reports the
                            // missing closing quote.
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lexer.escape =>
                            {
                                self.pos += next.len_utf8();
                                ch = next;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    /// `<<` (plus the blanks after it) is kept together so that word
    /// splitting leaves `<< EOF` as one word, as heredoc detection needs.
    fn process_possible_heredoc(&mut self) -> String {
        self.next_char();
        if self.peek() != Some('<') {
            return "<".to_owned();
        }
        self.next_char();
        let mut text = "<<".to_owned();
        while let Some(ch @ (' ' | '\t' | '\r')) = self.peek() {
            self.next_char();
            text.push(ch);
        }
        text
    }

    fn lookup(&mut self, name: &str) -> Option<&'a str> {
        let env: &'a dyn Env = self.env;
        let value = env.get(name);
        let set = if value.is_some() {
            &mut self.matched
        } else {
            &mut self.unmatched
        };
        // Avoid allocating for names already recorded.
        if !set.contains(name) {
            set.insert(name.to_owned());
        }
        value
    }

    /// A variable reference starting at `$`.
    fn process_dollar(&mut self) -> Result<String, ShellError> {
        self.next_char();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.lookup(&name) {
                Some(value) => value.to_owned(),
                None if self.lexer.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next_char();
        match self.peek() {
            None => return Err(self.missing_brace()),
            Some('{' | '}' | ':') => {
                return Err(ShellError::BadSubstitution {
                    word: self.source.to_owned(),
                })
            }
            Some(_) => {}
        }
        if self.depth >= MAX_NESTING {
            return Err(ShellError::NestingTooDeep {
                limit: MAX_NESTING,
                word: self.source.to_owned(),
            });
        }
        self.depth += 1;
        let result = self.process_braced();
        self.depth -= 1;
        result
    }

    /// The part of `${...}` after the `{`.
    fn process_braced(&mut self) -> Result<String, ShellError> {
        let name = self.process_name();
        let Some(first) = self.next_char() else {
            return Err(self.missing_brace());
        };
        match first {
            '}' => Ok(match self.lookup(&name) {
                Some(value) => value.to_owned(),
                None if self.lexer.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' => {
                // The colon forms treat an empty value like an unset one.
                // BuildKit reads the next character, whatever it is, as the
                // operator, and checks it only after the word.
                let op = self.next_char();
                let mut modifier = String::from(':');
                modifier.extend(op);
                if matches!(op, Some('#' | '%')) {
                    return Err(ShellError::UnsupportedModifier {
                        modifier,
                        word: self.source.to_owned(),
                    });
                }
                self.process_operator(&name, op, modifier, true)
            }
            '+' | '-' | '?' | '#' | '%' => {
                self.process_operator(&name, Some(first), first.to_string(), false)
            }
            '/' => self.process_replace(&name),
            other => Err(ShellError::UnsupportedModifier {
                modifier: other.to_string(),
                word: self.source.to_owned(),
            }),
        }
    }

    /// `${name<op>word}` for the default, alternative, required and trim
    /// operators; the operator has been consumed.
    fn process_operator(
        &mut self,
        name: &str,
        op: Option<char>,
        modifier: String,
        null_is_unset: bool,
    ) -> Result<String, ShellError> {
        let raw = matches!(op, Some('#' | '%'));
        let word = self.process_nested('}', raw)?;
        let value = self.lookup(name);
        if value.is_none() && self.lexer.skip_unset_env {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let is_null = value.is_none_or(|v| null_is_unset && v.is_empty());
        match op {
            Some('-') => Ok(if is_null {
                word
            } else {
                value.unwrap_or_default().to_owned()
            }),
            Some('+') => Ok(if is_null { String::new() } else { word }),
            Some('?') => match value {
                Some(value) if !is_null => Ok(value.to_owned()),
                _ => Err(ShellError::Required {
                    name: name.to_owned(),
                    message: (!word.is_empty()).then_some(word),
                    empty: value.is_some(),
                    word: self.source.to_owned(),
                }),
            },
            Some(op @ ('#' | '%')) => {
                // A doubled operator (`##`, `%%`) makes the stars greedy.
                let (pattern, greedy) = match word.strip_prefix(op) {
                    Some(rest) => (rest, true),
                    None => (word.as_str(), false),
                };
                let value = value.unwrap_or_default();
                let trimmed = if op == '%' {
                    pattern::trim_suffix(pattern, value, greedy)
                } else {
                    pattern::trim_prefix(pattern, value, greedy)
                };
                trimmed.map_err(|e| self.invalid_pattern(pattern, e))
            }
            _ => Err(ShellError::UnsupportedModifier {
                modifier,
                word: self.source.to_owned(),
            }),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`;
    /// the first `/` has been consumed.
    fn process_replace(&mut self, name: &str) -> Result<String, ShellError> {
        let all = self.peek() == Some('/');
        if all {
            self.next_char();
        }
        let pattern = self.process_nested('/', true)?;
        let replacement = self.process_nested('}', true)?;
        let value = match self.lookup(name) {
            Some(value) => value,
            // BuildKit writes a single slash back even for `//`.
            None if self.lexer.skip_unset_env => {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"))
            }
            None => "",
        };
        let replaced = if all {
            pattern::replace_all(&pattern, value, &replacement)
        } else {
            pattern::replace_first(&pattern, value, &replacement)
        };
        replaced.map_err(|e| self.invalid_pattern(&pattern, e))
    }

    /// The word of a `${...}` operator, up to `stop`. An error that leaves
    /// the cursor at the end of the input (an unterminated quote in the
    /// word, say) is reported as the missing terminator.
    fn process_nested(&mut self, stop: char, raw_escapes: bool) -> Result<String, ShellError> {
        match self.process_until(Some(stop), raw_escapes) {
            Ok((text, _)) => Ok(text),
            Err(_) if self.at_end() && stop == '/' => Err(ShellError::MissingSlash {
                word: self.source.to_owned(),
            }),
            Err(_) if self.at_end() => Err(self.missing_brace()),
            Err(e) => Err(e),
        }
    }

    /// Reads a variable name: letters, digits and `_`; or all the digits of
    /// a positional parameter; or one special-parameter character.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_go_digit(ch) {
                while let Some(digit) = self.peek().filter(|&c| is_go_digit(c)) {
                    self.pos += digit.len_utf8();
                    name.push(digit);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.pos += ch.len_utf8();
                name.push(ch);
                return name;
            }
            if !is_go_letter(ch) && !is_go_digit(ch) && ch != '_' {
                break;
            }
            self.pos += ch.len_utf8();
            name.push(ch);
        }
        name
    }

    fn missing_brace(&self) -> ShellError {
        ShellError::MissingBrace {
            word: self.source.to_owned(),
        }
    }

    fn invalid_pattern(&self, pattern: &str, error: pattern::InvalidEscape) -> ShellError {
        ShellError::InvalidPattern {
            pattern: pattern.to_owned(),
            escaped: error.0,
            word: self.source.to_owned(),
        }
    }
}

/// POSIX special parameters (XCU 2.5.2), which are one character long.
fn is_special_param(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// Go's `unicode.IsLetter`: general category L.
fn is_go_letter(ch: char) -> bool {
    if ch.is_ascii() {
        return ch.is_ascii_alphabetic();
    }
    in_ranges(unicode_tables::LETTER, ch)
}

/// Go's `unicode.IsDigit`: general category Nd.
fn is_go_digit(ch: char) -> bool {
    if ch.is_ascii() {
        return ch.is_ascii_digit();
    }
    in_ranges(unicode_tables::DECIMAL_DIGIT, ch)
}

fn in_ranges(ranges: &[(u32, u32)], ch: char) -> bool {
    let cp = u32::from(ch);
    ranges
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

#[cfg(test)]
mod tests;
