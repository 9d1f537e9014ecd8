//! Unit tests of the lexer; the conformance vectors live in
//! `tests/shell_conformance.rs`.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn word(lexer: &Lexer, input: &str, env: &dyn Env) -> String {
    lexer
        .process_word(input, env)
        .unwrap_or_else(|e| panic!("{input:?} failed: {e}"))
}

fn words(lexer: &Lexer, input: &str, env: &dyn Env) -> Vec<String> {
    lexer
        .process_words(input, env)
        .unwrap_or_else(|e| panic!("{input:?} failed: {e}"))
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn env_implementations() {
    let mut map = BTreeMap::new();
    map.insert("A".to_owned(), "1".to_owned());
    assert_eq!(Env::get(&map, "A"), Some("1"));
    assert_eq!(Env::get(&map, "B"), None);
    let pairs = [("A", "1"), ("A", "2")];
    assert_eq!(Env::get(&pairs, "A"), Some("2"), "the last pair wins");
    let slice: &[(&str, &str)] = &pairs;
    assert_eq!(
        Lexer::default().process_word("$A", &slice),
        Ok("2".to_owned())
    );
    let hash: HashMap<String, &str> = HashMap::from([("A".to_owned(), "h")]);
    assert_eq!(
        Lexer::default().process_word("$A", &hash),
        Ok("h".to_owned())
    );
    assert_eq!(
        Lexer::default().process_word("[$A]", &EmptyEnv),
        Ok("[]".to_owned())
    );
}

#[test]
fn pattern_operators() {
    let lx = Lexer::default();
    let e = [("F", "xxyy"), ("P", "/a/b/c.tar.gz"), ("E", "")];
    assert_eq!(word(&lx, "${F#x}", &e), "xyy");
    assert_eq!(word(&lx, "${F##*x}", &e), "yy");
    assert_eq!(word(&lx, "${F#*x}", &e), "xyy");
    assert_eq!(word(&lx, "${F%y}", &e), "xxy");
    assert_eq!(word(&lx, "${F%%y*}", &e), "xx");
    assert_eq!(word(&lx, "${F%y*}", &e), "xxy");
    assert_eq!(word(&lx, "${P##*/}", &e), "c.tar.gz");
    assert_eq!(word(&lx, "${P%/*}", &e), "/a/b");
    assert_eq!(word(&lx, "${P%.*}", &e), "/a/b/c.tar");
    assert_eq!(word(&lx, "${P%%.*}", &e), "/a/b/c");
    assert_eq!(word(&lx, "${P/\\//:}", &e), ":a/b/c.tar.gz");
    assert_eq!(word(&lx, "${P//\\//:}", &e), ":a:b:c.tar.gz");
    assert_eq!(
        word(&lx, "${P//[a]/x}", &e),
        "/a/b/c.tar.gz",
        "brackets are literal"
    );
    assert_eq!(word(&lx, "${F//?/-}", &e), "----");
    assert_eq!(word(&lx, "${F/y*/Z}", &e), "xxZ");
    assert_eq!(
        word(&lx, "${F//x/\\$0\\$0}", &e),
        "\\x\\x\\x\\xyy",
        "Go template"
    );
    assert_eq!(
        word(&lx, "${F/x/\\$0}", &e),
        "\\$0xyy",
        "literal replacement"
    );
    assert_eq!(
        word(&lx, "${F#'*'}", &e),
        "xxyy",
        "a quoted star is still a wildcard"
    );
    assert_eq!(word(&lx, "${E#x}", &e), "");
    assert_eq!(word(&lx, "${UNSET%%x}", &e), "");
    assert_eq!(word(&lx, "${UNSET//x/y}", &e), "");
    let bad = lx.process_word("${F#\\a}", &env(&e));
    assert!(
        matches!(
            bad,
            Err(ShellError::InvalidPattern {
                escaped: Some('a'),
                ..
            })
        ),
        "{bad:?}"
    );
    for input in ["${F:#x}", "${F:%x}", "${F:##x}", "${F:%%}"] {
        assert!(
            matches!(
                lx.process_word(input, &env(&e)),
                Err(ShellError::UnsupportedModifier { .. })
            ),
            "{input}"
        );
    }
}

#[test]
fn default_alternative_and_required() {
    let lx = Lexer::default();
    let e = [("SET", "v"), ("EMPTY", "")];
    assert_eq!(word(&lx, "${SET:-d}|${EMPTY:-d}|${NO:-d}", &e), "v|d|d");
    assert_eq!(word(&lx, "${SET-d}|${EMPTY-d}|${NO-d}", &e), "v||d");
    assert_eq!(word(&lx, "${SET:+a}|${EMPTY:+a}|${NO:+a}", &e), "a||");
    assert_eq!(word(&lx, "${SET+a}|${EMPTY+a}|${NO+a}", &e), "a|a|");
    assert_eq!(word(&lx, "${SET:?m}${SET?m}${EMPTY?m}", &e), "vv");
    let err = lx.process_word("${NO?must be set $SET}", &env(&e));
    assert_eq!(
        err,
        Err(ShellError::Required {
            name: "NO".to_owned(),
            message: Some("must be set v".to_owned()),
            empty: false,
            word: "${NO?must be set $SET}".to_owned(),
        })
    );
    assert_eq!(
        err.map_err(|e| e.to_string()),
        Err("NO: must be set v in `${NO?must be set $SET}`".to_owned())
    );
    let err = lx
        .process_word("${EMPTY:?}", &env(&e))
        .map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("EMPTY: is not allowed to be empty in `${EMPTY:?}`".to_owned())
    );
    let err = lx
        .process_word("${NO:?}", &env(&e))
        .map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("NO: is not allowed to be unset in `${NO:?}`".to_owned())
    );
}

#[test]
fn errors_name_the_problem_and_the_word() {
    let lx = Lexer::default();
    let msg = |input: &str| {
        lx.process_word(input, &EmptyEnv)
            .expect_err("input is invalid")
            .to_string()
    };
    assert_eq!(msg("\"abc"), "unterminated quote (\") in `\"abc`");
    assert_eq!(msg("'abc"), "unterminated quote (') in `'abc`");
    assert_eq!(
        msg("${abc"),
        "missing `}` in variable substitution in `${abc`"
    );
    assert_eq!(
        msg("${X:-'abc"),
        "missing `}` in variable substitution in `${X:-'abc`"
    );
    assert_eq!(
        msg("${X/abc"),
        "missing `/` after the pattern in variable substitution in `${X/abc`"
    );
    assert_eq!(msg("${}"), "bad substitution in `${}`");
    assert_eq!(
        msg("${X:=1}"),
        "unsupported modifier `:=` in variable substitution in `${X:=1}`"
    );
    assert_eq!(
        msg("${#X}"),
        "unsupported modifier `X` in variable substitution in `${#X}`"
    );
    assert!(msg("${X#\\q}").starts_with("invalid pattern `\\q` in variable substitution"));
}

#[test]
fn escape_character_backtick() {
    let lx = Lexer::new('`');
    assert_eq!(lx.escape(), '`');
    let e = [("A", "1")];
    assert_eq!(word(&lx, "C:\\path\\$A", &e), "C:\\path\\1");
    assert_eq!(word(&lx, "`$A", &e), "$A");
    assert_eq!(word(&lx, "a` b", &e), "a b");
    assert_eq!(word(&lx, "\"x`\"y\"", &e), "x\"y");
    assert_eq!(
        word(&lx, "\"x\\\"", &e),
        "x\\",
        "a backslash does not escape"
    );
    assert_eq!(word(&lx, "\"``\"", &e), "`");
    assert_eq!(word(&lx, "\"`a\"", &e), "`a");
    assert_eq!(word(&lx, "trailing`", &e), "trailing");
    assert_eq!(words(&lx, "a` b c", &e), ["a b", "c"]);
    // Patterns always use a backslash for their own escapes.
    assert_eq!(word(&lx, "${A#\\*}", &[("A", "*x")]), "x");
}

#[test]
fn skip_unset_env_keeps_references() {
    let lx = Lexer::default().skip_unset_env(true);
    let e = [("A", "1"), ("E", "")];
    assert_eq!(word(&lx, "$A-$B-${B}-${E}", &e), "1-$B-${B}-");
    assert_eq!(word(&lx, "${B:-x$A}", &e), "${B:-x1}");
    assert_eq!(
        word(&lx, "${B:+x}${B?m}${B#p}${B%%p}", &e),
        "${B:+x}${B?m}${B#p}${B%%p}"
    );
    assert_eq!(word(&lx, "${B/p/r}|${B//p/r}", &e), "${B/p/r}|${B/p/r}");
    assert_eq!(
        word(&lx, "${B:=x}", &e),
        "${B:=x}",
        "unsupported but unset: kept"
    );
    assert_eq!(
        word(&lx, "${E:-d}", &e),
        "d",
        "set but empty is still expanded"
    );
    assert!(lx.process_word("${A:=x}", &env(&e)).is_err());
    assert_eq!(words(&lx, "$B c", &e), ["$B", "c"]);
}

#[test]
fn skip_process_quotes_keeps_quotes() {
    let lx = Lexer::default().skip_process_quotes(true);
    let e = [("A", "1")];
    assert_eq!(word(&lx, "'$A' \"$A\"", &e), "'1' \"1\"");
    assert_eq!(word(&lx, "echo \"it's\"", &e), "echo \"it's\"");
    assert_eq!(word(&lx, "\\$A \\\"", &e), "$A \"", "escapes still apply");
    assert_eq!(word(&lx, "${A:-'x'}", &e), "1");
    assert_eq!(word(&lx, "${B:-'x y'}", &e), "'x y'");
}

#[test]
fn raw_quotes_and_raw_escapes() {
    let lx = Lexer::default().raw_quotes(true);
    assert_eq!(
        words(&lx, "'a b' \"c\" d", &EmptyEnv),
        ["'a b'", "\"c\"", "d"]
    );
    let lx = Lexer::default().raw_escapes(true);
    assert_eq!(
        words(&lx, "a\\ b \"\\x\\\"\"", &EmptyEnv),
        ["a\\ b", "\\\\x\\\""]
    );
    let lx = Lexer::default()
        .raw_quotes(true)
        .raw_escapes(true)
        .skip_unset_env(true);
    assert_eq!(
        words(&lx, "cat <<'EOF' >$OUT", &EmptyEnv),
        ["cat", "<<'EOF'", ">$OUT"]
    );
}

#[test]
fn matched_and_unmatched_names() {
    let lx = Lexer::default();
    let e = env(&[("FOO", "xxx"), ("BAR", ""), ("N", "x")]);
    let got = |input: &str| {
        lx.process_word_with_matches(input, &e)
            .unwrap_or_else(|err| panic!("{input:?} failed: {err}"))
    };
    let x = got("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}");
    assert_eq!(x.value, "xxx bbb ccc");
    assert_eq!(x.matched, set(&["BAR", "FOO"]));
    assert_eq!(x.unmatched, set(&["BAZ"]));

    let x = got("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}");
    assert_eq!(x.value, "aaa bbb ");
    assert_eq!(x.unmatched, set(&["BAZ"]));

    // Names in a default count even when the default is not used.
    let x = got("${FOO:-$NOPE}");
    assert_eq!(
        (x.value.as_str(), x.matched, x.unmatched),
        ("xxx", set(&["FOO"]), set(&["NOPE"]))
    );

    let x = got("$1 $@ ${#} $$ x");
    assert_eq!(x.value, "    x");
    assert_eq!(x.unmatched, set(&["#", "$", "1", "@"]));

    let x = got("'$FOO' \\$BAR $");
    assert_eq!(x.value, "$FOO $BAR $");
    assert!(x.matched.is_empty() && x.unmatched.is_empty());

    let x = got("${FOO#$N}${FOO/$N/$R}");
    assert_eq!(x.value, "xxxx");
    assert_eq!(x.matched, set(&["FOO", "N"]));
    assert_eq!(x.unmatched, set(&["R"]));

    let x = got("${FOO///}");
    assert_eq!(x.value, "xxx");
    assert_eq!(x.matched, set(&["FOO"]));

    let x = lx
        .process_word_with_matches("${ABC:-.}${X%x}", &EmptyEnv)
        .expect("valid word");
    assert_eq!(x.value, ".");
    assert_eq!(x.unmatched, set(&["ABC", "X"]));
}

#[test]
fn names() {
    let lx = Lexer::default();
    let e = [("A_1", "a"), ("한국어", "k"), ("10", "ten"), ("न", "n")];
    assert_eq!(word(&lx, "$A_1.", &e), "a.");
    assert_eq!(word(&lx, "$한국어!", &e), "k!");
    assert_eq!(word(&lx, "$10x", &e), "tenx");
    assert_eq!(word(&lx, "$0x", &e), "x");
    // U+093E (a vowel sign) is Alphabetic but not a letter in Go's sense.
    assert_eq!(word(&lx, "$नाम", &e), "nाम");
    // `²` is numeric but not a decimal digit.
    assert_eq!(word(&lx, "$²", &e), "$²");
    assert_eq!(
        word(&lx, "$٣", &e),
        "",
        "Arabic-Indic digit starts a positional name"
    );
    assert_eq!(word(&lx, "${@:-d}${*}${!}", &e), "d");
    assert_eq!(
        word(&lx, "\u{FEFF}$A_1", &e),
        "a",
        "leading byte-order mark skipped"
    );
    assert_eq!(word(&lx, "x\u{FEFF}", &e), "x\u{FEFF}");
}

#[test]
fn word_splitting() {
    let lx = Lexer::default();
    let e = [("S", " a  b "), ("E", "")];
    assert_eq!(words(&lx, "  x  y\t\nz ", &e), ["x", "y", "z"]);
    assert_eq!(words(&lx, "x$S", &e), ["x", "a", "b"]);
    assert_eq!(words(&lx, "x\"$S\"", &e), ["x a  b "]);
    assert_eq!(
        words(&lx, "a '' \"\" b", &e),
        ["a", "b"],
        "empty quotes make no word"
    );
    assert_eq!(words(&lx, "a''b", &e), ["ab"]);
    assert_eq!(words(&lx, "a$E b", &e), ["a", "b"]);
    assert_eq!(words(&lx, "", &e), Vec::<String>::new());
    assert_eq!(
        words(&lx, "a\u{3000}b", &e),
        ["a", "b"],
        "Unicode white space splits"
    );
    assert_eq!(words(&lx, "cat << EOF x", &e), ["cat", "<< EOF", "x"]);
    assert_eq!(words(&lx, "a<b <", &e), ["a<b", "<"]);
}

#[test]
fn nested_words_drop_preceding_text_like_buildkit() {
    let lx = Lexer::default();
    assert_eq!(words(&lx, "abc${X:-def}ghi", &EmptyEnv), ["defghi"]);
    assert_eq!(words(&lx, "ab\"${X:-c}\"d", &EmptyEnv), ["cd"]);
    assert_eq!(words(&lx, "x y${X:-z}", &EmptyEnv), ["x", "z"]);
    assert_eq!(
        words(&lx, "ab${X}c$X", &EmptyEnv),
        ["abc"],
        "plain forms are not affected"
    );
    assert_eq!(word(&lx, "abc${X:-def}ghi", &EmptyEnv), "abcdefghi");
}

#[test]
fn nesting_limit() {
    let lx = Lexer::default();
    let nested = |depth: usize| "${X:-".repeat(depth) + "v" + &"}".repeat(depth);
    assert_eq!(
        lx.process_word(&nested(MAX_NESTING), &EmptyEnv),
        Ok("v".to_owned())
    );
    let quoted = |depth: usize| "\"${X:-".repeat(depth) + "v" + &"}\"".repeat(depth);
    assert_eq!(
        lx.process_word(&quoted(MAX_NESTING), &EmptyEnv),
        Ok("v".to_owned())
    );
    assert!(matches!(
        lx.process_word(&nested(MAX_NESTING + 1), &EmptyEnv),
        Err(ShellError::NestingTooDeep {
            limit: MAX_NESTING,
            ..
        })
    ));
    assert!(lx.process_word(&nested(100_000), &EmptyEnv).is_err());
}

#[test]
fn go_tables_agree_with_ascii_and_known_points() {
    assert!(is_go_letter('ª') && is_go_letter('µ') && is_go_letter('한'));
    assert!(!is_go_letter('ा') && !is_go_letter('Ⅳ') && !is_go_letter('Ⓐ'));
    assert!(is_go_digit('٣') && is_go_digit('９'));
    assert!(!is_go_digit('²') && !is_go_digit('½') && !is_go_digit('Ⅳ'));
    for ch in '\0'..='\u{7f}' {
        assert_eq!(is_go_letter(ch), ch.is_ascii_alphabetic(), "{ch:?}");
        assert_eq!(is_go_digit(ch), ch.is_ascii_digit(), "{ch:?}");
        assert_eq!(
            in_ranges(unicode_tables::LETTER, ch),
            ch.is_ascii_alphabetic(),
            "{ch:?}"
        );
    }
    for table in [unicode_tables::LETTER, unicode_tables::DECIMAL_DIGIT] {
        assert!(
            table.windows(2).all(|w| w[0].1 < w[1].0),
            "sorted, disjoint"
        );
        assert!(table.iter().all(|(lo, hi)| lo <= hi));
    }
}

mod prop {
    use super::super::*;
    use proptest::prelude::*;

    fn env() -> Vec<(String, String)> {
        [("A", "x y"), ("E", ""), ("S", "*"), ("P", "/a/b")]
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    proptest! {
        #[test]
        fn never_panics_on_arbitrary_text(input in any::<String>()) {
            let env = env();
            for lexer in [
                Lexer::default(),
                Lexer::new('`').skip_unset_env(true),
                Lexer::default().skip_process_quotes(true).raw_escapes(true).raw_quotes(true),
            ] {
                let _ = lexer.process_word(&input, &env);
                let _ = lexer.process_words(&input, &env);
            }
        }

        #[test]
        fn never_panics_on_shell_like_text(
            input in r#"([$\{\}:#%/*?"'\\`<\- +AESP\n]|\[|\]|\$\{|\$\$|é|한){0,40}"#,
        ) {
            let env = env();
            for lexer in [Lexer::default(), Lexer::new('`'), Lexer::default().skip_unset_env(true)] {
                let plain = lexer.process_word(&input, &env);
                let with = lexer.process_word_with_matches(&input, &env);
                prop_assert_eq!(plain.is_ok(), with.is_ok());
                if let (Ok(plain), Ok(with)) = (plain, with) {
                    prop_assert_eq!(plain, with.value);
                }
                let _ = lexer.process_words(&input, &env);
            }
        }
    }
}
