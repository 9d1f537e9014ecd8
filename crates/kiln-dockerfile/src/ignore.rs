//! `.dockerignore`: which files of the build context the build sees.
//!
//! The semantics are Docker's (moby's `patternmatcher` and its
//! `ignorefile` reader), reimplemented:
//! - a line starting with `#` is a comment; other lines are trimmed, blank
//!   ones skipped; `!` starts an exception; the pattern is cleaned like Go's
//!   `filepath.Clean` and a leading `/` removed, so `/a`, `./a` and `a` are
//!   the same pattern, and `a/../b` is `b`;
//! - `*` matches any run of characters but `/`, `?` one character but `/`,
//!   `[...]` a character class (`[^...]` negated), `\` escapes the next
//!   character; `**` matches any number of directories, zero included;
//! - a path is excluded when it or one of its parent directories matches
//!   the last pattern that concerns it: patterns are evaluated in order, and
//!   an exception (`!`) re-includes what earlier patterns excluded;
//! - paths are relative to the context root; a pattern with `..` that
//!   climbs above it (`../x`) can never match, so no pattern reaches
//!   outside the context.

use thiserror::Error;

use crate::paths::clean;

/// A `.dockerignore` that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IgnoreError {
    /// A line that is only `!`.
    #[error("illegal exclusion pattern `!` on line {line} of .dockerignore")]
    LoneExclusion {
        /// 1-based line.
        line: usize,
    },
    /// A pattern Go's `filepath.Match` would reject.
    #[error("invalid pattern `{pattern}` on line {line} of .dockerignore: {reason}")]
    BadPattern {
        /// The pattern.
        pattern: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// One pattern of a `.dockerignore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnorePattern {
    /// The cleaned pattern, without the `!`.
    pub text: String,
    /// An exception (`!pattern`): re-includes what it matches.
    pub exclusion: bool,
    /// 1-based line in the file.
    pub line: usize,
    tokens: Vec<Tok>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run without `/`.
    Star,
    /// `?`: one character but `/`.
    One,
    /// `**/`: any number of whole directories, zero included.
    AnyDirs,
    /// `**` at the end: anything.
    Rest,
    /// `[...]`.
    Class {
        negated: bool,
        items: Vec<(char, char)>,
    },
}

/// A parsed `.dockerignore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreRules {
    patterns: Vec<IgnorePattern>,
}

impl IgnoreRules {
    /// Parse the text of a `.dockerignore`.
    pub fn parse(text: &str) -> Result<IgnoreRules, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.starts_with('#') {
                continue;
            }
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err(IgnoreError::LoneExclusion { line });
                }
            }
            let mut cleaned = clean(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let tokens = compile(&cleaned).map_err(|reason| IgnoreError::BadPattern {
                pattern: cleaned.clone(),
                line,
                reason,
            })?;
            patterns.push(IgnorePattern {
                text: cleaned,
                exclusion,
                line,
                tokens,
            });
        }
        Ok(IgnoreRules { patterns })
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[IgnorePattern] {
        &self.patterns
    }

    /// No pattern at all.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context root, `/`-separated; a
    /// leading `./` or `/` is ignored) is excluded from the context, itself
    /// or through a parent directory.
    pub fn is_excluded(&self, path: &str) -> bool {
        let path = clean(path.trim_start_matches('/'));
        let path = path.trim_start_matches('/');
        if path == "." || path.is_empty() || path.starts_with("../") || path == ".." {
            return false;
        }
        let chars: Vec<char> = path.chars().collect();
        // Byte-free prefixes: the parent directories of `path`.
        let parents: Vec<usize> = chars
            .iter()
            .enumerate()
            .filter(|(_, &c)| c == '/')
            .map(|(i, _)| i)
            .collect();
        let mut excluded = false;
        for p in &self.patterns {
            if p.exclusion != excluded {
                continue;
            }
            let hit = matches(&p.tokens, &chars)
                || parents.iter().any(|&end| matches(&p.tokens, &chars[..end]));
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether an exception (`!…`) could re-include something under the
    /// directory `dir`: only when this is false may a walker skip an
    /// excluded directory without looking inside.
    pub fn may_include_under(&self, dir: &str) -> bool {
        let dir = clean(dir.trim_start_matches('/'));
        let dir = dir.trim_matches('/');
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            // The literal directories the pattern starts with.
            let literal: String = p
                .tokens
                .iter()
                .map_while(|t| match t {
                    Tok::Lit(c) => Some(*c),
                    _ => None,
                })
                .collect();
            let fully_literal = literal.chars().count() == p.tokens.len();
            if dir == "." || dir.is_empty() {
                return true;
            }
            let under = format!("{dir}/");
            if fully_literal {
                // `!a/b/c` re-includes under `a` and `a/b`, and under
                // `a/b/c` itself.
                literal.starts_with(&under)
                    || literal == dir
                    || dir.starts_with(&format!("{literal}/"))
            } else {
                literal.starts_with(&under) || under.starts_with(&literal)
            }
        })
    }
}

fn compile(pattern: &str) -> Result<Vec<Tok>, &'static str> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    toks.push(Tok::Rest);
                } else {
                    toks.push(Tok::AnyDirs);
                }
            }
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::One),
            '\\' => match chars.get(i) {
                Some(&n) => {
                    i += 1;
                    toks.push(Tok::Lit(n));
                }
                None => return Err("trailing backslash"),
            },
            '[' => {
                let mut negated = false;
                if chars.get(i) == Some(&'^') {
                    negated = true;
                    i += 1;
                }
                let mut items = Vec::new();
                loop {
                    let Some(&lo) = chars.get(i) else {
                        return Err("unterminated character class");
                    };
                    i += 1;
                    if lo == ']' {
                        if items.is_empty() {
                            return Err("empty character class");
                        }
                        break;
                    }
                    let lo = if lo == '\\' {
                        let Some(&n) = chars.get(i) else {
                            return Err("unterminated character class");
                        };
                        i += 1;
                        n
                    } else {
                        lo
                    };
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&c| c != ']') {
                        i += 1;
                        hi = chars[i];
                        i += 1;
                        if hi == '\\' {
                            let Some(&n) = chars.get(i) else {
                                return Err("unterminated character class");
                            };
                            i += 1;
                            hi = n;
                        }
                        if hi < lo {
                            return Err("character range out of order");
                        }
                    }
                    items.push((lo, hi));
                }
                toks.push(Tok::Class { negated, items });
            }
            ']' => return Err("unmatched `]`"),
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(toks)
}

/// Whether the whole of `s` matches the pattern. Dynamic programming over
/// (token, position), from the end: linear in `tokens × path`, so a
/// hostile pattern such as `*a*a*a*a*b` cannot make it backtrack
/// exponentially.
fn matches(toks: &[Tok], s: &[char]) -> bool {
    let n = s.len();
    // `next[j]`: do the tokens after the current one match `s[j..]`?
    let mut next: Vec<bool> = (0..=n).map(|j| j == n).collect();
    let mut cur = vec![false; n + 1];
    for tok in toks.iter().rev() {
        // For `**/`: is there a `/` at k >= j with the rest matching after it?
        let mut after_slash = false;
        for j in (0..=n).rev() {
            let c = s.get(j).copied();
            cur[j] = match tok {
                Tok::Lit(l) => c == Some(*l) && next[j + 1],
                Tok::One => c.is_some_and(|c| c != '/') && next[j + 1],
                Tok::Class { negated, items } => {
                    c.is_some_and(|c| items.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated)
                        && next[j + 1]
                }
                Tok::Star => next[j] || (c.is_some_and(|c| c != '/') && cur[j + 1]),
                Tok::Rest => true,
                Tok::AnyDirs => {
                    if c == Some('/') && next[j + 1] {
                        after_slash = true;
                    }
                    next[j] || after_slash
                }
            };
        }
        std::mem::swap(&mut next, &mut cur);
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (patterns, path, excluded?, what it checks)
    const TABLE: &[(&str, &str, bool, &str)] = &[
        // Docker docs: "*/temp*" excludes files and dirs starting with temp in any immediate subdirectory.
        ("*/temp*", "somedir/temporary.txt", true, "docs */temp*"),
        ("*/temp*", "somedir/temp", true, "docs */temp* dir"),
        ("*/temp*", "temp.txt", false, "*/temp* not at the root"),
        ("*/temp*", "a/b/temp.txt", false, "* does not cross /"),
        // "*/*/temp*" two levels below the root.
        (
            "*/*/temp*",
            "somedir/subdir/temporary.txt",
            true,
            "docs */*/temp*",
        ),
        (
            "*/*/temp*",
            "somedir/temporary.txt",
            false,
            "*/*/temp* needs two levels",
        ),
        // "temp?" one character.
        ("temp?", "tempa", true, "docs temp?"),
        ("temp?", "temp", false, "? needs one character"),
        ("temp?", "tempab", false, "? is exactly one"),
        ("temp?", "temp/", false, "? does not match / (cleaned away)"),
        // "**/*.go" any depth, the root included.
        ("**/*.go", "main.go", true, "docs **/*.go at the root"),
        ("**/*.go", "a/b/c/x.go", true, "docs **/*.go deep"),
        ("**/*.go", "a/b/c/x.goo", false, "**/*.go suffix exact"),
        ("**", "anything/at/all", true, "** alone matches everything"),
        ("a/**", "a/b/c", true, "trailing ** matches under a"),
        ("a/**/b", "a/b", true, "**/ matches zero directories"),
        ("a/**/b", "a/x/y/b", true, "**/ matches several directories"),
        ("a/**/b", "ab", false, "**/ needs the slash"),
        // Exceptions: "*.md" then "!README.md".
        (
            "*.md\n!README.md",
            "README.md",
            false,
            "docs !README.md exception",
        ),
        (
            "*.md\n!README.md",
            "CHANGES.md",
            true,
            "docs *.md still excluded",
        ),
        // Order: the last matching pattern wins.
        (
            "*.md\n!README*.md\nREADME-secret.md",
            "README-secret.md",
            true,
            "docs: later pattern re-excludes",
        ),
        (
            "*.md\n!README*.md\nREADME-secret.md",
            "README-public.md",
            false,
            "docs: exception holds",
        ),
        (
            "*.md\nREADME-secret.md\n!README*.md",
            "README-secret.md",
            false,
            "docs: exception last wins",
        ),
        // A directory pattern excludes everything below it.
        ("build", "build/out/app.bin", true, "dir excludes children"),
        (
            "build",
            "builder/x",
            false,
            "prefix is not a directory match",
        ),
        ("build/", "build/x", true, "trailing slash is cleaned"),
        ("a/b", "a/b/c/d", true, "nested dir excludes children"),
        // Exception inside an excluded directory.
        (
            "build\n!build/keep.txt",
            "build/keep.txt",
            false,
            "exception under excluded dir",
        ),
        (
            "build\n!build/keep.txt",
            "build/other.txt",
            true,
            "rest of dir stays excluded",
        ),
        // Character classes.
        ("file[a-c].txt", "fileb.txt", true, "[a-c] range"),
        ("file[a-c].txt", "filed.txt", false, "[a-c] excludes d"),
        ("file[^a-c].txt", "filed.txt", true, "[^a-c] negated"),
        (
            "file[^a-c].txt",
            "filea.txt",
            false,
            "[^a-c] negated excludes a",
        ),
        ("file[xyz]", "filey", true, "[xyz] set"),
        // Escapes.
        ("star\\*", "star*", true, "\\* is a literal star"),
        ("star\\*", "starx", false, "\\* does not glob"),
        // Leading / and ./ and .. are cleaned.
        ("/root.txt", "root.txt", true, "leading / removed"),
        ("./rel.txt", "rel.txt", true, "leading ./ removed"),
        ("a/../b.txt", "b.txt", true, ".. cleaned within the pattern"),
        (
            "../outside",
            "outside",
            false,
            ".. above the root never matches inside",
        ),
        ("/../x", "x", true, "rooted .. stays at the root"),
        // Paths given to the matcher are cleaned too.
        ("x.txt", "./x.txt", true, "path ./ prefix"),
        ("x.txt", "/x.txt", true, "path / prefix"),
        ("d", "d/./e/../f", true, "path cleaned"),
        // Comments and blank lines.
        ("# comment\n\nfoo", "foo", true, "comment and blank ignored"),
        ("# foo", "# foo", false, "a comment is not a pattern"),
        (
            " #notcomment",
            "#notcomment",
            true,
            "# after a space is a pattern",
        ),
        ("  spaced.txt  ", "spaced.txt", true, "lines are trimmed"),
        // Dotfiles and the root.
        ("*", ".git/config", true, "* matches dotfiles"),
        (".*", ".env", true, ".* matches dotfiles"),
        ("*", ".", false, "the root itself is never excluded"),
        // Unicode.
        ("données/*", "données/x", true, "non-ASCII names"),
    ];

    #[test]
    fn docker_semantics_table() {
        assert!(TABLE.len() >= 40);
        for (patterns, path, want, what) in TABLE {
            let rules = IgnoreRules::parse(patterns).expect("valid patterns");
            assert_eq!(
                rules.is_excluded(path),
                *want,
                "{what}: {patterns:?} vs {path:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            IgnoreRules::parse("a\n!\n"),
            Err(IgnoreError::LoneExclusion { line: 2 })
        );
        for bad in ["[abc", "[]", "x\\", "[z-a]", "a]"] {
            let e = IgnoreRules::parse(&format!("ok\n{bad}\n")).expect_err(bad);
            assert!(e.to_string().contains("line 2"), "{e}");
        }
    }

    #[test]
    fn cleaned_patterns_and_exclusions() {
        let r = IgnoreRules::parse("/a/./b/\n! c\n").expect("valid");
        assert_eq!(r.patterns()[0].text, "a/b");
        assert!(r.patterns()[1].exclusion);
        assert_eq!(r.patterns()[1].text, "c");
        assert!(!r.is_empty());
        assert!(IgnoreRules::parse("# only\n\n").expect("valid").is_empty());
    }

    #[test]
    fn may_include_under() {
        let r = IgnoreRules::parse("build\n!build/keep/x.txt\n").expect("valid");
        assert!(r.may_include_under("build"));
        assert!(r.may_include_under("build/keep"));
        assert!(!r.may_include_under("other"));
        let r = IgnoreRules::parse("*\n!**/*.py\n").expect("valid");
        assert!(r.may_include_under("anything"));
        let r = IgnoreRules::parse("node_modules\n").expect("valid");
        assert!(!r.may_include_under("node_modules"));
    }

    #[test]
    fn hostile_patterns_stay_linear() {
        let rules = IgnoreRules::parse(&"*a".repeat(40)).expect("valid");
        let path = "a".repeat(2000);
        assert!(!rules.is_excluded(&format!("{path}b")));
        let rules = IgnoreRules::parse(&"**/".repeat(30)).expect("valid");
        assert!(rules.is_excluded(&"d/".repeat(500)));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(patterns in "[-a-z*?\\[\\]\\\\/!.# \n^]{0,40}", path in "[a-z./*]{0,20}") {
            if let Ok(r) = IgnoreRules::parse(&patterns) {
                let _ = r.is_excluded(&path);
                let _ = r.may_include_under(&path);
            }
        }
    }
}
