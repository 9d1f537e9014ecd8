#![allow(clippy::unwrap_used, clippy::print_stderr)]
//! `kiln build` on a real store: COPY/ADD and config-only Dockerfiles from
//! scratch and from busybox (the fixture image, made without kiln), the
//! cache (a rebuild is the same image; a changed file invalidates from its
//! step on), `.dockerignore`, owners and modes as `kiln save` shows them,
//! multi-stage builds, the clear failures (a missing base image), and RUN
//! steps in containers (user, env, mounts, network, init, cache, layers).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sh(script: &str, args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo().join("scripts/fixtures").join(script))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The fixture cache (busybox archives), made once per test process.
fn fixtures() -> &'static PathBuf {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| PathBuf::from(sh("base-images.sh", &[]).trim()))
}

/// A context directory with `files` (path → content).
fn context(t: &TestStore, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = t.dir.path().join(name);
    for (p, content) in files {
        let p = dir.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    dir
}

/// `kiln build -q …` → the image id.
fn build(t: &TestStore, args: &[&str]) -> String {
    let mut all = vec!["build", "-q"];
    all.extend_from_slice(args);
    let id = t.ok(&all).trim().to_string();
    assert!(id.starts_with("sha256:"), "{id}");
    id
}

/// `kiln --progress plain build …` → its progress (stderr).
fn build_plain(t: &TestStore, args: &[&str]) -> String {
    let mut all = vec!["--progress", "plain", "build"];
    all.extend_from_slice(args);
    let out = t.output(&all);
    assert!(
        out.status.success(),
        "kiln {all:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// How many steps the progress shows as `#N CACHED`.
fn cached_steps(log: &str) -> usize {
    log.lines()
        .filter(|l| l.starts_with('#') && l.ends_with(" CACHED"))
        .count()
}

fn inspect(t: &TestStore, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&t.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

/// One file of an image as `kiln save` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct File {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    data: Vec<u8>,
    link: String,
}

/// The merged file system of an image, from `kiln save` (docker-archive):
/// path → file, later layers replacing earlier entries; and the layers'
/// own entry lists.
fn saved_files(t: &TestStore, name: &str) -> (BTreeMap<String, File>, Vec<Vec<String>>) {
    let out = t
        .dir
        .path()
        .join(format!("{}.tar", name.replace([':', '/'], "_")));
    t.ok(&["save", "-o", out.to_str().unwrap(), name]);
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut a = tar::Archive::new(fs::File::open(&out).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        blobs.insert(p, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&blobs["manifest.json"]).unwrap();
    let mut files = BTreeMap::new();
    let mut layers = Vec::new();
    for l in manifest[0]["Layers"].as_array().unwrap() {
        let mut names = Vec::new();
        let mut a = tar::Archive::new(&blobs[l.as_str().unwrap()][..]);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let p = e.path().unwrap().display().to_string();
            let p = p.trim_start_matches("./").trim_end_matches('/').to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let kind = match h.entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                tar::EntryType::Regular => 'f',
                _ => 'o',
            };
            names.push(p.clone());
            files.insert(
                p,
                File {
                    kind,
                    mode: h.mode().unwrap() & 0o7777,
                    uid: h.uid().unwrap(),
                    gid: h.gid().unwrap(),
                    data,
                    link: h
                        .link_name()
                        .unwrap()
                        .map(|l| l.display().to_string())
                        .unwrap_or_default(),
                },
            );
        }
        layers.push(names);
    }
    (files, layers)
}

/// The image config blob of `name`, as JSON.
fn config(t: &TestStore, name: &str) -> serde_json::Value {
    let id = inspect(t, name)["Id"].as_str().unwrap().to_string();
    let p = t
        .root()
        .join("blobs/sha256")
        .join(id.trim_start_matches("sha256:"));
    serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
}

const SCRATCH_DOCKERFILE: &str = r#"FROM scratch
LABEL org.example.team="web" version=1
ENV APP=/app PORT=8080
COPY a.txt /app/
COPY files/ /app/files/
WORKDIR $APP
COPY --chown=7:8 --chmod=0640 a.txt b.txt
EXPOSE $PORT 53/udp
USER 1000:1000
VOLUME /data
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/app/run"]
CMD ["--serve"]
"#;

#[test]
fn copy_and_config_from_scratch() {
    let t = TestStore::new();
    let ctx = context(
        &t,
        "ctx",
        &[
            ("Dockerfile", SCRATCH_DOCKERFILE),
            ("a.txt", "hello\n"),
            ("files/x", "x\n"),
            ("files/sub/y", "y\n"),
            ("files/notes.md", "ignored\n"),
            (".dockerignore", "**/*.md\n"),
        ],
    );
    let id = build(&t, &["-t", "app:1", ctx.to_str().unwrap()]);
    let v = inspect(&t, "app:1");
    assert_eq!(v["Id"], id);
    let c = &v["Config"];
    assert_eq!(
        c["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "APP=/app",
            "PORT=8080"
        ])
    );
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["User"], "1000:1000");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/app/run"]));
    assert_eq!(c["Cmd"], serde_json::json!(["--serve"]));
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"8080/tcp": {}, "53/udp": {}})
    );
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}}));
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(c["Labels"]["org.example.team"], "web");
    assert_eq!(c["Labels"]["version"], "1");

    // History as BuildKit writes it.
    let cfg = config(&t, "app:1");
    let h: Vec<(String, bool)> = cfg["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            assert_eq!(h["comment"], "buildkit.dockerfile.v0");
            assert!(h["created"].is_string(), "{h}");
            (
                h["created_by"].as_str().unwrap().to_string(),
                h["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let want: Vec<(&str, bool)> = vec![
        ("LABEL org.example.team=web version=1", true),
        ("ENV APP=/app PORT=8080", true),
        ("COPY a.txt /app/ # buildkit", false),
        ("COPY files/ /app/files/ # buildkit", false),
        ("WORKDIR /app", false),
        (
            "COPY --chown=7:8 --chmod=0640 a.txt b.txt # buildkit",
            false,
        ),
        ("EXPOSE [8080/tcp 53/udp]", true),
        ("USER 1000:1000", true),
        ("VOLUME [/data]", true),
        ("STOPSIGNAL SIGQUIT", true),
        (r#"ENTRYPOINT ["/app/run"]"#, true),
        (r#"CMD ["--serve"]"#, true),
    ];
    let got: Vec<(&str, bool)> = h.iter().map(|(s, e)| (s.as_str(), *e)).collect();
    assert_eq!(got, want);
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 4);
    assert_eq!(cfg["created"], cfg["history"][11]["created"]);

    // Files, owners and modes as saved.
    let (files, layers) = saved_files(&t, "app:1");
    assert_eq!(files["app/a.txt"].data, b"hello\n");
    assert_eq!(
        (files["app/a.txt"].uid, files["app/a.txt"].gid),
        (0, 0),
        "context files belong to root"
    );
    assert_eq!(files["app/files/sub/y"].data, b"y\n");
    assert!(!files.contains_key("app/files/notes.md"), "{files:?}");
    let b = &files["app/b.txt"];
    assert_eq!((b.uid, b.gid, b.mode), (7, 8, 0o640));
    // Each layer holds what its step changed (and the directories above).
    assert_eq!(layers[0], vec!["app", "app/a.txt"]);
    assert_eq!(
        layers[1],
        vec![
            "app",
            "app/files",
            "app/files/sub",
            "app/files/sub/y",
            "app/files/x"
        ]
    );
    assert!(
        layers[2].is_empty(),
        "WORKDIR of an existing directory: {layers:?}"
    );
    assert_eq!(layers[3], vec!["app", "app/b.txt"]);
}

#[test]
fn rebuild_is_cached_and_a_changed_file_invalidates_from_its_step() {
    let t = TestStore::new();
    let ctx = context(
        &t,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY a /a\nCOPY b /b\nCOPY c /c\nENV X=1\n",
            ),
            ("a", "1"),
            ("b", "2"),
            ("c", "3"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let first = build(&t, &["-t", "x", c]);
    let log = build_plain(&t, &["-t", "x", c]);
    assert_eq!(cached_steps(&log), 3, "{log}");
    assert_eq!(inspect(&t, "x")["Id"], first, "a rebuild is the same image");
    // A touch changes nothing (mtimes are not in the key).
    let f = fs::File::options().write(true).open(ctx.join("b")).unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(build(&t, &["-t", "x", c]), first);
    // Changing b: a is cached, b and c are built again.
    fs::write(ctx.join("b"), "changed").unwrap();
    let log = build_plain(&t, &["-t", "x", c]);
    assert_eq!(cached_steps(&log), 1, "{log}");
    assert!(
        log.contains("#2 [stage-0 2/4] COPY a /a\n#2 CACHED"),
        "{log}"
    );
    assert!(log.contains("#3 DONE") && log.contains("#4 DONE"), "{log}");
    let second = inspect(&t, "x")["Id"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let (files, _) = saved_files(&t, "x");
    assert_eq!(files["b"].data, b"changed");
    // Cache records keep their layers through a collection: a build after
    // the image was removed (its content collected) still hits.
    t.ok(&["rmi", "x"]);
    let log = build_plain(&t, &["-t", "x", c]);
    assert_eq!(cached_steps(&log), 3, "{log}");
    assert_eq!(inspect(&t, "x")["Id"], second);
    t.ok(&["system", "check"]);
    // `builder prune` (and `system prune`) remove the cache.
    let out = t.ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Deleted build cache records: 5"), "{out}");
    let log = build_plain(&t, &["-t", "x", c]);
    assert_eq!(cached_steps(&log), 0, "{log}");
    t.ok(&["system", "prune", "-f"]);
    let log = build_plain(&t, &["-t", "x", c]);
    assert_eq!(cached_steps(&log), 0, "{log}");
    t.ok(&["system", "check"]);
    // --no-cache builds every step.
    let log = build_plain(&t, &["--no-cache", c]);
    assert_eq!(cached_steps(&log), 0, "{log}");
    assert!(!log.contains("CACHED"), "{log}");
}

#[test]
fn destination_rules_and_sources() {
    let t = TestStore::new();
    let df = r#"FROM scratch
WORKDIR /w
COPY a.txt rel
COPY a.txt reldir/
COPY a.txt b.txt /multi/
COPY *.txt /glob/
COPY dir /contents
COPY dir/ /contents2/
COPY --parents dir/./sub/f /parents/
COPY --exclude=*.log dir /excl/
COPY link /followed
COPY dir /dirlink/
COPY <<EOF /heredoc.txt
inline $HOME
EOF
COPY <<one <<two /docs/
first
one
second
two
"#;
    let ctx = context(
        &t,
        "ctx",
        &[
            ("Dockerfile", df),
            ("a.txt", "a"),
            ("b.txt", "b"),
            ("dir/f", "f"),
            ("dir/x.log", "log"),
            ("dir/sub/f", "subf"),
        ],
    );
    std::os::unix::fs::symlink("a.txt", ctx.join("link")).unwrap();
    std::os::unix::fs::symlink("../../../../etc/passwd", ctx.join("dir/lnk")).unwrap();
    build(&t, &["-t", "rules", ctx.to_str().unwrap()]);
    let (files, _) = saved_files(&t, "rules");
    let kind = |p: &str| files.get(p).map(|f| f.kind);
    for (path, want) in [
        ("w/rel", Some('f')),
        ("w/reldir/a.txt", Some('f')),
        ("multi/a.txt", Some('f')),
        ("multi/b.txt", Some('f')),
        ("glob/a.txt", Some('f')),
        ("glob/b.txt", Some('f')),
        ("contents/f", Some('f')),
        ("contents/sub/f", Some('f')),
        ("contents/dir", None),
        ("contents2/f", Some('f')),
        ("parents/sub/f", Some('f')),
        ("parents/dir", None),
        ("excl/f", Some('f')),
        ("excl/x.log", None),
        ("followed", Some('f')),
        ("dirlink/lnk", Some('l')),
        ("heredoc.txt", Some('f')),
        ("docs/one", Some('f')),
        ("docs/two", Some('f')),
    ] {
        assert_eq!(
            kind(path),
            want,
            "{path}: {:?}",
            files.keys().collect::<Vec<_>>()
        );
    }
    assert_eq!(
        files["followed"].data, b"a",
        "a symlink named as a source is followed"
    );
    assert_eq!(
        files["dirlink/lnk"].link, "../../../../etc/passwd",
        "a symlink inside a copied directory is copied as a symlink"
    );
    assert_eq!(files["heredoc.txt"].data, b"inline \n");
    assert_eq!(files["heredoc.txt"].mode, 0o644);
    assert_eq!(files["docs/one"].data, b"first\n");

    // Several sources need a directory destination; a missing source fails.
    let bad = context(
        &t,
        "bad",
        &[
            ("Dockerfile", "FROM scratch\nCOPY a b /notdir\n"),
            ("a", ""),
            ("b", ""),
        ],
    );
    let err = t.fails(&["build", bad.to_str().unwrap()]);
    assert!(err.contains("Dockerfile:2:"), "{err}");
    assert!(err.contains("destination must be a directory"), "{err}");
    let missing = context(
        &t,
        "missing",
        &[("Dockerfile", "FROM scratch\nCOPY nope /x\n")],
    );
    let err = t.fails(&["build", missing.to_str().unwrap()]);
    assert!(
        err.contains("Dockerfile:2:") && err.contains("not found"),
        "{err}"
    );
}

fn load_busybox(t: &TestStore) {
    let archive = fixtures().join("busybox.docker-archive.tar");
    t.ok(&["load", "-i", archive.to_str().unwrap()]);
}

#[test]
fn from_busybox_with_names_from_its_passwd() {
    let t = TestStore::new();
    load_busybox(&t);
    let df = r#"FROM busybox
COPY --chown=nobody:nobody app.sh /srv/app.sh
COPY --chown=nobody --chmod=u+x,go-r data /srv/data/
ADD layer.tar.gz /opt/
ADD layer.tar.xz /opt/xz/
ADD layer.tar.bz2 /opt/bz2/
ADD layer.tar.zst /opt/zst/
ADD layer.tar /opt/plain/
ADD --unpack=false layer.tar.gz /opt/raw/
COPY --chmod=755 app.sh /bin/
ENTRYPOINT ["/srv/app.sh"]
"#;
    let ctx = context(
        &t,
        "ctx",
        &[
            ("Dockerfile", df),
            ("app.sh", "#!/bin/sh\necho hi\n"),
            ("data/d1", "1"),
        ],
    );
    fs::set_permissions(
        ctx.join("data/d1"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    // An archive made by GNU tar, compressed two ways.
    let src = t.dir.path().join("tarsrc");
    fs::create_dir_all(src.join("pkg")).unwrap();
    fs::write(src.join("pkg/readme"), "from the archive").unwrap();
    for (flag, name) in [
        ("-z", "layer.tar.gz"),
        ("-J", "layer.tar.xz"),
        ("-j", "layer.tar.bz2"),
        ("--zstd", "layer.tar.zst"),
        ("--no-auto-compress", "layer.tar"),
    ] {
        let st = Command::new("tar")
            .args(["--numeric-owner", "--owner=5", "--group=6", flag, "-C"])
            .arg(&src)
            .arg("-cf")
            .arg(ctx.join(name))
            .arg("pkg")
            .status()
            .unwrap();
        assert!(st.success());
    }
    build(&t, &["-t", "bb:app", ctx.to_str().unwrap()]);
    let v = inspect(&t, "bb:app");
    // Inherited from busybox: ENTRYPOINT resets its CMD.
    assert_eq!(
        v["Config"]["Entrypoint"],
        serde_json::json!(["/srv/app.sh"])
    );
    assert!(v["Config"]["Cmd"].is_null(), "{}", v["Config"]);
    let base = inspect(&t, "busybox:latest");
    let base_layers = base["RootFS"]["Layers"].as_array().unwrap().len();
    assert_eq!(
        v["RootFS"]["Layers"].as_array().unwrap().len(),
        base_layers + 9
    );
    let cfg = config(&t, "bb:app");
    let base_cfg = config(&t, "busybox:latest");
    let base_hist = base_cfg["history"].as_array().unwrap();
    assert_eq!(
        &cfg["history"].as_array().unwrap()[..base_hist.len()],
        &base_hist[..],
        "the base image's history is kept"
    );

    let (files, _) = saved_files(&t, "bb:app");
    let app = &files["srv/app.sh"];
    assert_eq!(
        (app.uid, app.gid),
        (65534, 65534),
        "names from busybox's passwd and group"
    );
    let d1 = &files["srv/data/d1"];
    assert_eq!((d1.uid, d1.gid, d1.mode), (65534, 65534, 0o700));
    assert_eq!(files["opt/pkg/readme"].data, b"from the archive");
    assert_eq!(
        (files["opt/pkg/readme"].uid, files["opt/pkg/readme"].gid),
        (5, 6)
    );
    for dir in ["xz", "bz2", "zst", "plain"] {
        let f = files.get(&format!("opt/{dir}/pkg/readme"));
        assert_eq!(
            f.map(|f| &f.data[..]),
            Some(&b"from the archive"[..]),
            "{dir}: {:?}",
            files
                .keys()
                .filter(|k| k.starts_with("opt"))
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(files["opt/raw/layer.tar.gz"].kind, 'f');
    // /bin is a real directory in busybox: the file goes into it.
    assert_eq!(files["bin/app.sh"].mode, 0o755);
    assert_eq!(files["bin/sh"].kind, 'l', "busybox's own files are there");

    // A name that is not in the image's passwd is an error naming it.
    let bad = context(
        &t,
        "bad",
        &[
            ("Dockerfile", "FROM busybox\nCOPY --chown=nosuchuser a /a\n"),
            ("a", ""),
        ],
    );
    let err = t.fails(&["build", bad.to_str().unwrap()]);
    assert!(
        err.contains("Dockerfile:2:") && err.contains("nosuchuser"),
        "{err}"
    );
}

#[test]
fn multi_stage_copy_from_and_target() {
    let t = TestStore::new();
    load_busybox(&t);
    let df = r#"FROM scratch AS assets
COPY a /assets/a
COPY --chown=3:4 b /assets/b

FROM busybox AS tools
COPY b /tools/b

FROM scratch AS unused
COPY nope /nope

FROM scratch
COPY --from=assets /assets/ /srv/
COPY --from=tools /bin/busybox /bin/busybox
COPY --from=busybox:latest /etc/passwd /etc/passwd
COPY --from=0 /assets/a /zero
CMD ["/bin/busybox"]
"#;
    let ctx = context(&t, "ctx", &[("Dockerfile", df), ("a", "A"), ("b", "B")]);
    build(&t, &["-t", "multi", "--jobs", "2", ctx.to_str().unwrap()]);
    let (files, layers) = saved_files(&t, "multi");
    assert_eq!(files["srv/a"].data, b"A");
    assert_eq!(
        (files["srv/b"].uid, files["srv/b"].gid),
        (3, 4),
        "owners kept from a stage"
    );
    assert_eq!(files["bin/busybox"].kind, 'f');
    assert!(files["etc/passwd"].data.starts_with(b"root:x:0:0"));
    assert_eq!(files["zero"].data, b"A");
    assert_eq!(layers.len(), 4);
    assert!(!files.contains_key("tools/b"));
    // --target builds a stage and what it needs only (the unused stage,
    // whose COPY would fail, is never built).
    let id = build(
        &t,
        &["--target", "assets", "-t", "assets", ctx.to_str().unwrap()],
    );
    let (files, _) = saved_files(&t, "assets");
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        vec!["assets", "assets/a", "assets/b"]
    );
    assert_eq!(inspect(&t, "assets")["Id"], id);
    let err = t.fails(&["build", "--target", "unused", ctx.to_str().unwrap()]);
    assert!(err.contains("Dockerfile:9:"), "{err}");
}

#[test]
fn onbuild_triggers_run_in_the_child() {
    let t = TestStore::new();
    let parent = context(
        &t,
        "parent",
        &[(
            "Dockerfile",
            "FROM scratch\nONBUILD COPY app.txt /app/\nONBUILD ENV BUILT_BY=child\n",
        )],
    );
    build(&t, &["-t", "onbuild-base", parent.to_str().unwrap()]);
    let v = inspect(&t, "onbuild-base");
    assert_eq!(
        v["Config"]["OnBuild"],
        serde_json::json!(["COPY app.txt /app/", "ENV BUILT_BY=child"])
    );
    let child = context(
        &t,
        "child",
        &[
            ("Dockerfile", "FROM onbuild-base\nLABEL c=1\n"),
            ("app.txt", "app"),
        ],
    );
    build(&t, &["-t", "onbuild-child", child.to_str().unwrap()]);
    let v = inspect(&t, "onbuild-child");
    assert!(
        v["Config"]["OnBuild"].is_null(),
        "triggers are not inherited: {v}"
    );
    assert!(v["Config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("BUILT_BY=child")));
    let (files, _) = saved_files(&t, "onbuild-child");
    assert_eq!(files["app/app.txt"].data, b"app");
}

#[test]
fn run_and_missing_images_fail_clearly_and_change_nothing() {
    let t = TestStore::new();
    // A RUN on an image without a shell fails naming its line and command.
    let ctx = context(
        &t,
        "ctx",
        &[
            ("Dockerfile", "FROM scratch\nCOPY a /a\nRUN echo hi\n"),
            ("a", "a"),
        ],
    );
    let err = t.fails(&["build", ctx.to_str().unwrap()]);
    assert!(err.contains("Dockerfile:3:"), "{err}");
    assert!(err.contains("RUN echo hi"), "{err}");
    assert!(err.contains("/bin/sh"), "{err}");
    t.ok(&["images"]);
    let before = t.state();
    let missing = context(&t, "missing", &[("Dockerfile", "FROM nosuch/image:1\n")]);
    let err = t.fails(&["build", "--pull", "never", missing.to_str().unwrap()]);
    assert!(err.contains("Dockerfile:1:"), "{err}");
    assert!(
        err.contains("nosuch/image:1") && err.contains("not in the local store"),
        "{err}"
    );
    assert_eq!(t.state(), before, "nothing was built");
    // By default it is pulled; no registry has it (none is configured
    // here): a pull error naming it, and nothing changed.
    let err = t.fails(&["build", missing.to_str().unwrap()]);
    assert!(err.contains("failed to pull nosuch/image:1"), "{err}");
    assert_eq!(t.state(), before, "nothing was built");
    // The build command is listed in --help.
    let help = t.ok(&["--help"]);
    assert!(
        help.lines().any(|l| l.trim_start().starts_with("build ")),
        "{help}"
    );
}

#[test]
fn dockerfile_on_stdin_labels_and_iidfile() {
    let t = TestStore::new();
    let iid = t.dir.path().join("iid");
    let out = t.ok_stdin(
        &[
            "build",
            "-q",
            "--label",
            "from=cli",
            "--build-arg",
            "V=2",
            "--iidfile",
            iid.to_str().unwrap(),
            "-t",
            "stdin:1",
            "-t",
            "stdin:2",
            "-",
        ],
        b"FROM scratch\nARG V=1\nLABEL v=$V\nCOPY <<EOF /hello\nhi\nEOF\n".to_vec(),
    );
    let id = out.trim();
    assert_eq!(fs::read_to_string(&iid).unwrap(), id);
    let v = inspect(&t, "stdin:2");
    assert_eq!(v["Id"], id);
    assert_eq!(v["Config"]["Labels"]["from"], "cli");
    assert_eq!(v["Config"]["Labels"]["v"], "2");
    let cfg = config(&t, "stdin:1");
    assert_eq!(cfg["history"][0]["created_by"], "ARG V=2");
    // Without a context, COPY from it finds nothing.
    let out = t
        .cmd()
        .args(["build", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(b"FROM scratch\nCOPY x /x\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

/// With SOURCE_DATE_EPOCH, two clean builds in two stores give the same
/// image, bit for bit.
#[test]
fn source_date_epoch_makes_builds_reproducible() {
    let mut ids = Vec::new();
    for _ in 0..2 {
        let t = TestStore::new();
        load_busybox(&t);
        let ctx = context(
            &t,
            "ctx",
            &[
                (
                    "Dockerfile",
                    "FROM busybox\nCOPY . /src/\nWORKDIR /new/dir\nENV A=1\nCOPY <<EOF /note\nn\nEOF\n",
                ),
                ("a", "a"),
                ("d/b", "b"),
            ],
        );
        let id = build(
            &t,
            &[
                "--build-arg",
                "SOURCE_DATE_EPOCH=1700000000",
                ctx.to_str().unwrap(),
            ],
        );
        let cfg: serde_json::Value = serde_json::from_slice(
            &fs::read(t.root().join("blobs/sha256").join(&id[7..])).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
        ids.push(id);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(ids[0], ids[1]);
}

/// `COPY --link`: the layer does not depend on the image below it, so a
/// new base reuses it (same DiffID, reported CACHED).
#[test]
fn copy_link_layers_are_reused_on_a_new_base() {
    let t = TestStore::new();
    load_busybox(&t);
    let other = context(
        &t,
        "other",
        &[("Dockerfile", "FROM scratch\nCOPY f /f\n"), ("f", "f")],
    );
    build(&t, &["-t", "other-base", other.to_str().unwrap()]);
    let ctx = context(
        &t,
        "ctx",
        &[
            (
                "Dockerfile",
                "ARG BASE=busybox\nFROM $BASE\nCOPY --link a /x/a\nCOPY --link --chown=9:9 a /y/\n",
            ),
            ("a", "A"),
        ],
    );
    build(&t, &["-t", "on-busybox", ctx.to_str().unwrap()]);
    let log = build_plain(
        &t,
        &[
            "--build-arg",
            "BASE=other-base",
            "-t",
            "on-other",
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(cached_steps(&log), 2, "{log}");
    let layers = |name: &str| {
        inspect(&t, name)["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let a = layers("on-busybox");
    let b = layers("on-other");
    assert_eq!(a[a.len() - 2..], b[b.len() - 2..]);
    let (files, _) = saved_files(&t, "on-other");
    assert_eq!(files["x/a"].data, b"A");
    assert_eq!((files["y"].uid, files["y/a"].uid), (9, 9));
    assert_eq!(files["f"].data, b"f");
    t.ok(&["system", "check"]);
}

/// `--no-cache-filter`, `--compression zstd`, `-o type=docker|oci,dest=`,
/// and the closing table.
#[test]
fn outputs_compression_and_no_cache_filter() {
    let t = TestStore::new();
    let ctx = context(
        &t,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch AS deps\nCOPY a /a\n\nFROM scratch\nCOPY --from=deps /a /a\nCOPY b /b\n",
            ),
            ("a", "a"),
            ("b", "b"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let archive = t.dir.path().join("out.tar");
    let log = build_plain(
        &t,
        &[
            "--compression",
            "zstd",
            "-t",
            "out:1",
            "-o",
            &format!("type=docker,dest={}", archive.display()),
            c,
        ],
    );
    // The closing table names every step with its time.
    assert!(
        log.lines()
            .any(|l| l.starts_with("[stage-1 3/3] COPY b /b") && l.ends_with('s')),
        "{log}"
    );
    let v = inspect(&t, "out:1");
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(
            t.root()
                .join("blobs/sha256")
                .join(&v["Descriptor"]["digest"].as_str().unwrap()[7..]),
        )
        .unwrap(),
    )
    .unwrap();
    for l in manifest["layers"].as_array().unwrap() {
        assert!(
            l["mediaType"].as_str().unwrap().ends_with("+zstd"),
            "{manifest}"
        );
    }
    // The archive loads elsewhere as the same image.
    let other = TestStore::new();
    other.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(inspect(&other, "out:1")["Id"], v["Id"]);
    let oci = t.dir.path().join("out.oci.tar");
    build(&t, &["-o", &format!("type=oci,dest={}", oci.display()), c]);
    let third = TestStore::new();
    third.ok(&["load", "-i", oci.to_str().unwrap()]);
    assert_eq!(third.ok(&["images", "-q", "--no-trunc"]).trim(), v["Id"]);
    // --no-cache-filter: the named stage is built again, the others hit.
    // (Stages run side by side: their lines may interleave.)
    let log = build_plain(&t, &["--no-cache-filter", "deps", c]);
    let lines: Vec<&str> = log.lines().collect();
    for (header, status) in [
        ("#2 [deps 2/2] COPY a /a", "#2 DONE"),
        ("#4 [stage-1 2/3] COPY --from=deps /a /a", "#4 CACHED"),
        ("#5 [stage-1 3/3] COPY b /b", "#5 CACHED"),
    ] {
        assert!(lines.contains(&header), "{header}: {log}");
        assert!(
            lines.iter().any(|l| l.starts_with(status)),
            "{status}: {log}"
        );
    }
    assert!(!log.contains("#2 CACHED"), "{log}");
    let bad = t.output(&["build", "-o", "type=registry,name=x", c]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not supported yet"));
}

/// `--explain-cache` says, for each step that missed, which input changed.
#[test]
fn explain_cache_names_what_changed() {
    let t = TestStore::new();
    let ctx = context(
        &t,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY a /a\nCOPY b c /d/\nCOPY a /e\n",
            ),
            ("a", "a"),
            ("b", "b"),
            ("c", "c"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let log = build_plain(&t, &["--explain-cache", c]);
    assert!(
        log.contains("#2 MISS no earlier build of this step to compare with"),
        "{log}"
    );
    fs::write(ctx.join("c"), "changed").unwrap();
    let log = build_plain(&t, &["--explain-cache", c]);
    assert!(log.contains("#2 CACHED"), "{log}");
    assert!(log.contains("#3 MISS /d/c: content changed"), "{log}");
    assert!(!log.contains("#3 MISS /d/b"), "{log}");
    assert!(
        log.contains("#4 MISS the step before it (or the base image) changed"),
        "{log}"
    );
    fs::write(
        ctx.join("Dockerfile"),
        "FROM scratch\nCOPY a /a\nCOPY --chmod=600 b c /d/\nCOPY a /e\n",
    )
    .unwrap();
    let log = build_plain(&t, &["--explain-cache", c]);
    assert!(
        log.contains("#3 MISS instruction: COPY b c /d/ -> COPY --chmod=600 b c /d/"),
        "{log}"
    );
    assert!(log.contains("#3 MISS /d/b: mode 644 -> mode 600"), "{log}");
    // Without the flag nothing is explained.
    fs::write(ctx.join("a"), "new").unwrap();
    let log = build_plain(&t, &[c]);
    assert!(!log.contains("MISS"), "{log}");
}

/// `-o type=local,dest=DIR` and `-o type=tar,dest=FILE`: the image's merged
/// files, with their owners, modes and links; the same in both.
#[test]
fn output_local_and_tar_are_the_merged_rootfs() {
    let t = TestStore::new();
    load_busybox(&t);
    let ctx = context(
        &t,
        "ctx",
        &[
            (
                "Dockerfile",
                "FROM busybox\nCOPY --chown=5:6 a /app/a\nCOPY --chmod=700 a /bin/tool\n",
            ),
            ("a", "A"),
        ],
    );
    let out = t.dir.path().join("rootfs");
    let tarfile = t.dir.path().join("rootfs.tar");
    build(
        &t,
        &[
            "-o",
            &format!("type=local,dest={}", out.display()),
            ctx.to_str().unwrap(),
        ],
    );
    build(
        &t,
        &[
            "-o",
            &format!("type=tar,dest={}", tarfile.display()),
            ctx.to_str().unwrap(),
        ],
    );
    let l = listing(&out);
    assert!(l["app/a"].starts_with("f 644 5:6 1 "), "{}", l["app/a"]);
    assert!(
        l["bin/tool"].starts_with("f 700 0:0 1 "),
        "{}",
        l["bin/tool"]
    );
    assert!(
        l["bin/busybox"].starts_with("f 755 0:0 "),
        "{}",
        l["bin/busybox"]
    );
    assert_eq!(l["bin/sh"], "l 777 0:0 0 /bin/busybox");
    // The tar holds the same tree: extract it with GNU tar and compare.
    let x = t.dir.path().join("x");
    fs::create_dir(&x).unwrap();
    let st = Command::new("tar")
        .args(["--numeric-owner", "-xpf"])
        .arg(&tarfile)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(listing(&x), l);
    // A non-empty directory is refused.
    let err = t.fails(&[
        "build",
        "-o",
        &format!("type=local,dest={}", out.display()),
        ctx.to_str().unwrap(),
    ]);
    assert!(err.contains("not empty"), "{err}");
}

/// `--secret` and `--ssh` are checked before building; a secret's content
/// is never read into anything the build stores.
#[test]
fn secret_and_ssh_flags() {
    let t = TestStore::new();
    let ctx = context(
        &t,
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "a")],
    );
    let c = ctx.to_str().unwrap();
    let err = t.fails(&["build", "--secret", "id=tok,src=/nonexistent/file", c]);
    assert!(
        err.contains("--secret tok") && err.contains("not a file"),
        "{err}"
    );
    let err = t.fails(&["build", "--secret", "src=x", c]);
    assert!(err.contains("id= is missing"), "{err}");
    let secret = t.dir.path().join("secret");
    fs::write(&secret, "s3cr3t-value").unwrap();
    build(
        &t,
        &[
            "--secret",
            &format!("id=tok,src={}", secret.display()),
            "--ssh",
            "agent=/nonexistent.sock",
            c,
        ],
    );
    // The value is nowhere in the store.
    let out = Command::new("grep")
        .args(["-r", "-l", "s3cr3t-value"])
        .arg(t.root())
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `kiln --progress plain build …` that must end within `secs` (a RUN that
/// leaves processes behind must not hang the build): (success, stderr).
fn build_within(t: &TestStore, args: &[&str], secs: u64) -> (bool, String) {
    let mut all = vec!["--progress", "plain", "build"];
    all.extend_from_slice(args);
    let mut child = t
        .cmd()
        .args(&all)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("kiln {all:?} did not finish in {secs}s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    (status.success(), reader.join().unwrap())
}

/// Entries the runtime makes for its own mounts must never reach a layer.
fn assert_no_runtime_files(entries: &[String]) {
    for e in entries {
        for bad in ["etc/resolv.conf", "etc/hosts", "etc/hostname"] {
            assert_ne!(e, bad, "{entries:?}");
        }
    }
}

#[test]
fn run_steps_see_args_env_user_and_workdir_and_change_the_image() {
    let t = TestStore::new();
    load_busybox(&t);
    let df = r#"FROM busybox
ARG GREETING=hello
ENV APPDIR=/srv/app
RUN echo "$GREETING from $APPDIR" > /greeting && rm /etc/shadow && echo "marker-$((40+2))-ran"
WORKDIR /work/dir
RUN pwd > /pwd.txt && echo "cwd=$(pwd)"
USER 65534
RUN echo "uid-numeric=$(id -u)"
USER nobody
RUN echo "uid-named=$(id -u):$(id -g) home=$HOME host=$(hostname)"
USER root
RUN cat /etc/resolv.conf > /dev/null && echo "hosts-lines=$(grep -c localhost /etc/hosts)"
"#;
    let ctx = context(&t, "ctx", &[("Dockerfile", df)]);
    let c = ctx.to_str().unwrap();
    let log = build_plain(&t, &["--build-arg", "GREETING=hi", "-t", "ran", c]);
    for want in [
        "marker-42-ran",
        "cwd=/work/dir",
        "uid-numeric=65534",
        "uid-named=65534:65534 home=/home host=buildkitsandbox",
        "hosts-lines=",
    ] {
        assert!(log.contains(want), "{want} missing in:\n{log}");
    }
    let (files, layers) = saved_files(&t, "ran");
    assert_eq!(files["greeting"].data, b"hi from /srv/app\n");
    assert_eq!(files["pwd.txt"].data, b"/work/dir\n");
    // The deletion is a whiteout in the RUN's layer.
    assert!(
        layers
            .iter()
            .any(|l| l.iter().any(|e| e == "etc/.wh.shadow")),
        "{layers:?}"
    );
    // The root of a RUN's layer keeps the image's mode (not the build's
    // private staging directory's).
    if let Some(root) = files.get("") {
        assert_eq!(root.mode, 0o755, "{root:?}");
    }
    let all: Vec<String> = layers.iter().flatten().cloned().collect();
    assert_no_runtime_files(&all);
    // Layers of RUNs that only print hold nothing.
    assert!(
        layers
            .iter()
            .skip(1)
            .any(|l| l.iter().all(|e| e.is_empty())),
        "{layers:?}"
    );
    // The image runs, with the file from the RUN and without the deleted.
    let out = t.ok(&[
        "run",
        "--rm",
        "ran",
        "sh",
        "-c",
        "cat /greeting; test -e /etc/shadow && echo shadow-still-there; id -u",
    ]);
    assert_eq!(out, "hi from /srv/app\n0\n");
    // A second build is all cached: no RUN runs again.
    let log = build_plain(&t, &["--build-arg", "GREETING=hi", "-t", "ran", c]);
    assert!(!log.contains("marker-42-ran"), "{log}");
    // Every step but FROM: the five RUNs and the WORKDIR.
    assert_eq!(cached_steps(&log), 6, "{log}");
    // History records the RUNs as BuildKit does.
    let h = config(&t, "ran")["history"].clone();
    let text = h.to_string();
    assert!(
        text.contains("RUN |1 GREETING=hi /bin/sh -c echo"),
        "{text}"
    );
}

#[test]
fn failing_and_lingering_run_steps() {
    let t = TestStore::new();
    load_busybox(&t);
    // A failure: BuildKit's message, a failing exit status.
    let ctx = context(
        &t,
        "fail",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo before-exit\nRUN exit 3\n",
        )],
    );
    let (ok, log) = build_within(&t, &[ctx.to_str().unwrap()], 120);
    assert!(!ok, "{log}");
    assert!(
        log.contains(r#"process "/bin/sh -c exit 3" did not complete successfully: exit code: 3"#),
        "{log}"
    );
    assert!(log.contains("Dockerfile:3:"), "{log}");
    assert!(log.contains("before-exit"), "{log}");
    // Background processes and zombies do not keep a step alive: init
    // reaps the orphans and the PID namespace ends with the command.
    let df = "FROM busybox\n\
              RUN sleep 1000 & echo \"backgrounded pid=$$\"\n\
              RUN (sleep 0.1 &) ; sleep 0.4; echo \"zombies=$(cat /proc/[0-9]*/status | grep -c '^State:.*Z')\"\n\
              RUN exec sh -c 'sh -c \"exit 0\" & sh -c \"sleep 1000\" & exec true'\n\
              RUN <<EOT\necho heredoc-script-$((1+1))\nEOT\n\
              RUN cat <<EOT > /hd.txt && grep -q inside /hd.txt && echo heredoc-file-ok\ninside\nEOT\n";
    let ctx = context(&t, "linger", &[("Dockerfile", df)]);
    let (ok, log) = build_within(&t, &[ctx.to_str().unwrap()], 120);
    assert!(ok, "{log}");
    // The command is not PID 1: kiln's init is.
    assert!(log.contains("backgrounded pid=2\n"), "{log}");
    assert!(log.contains("zombies=0"), "{log}");
    // Heredocs: a bare one is the script, others are read by the shell.
    assert!(log.contains("heredoc-script-2"), "{log}");
    assert!(log.contains("heredoc-file-ok"), "{log}");
    // No step container is left behind.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(t.root().to_str().unwrap()),
        "a mount of the store is left:\n{mounts}"
    );
    let ingest: Vec<_> = fs::read_dir(t.root().join("ingest"))
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(ingest.is_empty(), "{ingest:?}");
}

#[test]
fn run_mounts_cache_secret_bind_tmpfs_and_network() {
    let t = TestStore::new();
    load_busybox(&t);
    let df = r#"FROM busybox AS data
RUN mkdir /data && echo from-stage > /data/file
FROM busybox
RUN --mount=type=cache,target=/cache echo run >> /cache/count && echo "count=$(wc -l < /cache/count)"
RUN --mount=type=secret,id=tok test "$(stat -c %a /run/secrets/tok)" = 400 && echo "secret-len=$(wc -c < /run/secrets/tok)"
RUN --mount=type=secret,id=tok,env=TOKEN echo "env-secret-len=${#TOKEN}"
RUN --mount=type=bind,from=data,source=/data,target=/mnt/data cp /mnt/data/file /copied
RUN --mount=type=bind,from=data,source=/data,target=/mnt/rw,rw echo x > /mnt/rw/new && echo rw-ok
RUN --mount=type=bind,source=ctx.txt,target=/ctx.txt cat /ctx.txt && ! touch /ctx.txt 2>/dev/null
RUN --mount=type=tmpfs,target=/scratchpad grep -q " /scratchpad tmpfs" /proc/mounts && echo hi > /scratchpad/x && echo tmpfs-ok
RUN --network=none echo "ifaces=$(awk 'NR>2{printf "%s", $1}' /proc/net/dev)"
RUN echo "default-net=$(ip -4 -o addr show eth0 | awk '{print $4}' | cut -d. -f1-2) $(ip route | grep -c '^default via')"
"#;
    let ctx = context(
        &t,
        "ctx",
        &[("Dockerfile", df), ("ctx.txt", "context-file-content\n")],
    );
    let secret = t.dir.path().join("secret");
    fs::write(&secret, "s3cr3t-value-42").unwrap();
    let s = format!("id=tok,src={}", secret.display());
    let c = ctx.to_str().unwrap();
    let log = build_plain(&t, &["--secret", &s, "-t", "mounted", c]);
    for want in [
        "count=1",
        "secret-len=15",
        "env-secret-len=15",
        "rw-ok",
        "context-file-content",
        "tmpfs-ok",
        "ifaces=lo:\n",
        // Without --network: the step's own namespace on the (test) bridge.
        "default-net=10.213 1",
    ] {
        assert!(log.contains(want), "{want} missing in:\n{log}");
    }
    assert!(!log.contains("s3cr3t-value-42"), "{log}");
    // The cache directory lives on between builds, even with --no-cache.
    let log = build_plain(&t, &["--no-cache", "--secret", &s, "-t", "mounted", c]);
    assert!(log.contains("count=2"), "{log}");
    // `builder prune` removes cache mounts too: the next build starts empty.
    let out = t.ok(&["builder", "prune", "-f"]);
    assert!(out.contains("Deleted cache mounts: 1"), "{out}");
    let log = build_plain(&t, &["--secret", &s, "-t", "mounted", c]);
    assert!(log.contains("count=1"), "{log}");
    let (files, layers) = saved_files(&t, "mounted");
    assert_eq!(files["copied"].data, b"from-stage\n");
    let all: Vec<String> = layers.iter().flatten().cloned().collect();
    assert_no_runtime_files(&all);
    // Mount points made only for the step are not in any layer.
    for e in &all {
        for bad in ["mnt", "run", "cache", "scratchpad", "ctx.txt"] {
            assert!(
                e != bad && !e.starts_with(&format!("{bad}/")),
                "{e} in {all:?}"
            );
        }
    }
    // The secret is nowhere in the store: no layer, history, cache key.
    let out = Command::new("grep")
        .args(["-r", "-l", "s3cr3t-value-42"])
        .arg(t.root())
        .output()
        .unwrap();
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // `build --network none`: the steps without a --network of their own
    // have only loopback; `RUN --network=default` gets the build's too.
    let df = "FROM busybox\nRUN echo \"ifaces=$(awk 'NR>2{printf \"%s\", $1}' /proc/net/dev)\"\nRUN --network=default echo \"default-ifaces=$(awk 'NR>2{printf \"%s\", $1}' /proc/net/dev)\"\n";
    let ctx = context(&t, "netnone", &[("Dockerfile", df)]);
    let log = build_plain(&t, &["--network", "none", ctx.to_str().unwrap()]);
    // Only `lo:` (with the bridge there would be `lo:eth0:`).
    assert!(log.lines().any(|l| l.ends_with(" ifaces=lo:")), "{log}");
    assert!(
        log.lines().any(|l| l.ends_with(" default-ifaces=lo:")),
        "{log}"
    );
    let out = t.output(&["build", "--network", "bridge", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "an unknown mode is bad usage");
}

/// Processes whose command line contains `needle` (`/proc/*/cmdline`).
fn processes_with(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == std::process::id().to_string() {
            continue;
        }
        let Ok(cmdline) = fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(needle) {
            out.push(format!("{name}: {text}"));
        }
    }
    out
}

/// Issue 6's acceptance point: Ctrl-C during a build stops every process
/// of the RUN, leaves no mount behind, and keeps the steps that finished
/// in the cache.
#[test]
fn ctrl_c_stops_the_run_and_keeps_finished_steps() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let t = TestStore::new();
    load_busybox(&t);
    // A marker only this test's processes carry (a loop shell's $0).
    let marker = format!(
        "kiln-ctrlc-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let first = "FROM busybox\nRUN echo first-step-done > /first\n";
    let df = format!(
        "{first}RUN sh -c 'while :; do sleep 1; done' bg-{marker} & \
         echo second-step-running; exec sh -c 'while :; do sleep 1; done' fg-{marker}\n"
    );
    let ctx = context(&t, "ctrlc", &[("Dockerfile", &df)]);
    let c = ctx.to_str().unwrap();
    let mut child = t
        .cmd()
        .args(["--progress", "plain", "build", c])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        // Its own process group, which Ctrl-C signals as a terminal does.
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    // Wait until the second RUN and its background loop are running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("second-step-running") => break,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the second RUN did not start:\n{}", reader.join().unwrap());
            }
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while processes_with(&format!("bg-{marker}")).is_empty()
        || processes_with(&format!("fg-{marker}")).is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "the loops never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Ctrl-C: SIGINT to the whole process group.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(-pgid),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let sent = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if sent.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kiln build did not stop within 20s of SIGINT");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let log = reader.join().unwrap();
    assert!(!status.success(), "{status}\n{log}");
    // No process of the RUN (nor kiln's step process, whose command line
    // names the store) is left; give the kernel a moment to reap.
    let root = t.root().display().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut left = processes_with(&marker);
        left.extend(processes_with(&root));
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "processes left after Ctrl-C: {left:#?}\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // No mount of the store is left.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&root),
        "a mount of the store is left:\n{mounts}"
    );
    // A rebuild finds the first RUN in the cache.
    let df = format!("{first}RUN echo second-step-now-quick\n");
    fs::write(ctx.join("Dockerfile"), df).unwrap();
    let log = build_plain(&t, &[c]);
    assert_eq!(cached_steps(&log), 1, "{log}");
    assert!(log.contains("second-step-now-quick"), "{log}");
}

/// Ctrl-C at any moment of a build of short RUN steps (while a step's
/// container is being set up, too) leaves no step process behind: a
/// container created but not started would wait forever, as PID 1 of its
/// namespace, which a terminal's SIGINT does not kill.
#[test]
fn ctrl_c_at_any_moment_leaves_no_step_process() {
    use std::os::unix::process::CommandExt;
    let t = TestStore::new();
    load_busybox(&t);
    let mut df = String::from("FROM busybox\n");
    for i in 0..30 {
        df.push_str(&format!("RUN echo step-{i}\n"));
    }
    let ctx = context(&t, "many", &[("Dockerfile", &df)]);
    let c = ctx.to_str().unwrap();
    let root = t.root().display().to_string();
    for ms in (0..16).map(|i| 400 + 130 * i) {
        let mut child = t
            .cmd()
            .args(["build", "-q", "--no-cache", c])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let pgid = nix::unistd::Pid::from_raw(-(child.id() as i32));
        nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGINT).unwrap();
        let sent = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                sent.elapsed() < std::time::Duration::from_secs(20),
                "kiln build did not stop within 20s of SIGINT"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let left = processes_with(&root);
            if left.is_empty() {
                break;
            }
            if std::time::Instant::now() > deadline {
                for p in &left {
                    if let Some(pid) = p.split(':').next().and_then(|p| p.parse().ok()) {
                        let pid = nix::unistd::Pid::from_raw(pid);
                        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    }
                }
                panic!("SIGINT after {ms} ms left: {left:#?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&root), "{mounts}");
    // The store is still sound, and the build completes.
    build(&t, &[c]);
    t.ok(&["system", "check"]);
}

/// A RUN step's run-time files (bundle, runtime state, generated /etc
/// files, the root's mount point) are in a tmpfs of the step's own mount
/// namespace: on disk its private directories hold only the overlay's work
/// directory.
#[test]
fn a_steps_run_time_files_stay_in_memory() {
    use std::os::unix::process::CommandExt;
    let t = TestStore::new();
    load_busybox(&t);
    let marker = format!("kiln-tmpfs-{}", std::process::id());
    let df = format!("FROM busybox\nRUN exec sh -c 'while :; do sleep 1; done' {marker}\n");
    let ctx = context(&t, "inmemory", &[("Dockerfile", &df)]);
    let mut child = t
        .cmd()
        .args(["build", "-q", ctx.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let step = loop {
        let steps = processes_with("__build-step");
        let step = steps
            .iter()
            .find(|p| p.contains(&*t.root().to_string_lossy()));
        if let (Some(p), false) = (step, processes_with(&marker).is_empty()) {
            break p.split(':').next().unwrap().to_string();
        }
        assert!(std::time::Instant::now() < deadline, "the RUN never ran");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let ingest = t.root().join("ingest");
    let mounts = fs::read_to_string(format!("/proc/{step}/mountinfo")).unwrap();
    let tmpfs: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(&*ingest.to_string_lossy()) && l.contains(" - tmpfs "))
        .collect();
    // Seen from outside the step: the files on disk under ingest/.
    let mut on_disk = Vec::new();
    let mut stack = vec![ingest.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            on_disk.push(p.strip_prefix(&ingest).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    let pgid = nix::unistd::Pid::from_raw(-(child.id() as i32));
    nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGINT).unwrap();
    child.wait().unwrap();
    assert_eq!(tmpfs.len(), 1, "{mounts}");
    // (The upper directory holds the mount points of /etc/hosts & co.)
    for name in [
        "config.json",
        "state.json",
        "youki_config.json",
        "notify.sock",
        "rootfs",
    ] {
        assert!(
            !on_disk.iter().any(|p| p.ends_with(name)),
            "{name} on disk: {on_disk:#?}"
        );
    }
    assert!(
        on_disk.iter().any(|p| p.ends_with("/work")),
        "the overlay's work directory: {on_disk:#?}"
    );
    let scratch_on_disk = on_disk
        .iter()
        .filter(|p| !p.contains('/'))
        .any(|top| !on_disk.iter().any(|p| p.starts_with(&format!("{top}/"))));
    assert!(
        scratch_on_disk,
        "the tmpfs's directory is empty on disk: {on_disk:#?}"
    );
}

/// `sharing=` between two stages that run at the same time: `locked` runs
/// the steps one after the other on one directory; `private` gives each a
/// directory of its own (they meet in a shared cache, so both are running
/// when they look).
#[test]
fn cache_sharing_locked_and_private_between_parallel_stages() {
    let t = TestStore::new();
    load_busybox(&t);
    let stage = |s: &str, other: &str| {
        format!(
            "FROM busybox AS {s}\n\
             RUN --mount=type=cache,id=lk,target=/c,sharing=locked \
             echo {s}-in >> /c/log && sleep 1 && echo {s}-out >> /c/log\n\
             RUN --mount=type=cache,id=pv,target=/c,sharing=private \
             --mount=type=cache,id=meet,target=/meet \
             touch /c/{s} /meet/{s} && \
             for i in $(seq 300); do [ -e /meet/{other} ] && break; sleep 0.1; done && \
             echo \"{s}-met-{other}=$(ls /meet | grep -c {other}) {s}-private-sees=$(ls /c | tr '\\n' ,)\"\n"
        )
    };
    let df = format!(
        "{}{}FROM busybox\n\
         RUN --mount=from=a,target=/ma --mount=from=b,target=/mb \
         --mount=type=cache,id=lk,target=/c,sharing=locked \
         echo \"lock-log=$(tr '\\n' , < /c/log)\"\n",
        stage("a", "b"),
        stage("b", "a")
    );
    let ctx = context(&t, "sharing", &[("Dockerfile", &df)]);
    let log = build_plain(&t, &[ctx.to_str().unwrap()]);
    // Both private steps ran at once, each on a directory of its own.
    assert!(log.contains("a-met-b=1 a-private-sees=a,\n"), "{log}");
    assert!(log.contains("b-met-a=1 b-private-sees=b,\n"), "{log}");
    // The locked steps did not overlap, on one directory.
    assert!(
        log.contains("lock-log=a-in,a-out,b-in,b-out,")
            || log.contains("lock-log=b-in,b-out,a-in,a-out,"),
        "{log}"
    );
}

/// `RUN --mount=type=cache,from=STAGE,source=PATH`: the cache starts as a
/// copy of the stage's PATH (with its owners) and keeps what steps write;
/// a symlink in `source` resolves inside the stage.
#[test]
fn cache_mount_seeded_from_a_stage() {
    let t = TestStore::new();
    load_busybox(&t);
    let df = r#"FROM busybox AS seed
RUN mkdir -p /data/sub && echo seeded > /data/sub/f && chown -R 1000:1000 /data/sub && ln -s ../../../../../data/sub /data/up
FROM busybox
RUN --mount=type=cache,id=s,target=/c,from=seed,source=/data/up echo "seen=$(tr '\n' , < /c/f) owner=$(stat -c %u:%g /c /c/f | tr '\n' ,)" && echo again >> /c/f
"#;
    let ctx = context(&t, "seeded", &[("Dockerfile", df)]);
    let c = ctx.to_str().unwrap();
    let log = build_plain(&t, &[c]);
    assert!(
        log.contains("seen=seeded, owner=1000:1000,1000:1000,"),
        "{log}"
    );
    // Kept between builds, not seeded again.
    let log = build_plain(&t, &["--no-cache", c]);
    assert!(log.contains("seen=seeded,again, owner="), "{log}");
    // Nothing of the cache reaches the image.
    let (files, _) = saved_files(&t, &build(&t, &[c]));
    assert!(
        !files.keys().any(|k| k.starts_with("c/") || k == "c"),
        "{files:?}"
    );
}

/// A `RUN <<EOF` heredoc whose body starts with `#!` is written to a file
/// and run by its interpreter, as in BuildKit; without a shebang the body
/// is the shell's script.
#[test]
fn heredoc_with_a_shebang_runs_its_interpreter() {
    let t = TestStore::new();
    load_busybox(&t);
    let df = "FROM busybox\n\
              RUN <<EOF\n#!/usr/bin/awk -f\nBEGIN { print \"awk-ran-\" 6*7 }\nEOF\n\
              RUN <<EOT\n#!/bin/sh\necho \"script=$0 mode=$(stat -c %a \"$0\")\"\nEOT\n\
              RUN <<EOF\nfalse\necho no-shebang-goes-on\nEOF\n\
              USER 65534\nRUN <<EOF\n#!/bin/sh\necho \"script-as-$(id -u)\"\nEOF\n";
    let ctx = context(&t, "shebang", &[("Dockerfile", df)]);
    let log = build_plain(&t, &["-t", "shebang", ctx.to_str().unwrap()]);
    assert!(log.contains("awk-ran-42"), "{log}");
    assert!(log.contains("script=/dev/pipes/EOT mode=755"), "{log}");
    assert!(log.contains("no-shebang-goes-on"), "{log}");
    assert!(log.contains("script-as-65534"), "{log}");
    // History as BuildKit writes it; no trace of the script in a layer.
    let h = config(&t, "shebang")["history"].to_string();
    assert!(
        h.contains("RUN /bin/sh -c /dev/pipes/EOF # buildkit"),
        "{h}"
    );
    let (_, layers) = saved_files(&t, "shebang");
    for e in layers.iter().skip(1).flatten() {
        assert!(!e.starts_with("dev"), "{e} in {layers:?}");
    }
    // `#!/bin/sh -e`: the interpreter's options apply.
    let df = "FROM busybox\nRUN <<EOF\n#!/bin/sh -e\nfalse\necho after-false\nEOF\n";
    let ctx = context(&t, "shebang-e", &[("Dockerfile", df)]);
    let (ok, log) = build_within(&t, &[ctx.to_str().unwrap()], 120);
    assert!(!ok, "{log}");
    assert!(!log.contains("after-false"), "{log}");
    assert!(log.contains("exit code: 1"), "{log}");
}

/// A server on 127.0.0.1 (python3's http.server, or `git daemon`),
/// killed when dropped.
struct Served {
    child: std::process::Child,
    port: u16,
}

impl Served {
    fn start(mut cmd: Command, port: u16) -> Served {
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let served = Served { child, port };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return served;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the server on port {port} did not start");
    }

    fn free_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    /// `dir` over HTTP.
    fn http(dir: &Path) -> Served {
        let port = Served::free_port();
        let mut cmd = Command::new("python3");
        cmd.args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .current_dir(dir);
        Served::start(cmd, port)
    }

    /// The repositories under `base` over the git protocol.
    fn git(base: &Path) -> Served {
        let port = Served::free_port();
        let mut cmd = Command::new("git");
        cmd.args([
            "daemon",
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", base.display()),
            base.to_str().unwrap(),
        ]);
        Served::start(cmd, port)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The modification times of an image's files (later layers win).
fn saved_mtimes(t: &TestStore, name: &str) -> BTreeMap<String, u64> {
    let out = t.dir.path().join(format!("{name}-mtimes.tar"));
    t.ok(&["save", "-o", out.to_str().unwrap(), name]);
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut a = tar::Archive::new(fs::File::open(&out).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        blobs.insert(p, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&blobs["manifest.json"]).unwrap();
    let mut times = BTreeMap::new();
    for l in manifest[0]["Layers"].as_array().unwrap() {
        let mut a = tar::Archive::new(&blobs[l.as_str().unwrap()][..]);
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let p = e.path().unwrap().display().to_string();
            let p = p.trim_start_matches("./").trim_end_matches('/').to_string();
            times.insert(p, e.header().mtime().unwrap());
        }
    }
    times
}

#[test]
fn add_http_url_downloads_a_file_with_its_checksum_and_cache() {
    let t = TestStore::new();
    let www = t.dir.path().join("www");
    fs::create_dir_all(www.join("inner")).unwrap();
    fs::write(www.join("inner/in.txt"), "inside").unwrap();
    let st = Command::new("tar")
        .args(["czf", "a.tar.gz", "-C", "inner", "in.txt"])
        .current_dir(&www)
        .status()
        .unwrap();
    assert!(st.success());
    fs::write(www.join("f.txt"), "hello\n").unwrap();
    let stamp = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    let set_time = |p: &Path| {
        fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(stamp)
            .unwrap();
    };
    set_time(&www.join("f.txt"));
    let server = Served::http(&www);
    let base = format!("http://127.0.0.1:{}", server.port);
    let df = format!(
        "FROM scratch\n\
         ADD {base}/a.tar.gz /arch/\n\
         ADD --unpack=true {base}/a.tar.gz /unpacked/\n\
         ADD {base}/f.txt /d/\n\
         ADD --chmod=0644 --chown=5:6 {base}/f.txt /other/name.txt\n"
    );
    let ctx = context(&t, "http", &[("Dockerfile", &df)]);
    let c = ctx.to_str().unwrap();
    let first = build(&t, &["-t", "http", c]);
    let (files, _) = saved_files(&t, "http");
    let f = &files["d/f.txt"];
    assert_eq!((f.kind, f.mode, f.uid, f.gid), ('f', 0o600, 0, 0), "{f:?}");
    assert_eq!(f.data, b"hello\n");
    let o = &files["other/name.txt"];
    assert_eq!((o.mode, o.uid, o.gid), (0o644, 5, 6), "{o:?}");
    assert_eq!(o.data, b"hello\n");
    // A remote archive is not extracted.
    assert_eq!(
        files["arch/a.tar.gz"].data,
        fs::read(www.join("a.tar.gz")).unwrap()
    );
    assert!(!files.contains_key("arch/in.txt"), "{:?}", files.keys());
    // Unless --unpack=true says so.
    assert_eq!(files["unpacked/in.txt"].data, b"inside");
    assert!(!files.contains_key("unpacked/a.tar.gz"));
    // Last-Modified is the file's mtime.
    let times = saved_mtimes(&t, "http");
    assert_eq!(times["d/f.txt"], 1_600_000_000);
    assert_eq!(times["other/name.txt"], 1_600_000_000);
    // Same content: every step is a hit.
    let log = build_plain(&t, &["-t", "http", c]);
    assert_eq!(cached_steps(&log), 4, "{log}");
    assert_eq!(inspect(&t, "http")["Id"], first);
    // Changed content: the steps that download it are built again.
    fs::write(www.join("f.txt"), "changed\n").unwrap();
    let log = build_plain(&t, &["-t", "http", c]);
    assert_eq!(cached_steps(&log), 2, "{log}");
    let (files, _) = saved_files(&t, "http");
    assert_eq!(files["d/f.txt"].data, b"changed\n");
    assert_ne!(inspect(&t, "http")["Id"], first);

    // --checksum: verified; a mismatch names the URL and writes nothing.
    let good = sha256_hex(b"changed\n");
    let bad = sha256_hex(b"hello\n");
    let df = format!("FROM scratch\nADD --checksum=sha256:{good} {base}/f.txt /sum\n");
    let ctx = context(&t, "sum-ok", &[("Dockerfile", &df)]);
    build(&t, &["-t", "sum-ok", ctx.to_str().unwrap()]);
    assert_eq!(saved_files(&t, "sum-ok").0["sum"].data, b"changed\n");
    let df = format!("FROM scratch\nADD --checksum=sha256:{bad} {base}/f.txt /sum\n");
    let ctx = context(&t, "sum-bad", &[("Dockerfile", &df)]);
    let before = t.state();
    let err = t.fails(&["build", "-t", "sum-bad", ctx.to_str().unwrap()]);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(err.contains(&format!("{base}/f.txt")), "{err}");
    assert!(err.contains(&bad), "{err}");
    assert_eq!(t.state(), before, "a failed ADD leaves the store as it was");
    t.fails(&["inspect", "sum-bad"]);
    // A missing file: the URL and the status.
    let df = format!("FROM scratch\nADD {base}/missing.txt /m\n");
    let ctx = context(&t, "missing", &[("Dockerfile", &df)]);
    let err = t.fails(&["build", ctx.to_str().unwrap()]);
    assert!(err.contains(&format!("{base}/missing.txt")), "{err}");
    assert!(err.contains("404"), "{err}");
    // COPY of a URL is an error.
    let df = format!("FROM scratch\nCOPY {base}/f.txt /f\n");
    let ctx = context(&t, "copy-url", &[("Dockerfile", &df)]);
    let err = t.fails(&["build", ctx.to_str().unwrap()]);
    assert!(err.contains("source can't be a URL for COPY"), "{err}");
    drop(server);
}

fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn add_git_repository_at_a_ref_and_subdirectory() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestStore::new();
    let work = t.dir.path().join("work");
    fs::create_dir_all(work.join("sub")).unwrap();
    git_in(&work, &["init", "-q", "-b", "main"]);
    fs::write(work.join("a.txt"), "one").unwrap();
    fs::write(work.join("sub/b.txt"), "b1").unwrap();
    fs::write(work.join("sub/run.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(work.join("sub/run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
    git_in(&work, &["add", "."]);
    git_in(&work, &["commit", "-q", "-m", "one"]);
    let first_commit = git_in(&work, &["rev-parse", "HEAD"]);
    git_in(&work, &["tag", "-a", "v1", "-m", "v1"]);
    fs::write(work.join("a.txt"), "two").unwrap();
    git_in(&work, &["commit", "-q", "-am", "two"]);
    let served = t.dir.path().join("served");
    fs::create_dir_all(&served).unwrap();
    // A submodule, served next to the repository.
    let lib = t.dir.path().join("lib");
    fs::create_dir_all(&lib).unwrap();
    git_in(&lib, &["init", "-q", "-b", "main"]);
    fs::write(lib.join("lib.txt"), "from the submodule").unwrap();
    git_in(&lib, &["add", "."]);
    git_in(&lib, &["commit", "-q", "-m", "lib"]);
    git_in(
        &served,
        &["clone", "-q", "--bare", lib.to_str().unwrap(), "lib.git"],
    );
    let server = Served::git(&served);
    let lib_url = format!("git://127.0.0.1:{}/lib.git", server.port);
    git_in(&work, &["submodule", "add", "-q", &lib_url, "lib"]);
    git_in(&work, &["commit", "-q", "-m", "submodule"]);
    git_in(
        &served,
        &["clone", "-q", "--bare", work.to_str().unwrap(), "repo.git"],
    );
    let repo = format!("git://127.0.0.1:{}/repo.git", server.port);
    let df = format!(
        "FROM scratch\n\
         ADD {repo} /src\n\
         ADD {repo}#v1:sub /sub/\n\
         ADD --keep-git-dir=true {repo}#v1 /kept\n\
         ADD --chown=3:4 {repo}#{first_commit} /bycommit\n\
         ADD {repo}?tag=v1&subdir=sub /query/\n"
    );
    let ctx = context(&t, "git", &[("Dockerfile", &df)]);
    let c = ctx.to_str().unwrap();
    let first = build(&t, &["-t", "git", c]);
    let (files, _) = saved_files(&t, "git");
    let names: Vec<&String> = files.keys().collect();
    // HEAD (main): the whole tree, without .git.
    assert_eq!(files["src/a.txt"].data, b"two", "{names:?}");
    assert_eq!(files["src/sub/b.txt"].data, b"b1");
    let a = &files["src/a.txt"];
    assert_eq!((a.mode, a.uid, a.gid), (0o644, 0, 0), "{a:?}");
    assert!(
        !names
            .iter()
            .any(|n| *n == "src/.git" || n.starts_with("src/.git/")),
        "{names:?}"
    );
    // Its submodule, checked out, without its .git link.
    assert_eq!(files["src/lib/lib.txt"].data, b"from the submodule");
    assert!(!files.contains_key("src/lib/.git"), "{names:?}");
    assert!(files.contains_key("src/.gitmodules"), "{names:?}");
    // The tag's subdirectory only.
    assert_eq!(files["sub/b.txt"].data, b"b1");
    assert_eq!(files["sub/run.sh"].mode, 0o755);
    assert!(!files.contains_key("sub/a.txt"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("sub/.git")),
        "{names:?}"
    );
    // --keep-git-dir keeps .git, at the tag's commit.
    assert_eq!(files["kept/a.txt"].data, b"one");
    assert!(files.contains_key("kept/.git/HEAD"), "{names:?}");
    // A commit by its hash, with --chown.
    let b = &files["bycommit/a.txt"];
    assert_eq!((b.uid, b.gid, &b.data[..]), (3, 4, &b"one"[..]), "{b:?}");
    // Same commits: every step is a hit (a kept .git too).
    // The query form: a tag and a subdirectory.
    assert_eq!(files["query/b.txt"].data, b"b1");
    assert!(!files.contains_key("query/a.txt"), "{names:?}");
    let log = build_plain(&t, &["-t", "git", c]);
    assert_eq!(cached_steps(&log), 5, "{log}");
    assert_eq!(inspect(&t, "git")["Id"], first);
    // A new commit on main: the first step (and so the rest) is rebuilt.
    fs::write(work.join("a.txt"), "three").unwrap();
    git_in(&work, &["commit", "-q", "-am", "three"]);
    git_in(
        &served.join("repo.git"),
        &["fetch", "-q", work.to_str().unwrap(), "main:main"],
    );
    let log = build_plain(&t, &["-t", "git", c]);
    assert_eq!(cached_steps(&log), 0, "{log}");
    let (files, _) = saved_files(&t, "git");
    assert_eq!(files["src/a.txt"].data, b"three");
    assert_eq!(files["sub/b.txt"].data, b"b1");
    // A ref that does not exist, and COPY of a repository: errors.
    let df = format!("FROM scratch\nADD {repo}#nope /x\n");
    let ctx = context(&t, "git-noref", &[("Dockerfile", &df)]);
    let err = t.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        err.contains("ref nope not found") && err.contains(&repo),
        "{err}"
    );
    let df = format!("FROM scratch\nCOPY {repo} /x\n");
    let ctx = context(&t, "git-copy", &[("Dockerfile", &df)]);
    let err = t.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        err.contains("source can't be a git repository for COPY"),
        "{err}"
    );
    drop(server);
}

#[test]
fn progress_rawjson_is_json_lines_with_vertexes_and_logs() {
    use base64::Engine as _;
    let t = TestStore::new();
    load_busybox(&t);
    let ctx = context(
        &t,
        "raw",
        &[
            (
                "Dockerfile",
                "FROM busybox\nRUN echo hello-raw\nCOPY a /a\n",
            ),
            ("a", "x"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let out = t.output(&["--progress", "rawjson", "build", "-t", "raw:1", c]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let mut run_digest = None;
    let mut completed = Vec::new();
    let mut logs = Vec::new();
    for line in stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line:?}: {e}"));
        for vx in v["vertexes"].as_array().into_iter().flatten() {
            let name = vx["name"].as_str().unwrap();
            assert!(vx["digest"].as_str().unwrap().starts_with("sha256:"));
            if name.ends_with("RUN echo hello-raw") {
                run_digest = Some(vx["digest"].as_str().unwrap().to_string());
            }
            if vx.get("completed").is_some() {
                assert!(vx["started"].is_string(), "{vx}");
                completed.push(name.to_string());
            }
        }
        for l in v["logs"].as_array().into_iter().flatten() {
            let data = base64::engine::general_purpose::STANDARD
                .decode(l["data"].as_str().unwrap())
                .unwrap();
            logs.push((
                l["vertex"].as_str().unwrap().to_string(),
                String::from_utf8(data).unwrap(),
            ));
        }
    }
    assert_eq!(completed.len(), 3, "{stderr}");
    let run = run_digest.expect("the RUN vertex");
    assert!(
        logs.iter()
            .any(|(v, d)| *v == run && d.contains("hello-raw")),
        "{logs:?}"
    );
}

/// `kiln ARGS` with its stdout and stderr on a pseudo-terminal of 100×30
/// (util-linux's `script`): whether it succeeded, and all the terminal got.
fn on_terminal(t: &TestStore, args: &[&str]) -> (bool, String) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let line: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_kiln"))
        .chain(args.iter().copied())
        .map(quote)
        .collect();
    let mut c = Command::new("script");
    for (k, v) in t.cmd().get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let out = c
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .args([
            "-qfec",
            &format!("stty cols 100 rows 30; exec {}", line.join(" ")),
            "/dev/null",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Terminal output as text: escape sequences and carriage returns gone.
fn plain_text(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => {
                if chars.next() == Some('[') {
                    for c in chars.by_ref() {
                        if c.is_ascii_alphabetic() {
                            break;
                        }
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Whether a line of the live view ends with a step's time (`1.2s`).
fn ends_with_time(line: &str) -> bool {
    let Some(n) = line.trim_end().strip_suffix('s') else {
        return false;
    };
    let n = n.rsplit(' ').next().unwrap_or("");
    n.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.len() == 1
    })
}

#[test]
fn progress_tty_is_live_on_a_terminal_and_plain_otherwise() {
    let t = TestStore::new();
    load_busybox(&t);
    let ctx = context(
        &t,
        "tty",
        &[
            (
                "Dockerfile",
                "FROM busybox\n\
                 RUN for i in 1 2 3 4 5 6 7 8; do echo tty-out-$i; done; sleep 1.5; echo tty-last\n\
                 COPY a /a\n",
            ),
            ("a", "x"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let (ok, raw) = on_terminal(&t, &["--progress", "tty", "build", "-t", "tty:1", c]);
    assert!(ok, "{raw}");
    // Redrawn in place: the cursor goes up and lines are erased.
    assert!(raw.contains("\x1b[2K"), "no line erased: {raw:?}");
    let up = raw.match_indices("\x1b[").any(|(i, _)| {
        let rest = &raw[i + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with('A')
    });
    assert!(up, "no cursor movement: {raw:?}");
    let text = plain_text(&raw);
    // While the RUN sleeps: its last six lines under it, and the frame
    // redrawn with a ticking time.
    let frames: Vec<&str> = text.split("[+] Building ").skip(1).collect();
    let tails: Vec<&&str> = frames
        .iter()
        .filter(|f| f.contains("=> => # tty-out-8"))
        .collect();
    assert!(!tails.is_empty(), "{text}");
    for f in tails {
        assert!(!f.contains("# tty-out-2 "), "more than six lines: {f}");
    }
    let times: std::collections::BTreeSet<&str> = frames
        .iter()
        .filter_map(|f| f.split_once('s').map(|(t, _)| t))
        .collect();
    assert!(times.len() >= 5, "{times:?}");
    // The final frame stays: every step with its time, no output.
    let last = &text[text.rfind("[+] Building").expect("a header")..];
    let frame: Vec<&str> = last.lines().take(4).collect();
    assert!(frame[0].ends_with("(3/3) FINISHED"), "{last}");
    for (line, step) in frame[1..].iter().zip([
        "=> [stage-0 1/3] FROM busybox",
        "=> [stage-0 2/3] RUN for i in 1 2 3 4 5 6 7 8; do echo tty-out-$i;",
        "=> [stage-0 3/3] COPY a /a",
    ]) {
        assert!(line.trim_start().starts_with(step), "{line:?}\n{last}");
        assert!(ends_with_time(line), "{line:?}\n{last}");
        assert!(line.chars().count() < 100, "{line:?}");
    }
    assert!(!last.contains("=> => #"), "{last}");
    // Then the closing table and the summary, as with plain progress.
    assert!(last.contains("writing image sha256:"), "{last}");
    assert!(last.contains("naming to docker.io/library/tty:1"), "{last}");

    // `auto` when stderr is not a terminal: BuildKit's plain lines.
    let out = t.output(&["--progress", "auto", "build", "-t", "tty:2", c]);
    assert!(out.status.success());
    let log = String::from_utf8(out.stderr).unwrap();
    assert!(
        log.lines().any(|l| l == "#1 [stage-0 1/3] FROM busybox"),
        "{log}"
    );
    assert!(log.lines().any(|l| l == "#2 CACHED"), "{log}");
    assert!(!log.contains('\x1b'), "{log}");
}

#[test]
fn progress_tty_failed_run_shows_its_whole_output_and_line() {
    let t = TestStore::new();
    load_busybox(&t);
    let ctx = context(
        &t,
        "ttyfail",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo first-out; for i in $(seq 1 10); do echo fail-out-$i; done; exit 3\n",
        )],
    );
    let (ok, raw) = on_terminal(&t, &["--progress", "tty", "build", ctx.to_str().unwrap()]);
    assert!(!ok, "{raw}");
    let text = plain_text(&raw);
    let last = &text[text.rfind("[+] Building").expect("a header")..];
    let lines: Vec<&str> = last.lines().collect();
    assert!(lines[0].ends_with("(2/2) FINISHED"), "{last}");
    assert!(
        lines[2].starts_with(" => ERROR [stage-0 2/2] RUN echo first-out;")
            && ends_with_time(lines[2]),
        "{last}"
    );
    // All of its output, not only the last lines the live view showed.
    let start = lines
        .iter()
        .position(|l| *l == "------")
        .expect("the output block");
    assert!(
        lines[start + 1].starts_with(" > [stage-0 2/2] RUN echo first-out;"),
        "{last}"
    );
    assert_eq!(lines[start + 2], "first-out", "{last}");
    for i in 1..=10 {
        assert_eq!(lines[start + 2 + i], format!("fail-out-{i}"), "{last}");
    }
    assert_eq!(lines[start + 13], "------", "{last}");
    // Then the error, with the Dockerfile's line.
    assert!(
        last.contains("error: Dockerfile:2: RUN echo first-out;"),
        "{last}"
    );
    assert!(last.contains("exit code: 3"), "{last}");
    assert!(last.contains("    2 | RUN echo first-out;"), "{last}");
}

#[test]
fn progress_tty_without_a_terminal_is_refused() {
    let t = TestStore::new();
    let ctx = context(
        &t,
        "notty",
        &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "x")],
    );
    let before = t.state();
    // As buildx: a live view asked for where there is none is an error.
    let err = t.fails(&["--progress", "tty", "build", ctx.to_str().unwrap()]);
    assert!(err.contains("--progress tty needs a terminal"), "{err}");
    assert_eq!(t.state(), before, "nothing is built");
}

/// One entry of a snapshot directory, as far as an extraction of its
/// layer decides it (a whiteout's time is when it was made, so it is left
/// out).
fn snapshot_tree(root: &Path) -> BTreeMap<String, String> {
    use sha2::Digest as _;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let mut names = vec![0u8; 4096];
            let n = rustix::fs::llistxattr(&p, &mut names).unwrap();
            let mut xattrs = Vec::new();
            for name in names[..n].split(|&b| b == 0).filter(|s| !s.is_empty()) {
                let name = std::str::from_utf8(name).unwrap();
                let mut v = vec![0u8; 4096];
                let len = rustix::fs::lgetxattr(&p, name, &mut v).unwrap();
                xattrs.push(format!("{name}={:?}", &v[..len]));
            }
            let what = if ft.is_char_device() && m.rdev() == 0 {
                "whiteout".to_string()
            } else {
                let kind = if ft.is_dir() {
                    stack.push(p.clone());
                    String::from("dir")
                } else if ft.is_symlink() {
                    format!("link {}", fs::read_link(&p).unwrap().display())
                } else if ft.is_file() {
                    format!("file {:x}", sha2::Sha256::digest(fs::read(&p).unwrap()))
                } else {
                    format!("other {:o} {}", m.mode(), m.rdev())
                };
                format!(
                    "{kind} {:o} {}:{} mtime {} {xattrs:?}",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid(),
                    m.mtime()
                )
            };
            out.insert(p.strip_prefix(root).unwrap().display().to_string(), what);
        }
    }
    out
}

#[test]
fn a_runs_upper_directory_becomes_the_snapshot_its_layer_extracts_to() {
    let t = TestStore::new();
    load_busybox(&t);
    // Made, then deleted (whiteouts), replaced (an opaque directory),
    // copied up (overlay's bookkeeping xattrs), moved, re-moded; a fifo
    // (the upper directory goes the tar way); then a step that sees it all.
    let df = r#"FROM busybox
RUN mkdir -p /d/sub /o && echo a > /d/a && echo b > /d/sub/b && echo keep > /k && ln /k /k2 && echo x > /o/x && ln -s k /s
RUN rm /d/a /etc/shadow && rm -rf /o && mkdir /o && echo y > /o/y && echo more >> /k && chmod 700 /d/sub && mv /d/sub/b /d/b2 && touch /etc/passwd && ln /d/b2 /d/b3
RUN mkfifo /p && echo fifo > /f
RUN chmod 750 / && chown 1:1 /
RUN test "$(stat -c '%a %u:%g' /)" = "755 0:0" && test ! -e /d/a && test ! -e /etc/shadow && test ! -e /o/x && test "$(cat /o/y /k /k2 /d/b3)" = "$(printf 'y\nkeep\nmore\nkeep\nb')" && test -p /p && test "$(stat -c %a /d/sub)" = 700 && echo seen-all
"#;
    let ctx = context(&t, "upper", &[("Dockerfile", df)]);
    let log = build_plain(&t, &["-t", "upper", ctx.to_str().unwrap()]);
    assert!(log.contains("seen-all"), "{log}");
    // The same image extracted from its layers in another store.
    let saved = t.dir.path().join("upper.tar");
    t.ok(&["save", "-o", saved.to_str().unwrap(), "upper"]);
    let other = TestStore::new();
    other.ok(&["load", "-i", saved.to_str().unwrap()]);
    let snapshots = |s: &TestStore| -> BTreeMap<String, BTreeMap<String, String>> {
        use std::os::unix::fs::MetadataExt;
        snapshot_dirs(s)
            .into_iter()
            .map(|(n, root)| {
                let mut tree = snapshot_tree(&root);
                let m = fs::metadata(&root).unwrap();
                let own = format!("{:o} {}:{}", m.mode() & 0o7777, m.uid(), m.gid());
                tree.insert("(root)".into(), own);
                (n, tree)
            })
            .collect()
    };
    let (built, loaded) = (snapshots(&t), snapshots(&other));
    assert_eq!(loaded.len(), 6, "{:?}", loaded.keys());
    for (chain, tree) in &loaded {
        assert_eq!(built.get(chain), Some(tree), "snapshot {chain}");
    }
    // No overlay bookkeeping left, the opaque directory marked.
    let all = format!("{built:?}");
    assert!(!all.contains("trusted.overlay.origin"), "{all}");
    assert!(!all.contains("trusted.overlay.impure"), "{all}");
    assert!(all.contains("trusted.overlay.opaque"), "{all}");
}

#[test]
fn pull_and_push_refuse_progress_tty_without_a_terminal() {
    let t = TestStore::new();
    load_busybox(&t);
    let before = t.state();
    // Refused before any registry is asked (none listens on port 1).
    for args in [
        &["--progress", "tty", "pull", "127.0.0.1:1/x"][..],
        &["--progress", "tty", "push", "busybox", "127.0.0.1:1/x"][..],
    ] {
        let err = t.fails(args);
        assert!(
            err.contains("--progress tty needs a terminal"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("connect"), "{args:?}: {err}");
    }
    assert_eq!(t.state(), before, "nothing is pulled or pushed");
}

/// The snapshot directories (`snapshots/CHAIN/fs`) of `t`, by chain id.
fn snapshot_dirs(t: &TestStore) -> BTreeMap<String, PathBuf> {
    fs::read_dir(t.root().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .map(|n| {
            let fs_dir = t.root().join("snapshots").join(&n).join("fs");
            (n, fs_dir)
        })
        .collect()
}

/// The snapshot directories of `t` whose tree has `path`, by chain id.
fn snapshots_with(t: &TestStore, path: &str) -> BTreeMap<String, PathBuf> {
    snapshot_dirs(t)
        .into_iter()
        .filter(|(_, d)| d.join(path).exists())
        .collect()
}

#[test]
fn a_changed_copy_links_the_files_that_did_not_change() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let t = TestStore::new();
    let mut files: Vec<(String, String)> = (0..6)
        .map(|i| (format!("files/f{i}"), format!("content {i}\n").repeat(200)))
        .collect();
    files.push((
        "Dockerfile".into(),
        "FROM scratch\nCOPY files/ /app/files/\n".into(),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let ctx = context(&t, "lineage", &refs);
    let c = ctx.to_str().unwrap();
    build(&t, &["-t", "x", c]);
    let first = snapshots_with(&t, "app/files/f0");
    assert_eq!(first.len(), 1, "{first:?}");
    let (old_chain, old) = first.into_iter().next().unwrap();
    let ino = |root: &Path, f: &str| fs::metadata(root.join("app/files").join(f)).unwrap().ino();
    // f2's content, f3's mode and f4's mtime change; f0, f1 and f5 do not.
    fs::write(ctx.join("files/f2"), "changed\n").unwrap();
    fs::set_permissions(ctx.join("files/f3"), fs::Permissions::from_mode(0o600)).unwrap();
    let f = fs::File::options()
        .write(true)
        .open(ctx.join("files/f4"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    drop(f);
    let log = build_plain(&t, &["-t", "x", c]);
    assert_eq!(cached_steps(&log), 0, "{log}");
    let now = snapshots_with(&t, "app/files/f0");
    let (new_chain, new) = now
        .into_iter()
        .find(|(k, _)| *k != old_chain)
        .expect("a second snapshot");
    for f in ["f0", "f1", "f5"] {
        assert_eq!(ino(&old, f), ino(&new, f), "{f} is linked");
    }
    for f in ["f2", "f3", "f4"] {
        assert_ne!(ino(&old, f), ino(&new, f), "{f} is copied");
    }
    // The old snapshot is as it was, the new one is what its layer
    // extracts to (as `kiln load` makes it in another store).
    assert_eq!(
        fs::read_to_string(old.join("app/files/f2")).unwrap(),
        "content 2\n".repeat(200)
    );
    let saved = t.dir.path().join("lineage.tar");
    t.ok(&["save", "-o", saved.to_str().unwrap(), "x"]);
    let other = TestStore::new();
    other.ok(&["load", "-i", saved.to_str().unwrap()]);
    let loaded = other.root().join("snapshots").join(&new_chain).join("fs");
    assert_eq!(snapshot_tree(&new), snapshot_tree(&loaded));
    let (files, layers) = saved_files(&t, "x");
    assert_eq!(layers.len(), 1);
    assert_eq!(files["app/files/f2"].data, b"changed\n");
    assert_eq!(
        files["app/files/f1"].data,
        "content 1\n".repeat(200).as_bytes()
    );
    // A file of the layer is one tar entry, not a hard link to itself.
    let out = t.dir.path().join("x.tar");
    let mut a = tar::Archive::new(fs::File::open(&out).unwrap());
    let mut links = 0;
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        if p.ends_with(".tar") || p.starts_with("blobs/") {
            let mut data = Vec::new();
            let mut e = e;
            e.read_to_end(&mut data).unwrap();
            if let Ok(mut inner) = tar::Archive::new(&data[..]).entries() {
                links += inner
                    .by_ref()
                    .filter_map(|x| x.ok())
                    .filter(|x| x.header().entry_type() == tar::EntryType::Link)
                    .count();
            }
        }
    }
    assert_eq!(links, 0);
    // Without the old snapshot (collected), the next change copies.
    t.ok(&["rmi", "x"]);
    t.ok(&["builder", "prune", "-f"]);
    t.ok(&["system", "prune", "-f"]);
    assert!(!old.exists() && !new.exists());
    fs::write(ctx.join("files/f0"), "changed too\n").unwrap();
    build(&t, &["-t", "x", c]);
    let (files, _) = saved_files(&t, "x");
    assert_eq!(files["app/files/f0"].data, b"changed too\n");
    assert_eq!(
        files["app/files/f5"].data,
        "content 5\n".repeat(200).as_bytes()
    );
    t.ok(&["system", "check"]);
}

#[test]
fn a_plain_runs_upper_directory_is_renamed_into_its_snapshot() {
    use std::os::unix::fs::MetadataExt;
    let t = TestStore::new();
    load_busybox(&t);
    // The file's inode as the step sees it (overlay shows an upper file's
    // own inode number) is the snapshot's: the upper directory was renamed,
    // not extracted again from the layer's tar.
    let df = "FROM busybox\nRUN echo made > /made && echo \"inode=$(stat -c %i /made)\"\n";
    let ctx = context(&t, "renamed", &[("Dockerfile", df)]);
    let log = build_plain(&t, &["-t", "renamed", ctx.to_str().unwrap()]);
    let inode: u64 = log
        .lines()
        .find_map(|l| l.split_once(' ')?.1.strip_prefix("inode=")?.parse().ok())
        .unwrap_or_else(|| panic!("no inode in {log}"));
    let snaps = snapshots_with(&t, "made");
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let (_, root) = snaps.into_iter().next().unwrap();
    assert_eq!(fs::metadata(root.join("made")).unwrap().ino(), inode);
    // And nothing of overlay's is left on it.
    let mut names = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(&root, &mut names).unwrap();
    assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&names[..n]));
}
