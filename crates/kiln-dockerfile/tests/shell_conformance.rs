//! BuildKit's shell-lexer vectors: every `A` and `U` line of envVarTest
//! (single-word expansion) and every line of wordsTest (word splitting).
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use kiln_dockerfile::shell::Lexer;

fn data(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/buildkit/shell")
        .join(name);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("conformance data missing at {}: {e}", p.display()))
}

#[test]
fn env_var_test() {
    let env: BTreeMap<String, String> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let lex = Lexer::new('\\');
    let (mut run, mut failures) = (0, Vec::new());
    for line in data("envVarTest").lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.splitn(3, '|').collect();
        let [platform, input, expected] = parts.as_slice() else {
            panic!("bad line {line}")
        };
        if !platform.trim().contains('A') && !platform.trim().contains('U') {
            continue;
        }
        let (input, expected) = (input.trim(), expected.trim());
        run += 1;
        let got = lex.process_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(v), e) => v == e,
            _ => false,
        };
        if !ok {
            failures.push(format!("{input:?}: want {expected:?}, got {got:?}"));
        }
    }
    println!(
        "shell conformance: envVarTest {}/{run} lines passed",
        run - failures.len()
    );
    assert!(run > 200, "only {run} lines ran");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn words_test() {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    let lex = Lexer::new('\\');
    let (mut run, mut failures) = (0, Vec::new());
    for line in data("wordsTest").lines() {
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(kv) = line.strip_prefix("ENV ") {
            let (k, v) = kv.split_once('=').unwrap();
            env.insert(k.to_string(), v.to_string());
            continue;
        }
        let (input, expected) = line.split_once('|').unwrap();
        let (input, expected) = (input.trim(), expected.trim_start());
        run += 1;
        let got = lex.process_words(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(words), e) => words.join(",") == e,
            _ => false,
        };
        if !ok {
            failures.push(format!("{input:?}: want {expected:?}, got {got:?}"));
        }
    }
    println!(
        "shell conformance: wordsTest {}/{run} lines passed",
        run - failures.len()
    );
    assert!(run >= 20, "only {run} lines ran");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
