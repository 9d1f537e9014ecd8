#![allow(clippy::unwrap_used)]
//! The image commands on a real store: import, images, history, tag, rmi,
//! inspect, save and load in both formats and every compression, bad
//! archives that must leave the store exactly as it was, and `system
//! check`.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command as Std;

use common::*;

#[test]
fn import_tag_history_inspect_rmi() {
    let t = TestStore::new();
    let rootfs = t.dir.path().join("rootfs");
    make_rootfs(&rootfs, 20, 1000);
    let tar = tar_dir(&rootfs, &t.dir.path().join("rootfs.tar"));
    let id = t.ok(&[
        "import",
        "-c",
        r#"CMD ["sh", "-c", "echo hi"]"#,
        "-c",
        "ENV A=1 B=2",
        "-c",
        "EXPOSE 80",
        "-c",
        "WORKDIR /srv",
        "-c",
        "LABEL team=web",
        "-c",
        "USER 1000:0",
        "-m",
        "first import",
        tar.to_str().unwrap(),
        "app:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let images = t.ok(&["images"]);
    let lines: Vec<&str> = images.lines().collect();
    assert!(lines[0].starts_with("REPOSITORY"), "{images}");
    assert!(lines[0].contains("IMAGE ID") && lines[0].contains("CREATED"));
    assert!(
        lines[1].starts_with("app ") && lines[1].contains(" 1 "),
        "{images}"
    );
    assert!(lines[1].contains(&id.trim()[7..19]), "{images}");

    let inspect: serde_json::Value = serde_json::from_str(&t.ok(&["inspect", "app:1"])).unwrap();
    let o = &inspect[0];
    assert_eq!(o["Id"], id.trim());
    assert_eq!(o["RepoTags"][0], "app:1");
    assert_eq!(
        o["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "echo hi"])
    );
    assert_eq!(o["Config"]["Env"], serde_json::json!(["A=1", "B=2"]));
    assert_eq!(
        o["Config"]["ExposedPorts"],
        serde_json::json!({"80/tcp": {}})
    );
    assert_eq!(o["Config"]["WorkingDir"], "/srv");
    assert_eq!(o["Config"]["User"], "1000:0");
    assert_eq!(o["Config"]["Labels"]["team"], "web");
    assert_eq!(o["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(o["Os"], "linux");

    // `--format json`: one object per line, as Docker prints it.
    let line = t.ok(&["inspect", "--format", "json", "app:1"]);
    assert_eq!(line.lines().count(), 1);
    let one: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(one["Id"], id.trim());
    // By digest, under its repository.
    let by_digest = format!("app@{}", o["Descriptor"]["digest"].as_str().unwrap());
    assert_eq!(
        t.ok(&["image", "inspect", "--format", "{{.Id}}", &by_digest])
            .trim(),
        id.trim()
    );

    let history = t.ok(&["history", "app:1"]);
    assert!(
        history.lines().next().unwrap().starts_with("IMAGE"),
        "{history}"
    );
    assert!(history.contains("first import"), "{history}");
    assert_eq!(
        t.ok(&["history", "--format", "{{.Comment}}", "app:1"])
            .trim(),
        "first import"
    );

    // Tags: several names for one image; rmi by name untags only.
    t.ok(&["tag", "app:1", "registry-host:5000/team/app:v1"]);
    t.ok(&["image", "tag", "app:1", "app:latest"]);
    let formatted = t.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = formatted.lines().collect();
    names.sort();
    assert_eq!(
        names,
        ["app:1", "app:latest", "registry-host:5000/team/app:v1"]
    );
    // A positional pattern is a reference filter, as in Docker.
    let listed = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["images", "--format", "{{.Repository}}:{{.Tag}}"];
        all.extend_from_slice(args);
        let mut v: Vec<String> = t.ok(&all).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(
        listed(&["registry-host:5000/team/*"]),
        ["registry-host:5000/team/app:v1"]
    );
    assert_eq!(listed(&["app:l*"]), ["app:latest"]);
    assert_eq!(listed(&["app"]), ["app:1", "app:latest"]);
    assert_eq!(t.ok(&["rmi", "app:latest"]).trim(), "Untagged: app:latest");
    // By id with names in two repositories: refused without -f.
    let short = &id.trim()[7..19];
    let err = t.fails(&["rmi", short]);
    assert!(err.contains("must be forced"), "{err}");
    let out = t.ok(&["rmi", "-f", short]);
    assert!(out.contains("Untagged: app:1"), "{out}");
    assert!(out.contains(&format!("Deleted: {}", id.trim())), "{out}");
    assert_eq!(t.ok(&["images", "-q"]), "");
    // Everything it used is gone.
    assert_eq!(
        fs::read_dir(t.root().join("blobs/sha256")).unwrap().count(),
        0
    );
    assert_eq!(fs::read_dir(t.root().join("snapshots")).unwrap().count(), 0);
    t.ok(&["system", "check"]);
}

#[test]
fn import_sources_and_errors() {
    let t = TestStore::new();
    let rootfs = t.dir.path().join("rootfs");
    make_rootfs(&rootfs, 5, 3000);
    let tar = tar_dir(&rootfs, &t.dir.path().join("rootfs.tar"));
    // The same tree from a directory, a gzip, an xz and a zstd tarball,
    // and standard input: one layer with the same files each time.
    let from_dir = t.ok(&["import", rootfs.to_str().unwrap(), "d"]);
    for (tool, ext) in [("gzip", "gz"), ("xz", "xz"), ("zstd", "zst")] {
        let out = t.dir.path().join(format!("rootfs.tar.{ext}"));
        let status = Std::new("sh")
            .arg("-c")
            .arg(format!("{tool} -c < {} > {}", tar.display(), out.display()))
            .status()
            .unwrap();
        assert!(status.success(), "{tool} is needed by this test");
        t.ok(&["import", out.to_str().unwrap(), &format!("c:{ext}")]);
    }
    let stdin = t.ok_stdin(&["import", "-", "s"], fs::read(&tar).unwrap());
    assert!(stdin.starts_with("sha256:"));
    assert!(!from_dir.is_empty());
    let diff = |name: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(&t.ok(&["inspect", name])).unwrap();
        v[0]["RootFS"]["Layers"][0].as_str().unwrap().to_string()
    };
    // Compressed variants of one tar have one DiffID.
    assert_eq!(diff("c:gz"), diff("c:xz"));
    assert_eq!(diff("c:gz"), diff("c:zst"));
    assert_eq!(diff("c:gz"), diff("s"));

    let before = t.state();
    let bad = t.dir.path().join("bad.tar.gz");
    let gz = fs::read(t.dir.path().join("rootfs.tar.gz")).unwrap();
    fs::write(&bad, &gz[..gz.len() / 2]).unwrap();
    let err = t.fails(&["import", bad.to_str().unwrap(), "bad"]);
    assert!(
        err.contains("bad.tar.gz"),
        "the error names the input: {err}"
    );
    assert_eq!(t.state(), before, "a failed import changes nothing");
    let err = t.fails(&["import", "-c", "RUN true", tar.to_str().unwrap()]);
    assert!(err.contains("RUN cannot be applied"), "{err}");
    let err = t.fails(&["import", "/nonexistent/rootfs.tar"]);
    assert!(err.contains("/nonexistent/rootfs.tar"), "{err}");
    t.ok(&["system", "check"]);

    // Docker media types on request; the image loads back unchanged.
    t.ok(&[
        "import",
        "--format",
        "docker",
        tar.to_str().unwrap(),
        "dock:1",
    ]);
    let v: serde_json::Value = serde_json::from_str(&t.ok(&["inspect", "dock:1"])).unwrap();
    let desc = &v[0]["Descriptor"];
    assert_eq!(
        desc["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let digest = desc["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(t.root().join("blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    let archive = t.dir.path().join("dock.oci.tar");
    t.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        archive.to_str().unwrap(),
        "dock:1",
    ]);
    let other = TestStore::new();
    other.ok(&["load", "-i", archive.to_str().unwrap()]);
    let w: serde_json::Value = serde_json::from_str(&other.ok(&["inspect", "dock:1"])).unwrap();
    assert_eq!(w[0]["Descriptor"], *desc);
}

#[test]
fn save_load_round_trips() {
    let t = TestStore::new();
    let base = t.dir.path().join("rootfs");
    make_rootfs(&base, 30, 5000);
    t.ok(&["import", base.to_str().unwrap(), "base:1"]);
    let inspect = |t: &TestStore, n: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&t.ok(&["inspect", n])).unwrap()[0].clone()
    };
    let original = inspect(&t, "base:1");
    for format in ["docker-archive", "oci-archive"] {
        let archive = t.dir.path().join(format!("{format}.tar"));
        t.ok(&[
            "save",
            "--format",
            format,
            "-o",
            archive.to_str().unwrap(),
            "base:1",
        ]);
        // Into a fresh store, from the file and compressed from stdin.
        let other = TestStore::new();
        let out = other.ok(&["load", "-i", archive.to_str().unwrap()]);
        assert_eq!(out.trim(), "Loaded image: base:1", "{format}");
        let loaded = inspect(&other, "base:1");
        assert_eq!(loaded["Id"], original["Id"], "{format}: same config digest");
        assert_eq!(loaded["RootFS"], original["RootFS"], "{format}");
        if format == "oci-archive" {
            assert_eq!(
                loaded["Descriptor"], original["Descriptor"],
                "same manifest"
            );
        }
        let gz = Std::new("gzip").arg("-c").arg(&archive).output().unwrap();
        let third = TestStore::new();
        third.ok_stdin(&["load"], gz.stdout);
        assert_eq!(inspect(&third, "base:1")["Id"], original["Id"]);
        // The extracted files are the files imported.
        let snapshot = loaded["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
        assert_eq!(listing(Path::new(snapshot)), listing(&base), "{format}");
        other.ok(&["system", "check"]);
        // Loading again changes nothing and succeeds.
        let before = other.state();
        other.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
        assert_eq!(other.state(), before);
    }
    // Saving to a terminal-less stdout streams the archive.
    let out = t.output(&["save", "base:1"]);
    assert!(out.status.success());
    assert!(out.stdout.len() > 1024);
    let err = t.fails(&["save", "-o", "/nonexistent/dir/x.tar", "base:1"]);
    assert!(err.contains("/nonexistent/dir"), "{err}");
}

#[test]
fn bad_archives_leave_the_store_unchanged() {
    let t = TestStore::new();
    let base = t.dir.path().join("rootfs");
    make_rootfs(&base, 10, 2000);
    t.ok(&["import", base.to_str().unwrap(), "keep:1"]);
    let good = t.dir.path().join("good.tar");
    t.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        good.to_str().unwrap(),
        "keep:1",
    ]);
    let fresh = TestStore::new();
    let before = fresh.state();
    let bytes = fs::read(&good).unwrap();

    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        (
            "garbage",
            b"this is not a tar archive at all, not even close".repeat(40),
        ),
        ("empty", Vec::new()),
    ];
    // One byte of the layer blob changed: digest mismatch.
    let mut flipped = bytes.clone();
    let layer_at = find_layer_offset(&good);
    flipped[layer_at + 100] ^= 0xff;
    cases.push(("corrupt layer", flipped));
    // A layer that climbs out of its root.
    cases.push(("hostile layer", hostile_oci_archive()));
    // A docker archive whose config lists another DiffID.
    cases.push(("wrong diffid", docker_archive_with_wrong_diffid(&t, &good)));
    for (what, data) in cases {
        let path = t.dir.path().join(format!("{}.tar", what.replace(' ', "-")));
        fs::write(&path, &data).unwrap();
        let err = fresh.fails(&["load", "-i", path.to_str().unwrap()]);
        assert!(
            err.contains(path.file_name().unwrap().to_str().unwrap()) || err.contains("layer"),
            "{what}: the error names the input: {err}"
        );
        assert_eq!(fresh.state(), before, "{what}: the store is unchanged");
        fresh.ok(&["system", "check"]);
    }
    assert!(
        !t.dir.path().join("escaped").exists(),
        "nothing written outside"
    );
}

#[test]
fn system_check_finds_and_repairs() {
    let t = TestStore::new();
    let base = t.dir.path().join("rootfs");
    make_rootfs(&base, 5, 500);
    t.ok(&["import", base.to_str().unwrap(), "x"]);
    let out = t.ok(&["system", "check"]);
    assert_eq!(out, "");
    // An orphan blob and a corrupted one.
    let blobs = t.root().join("blobs/sha256");
    let orphan = b"nobody refers to me";
    let hex = sha256_hex(orphan);
    fs::write(blobs.join(&hex), orphan).unwrap();
    let layer = largest_file(&blobs);
    let mut data = fs::read(&layer).unwrap();
    data[10] ^= 1;
    let mut perms = fs::metadata(&layer).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(&layer, perms).unwrap();
    fs::write(&layer, &data).unwrap();
    let out = t.output(&["system", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("blob sha256:{hex}: not referenced")),
        "{text}"
    );
    assert!(text.contains("content does not match its digest"), "{text}");
    assert!(text.contains("is corrupt"), "{text}");
    let repaired = t.ok(&["system", "check", "--repair"]);
    assert!(repaired.contains("removed image"), "{repaired}");
    t.ok(&["system", "check"]);
    assert_eq!(t.ok(&["images", "-q"]), "");
}

#[test]
fn df_and_prune() {
    let t = TestStore::new();
    let base = t.dir.path().join("rootfs");
    make_rootfs(&base, 5, 100_000);
    t.ok(&["import", base.to_str().unwrap(), "a"]);
    t.ok(&["import", base.to_str().unwrap(), "b"]);
    // A second import as `a` takes the name: the first `a` is dangling.
    std::thread::sleep(std::time::Duration::from_millis(10));
    t.ok(&["import", base.to_str().unwrap(), "a"]);
    let df = t.ok(&["system", "df"]);
    assert!(df.starts_with("TYPE"), "{df}");
    assert!(
        df.lines()
            .any(|l| l.starts_with("Images") && l.contains(" 3 ")),
        "{df}"
    );
    assert_eq!(
        t.ok(&["images", "-f", "dangling=true", "-q"])
            .lines()
            .count(),
        1
    );
    let out = t.ok(&["image", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    assert!(out.contains("deleted: sha256:"), "{out}");
    assert_eq!(
        t.ok(&["images", "--format", "{{.Repository}}"])
            .lines()
            .count(),
        2
    );
    let out = t.ok(&["system", "prune", "-a", "-f"]);
    assert!(out.contains("deleted: sha256:"), "{out}");
    assert_eq!(t.ok(&["images", "-q"]), "");
    // Without -f and without an answer, nothing is removed.
    t.ok(&["import", base.to_str().unwrap(), "a"]);
    t.ok_stdin(&["system", "prune", "-a"], Vec::new());
    assert_eq!(t.ok(&["images", "-q"]).lines().count(), 1);
}
