//! Volumes on the real kernel, as root: `kiln volume …`, `-v NAME:/path`,
//! `--mount type=volume`, anonymous volumes for an image's `VOLUME`
//! entries (copied up from the image), `rm -v`, `run --rm`, `volume prune`,
//! and images whose `VOLUME` path is a hostile symlink.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::TestStore;

fn fixtures() -> &'static PathBuf {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fixtures/base-images.sh");
        let out = Command::new("bash").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

fn busybox() -> TestStore {
    let t = TestStore::new();
    let archive = fixtures().join("busybox.oci-archive.tar");
    t.ok(&["load", "-i", archive.to_str().unwrap()]);
    t
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An image made from busybox by running `script` and committing with
/// `VOLUME` entries.
fn image_with(t: &TestStore, tag: &str, script: &str, volumes: &str) {
    let name = format!("{}-base", tag.replace(':', "-"));
    t.ok(&["run", "--name", &name, "busybox", "sh", "-c", script]);
    t.ok(&["commit", "-c", &format!("VOLUME {volumes}"), &name, tag]);
    t.ok(&["rm", &name]);
}

fn volume_names(t: &TestStore) -> Vec<String> {
    t.ok(&["volume", "ls", "-q"])
        .lines()
        .map(String::from)
        .collect()
}

fn anonymous(t: &TestStore) -> Vec<String> {
    volume_names(t)
        .into_iter()
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect()
}

#[test]
fn named_volumes_persist_and_follow_dockers_rules() {
    let t = busybox();
    t.ok(&[
        "run",
        "--rm",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo hello > /data/f",
    ]);
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "-v",
            "data:/data",
            "busybox",
            "cat",
            "/data/f"
        ]),
        "hello\n"
    );
    assert_eq!(
        std::fs::read_to_string(t.root().join("volumes/data/_data/f")).unwrap(),
        "hello\n"
    );
    // The mount point and the directories made for it stay in the
    // container's changes, as `docker diff` shows them (checked against
    // dockerd 20.10); the files kiln generates (/etc/hosts, …) do not.
    t.ok(&[
        "run",
        "--name",
        "mp",
        "-v",
        "data:/mnt/x/y",
        "busybox",
        "true",
    ]);
    assert_eq!(t.ok(&["diff", "mp"]), "A /mnt\nA /mnt/x\nA /mnt/x/y\n");
    t.ok(&["rm", "mp"]);
    // Read-only: the write fails inside the container.
    let out = t.output(&[
        "run",
        "--rm",
        "-v",
        "data:/data:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/g",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,source=data,target=/m,readonly",
            "busybox",
            "sh",
            "-c",
            "cat /m/f; touch /m/g 2>/dev/null || echo ro",
        ]),
        "hello\nro\n"
    );
    assert!(!t.root().join("volumes/data/_data/g").exists());

    // ls and inspect have Docker's shape.
    assert_eq!(
        t.ok(&["volume", "create", "--label", "a=b", "second"]),
        "second\n"
    );
    assert_eq!(
        t.ok(&["volume", "ls"]),
        "DRIVER    VOLUME NAME\nlocal     data\nlocal     second\n"
    );
    assert_eq!(
        t.ok(&[
            "volume",
            "ls",
            "--filter",
            "label=a=b",
            "--format",
            "{{.Name}} {{.Labels}}"
        ]),
        "second a=b\n"
    );
    let v: serde_json::Value =
        serde_json::from_str(&t.ok(&["volume", "inspect", "data", "second"])).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["Name"], "data");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    assert_eq!(v[0]["Labels"], serde_json::Value::Null);
    assert_eq!(v[1]["Labels"]["a"], "b");
    assert_eq!(
        v[0]["Mountpoint"],
        t.root().join("volumes/data/_data").display().to_string()
    );
    let created = v[0]["CreatedAt"].as_str().unwrap();
    assert!(
        created.starts_with("20") && created.ends_with('Z') && created.len() == 20,
        "{created}"
    );
    assert_eq!(
        t.ok(&[
            "volume",
            "inspect",
            "--format",
            "{{.Driver}}:{{.Name}}",
            "data"
        ]),
        "local:data\n"
    );
    let random = t.ok(&["volume", "create"]);
    assert_eq!(random.trim().len(), 64, "{random}");
    t.ok(&["volume", "rm", random.trim()]);

    // A volume in use (by a container that never ran, too) stays, even
    // with -f, with Docker's message.
    let id = t.ok(&[
        "create",
        "--name",
        "user",
        "-v",
        "data:/data",
        "busybox",
        "true",
    ]);
    let id = id.trim();
    for args in [
        &["volume", "rm", "data"][..],
        &["volume", "rm", "-f", "data"],
    ] {
        let err = t.fails(args);
        assert!(
            err.contains(&format!("remove data: volume is in use - [{id}]")),
            "{err}"
        );
    }
    assert_eq!(
        t.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]),
        "second\n"
    );
    // `rm -v` keeps named volumes.
    t.ok(&["rm", "-v", "user"]);
    assert!(t.root().join("volumes/data/_data/f").exists());
    assert_eq!(t.ok(&["volume", "rm", "data", "second"]), "data\nsecond\n");
    assert!(!t.root().join("volumes/data").exists());
    let err = t.fails(&["volume", "rm", "data"]);
    assert!(err.contains("no such volume"), "{err}");
    assert_eq!(t.ok(&["volume", "rm", "-f", "data"]), "data\n");

    // Invalid names are refused, and nothing is made.
    let err = t.fails(&["volume", "create", "bad/name"]);
    assert!(
        err.contains("invalid characters for a local volume name"),
        "{err}"
    );
    let out = t.output(&["run", "--rm", "-v", "x:y:/data", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    let out = t.output(&["run", "--rm", "-v", "a$b:/data", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("invalid characters"),
        "{}",
        stderr(&out)
    );
    assert_eq!(t.ok(&["volume", "ls", "-q"]), "");
    assert_eq!(t.ok(&["ps", "-aq"]), "");
}

#[test]
fn image_volumes_are_copied_up_into_anonymous_volumes() {
    let t = busybox();
    image_with(
        &t,
        "vol:1",
        "mkdir -p /data/sub && echo img > /data/sub/f && chmod 640 /data/sub/f \
         && chown 1:2 /data/sub/f && ln /data/sub/f /data/hard \
         && ln -s /etc/passwd /data/link && chmod 750 /data",
        "/data",
    );
    let out = t.ok(&[
        "run",
        "--name",
        "c1",
        "-v",
        "named:/named",
        "vol:1",
        "sh",
        "-c",
        "cat /data/sub/f; stat -c %a:%u:%g /data/sub/f /data; echo new > /data/new",
    ]);
    assert_eq!(out, "img\n640:1:2\n750:0:0\n");
    let anon = anonymous(&t);
    assert_eq!(anon.len(), 1, "{anon:?}");
    let data = t.root().join("volumes").join(&anon[0]).join("_data");
    assert_eq!(std::fs::read_to_string(data.join("new")).unwrap(), "new\n");
    let f = std::fs::metadata(data.join("sub/f")).unwrap();
    assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (1, 2, 0o640));
    assert_eq!(f.ino(), std::fs::metadata(data.join("hard")).unwrap().ino());
    assert_eq!(
        std::fs::read_link(data.join("link")).unwrap(),
        Path::new("/etc/passwd")
    );
    // inspect shows the volume mounts as Docker does.
    let mounts: serde_json::Value =
        serde_json::from_str(&t.ok(&["inspect", "--format", "{{json .Mounts}}", "c1"])).unwrap();
    let by_dest = |d: &str| {
        mounts
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["Destination"] == d)
            .unwrap()
            .clone()
    };
    let m = by_dest("/data");
    assert_eq!(m["Type"], "volume");
    assert_eq!(m["Name"], anon[0].as_str());
    assert_eq!(m["Source"], data.display().to_string());
    assert_eq!(m["RW"], true);
    assert_eq!(by_dest("/named")["Name"], "named");
    assert_eq!(
        t.ok(&[
            "ps",
            "-a",
            "--filter",
            "volume=named",
            "--format",
            "{{.Names}}"
        ]),
        "c1\n"
    );
    assert_eq!(
        t.ok(&[
            "ps",
            "-a",
            "--filter",
            "volume=/data",
            "--format",
            "{{.Names}}"
        ]),
        "c1\n"
    );
    assert_eq!(t.ok(&["ps", "-aq", "--filter", "volume=other"]), "");
    // The volume outlives a second start: not copied over again.
    t.ok(&["start", "-a", "c1"]);
    assert!(data.join("new").exists());

    // volume-nocopy: the image's content stays out.
    assert_eq!(
        t.ok(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,source=nc,target=/data,volume-nocopy",
            "vol:1",
            "ls",
            "-A",
            "/data"
        ]),
        ""
    );

    // `rm -v` removes the anonymous volume and keeps the named one.
    t.ok(&["rm", "-v", "c1"]);
    assert!(anonymous(&t).is_empty());
    assert!(!data.exists());
    assert_eq!(volume_names(&t), vec!["named", "nc"]);

    // `run --rm` removes its anonymous volumes.
    assert_eq!(
        t.ok(&["run", "--rm", "vol:1", "cat", "/data/sub/f"]),
        "img\n"
    );
    assert!(anonymous(&t).is_empty());

    // prune: only unused anonymous volumes, unless --all.
    t.ok(&["run", "--name", "c2", "-v", "/anon", "busybox", "true"]);
    let pruned = t.ok(&["volume", "prune", "-f"]);
    assert_eq!(pruned, "Total reclaimed space: 0B\n");
    assert_eq!(anonymous(&t).len(), 1);
    t.ok(&["rm", "c2"]);
    let anon = anonymous(&t);
    let pruned = t.ok(&["volume", "prune", "-f"]);
    assert_eq!(
        pruned,
        format!(
            "Deleted Volumes:\n{}\n\nTotal reclaimed space: 0B\n",
            anon[0]
        )
    );
    assert_eq!(volume_names(&t), vec!["named", "nc"]);
    // `system df` counts volumes; `system prune --volumes` removes the
    // unused anonymous ones.
    t.ok(&["run", "--name", "c3", "-v", "/anon", "busybox", "true"]);
    t.ok(&["rm", "c3"]);
    let df = t.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}} {{.TotalCount}} {{.Active}}",
    ]);
    assert!(df.contains("Local Volumes 3 0"), "{df}");
    let pruned = t.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(pruned.starts_with("Deleted Volumes:\n"), "{pruned}");
    assert!(anonymous(&t).is_empty());
    let pruned = t.ok(&["volume", "prune", "-f", "-a", "--filter", "label!=keep"]);
    assert!(pruned.starts_with("Deleted Volumes:\n"), "{pruned}");
    assert!(volume_names(&t).is_empty());
}

#[test]
fn hostile_volume_paths_stay_inside_the_container() {
    let t = busybox();
    // /data is a link to /etc, /up climbs out with `..`.
    image_with(
        &t,
        "evil:1",
        "echo image > /etc/kiln-marker && ln -s /etc /data && ln -s ../../../../.. /up",
        "/data",
    );
    let image_etc = t.ok(&["run", "--rm", "busybox", "ls", "-A", "/etc"]);
    let host_only: Vec<String> = std::fs::read_dir("/etc")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !image_etc.lines().any(|l| l == n))
        .collect();
    assert!(!host_only.is_empty());
    let out = t.ok(&[
        "run",
        "--rm",
        "-v",
        "v1:/data",
        "evil:1",
        "sh",
        "-c",
        "cat /data/kiln-marker; echo pwned > /data/kiln-written",
    ]);
    assert_eq!(out, "image\n");
    let data = t.root().join("volumes/v1/_data");
    // The image's /etc was copied, never the host's, and the write went
    // into the volume.
    assert_eq!(
        std::fs::read_to_string(data.join("kiln-marker")).unwrap(),
        "image\n"
    );
    assert!(data.join("kiln-written").exists());
    for n in &host_only {
        assert!(!data.join(n).exists(), "host file /etc/{n} copied");
    }
    assert!(!Path::new("/etc/kiln-written").exists());
    assert!(!Path::new("/etc/kiln-marker").exists());

    // A target that resolves to the container's root is refused.
    let out = t.output(&["run", "--rm", "-v", "v2:/up", "evil:1", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("resolves to the container's root"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(t.root().join("volumes/v2/_data"))
            .unwrap()
            .count(),
        0
    );
}
