#![allow(clippy::unwrap_used, clippy::print_stderr)]
//! Crash safety and concurrency of the store, with real processes: `kiln
//! load` and `kiln import` SIGKILLed at random moments, then `system check`
//! must find nothing wrong and the command must succeed when repeated; two
//! kiln processes at once never corrupt the store or delete what the other
//! uses.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn spawn(t: &TestStore, args: &[&str]) -> Child {
    t.cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn timed(t: &TestStore, args: &[&str]) -> Duration {
    let start = Instant::now();
    t.ok(args);
    start.elapsed()
}

/// A store with no image, an oci-archive and a rootfs tarball to load and
/// import (big enough that each takes a while).
fn fixture() -> (
    TestStore,
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let t = TestStore::new();
    let rootfs = t.dir.path().join("rootfs");
    make_rootfs(&rootfs, 600, 24_000);
    let tar = tar_dir(&rootfs, &t.dir.path().join("rootfs.tar"));
    t.ok(&["import", tar.to_str().unwrap(), "crash:1"]);
    let archive = t.dir.path().join("crash.oci.tar");
    t.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        archive.to_str().unwrap(),
        "crash:1",
    ]);
    t.ok(&["rmi", "crash:1"]);
    assert_eq!(t.ok(&["images", "-q"]), "");
    (t, rootfs, tar, archive)
}

fn assert_consistent(t: &TestStore, when: &str) {
    let out = t.output(&["system", "check"]);
    assert!(
        out.status.success(),
        "{when}: system check found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn assert_image_whole(t: &TestStore, name: &str, rootfs: &Path) {
    let v: serde_json::Value = serde_json::from_str(&t.ok(&["inspect", name])).unwrap();
    let dir = v[0]["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
    assert_eq!(listing(Path::new(dir)), listing(rootfs), "{name}: files");
}

#[test]
fn sigkill_load_and_import_at_random_moments() {
    let (t, rootfs, tar, archive) = fixture();
    let load = ["load", "-q", "-i", archive.to_str().unwrap()];
    let import = ["import", tar.to_str().unwrap(), "imported:1"];
    let mut load_time = timed(&t, &load);
    t.ok(&["rmi", "crash:1"]);
    let mut import_time = timed(&t, &import);
    t.ok(&["rmi", "imported:1"]);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("seed {seed}; load {load_time:?}, import {import_time:?}");
    let mut rng = Rng(seed);
    let mut killed_midway = 0;
    // Until 25 kills have landed in the middle of a command (a kill after
    // the end counts for nothing, and shortens the window for next time).
    let mut round = 0;
    while killed_midway < 25 {
        assert!(round < 120, "only {killed_midway} kills landed mid-command");
        let (args, name, full): (&[&str], &str, &mut Duration) = if round % 2 == 0 {
            (&load, "crash:1", &mut load_time)
        } else {
            (&import, "imported:1", &mut import_time)
        };
        let delay = full.mul_f64(rng.next() * 0.9);
        let mut child = spawn(&t, args);
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        child.kill().ok();
        child.wait().unwrap();
        if finished {
            *full = full.mul_f64(0.8);
        } else {
            killed_midway += 1;
        }
        let when = format!("round {round} ({args:?} killed after {delay:?})");
        assert_consistent(&t, &when);
        t.ok(args);
        assert_consistent(&t, &format!("{when}, then repeated"));
        assert_image_whole(&t, name, &rootfs);
        // Mostly start again from an empty store; sometimes kill a command
        // whose content is already there.
        if round % 3 != 2 {
            t.ok(&["rmi", name]);
        }
        round += 1;
    }
}

#[test]
fn two_loads_of_one_archive_at_once() {
    let (t, rootfs, _, archive) = fixture();
    let args = ["load", "-q", "-i", archive.to_str().unwrap()];
    for _ in 0..3 {
        let a = spawn(&t, &args);
        let b = spawn(&t, &args);
        for mut c in [a, b] {
            assert!(c.wait().unwrap().success());
        }
        assert_consistent(&t, "after two loads");
        assert_image_whole(&t, "crash:1", &rootfs);
        t.ok(&["rmi", "crash:1"]);
    }
}

#[test]
fn load_during_rmi_and_prune_during_load() {
    let (t, rootfs, _, archive) = fixture();
    let load = ["load", "-q", "-i", archive.to_str().unwrap()];
    // rmi racing a load of the same image.
    for _ in 0..4 {
        t.ok(&load);
        let mut loader = spawn(&t, &load);
        let rmi = t.output(&["rmi", "crash:1"]);
        assert!(loader.wait().unwrap().success());
        let _ = rmi; // either order is fine: before or after the load
        assert_consistent(&t, "load during rmi");
        if t.ok(&["images", "-q"]).trim().is_empty() {
            t.ok(&load);
        }
        assert_image_whole(&t, "crash:1", &rootfs);
        t.ok(&["rmi", "crash:1"]);
    }
    // Collections while a load runs must not take what it is writing.
    for _ in 0..3 {
        let mut loader = spawn(&t, &load);
        let mut prunes = 0;
        while loader.try_wait().unwrap().is_none() {
            t.ok(&["system", "prune", "-f"]);
            prunes += 1;
        }
        assert!(loader.wait().unwrap().success());
        assert!(prunes > 0);
        assert_consistent(&t, "prune during load");
        assert_image_whole(&t, "crash:1", &rootfs);
        t.ok(&["rmi", "crash:1"]);
    }
}
