//! The real `kiln` binary: global options, `build --call`, error rendering.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

fn kiln() -> Command {
    let mut c = Command::cargo_bin("kiln").unwrap();
    c.env_remove("KILN_ROOT").env_remove("KILN_LOG");
    c
}

fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    dir
}

fn call(dir: &Path, what: &str) -> Command {
    let mut c = kiln();
    c.args(["build", "--call", what]).arg(dir);
    c
}

#[test]
fn version_and_help() {
    kiln()
        .arg("--version")
        .assert()
        .success()
        .stdout(contains("kiln "));
    kiln()
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("--root"))
        .stdout(contains("--log-level"))
        .stdout(contains("--progress"))
        .stdout(contains("Exit status"));
    kiln()
        .args(["help", "build"])
        .assert()
        .success()
        .stdout(contains("--call"));
}

#[test]
fn bad_usage_exits_2() {
    kiln().arg("frobnicate").assert().code(2);
    kiln()
        .args(["build", "--call", "nope", "."])
        .assert()
        .code(2);
    kiln()
        .args(["build"])
        .assert()
        .code(2)
        .stderr(contains("CONTEXT"));
}

#[test]
fn targets_lists_stages_with_descriptions() {
    let dir = context(&[(
        "Dockerfile",
        "# base the common base\nFROM alpine AS base\n\n# build compiles it\nFROM base AS build\nRUN true\n\nFROM base AS release\n",
    )]);
    call(dir.path(), "targets")
        .assert()
        .success()
        .stdout(contains("TARGET"))
        .stdout(predicate::str::is_match(r"base\s+the common base").unwrap())
        .stdout(predicate::str::is_match(r"build\s+compiles it").unwrap())
        .stdout(contains("release (default)"));
    let out = call(dir.path(), "targets")
        .arg("--format")
        .arg("json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["targets"][1]["name"], "build");
    assert_eq!(v["targets"][1]["description"], "compiles it");
    assert_eq!(v["targets"][2]["default"], true);
}

#[test]
fn outline_lists_args_secrets_ssh() {
    let dir = context(&[(
        "Dockerfile",
        "# PY the python version\nARG PY=3.12\nFROM python:${PY}-slim AS app\n# PORT port to listen on\nARG PORT=8000\n\
         RUN --mount=type=secret,id=pypi,required --mount=type=ssh pip install .\nFROM alpine AS other\nARG UNUSED=1\n",
    )]);
    let out = call(dir.path(), "outline")
        .args(["--target", "app", "--build-arg", "PORT=9000"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("TARGET:      app"), "{text}");
    assert!(
        predicate::str::is_match(r"PY\s+3.12\s+the python version")
            .unwrap()
            .eval(&text),
        "{text}"
    );
    assert!(
        predicate::str::is_match(r"PORT\s+9000\s+port to listen on")
            .unwrap()
            .eval(&text),
        "{text}"
    );
    assert!(!text.contains("UNUSED"), "{text}");
    assert!(
        predicate::str::is_match(r"pypi\s+true")
            .unwrap()
            .eval(&text),
        "{text}"
    );
    assert!(
        predicate::str::is_match(r"default\s+false")
            .unwrap()
            .eval(&text),
        "{text}"
    );
}

#[test]
fn check_reports_and_exits_1() {
    let dir = context(&[(
        "Dockerfile",
        "FROM alpine AS Build\nMAINTAINER me\nCMD echo hi\n",
    )]);
    call(dir.path(), "check")
        .assert()
        .code(1)
        .stdout(contains(
            "Dockerfile:1: StageNameCasing: Stage name 'Build' should be lowercase",
        ))
        .stdout(contains("Dockerfile:2: MaintainerDeprecated:"))
        .stdout(contains("Dockerfile:3: JSONArgsRecommended:"))
        .stdout(contains("hint:"));
    let out = call(dir.path(), "check")
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["warnings"].as_array().unwrap().len(), 3);
    assert_eq!(v["warnings"][0]["ruleName"], "StageNameCasing");
    assert_eq!(v["warnings"][0]["location"]["line"], 1);

    let clean = context(&[("Dockerfile", "FROM alpine\nCMD [\"echo\", \"hi\"]\n")]);
    call(clean.path(), "check").assert().success().stdout("");
}

#[test]
fn check_honours_dockerignore_beside_the_dockerfile() {
    let dir = context(&[
        ("Dockerfile", "FROM alpine\nCOPY notes.md /\n"),
        (".dockerignore", "nothing-relevant\n"),
        ("sub/app.Dockerfile", "FROM alpine\nCOPY notes.md /\n"),
        ("sub/app.Dockerfile.dockerignore", "*.md\n"),
    ]);
    call(dir.path(), "check").assert().success();
    call(dir.path(), "check")
        .arg("-f")
        .arg(dir.path().join("sub/app.Dockerfile"))
        .assert()
        .code(1)
        .stdout(contains("CopyIgnoredFile"));
}

#[test]
fn dockerfile_from_stdin() {
    let dir = context(&[]);
    kiln()
        .args(["build", "--call", "targets", "-f", "-"])
        .arg(dir.path())
        .write_stdin("FROM alpine AS one\nFROM alpine AS two\n")
        .assert()
        .success()
        .stdout(contains("two (default)"));
}

#[test]
fn parse_errors_show_line_column_and_caret() {
    let dir = context(&[("Dockerfile", "FROM alpine\nCOPPY . /app\n")]);
    call(dir.path(), "targets")
        .assert()
        .code(1)
        .stderr(contains(
            "Dockerfile:2:1: unknown instruction: COPPY (did you mean COPY?)",
        ))
        .stderr(contains("   2 | COPPY . /app"))
        .stderr(contains("     | ^^^^^"));
    let dir = context(&[("Dockerfile", "FROM alpine\nRUN <<EOF\necho hi\n")]);
    call(dir.path(), "targets")
        .assert()
        .code(1)
        .stderr(contains(
            "Dockerfile:2:1: unterminated heredoc `EOF` that began on line 2",
        ));
    let dir = context(&[("Dockerfile", "FROM alpine\nCOPY --chwon=1 a b\n")]);
    call(dir.path(), "targets")
        .assert()
        .code(1)
        .stderr(contains("Dockerfile:2:6: unknown flag: --chwon for COPY"))
        .stderr(contains("     |      ^^^^^^^^^"));
}

#[test]
fn unknown_target_is_a_plain_error() {
    let dir = context(&[("Dockerfile", "FROM alpine AS build\nFROM alpine AS final\n")]);
    call(dir.path(), "outline")
        .args(["--target", "buidl"])
        .assert()
        .code(1)
        .stderr("error: target stage `buidl` could not be found (did you mean build?)\n");
}

#[test]
fn missing_dockerfile_is_a_clear_error() {
    let dir = context(&[]);
    call(dir.path(), "targets")
        .assert()
        .code(1)
        .stderr(contains("failed to read Dockerfile"));
}

#[test]
fn debug_layer_commands_round_trip_and_stay_hidden() {
    kiln()
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("\n  debug").not());
    let src = context(&[
        ("etc/hostname", "kiln\n"),
        ("usr/share/doc/readme", &"text\n".repeat(10_000)),
    ]);
    let work = tempfile::tempdir().unwrap();
    for compression in ["gzip", "zstd", "none"] {
        let blob = work.path().join(format!("layer.{compression}"));
        let out = kiln()
            .args(["debug", "layer-write"])
            .arg(src.path())
            .arg("-o")
            .arg(&blob)
            .args(["--compression", compression])
            .assert()
            .success()
            .stdout(contains("diff_id sha256:"))
            .stdout(contains("digest sha256:"))
            .get_output()
            .stdout
            .clone();
        let size = String::from_utf8(out)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("size ").map(str::to_owned))
            .unwrap();
        assert_eq!(
            size.parse::<u64>().unwrap(),
            fs::metadata(&blob).unwrap().len()
        );
        let dest = work.path().join(format!("out.{compression}"));
        kiln()
            .args(["debug", "layer-apply"])
            .arg(&blob)
            .arg(&dest)
            .assert()
            .success()
            .stdout(contains("entries "));
        assert_eq!(
            fs::read_to_string(dest.join("usr/share/doc/readme")).unwrap(),
            "text\n".repeat(10_000)
        );
        // Not into a directory that has something in it.
        kiln()
            .args(["debug", "layer-apply"])
            .arg(&blob)
            .arg(&dest)
            .assert()
            .code(1)
            .stderr(contains("not empty"));
    }
}

/// `shell -n FILE` (parse only) when `shell` is installed; `None` if not.
fn shell_parses(shell: &str, file: &Path) -> Option<std::process::Output> {
    match std::process::Command::new(shell)
        .arg("-n")
        .arg(file)
        .output()
    {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{shell}: {e}"),
    }
}

#[test]
fn completion_scripts_parse_and_leave_out_hidden_commands() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = kiln().args(["completion", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            script.contains("build") && script.contains("run"),
            "{shell}"
        );
        for hidden in ["__monitor", "__build-step", "layer-write", "layer-apply"] {
            assert!(!script.contains(hidden), "{shell} completes {hidden}");
        }
        let file = dir.path().join(format!("kiln.{shell}"));
        fs::write(&file, &script).unwrap();
        if matches!(shell, "bash" | "zsh" | "fish") {
            match shell_parses(shell, &file) {
                Some(out) => assert!(
                    out.status.success(),
                    "{shell} -n rejects the script: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
                // Only bash is sure to be installed; nothing is installed
                // for this test.
                None => assert_ne!(shell, "bash", "bash is not installed"),
            }
        }
    }
    let bash = fs::read_to_string(dir.path().join("kiln.bash")).unwrap();
    for cmd in ["build", "run", "push", "pull", "completion", "image"] {
        assert!(bash.contains(&format!("kiln,{cmd})")), "bash misses {cmd}");
    }
    assert!(!bash.contains("kiln,debug)"), "bash completes `debug`");
    // The script really completes: `kiln d<TAB>` is `diff` (not `debug`),
    // `kiln run --pu<TAB>` offers `--pull`.
    let complete = |words: &str, cword: usize| {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; \
                 _kiln kiln \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                dir.path().join("kiln.bash").display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(complete("kiln d", 1), "diff\n");
    assert!(complete("kiln run --pu", 2).lines().any(|l| l == "--pull"));
    kiln().args(["completion", "tcsh"]).assert().code(2);
}
