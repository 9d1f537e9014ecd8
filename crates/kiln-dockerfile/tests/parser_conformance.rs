//! BuildKit's own parser golden files: every positive case must dump to its
//! `result` byte for byte, every negative case must fail to parse.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;

fn conformance(sub: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/conformance/buildkit/parser")
        .join(sub);
    assert!(p.is_dir(), "conformance data missing at {}", p.display());
    p
}

fn cases(sub: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(conformance(sub))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

#[test]
fn positive_cases_dump_like_buildkit() {
    let mut failures = Vec::new();
    let all = cases("testfiles");
    for dir in &all {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let src = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let want = fs::read_to_string(dir.join("result")).unwrap();
        match kiln_dockerfile::parse(&src) {
            Ok(df) => {
                let got = df.dump();
                if got.trim_end_matches('\n') != want.trim_end_matches('\n') {
                    failures.push(format!("{name}:\n--- want\n{want}\n--- got\n{got}"));
                }
            }
            Err(e) => failures.push(format!("{name}: unexpected error: {e}")),
        }
    }
    println!(
        "parser conformance: {}/{} positive cases passed",
        all.len() - failures.len(),
        all.len()
    );
    assert!(
        all.len() >= 33,
        "expected at least 33 cases, found {}",
        all.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn negative_cases_fail() {
    let all = cases("testfiles-negative");
    let mut failures = Vec::new();
    for dir in &all {
        let src = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        if let Ok(df) = kiln_dockerfile::parse(&src) {
            failures.push(format!("{}: parsed: {}", dir.display(), df.dump()));
        }
    }
    println!(
        "parser conformance: {}/{} negative cases rejected",
        all.len() - failures.len(),
        all.len()
    );
    assert!(all.len() >= 4);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
