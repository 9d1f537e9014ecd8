//! The shell-glob patterns of `${V#p}`, `${V%p}`, `${V/p/r}` and friends.
//!
//! BuildKit turns such a pattern into a Go regular expression and lets Go's
//! RE2-style engine find the match, so its semantics are regular-expression
//! semantics rather than POSIX shell ones. This module reproduces them
//! without a regex crate:
//!
//! - `*` is "any run of characters", `?` is "one character"; neither matches
//!   a newline, because Go's `.` does not by default.
//! - `[`, `]` and every other character are literal: bracket expressions are
//!   not supported by BuildKit, so `${V#[ab]}` removes the four characters
//!   `[ab]` and nothing else.
//! - A backslash escapes `*`, `?` or `\`; before `}` or `/` it is dropped
//!   (those needed escaping only to get past the `${...}` scanner); before
//!   anything else, or at the end, it makes the pattern invalid. This is
//!   always a backslash, whatever the Dockerfile's escape character is.
//! - A byte-order mark at the very start of the pattern is ignored (an
//!   artefact of Go's `text/scanner`, kept for exactness).
//! - All stars of one pattern are either greedy (`##`, `%%`, `/`, `//`) or
//!   lazy (`#`, `%`), and among the matches the first one found by a
//!   leftmost-first (Perl-like) search wins, exactly as with RE2.
//! - The suffix forms run on the reversed value with the reversed pattern,
//!   as BuildKit does, escapes kept in front of the character they escape.
//!
//! Matching is a Pike VM over a tiny instruction set, so it is linear in the
//! length of the value times the length of the pattern: no backtracking
//! blow-up on hostile input.
//!
//! This module owns only pattern parsing and matching; it knows nothing of
//! variables, quotes or the Dockerfile escape character.

/// Why a pattern could not be compiled: a backslash that escapes something
/// other than `*`, `?`, `\`, `}` or `/` (`None` when it ends the pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InvalidEscape(pub(super) Option<char>);

/// One instruction of the matching program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inst {
    /// Consume exactly this character.
    Char(char),
    /// Consume any one character except a newline.
    AnyNotNewline,
    /// Continue at both targets; the first one has priority.
    Split(usize, usize),
    /// Continue at the target.
    Jump(usize),
    /// The pattern matched.
    Match,
}

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern {
    prog: Vec<Inst>,
}

impl Pattern {
    /// Compiles `pattern`; `greedy` selects how the stars behave.
    pub(super) fn compile(pattern: &str, greedy: bool) -> Result<Self, InvalidEscape> {
        let mut prog = Vec::with_capacity(pattern.len() + 1);
        // BuildKit reads the pattern with a fresh Go text/scanner, which
        // skips a byte-order mark at its very start (for the suffix forms:
        // at the end of the pattern as written).
        let pattern = pattern.strip_prefix('\u{FEFF}').unwrap_or(pattern);
        let mut chars = pattern.chars().peekable();
        while let Some(ch) = chars.next() {
            match ch {
                '*' => {
                    // L: split(body, next) | body: any; jump L | next:
                    let split = prog.len();
                    let body = split + 1;
                    let next = split + 3;
                    prog.push(if greedy {
                        Inst::Split(body, next)
                    } else {
                        Inst::Split(next, body)
                    });
                    prog.push(Inst::AnyNotNewline);
                    prog.push(Inst::Jump(split));
                }
                '?' => prog.push(Inst::AnyNotNewline),
                '\\' => match chars.peek().copied() {
                    // The escape only served the `${...}` scanner; the
                    // character itself is handled as a literal next round.
                    Some('}' | '/') => {}
                    Some(escaped @ ('*' | '?' | '\\')) => {
                        chars.next();
                        prog.push(Inst::Char(escaped));
                    }
                    other => return Err(InvalidEscape(other)),
                },
                literal => prog.push(Inst::Char(literal)),
            }
        }
        prog.push(Inst::Match);
        Ok(Self { prog })
    }

    /// Finds the leftmost-first match in `text` that starts at or after the
    /// byte offset `from` (only exactly at `from` when `anchored`). Returns
    /// the byte range of the match.
    fn find(&self, text: &str, from: usize, anchored: bool) -> Option<(usize, usize)> {
        // Threads are (program counter, start offset), kept in priority
        // order; `seen` marks the program counters already queued for the
        // current position.
        let mut current: Vec<(usize, usize)> = Vec::new();
        let mut next: Vec<(usize, usize)> = Vec::new();
        let mut seen = vec![usize::MAX; self.prog.len()];
        let mut stack = Vec::new();
        let mut found = None;
        let mut pos = from;
        let mut generation = 0usize;
        self.add_thread(&mut current, &mut seen, generation, &mut stack, 0, pos);
        loop {
            if current.is_empty() {
                break;
            }
            let ch = text.get(pos..).and_then(|rest| rest.chars().next());
            generation += 1;
            next.clear();
            let after = pos + ch.map_or(0, char::len_utf8);
            for &(pc, start) in &current {
                match self.prog.get(pc) {
                    Some(Inst::Match) => {
                        found = Some((start, pos));
                        // Leftmost-first: every thread after this one has
                        // lower priority and is dropped.
                        break;
                    }
                    Some(Inst::Char(want)) if ch == Some(*want) => {
                        self.add_thread(
                            &mut next,
                            &mut seen,
                            generation,
                            &mut stack,
                            pc + 1,
                            start,
                        );
                    }
                    Some(Inst::AnyNotNewline) if ch.is_some_and(|c| c != '\n') => {
                        self.add_thread(
                            &mut next,
                            &mut seen,
                            generation,
                            &mut stack,
                            pc + 1,
                            start,
                        );
                    }
                    _ => {}
                }
            }
            if ch.is_none() {
                break;
            }
            pos = after;
            std::mem::swap(&mut current, &mut next);
            if found.is_none() && !anchored {
                // A match starting here ranks below every thread that
                // started earlier.
                self.add_thread(&mut current, &mut seen, generation, &mut stack, 0, pos);
            }
        }
        found
    }

    /// Queues the thread at `pc`, following splits and jumps depth-first in
    /// priority order so that `list` stays sorted by priority.
    fn add_thread(
        &self,
        list: &mut Vec<(usize, usize)>,
        seen: &mut [usize],
        generation: usize,
        stack: &mut Vec<usize>,
        pc: usize,
        start: usize,
    ) {
        stack.clear();
        stack.push(pc);
        while let Some(pc) = stack.pop() {
            let Some(mark) = seen.get_mut(pc) else {
                continue;
            };
            if *mark == generation {
                continue;
            }
            *mark = generation;
            match self.prog.get(pc) {
                Some(Inst::Jump(to)) => stack.push(*to),
                Some(Inst::Split(first, second)) => {
                    stack.push(*second);
                    stack.push(*first);
                }
                Some(_) => list.push((pc, start)),
                None => {}
            }
        }
    }
}

/// `${V#p}` / `${V##p}`: removes the match of `pattern` anchored at the
/// start of `value`, if any.
pub(super) fn trim_prefix(
    pattern: &str,
    value: &str,
    greedy: bool,
) -> Result<String, InvalidEscape> {
    let compiled = Pattern::compile(pattern, greedy)?;
    Ok(match compiled.find(value, 0, true) {
        Some((_, end)) => value.get(end..).unwrap_or_default().to_owned(),
        None => value.to_owned(),
    })
}

/// `${V%p}` / `${V%%p}`: removes the match of `pattern` anchored at the end
/// of `value`, found as a prefix match on the reversed value (a regular
/// expression cannot ask for the shortest rightmost match directly).
pub(super) fn trim_suffix(
    pattern: &str,
    value: &str,
    greedy: bool,
) -> Result<String, InvalidEscape> {
    let reversed_value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed_value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern character by character, except that a backslash
/// stays in front of the character it escapes (`a\*c` becomes `c\*a`). A
/// lone backslash at the end moves to the front, where it escapes whatever
/// follows it there, as in BuildKit.
pub(super) fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    // Walk forwards, collecting units (an escape pair or one character),
    // then emit the units in reverse order.
    let mut units: Vec<&[char]> = Vec::with_capacity(chars.len());
    while i < chars.len() {
        let width = if chars[i] == '\\' && i + 1 < chars.len() {
            2
        } else {
            1
        };
        units.push(&chars[i..i + width]);
        i += width;
    }
    for unit in units.iter().rev() {
        out.extend_from_slice(unit);
    }
    out.into_iter().collect()
}

/// `${V/p/r}`: replaces the first match of `pattern` (greedy stars) in
/// `value` with `replacement`, taken literally.
pub(super) fn replace_first(
    pattern: &str,
    value: &str,
    replacement: &str,
) -> Result<String, InvalidEscape> {
    let compiled = Pattern::compile(pattern, true)?;
    Ok(match compiled.find(value, 0, false) {
        Some((start, end)) => {
            let mut out = String::with_capacity(value.len() + replacement.len());
            out.push_str(value.get(..start).unwrap_or_default());
            out.push_str(replacement);
            out.push_str(value.get(end..).unwrap_or_default());
            out
        }
        None => value.to_owned(),
    })
}

/// `${V//p/r}`: replaces every match of `pattern` (greedy stars) in
/// `value`. BuildKit hands the replacement to Go's `ReplaceAllString`, which
/// reads it as a template: `$$` is a dollar sign, `$0` / `${0}` the matched
/// text, and any other `$name` or `${name}` the empty string (the pattern
/// has no capture groups). An empty match right after another match is not
/// replaced, and the search always advances by at least one character.
pub(super) fn replace_all(
    pattern: &str,
    value: &str,
    replacement: &str,
) -> Result<String, InvalidEscape> {
    let compiled = Pattern::compile(pattern, true)?;
    let mut out = String::with_capacity(value.len());
    let mut last_end = 0;
    let mut search = 0;
    while search <= value.len() {
        let Some((start, end)) = compiled.find(value, search, false) else {
            break;
        };
        out.push_str(value.get(last_end..start).unwrap_or_default());
        if end > last_end || start == 0 {
            expand_template(
                &mut out,
                replacement,
                value.get(start..end).unwrap_or_default(),
            );
        }
        last_end = end;
        let width = value
            .get(search..)
            .and_then(|rest| rest.chars().next())
            .map_or(0, char::len_utf8);
        if search + width > end {
            search += width;
        } else if search + 1 > end {
            search += 1;
        } else {
            search = end;
        }
    }
    out.push_str(value.get(last_end..).unwrap_or_default());
    Ok(out)
}

/// Appends `template` to `out` the way Go's `Regexp.Expand` does for a
/// regular expression without capture groups.
fn expand_template(out: &mut String, template: &str, matched: &str) {
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        rest = &rest[dollar + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        match template_reference(rest) {
            Some((name, after)) => {
                // Group 0 is the whole match; no other group exists. Go
                // rejects leading zeros, so only the exact name `0` counts.
                if name == "0" {
                    out.push_str(matched);
                }
                rest = after;
            }
            // Not a reference: the dollar sign is kept as text.
            None => out.push('$'),
        }
    }
    out.push_str(rest);
}

/// Parses the `name` or `{name}` after a `$` in a Go template; returns the
/// name and what follows the reference.
fn template_reference(text: &str) -> Option<(&str, &str)> {
    let (braced, body) = match text.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let len: usize = body
        .chars()
        .take_while(|&c| super::is_go_letter(c) || super::is_go_digit(c) || c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let (name, after) = body.split_at(len);
    if braced {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(p: &str, v: &str, greedy: bool) -> String {
        trim_prefix(p, v, greedy).expect("valid pattern in test")
    }

    fn suffix(p: &str, v: &str, greedy: bool) -> String {
        trim_suffix(p, v, greedy).expect("valid pattern in test")
    }

    #[test]
    fn prefix_lazy_and_greedy() {
        assert_eq!(prefix("*x", "axbxc", false), "bxc");
        assert_eq!(prefix("*x", "axbxc", true), "c");
        assert_eq!(prefix("*", "abc", false), "abc");
        assert_eq!(prefix("*", "abc", true), "");
        assert_eq!(prefix("?", "abc", true), "bc");
        assert_eq!(prefix("b", "abc", true), "abc");
        assert_eq!(prefix("", "abc", true), "abc");
        assert_eq!(prefix("*x*y", "xxyy", false), "y");
    }

    #[test]
    fn suffix_lazy_and_greedy() {
        assert_eq!(suffix("x*", "axbxc", false), "axb");
        assert_eq!(suffix("x*", "axbxc", true), "a");
        assert_eq!(suffix(".*", "file.tar.gz", false), "file.tar");
        assert_eq!(suffix(".*", "file.tar.gz", true), "file");
        assert_eq!(suffix("\\**", "xx**", true), "xx");
        assert_eq!(suffix("\\**\\*", "a***yy*", true), "a");
    }

    #[test]
    fn wildcards_do_not_cross_newlines() {
        assert_eq!(prefix("*", "ab\ncd", true), "\ncd");
        assert_eq!(prefix("?", "\nab", true), "\nab");
        assert_eq!(prefix("*\n", "ab\ncd", true), "cd");
    }

    #[test]
    fn brackets_and_regex_characters_are_literal() {
        assert_eq!(prefix("[ab]", "[ab]c", true), "c");
        assert_eq!(prefix("[ab]", "abc", true), "abc");
        assert_eq!(
            prefix("()[]{\\}^$.\\*\\?|\\\\", "()[]{}^$.*?|\\x", true),
            "x"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(prefix("?\\?", "???y", false), "?y");
        assert_eq!(prefix("\\/", "/a", true), "a");
        for bad in ["\\", "\\x", "\\\\\\", "a\\b"] {
            assert!(
                Pattern::compile(bad, true).is_err(),
                "{bad:?} should be invalid"
            );
        }
        assert_eq!(Pattern::compile("\\", true), Err(InvalidEscape(None)));
        assert_eq!(Pattern::compile("\\x", true), Err(InvalidEscape(Some('x'))));
    }

    #[test]
    fn leading_byte_order_mark_is_ignored() {
        assert_eq!(replace_all("\u{FEFF}", "", "a").expect("valid"), "a");
        assert_eq!(prefix("\u{FEFF}x", "xy", true), "y");
        assert_eq!(suffix("x\u{FEFF}", "yx", true), "y");
        assert_eq!(prefix("x\u{FEFF}", "x\u{FEFF}y", true), "y");
    }

    #[test]
    fn reversing_patterns_keeps_escapes_in_front() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
        assert_eq!(reverse_pattern(""), "");
        // A trailing lone backslash ends up escaping the last character.
        assert_eq!(suffix("*\\", "ab*", true), "ab");
    }

    #[test]
    fn replace_first_and_all() {
        let first = |p, v, r| replace_first(p, v, r).expect("valid pattern in test");
        let all = |p, v, r| replace_all(p, v, r).expect("valid pattern in test");
        assert_eq!(first("\\*/", "/foo*/*/*.txt", "."), "/foo.*/*.txt");
        assert_eq!(all("\\*/", "/foo*/*/*.txt", "."), "/foo..*.txt");
        assert_eq!(first("/?/", "/a/foo/b/c.txt", "/"), "/foo/b/c.txt");
        assert_eq!(all("/?/", "/a/foo/b/c.txt", "/"), "/foo/c.txt");
        assert_eq!(first("", "xxyy", "ww"), "wwxxyy");
        assert_eq!(all("", "xy", "-"), "-x-y-");
        assert_eq!(all("*", "ab", "r"), "r");
        assert_eq!(
            all("a*", "baaac", "X"),
            "bX",
            "a star is `.*`, not a repetition"
        );
        assert_eq!(all("x", "", "r"), "");
        assert_eq!(all("", "", "r"), "r");
    }

    #[test]
    fn replace_all_expands_go_templates() {
        let all = |p, v, r| replace_all(p, v, r).expect("valid pattern in test");
        assert_eq!(all("a", "banana", "[$0]"), "b[a]n[a]n[a]");
        assert_eq!(all("a", "banana", "${0}"), "banana");
        assert_eq!(all("a", "banana", "$$"), "b$n$n$");
        assert_eq!(all("a", "banana", "$1"), "bnn");
        assert_eq!(all("a", "banana", "$00"), "bnn");
        assert_eq!(all("a", "banana", "$0x"), "bnn");
        assert_eq!(all("a", "banana", "$"), "b$n$n$");
        assert_eq!(all("a", "banana", "$-"), "b$-n$-n$-");
        assert_eq!(all("a", "banana", "${0"), "b${0n${0n${0");
        // The single replacement takes the text literally.
        assert_eq!(
            replace_first("a", "banana", "$0").expect("valid"),
            "b$0nana"
        );
    }

    #[test]
    fn matching_is_linear_on_hostile_input() {
        let value = "a".repeat(20_000);
        let pattern = "*".repeat(200) + "b";
        assert_eq!(prefix(&pattern, &value, true), value);
        assert_eq!(suffix(&pattern, &value, false), value);
    }
}
