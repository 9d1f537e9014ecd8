//! The committed command reference (`docs/reference/`) is what the clap
//! definitions generate now: a flag added, renamed or re-described without
//! regenerating the pages (`make docs`) fails here.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

fn pages(dir: &Path) -> BTreeMap<String, String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read_to_string(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn command_reference_is_current() {
    let fresh = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::cargo_bin("kiln")
        .unwrap()
        .args(["debug", "docs"])
        .arg(fresh.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = pages(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/reference"));
    let generated = pages(fresh.path());
    assert_eq!(
        committed.keys().collect::<Vec<_>>(),
        generated.keys().collect::<Vec<_>>(),
        "docs/reference has other pages than the commands: run `make docs`"
    );
    for (name, text) in &generated {
        assert_eq!(
            &committed[name], text,
            "docs/reference/{name} is out of date: run `make docs`"
        );
    }
    // Every visible command has its page, and every page names its flags.
    let help = assert_cmd::Command::cargo_bin("kiln")
        .unwrap()
        .args(["images", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in [
        "--all",
        "--quiet",
        "--digests",
        "--no-trunc",
        "--filter",
        "--format",
    ] {
        assert!(
            help.contains(flag) && generated["images.md"].contains(flag),
            "{flag}"
        );
    }
}
