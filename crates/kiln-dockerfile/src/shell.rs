//! The shell-word lexer: variable expansion and word splitting the way
//! BuildKit's `shell.Lex` does them (not the way a POSIX shell does: no
//! command substitution, no globbing, no field splitting inside quotes).
//!
//! Supported: `$V`, `${V}`, `${V:-w}`, `${V-w}`, `${V:+w}`, `${V+w}`,
//! `${V:?m}`, `${V?m}`, `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`,
//! `${V/p/r}`, `${V//p/r}` (patterns with `*` and `?`), single and double
//! quotes, and the escape character of the Dockerfile (`\` or `` ` ``).
//! Positional and special parameters (`$1`, `$@`, `$#`, …) are looked up
//! like any name and are normally unset.
//!
//! Options: `skip_unset_env` leaves references to unset variables as
//! written; `skip_process_quotes` treats quotes as ordinary characters
//! (heredoc bodies); `raw_quotes` and `raw_escapes` keep quote and escape
//! characters in the output while still honouring their meaning (used to
//! find heredoc terminators).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use thiserror::Error;

/// Where variable values come from.
pub trait Env {
    /// The value of `name`, if it is set (possibly empty).
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

impl Env for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// A word that cannot be expanded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShellError {
    /// `'abc`.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// `"abc`.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// `${abc`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${V/p` without the second `/`.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${}`, `${:x}`, `${{x}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${V:=x}`, `${V:#x}`, `${.}`.
    #[error("unsupported modifier ({modifier}) in substitution")]
    UnsupportedModifier {
        /// The modifier as written.
        modifier: String,
    },
    /// `${V?msg}` with V unset, or `${V:?msg}` with V unset or empty.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message given, or the default one.
        message: String,
    },
    /// A `#`, `%` or `/` pattern with a bad escape.
    #[error("invalid pattern ({pattern}) in substitution: invalid escape '\\{escaped}'")]
    InvalidPattern {
        /// The pattern.
        pattern: String,
        /// The character after the backslash.
        escaped: char,
    },
}

/// The result of an expansion, with the variables it looked up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    /// The expanded word.
    pub value: String,
    /// Words, split where unquoted whitespace was.
    pub words: Vec<String>,
    /// Names that were looked up and set.
    pub matched: BTreeSet<String>,
    /// Names that were looked up and not set.
    pub unmatched: BTreeSet<String>,
}

/// The lexer; cheap to build, immutable while in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    escape: char,
    skip_unset_env: bool,
    skip_process_quotes: bool,
    raw_quotes: bool,
    raw_escapes: bool,
}

impl Lexer {
    /// A lexer with `escape` as the escape character.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            skip_unset_env: false,
            skip_process_quotes: false,
            raw_quotes: false,
            raw_escapes: false,
        }
    }

    /// Leave references to unset variables as written.
    pub fn skip_unset_env(mut self, yes: bool) -> Self {
        self.skip_unset_env = yes;
        self
    }

    /// Treat quotes as ordinary characters.
    pub fn skip_process_quotes(mut self, yes: bool) -> Self {
        self.skip_process_quotes = yes;
        self
    }

    /// Keep quote characters in the output.
    pub fn raw_quotes(mut self, yes: bool) -> Self {
        self.raw_quotes = yes;
        self
    }

    /// Keep escape characters in the output.
    pub fn raw_escapes(mut self, yes: bool) -> Self {
        self.raw_escapes = yes;
        self
    }

    /// Expand `word` to one string.
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ShellError> {
        Ok(self.process_word_with_matches(word, env)?.value)
    }

    /// Expand `word` and split it into words.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ShellError> {
        Ok(self.process_word_with_matches(word, env)?.words)
    }

    /// Expand `word`, reporting which variables were found and which not.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn Env,
    ) -> Result<Expansion, ShellError> {
        let mut w = ShellWord {
            lex: self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        let (value, words) = w.process_until(None, self.raw_escapes)?;
        Ok(Expansion {
            value,
            words,
            matched: w.matched,
            unmatched: w.unmatched,
        })
    }
}

/// Accumulates words while expanding.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    fn add_raw_char(&mut self, c: char) {
        self.buf.push(c);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }

    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

struct ShellWord<'a> {
    lex: &'a Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(v) => {
                self.matched.insert(name.to_string());
                Some(v.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// Expand until `stop` (consumed) or the end. Reaching the end while
    /// looking for `stop` is an error the caller turns into its own.
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ShellError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            let quotes = !self.lex.skip_process_quotes;
            match c {
                '$' => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                    words.add_string(&v);
                }
                '<' => {
                    let v = self.process_possible_heredoc();
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                '\'' if quotes => {
                    let v = self.process_single_quote()?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                '"' if quotes => {
                    let v = self.process_double_quote(raw_escapes)?;
                    result.push_str(&v);
                    words.add_raw_string(&v);
                }
                _ => {
                    self.pos += 1;
                    if c == self.lex.escape {
                        if raw_escapes {
                            words.add_raw_char(c);
                            result.push(c);
                        }
                        let Some(n) = self.next() else {
                            break;
                        };
                        words.add_raw_char(n);
                        result.push(n);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        if stop.is_some() {
            return Err(ShellError::MissingBrace);
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result<String, ShellError> {
        let mut out = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ShellError::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self, raw_escapes: bool) -> Result<String, ShellError> {
        let mut out = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            out.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err(ShellError::UnterminatedDoubleQuote),
                Some('"') => {
                    self.pos += 1;
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    out.push_str(&v);
                }
                Some(mut c) => {
                    self.pos += 1;
                    if c == self.lex.escape {
                        if raw_escapes {
                            out.push(c);
                        }
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lex.escape => {
                                self.pos += 1;
                                c = n;
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(c);
                }
            }
        }
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.pos += 1;
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.pos += 1;
        let mut out = String::from("<<");
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            out.push(c);
            self.pos += 1;
        }
        out
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                return c.to_string();
            }
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn process_dollar(&mut self) -> Result<String, ShellError> {
        self.pos += 1; // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1; // '{'
        match self.peek() {
            None => return Err(ShellError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ShellError::BadSubstitution),
            _ => {}
        }
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            return Err(ShellError::MissingBrace);
        };
        let mut modifier = ch.to_string();
        match ch {
            '}' => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let null_is_unset = ch == ':';
                if null_is_unset {
                    match self.next() {
                        Some(c) => {
                            ch = c;
                            modifier.push(c);
                        }
                        None => return Err(ShellError::MissingBrace),
                    }
                }
                let raw = ch == '#' || ch == '%';
                if null_is_unset && raw {
                    return Err(ShellError::UnsupportedModifier { modifier });
                }
                if !matches!(ch, '+' | '-' | '?' | '#' | '%') {
                    // Consume the word so the error is about the modifier.
                    let _ = self.process_until(Some('}'), raw);
                    return Err(ShellError::UnsupportedModifier { modifier });
                }
                let (word, _) = self.process_until(Some('}'), raw)?;
                let value = self.get_env(&name);
                if value.is_none() && self.lex.skip_unset_env {
                    return Ok(format!("${{{name}{modifier}{word}}}"));
                }
                let empty =
                    |v: &Option<String>| v.as_deref().is_none_or(|s| null_is_unset && s.is_empty());
                match ch {
                    '-' => Ok(if empty(&value) {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if empty(&value) { String::new() } else { word }),
                    '?' => match value {
                        None => Err(ShellError::Required {
                            name,
                            message: if word.is_empty() {
                                "is not allowed to be unset".into()
                            } else {
                                word
                            },
                        }),
                        Some(v) if null_is_unset && v.is_empty() => Err(ShellError::Required {
                            name,
                            message: if word.is_empty() {
                                "is not allowed to be empty".into()
                            } else {
                                word
                            },
                        }),
                        Some(v) => Ok(v),
                    },
                    _ => {
                        let value = value.unwrap_or_default();
                        let (greedy, pat) = match word.strip_prefix(ch) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let pattern = Pattern::compile(&pat)?;
                        Ok(if ch == '#' {
                            pattern.trim_prefix(&value, greedy)
                        } else {
                            pattern.trim_suffix(&value, greedy)
                        })
                    }
                }
            }
            '/' => {
                let all = self.peek() == Some('/');
                if all {
                    self.pos += 1;
                }
                let (pat, _) = self.process_until(Some('/'), true).map_err(|e| match e {
                    ShellError::MissingBrace => ShellError::MissingSlash,
                    e => e,
                })?;
                let (replacement, _) = self.process_until(Some('}'), true)?;
                let value = self.get_env(&name);
                let Some(value) = value else {
                    if self.lex.skip_unset_env {
                        return Ok(format!("${{{name}/{pat}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                let pattern = Pattern::compile(&pat)?;
                Ok(pattern.replace(&value, &replacement, all))
            }
            _ => Err(ShellError::UnsupportedModifier { modifier }),
        }
    }
}

/// A shell pattern of `${V#p}` and friends: `*`, `?`, literal characters.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

#[derive(Debug)]
struct Pattern(Vec<Tok>);

impl Pattern {
    fn compile(pattern: &str) -> Result<Pattern, ShellError> {
        let mut toks = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => match chars.peek() {
                    // `}` and `/` are escaped only to get past the `${}`.
                    Some('}' | '/') => {}
                    Some(&n @ ('*' | '?' | '\\')) => {
                        chars.next();
                        toks.push(Tok::Lit(n));
                    }
                    Some(&n) => {
                        return Err(ShellError::InvalidPattern {
                            pattern: pattern.into(),
                            escaped: n,
                        })
                    }
                    None => {
                        return Err(ShellError::InvalidPattern {
                            pattern: pattern.into(),
                            escaped: ' ',
                        })
                    }
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern(toks))
    }

    /// Whether the whole of `s` matches (`*` and `?` do not match a
    /// newline, as in Go's regular expressions).
    fn matches(&self, s: &[char]) -> bool {
        fn go(p: &[Tok], s: &[char]) -> bool {
            match p.split_first() {
                None => s.is_empty(),
                Some((Tok::Star, rest)) => {
                    for i in 0..=s.len() {
                        if go(rest, &s[i..]) {
                            return true;
                        }
                        if s.get(i) == Some(&'\n') {
                            break;
                        }
                    }
                    false
                }
                Some((Tok::Any, rest)) => {
                    s.first().is_some_and(|&c| c != '\n') && go(rest, &s[1..])
                }
                Some((Tok::Lit(c), rest)) => s.first() == Some(c) && go(rest, &s[1..]),
            }
        }
        go(&self.0, s)
    }

    fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut lens: Box<dyn Iterator<Item = usize>> = if greedy {
            Box::new((0..=chars.len()).rev())
        } else {
            Box::new(0..=chars.len())
        };
        match lens.find(|&n| self.matches(&chars[..n])) {
            Some(n) => chars[n..].iter().collect(),
            None => value.to_string(),
        }
    }

    fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut starts: Box<dyn Iterator<Item = usize>> = if greedy {
            Box::new(0..=chars.len())
        } else {
            Box::new((0..=chars.len()).rev())
        };
        match starts.find(|&i| self.matches(&chars[i..])) {
            Some(i) => chars[..i].iter().collect(),
            None => value.to_string(),
        }
    }

    /// Leftmost, longest match starting at or after `from`.
    fn find(&self, chars: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=chars.len()).find_map(|s| {
            (s..=chars.len())
                .rev()
                .find(|&e| self.matches(&chars[s..e]))
                .map(|e| (s, e))
        })
    }

    fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut copied = 0;
        let mut pos = 0;
        let mut last_end = None;
        while pos <= chars.len() {
            let Some((s, e)) = self.find(&chars, pos) else {
                break;
            };
            if s == e && last_end == Some(s) {
                // An empty match right after a match is skipped.
                pos = s + 1;
                continue;
            }
            out.extend(&chars[copied..s]);
            out.push_str(replacement);
            copied = e;
            last_end = Some(e);
            pos = if e > s { e } else { e + 1 };
            if !all {
                break;
            }
        }
        out.extend(&chars[copied.min(chars.len())..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [("A", "a b"), ("P", "/usr/local/bin.tar.gz"), ("E", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn w(s: &str) -> String {
        Lexer::new('\\')
            .process_word(s, &env())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn prefix_and_suffix_patterns() {
        assert_eq!(w("${P#*/}"), "usr/local/bin.tar.gz");
        assert_eq!(w("${P##*/}"), "bin.tar.gz");
        assert_eq!(w("${P%.*}"), "/usr/local/bin.tar");
        assert_eq!(w("${P%%.*}"), "/usr/local/bin");
        assert_eq!(w("${P#/usr}"), "/local/bin.tar.gz");
        assert_eq!(w("${P%?z}"), "/usr/local/bin.tar.");
        assert_eq!(w("${P#nomatch}"), "/usr/local/bin.tar.gz");
        assert_eq!(w("${P#\\*}"), "/usr/local/bin.tar.gz");
        assert!(w("${P:#x}").starts_with("error"));
    }

    #[test]
    fn replacement() {
        assert_eq!(w("${P/local/opt}"), "/usr/opt/bin.tar.gz");
        assert_eq!(w("${P//\\//_}"), "_usr_local_bin.tar.gz");
        assert_eq!(w("${P/.*/}"), "/usr/local/bin");
        assert_eq!(w("${A/ /-}"), "a-b");
        assert_eq!(w("${NOPE/a/b}"), "");
        assert!(w("${P/a").starts_with("error"));
    }

    #[test]
    fn required_and_defaults() {
        assert_eq!(w("${E-x}"), "");
        assert_eq!(w("${E:-x}"), "x");
        assert_eq!(w("${E+x}"), "x");
        assert_eq!(w("${E:+x}"), "");
        assert_eq!(w("${NOPE:?set it}"), "error: NOPE: set it");
        assert_eq!(w("${E:?}"), "error: E: is not allowed to be empty");
        assert_eq!(w("${E?}"), "");
    }

    #[test]
    fn backtick_escape() {
        let lex = Lexer::new('`');
        assert_eq!(lex.process_word("a`$A\\b", &env()).unwrap(), "a$A\\b");
        assert_eq!(lex.process_word("\"x`\"y\"", &env()).unwrap(), "x\"y");
    }

    #[test]
    fn options() {
        let lex = Lexer::new('\\').skip_unset_env(true);
        assert_eq!(
            lex.process_word("$NOPE ${NOPE} ${NOPE:-x} $A", &env())
                .unwrap(),
            "$NOPE ${NOPE} ${NOPE:-x} a b"
        );
        let lex = Lexer::new('\\').skip_process_quotes(true);
        assert_eq!(
            lex.process_word("\"$A\" 'q'", &env()).unwrap(),
            "\"a b\" 'q'"
        );
        let lex = Lexer::new('\\').raw_quotes(true).raw_escapes(true);
        assert_eq!(
            lex.process_words("<< 'E O' x\\ y", &env()).unwrap(),
            vec!["<< 'E O'", "x\\ y"]
        );
    }

    #[test]
    fn matches_are_reported() {
        let m = Lexer::new('\\')
            .process_word_with_matches("$A ${B:-$C} $E", &env())
            .unwrap();
        assert_eq!(
            m.matched,
            ["A", "E"].into_iter().map(String::from).collect()
        );
        assert_eq!(
            m.unmatched,
            ["B", "C"].into_iter().map(String::from).collect()
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = Lexer::new('\\').process_words(&s, &env());
            let _ = Lexer::new('`').skip_unset_env(true).process_word(&s, &env());
        }
    }
}
