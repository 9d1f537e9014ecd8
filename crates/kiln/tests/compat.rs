#![allow(clippy::unwrap_used, clippy::print_stderr)]
//! The differential suite: each Dockerfile of the tables below is built by
//! `kiln build` and by `docker build` (Debian's docker.io, dockerd 20.10
//! and its built-in BuildKit, started by `scripts/fixtures/dockerd.sh`,
//! with the same busybox image loaded into both), both images are saved as
//! docker-archives, and their configs (the fields of `CONFIG_FIELDS`),
//! layers (path, type, mode, owner, size, link target, content hash) and
//! history are compared. A test runs its whole table and then fails with
//! every case that differs and how. The differences kiln keeps on purpose
//! are in `docs/compat.md`, each with its reason, and are the only ones
//! `differences` lets through.
//!
//! The fixture dockerd has no bridge, so Docker builds run with
//! `--network none`; no Dockerfile here needs the network.

mod common;

use std::collections::{BTreeMap, BTreeSet};
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

/// The fixture cache (busybox archives, and those `docker save` wrote),
/// made once per test process: any test may be the first to need them.
fn fixtures() -> &'static PathBuf {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| PathBuf::from(sh("docker-save.sh", &[]).trim()))
}

/// Config and per-layer listings (path → type, mode, owner, size, link,
/// content hash; no mtimes) of a docker-archive written by `docker save`
/// or `kiln save`.
type Listing = Vec<BTreeMap<String, String>>;

fn archive_listing(path: &Path) -> (serde_json::Value, Listing) {
    let mut blobs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut a = tar::Archive::new(fs::File::open(path).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let p = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        blobs.insert(p, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&blobs["manifest.json"]).unwrap();
    let config = serde_json::from_slice(&blobs[manifest[0]["Config"].as_str().unwrap()]).unwrap();
    let mut layers = Vec::new();
    for l in manifest[0]["Layers"].as_array().unwrap() {
        let mut listing = BTreeMap::new();
        let mut a = tar::Archive::new(&blobs[l.as_str().unwrap()][..]);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let p = e.path().unwrap().display().to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            listing.insert(
                p.trim_start_matches("./").trim_end_matches('/').to_string(),
                format!(
                    "{:?} {:o} {}:{} {} {} {}",
                    h.entry_type(),
                    h.mode().unwrap() & 0o7777,
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    h.size().unwrap(),
                    h.link_name()
                        .unwrap()
                        .map(|l| l.display().to_string())
                        .unwrap_or_default(),
                    sha256_hex(&data)
                ),
            );
        }
        layers.push(listing);
    }
    (config, layers)
}

/// Docker (dockerd 20.10 from the fixture, its BuildKit) with busybox
/// loaded.
struct Docker {
    bin: &'static str,
    host: String,
}

impl Docker {
    fn get() -> &'static Docker {
        static D: OnceLock<Docker> = OnceLock::new();
        D.get_or_init(|| {
            let cache = fixtures();
            sh("dockerd.sh", &["start"]);
            let host = sh("dockerd.sh", &["env"])
                .trim()
                .trim_start_matches("export DOCKER_HOST=")
                .to_string();
            // docker.io's own CLI: it has BuildKit built in (a newer CLI on
            // PATH wants the buildx plugin).
            let bin = if Path::new("/usr/bin/docker").exists() {
                "/usr/bin/docker"
            } else {
                "docker"
            };
            let d = Docker { bin, host };
            let busybox = cache.join("docker-save.busybox.tar");
            d.run(&["load", "-i", busybox.to_str().unwrap()]);
            d
        })
    }

    fn try_run(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(self.bin)
            .env("DOCKER_HOST", &self.host)
            .env("DOCKER_BUILDKIT", "1")
            .args(args)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8(out.stdout).unwrap())
        } else {
            Err(format!(
                "docker {args:?} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn run(&self, args: &[&str]) -> String {
        self.try_run(args).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A store with the same busybox Docker has.
fn store_with_docker_busybox() -> TestStore {
    let t = TestStore::new();
    let busybox = fixtures().join("docker-save.busybox.tar");
    t.ok(&["load", "-i", busybox.to_str().unwrap()]);
    t
}

type Image = (serde_json::Value, Listing);

/// Build `ctx` with kiln (in `t`) and with Docker, both tagged `tag`, with
/// the same extra `args`; save both and return kiln's and Docker's config
/// and per-layer listings, or why a build failed. The saved archives are
/// left in the store's directory (`kiln-<tag>.tar`, `docker-<tag>.tar`).
fn build_both(t: &TestStore, ctx: &Path, tag: &str, args: &[String]) -> Result<[Image; 2], String> {
    let d = Docker::get();
    let file = tag.replace([':', '/'], "_");
    let docker_tar = t.dir.path().join(format!("docker-{file}.tar"));
    let kiln_tar = t.dir.path().join(format!("kiln-{file}.tar"));
    // --no-cache: Docker's cache outlives the test (and a secret's value
    // is not in its cache keys).
    let mut dargs = vec!["build", "--no-cache", "--network", "none", "-q", "-t", tag];
    dargs.extend(args.iter().map(String::as_str));
    dargs.push(ctx.to_str().unwrap());
    d.try_run(&dargs)?;
    d.run(&["save", "-o", docker_tar.to_str().unwrap(), tag]);
    let mut kargs = vec!["--progress", "plain", "build", "-q", "-t", tag];
    kargs.extend(args.iter().map(String::as_str));
    kargs.push(ctx.to_str().unwrap());
    let out = t.output(&kargs);
    if !out.status.success() {
        return Err(format!(
            "kiln {kargs:?} failed (docker built it):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    t.ok(&["save", "-o", kiln_tar.to_str().unwrap(), tag]);
    Ok([archive_listing(&kiln_tar), archive_listing(&docker_tar)])
}

/// Config fields compared with Docker's.
const CONFIG_FIELDS: [&str; 13] = [
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "Labels",
    "ExposedPorts",
    "User",
    "Volumes",
    "StopSignal",
    "Healthcheck",
    "Shell",
    "OnBuild",
    "ArgsEscaped",
];

/// One line per entry that differs between two listings of a layer.
fn listing_diff(k: &BTreeMap<String, String>, d: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, kv) in k {
        match d.get(p) {
            None => out.push(format!("only kiln:   /{p}  {kv}")),
            Some(dv) if dv != kv => out.push(format!(
                "differs:     /{p}\n      kiln   {kv}\n      docker {dv}"
            )),
            Some(_) => {}
        }
    }
    for (p, dv) in d {
        if !k.contains_key(p) {
            out.push(format!("only docker: /{p}  {dv}"));
        }
    }
    out
}

/// Whether a history `created_by` of kiln's stands for Docker 20.10's.
/// Docker 20.10's BuildKit writes COPY without its --chown/--chmod flags,
/// EXPOSE as a Go map, HEALTHCHECK as `&{…}` and a bare ARG without the
/// global value it takes; kiln writes what current BuildKit writes
/// (`docs/compat.md`), so those texts are not compared as they are.
fn same_created_by(kb: &str, db: &str) -> bool {
    if kb == db {
        return true;
    }
    if db.starts_with("EXPOSE") && kb.starts_with("EXPOSE")
        || db.starts_with("HEALTHCHECK") && kb.starts_with("HEALTHCHECK")
    {
        return true;
    }
    if kb.starts_with("COPY --") || kb.starts_with("ADD --") {
        // Only the flags differ: the words after them are the same.
        let rest = |s: &str| -> Vec<String> {
            s.split(' ')
                .skip(1)
                .filter(|w| !w.starts_with("--"))
                .map(str::to_string)
                .collect()
        };
        return rest(kb) == rest(db);
    }
    // ARG: current BuildKit writes the value the step takes (a global
    // one for a bare `ARG NAME`, a --build-arg's), Docker 20.10's wrote
    // the Dockerfile's text. The names must be the same.
    if db.starts_with("ARG ") && kb.starts_with("ARG ") {
        let names = |s: &str| -> Vec<String> {
            s.split(' ')
                .map(|w| w.split('=').next().unwrap_or(w).to_string())
                .collect()
        };
        return names(kb) == names(db);
    }
    false
}

/// Directories Docker 20.10's BuildKit (v0.8) leaves in a RUN step's
/// layer and current BuildKit, hence kiln, does not (`docs/compat.md`):
/// the mount points it makes for `--mount` targets that are not in the
/// image (with their parents, whose metadata it changes), and `/etc`, the
/// parent of the `/etc/hosts` and `/etc/resolv.conf` it makes to mount
/// over when the image has none.
fn run_stub_dirs(dockerfile: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::from(["etc".to_string()]);
    let mut add = |target: &str| {
        let mut p = target.trim_matches('/').to_string();
        while !p.is_empty() {
            out.insert(p.clone());
            p.truncate(p.rfind('/').unwrap_or(0));
        }
    };
    for word in dockerfile.split_whitespace() {
        let Some(mount) = word.strip_prefix("--mount=") else {
            continue;
        };
        let opts: Vec<(&str, &str)> = mount
            .split(',')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        match opts
            .iter()
            .find(|(k, _)| ["target", "dst", "destination"].contains(k))
        {
            Some((_, t)) => add(t),
            // A secret without a target is at /run/secrets/<id>.
            None if opts.contains(&("type", "secret")) => add("/run/secrets"),
            None => {}
        }
    }
    out
}

/// Every difference between kiln's image and Docker's, as readable lines
/// (none when they are the same). Directories of `stubs` that only
/// Docker's layer of a RUN step has are not differences (see
/// `run_stub_dirs`), nor the modes and links of whiteouts: a whiteout is
/// its name. Docker 20.10 writes an overlayfs whiteout with the device's
/// mode and, as overlayfs shares one inode between whiteouts, as a hard
/// link to the first; current BuildKit (containerd's differ) writes mode 0,
/// kiln 0644.
fn differences(kiln: &Image, docker: &Image, stubs: &BTreeSet<String>) -> Vec<String> {
    let ((kc, kl), (dc, dl)) = (kiln, docker);
    // Docker's layers, each with the history entry that made it.
    let layer_steps: Vec<&str> = dc["history"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["empty_layer"] != true)
        .map(|h| h["created_by"].as_str().unwrap_or_default())
        .collect();
    let mut out = Vec::new();
    for field in CONFIG_FIELDS {
        let (k, d) = (&kc["config"][field], &dc["config"][field]);
        if k != d {
            out.push(format!("config {field}: kiln {k}, docker {d}"));
        }
    }
    if kl.len() != dl.len() {
        out.push(format!(
            "layer count: kiln {}, docker {}",
            kl.len(),
            dl.len()
        ));
    }
    for (i, (k, d)) in kl.iter().zip(dl).enumerate() {
        let whiteouts = |l: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            l.iter()
                .map(|(p, v)| {
                    let name = p.rsplit('/').next().unwrap_or(p);
                    let v = if name.starts_with(".wh.") {
                        "whiteout".to_string()
                    } else {
                        v.clone()
                    };
                    (p.clone(), v)
                })
                .collect()
        };
        let (k, mut d) = (&whiteouts(k), whiteouts(d));
        if layer_steps.get(i).is_some_and(|s| s.starts_with("RUN ")) {
            d.retain(|p, v| {
                k.contains_key(p) || !(v.starts_with("Directory ") && stubs.contains(p))
            });
        }
        for line in listing_diff(k, &d) {
            out.push(format!("layer {i}: {line}"));
        }
    }
    let empty = Vec::new();
    let dh = dc["history"].as_array().unwrap_or(&empty);
    let kh = kc["history"].as_array().unwrap_or(&empty);
    if kh.len() != dh.len() {
        out.push(format!(
            "history length: kiln {}, docker {}",
            kh.len(),
            dh.len()
        ));
    }
    for (i, (k, d)) in kh.iter().zip(dh).enumerate() {
        let (kb, db) = (
            k["created_by"].as_str().unwrap_or_default(),
            d["created_by"].as_str().unwrap_or_default(),
        );
        if k["empty_layer"] != d["empty_layer"]
            || k["comment"] != d["comment"]
            || !same_created_by(kb, db)
        {
            out.push(format!("history {i}:\n      kiln   {k}\n      docker {d}"));
        }
    }
    out
}

/// One Dockerfile of the suite: its name, text, extra `build` arguments
/// (`{secret}` stands for the path of a secret file outside the context)
/// and files added to the common context.
struct Case {
    name: &'static str,
    dockerfile: &'static str,
    args: &'static [&'static str],
    files: &'static [(&'static str, &'static str)],
    /// The differences kiln keeps on purpose (`docs/compat.md`): the
    /// start of each line `differences` writes for them. Each must show.
    known: &'static [&'static str],
}

const fn case(name: &'static str, dockerfile: &'static str) -> Case {
    Case {
        name,
        dockerfile,
        args: &[],
        files: &[],
        known: &[],
    }
}

/// The value of the `tok` secret: it must be in no image.
const SECRET: &str = "s3cr3t-compat-value";

/// The context every case gets: files and directories with their own modes,
/// a symlink, a hard link, archives of `dir` (owner 7:8) in each
/// compression, a tar with a hard link, a symlink and a 0700 directory
/// (owner 3:4), and a gzip that is not a tar.
fn common_context(t: &TestStore, c: &Case) -> PathBuf {
    let dir = t.dir.path().join(c.name);
    let mut files = vec![
        ("Dockerfile", c.dockerfile),
        ("a.txt", "a\n"),
        ("b.txt", "b\n"),
        ("dir/f", "f\n"),
        ("dir/sub/g", "g\n"),
        ("files/x", "x\n"),
        ("files/sub/y", "y\n"),
        ("files/notes.md", "notes\n"),
    ];
    files.extend_from_slice(c.files);
    for (p, content) in files {
        let p = dir.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.join("dir/sub"), fs::Permissions::from_mode(0o750)).unwrap();
    fs::set_permissions(dir.join("files/x"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
    fs::hard_link(dir.join("files/x"), dir.join("files/x-hardlink")).unwrap();
    let tar = |flag: &str, file: &str| {
        let st = Command::new("tar")
            .args(["--numeric-owner", "--owner=7", "--group=8", flag, "-C"])
            .arg(&dir)
            .arg("-cf")
            .arg(dir.join(file))
            .arg("dir")
            .status()
            .unwrap();
        assert!(st.success());
    };
    tar("-z", "pkg.tar.gz");
    tar("-j", "pkg.tar.bz2");
    tar("-J", "pkg.tar.xz");
    tar("--no-auto-compress", "pkg.tar");
    let st = Command::new("sh")
        .arg("-c")
        .arg(
            "gzip -n -c a.txt > plain.gz && mkdir -p ltar/d && echo h > ltar/d/h \
             && ln ltar/d/h ltar/d/h2 && ln -s h ltar/d/s && chmod 700 ltar/d \
             && tar --numeric-owner --owner=3 --group=4 -cf links.tar -C ltar d && rm -r ltar",
        )
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    dir
}

/// Build every case with both, in one store; fail at the end naming each
/// case that differs, with its differences.
fn compare_all(cases: &[Case]) {
    let t = store_with_docker_busybox();
    let secret = t.dir.path().join("secret.txt");
    fs::write(&secret, SECRET).unwrap();
    let pid = std::process::id();
    let mut failed = Vec::new();
    for c in cases {
        let ctx = common_context(&t, c);
        let tag = format!("kiln-compat-{}:{pid}", c.name);
        let args: Vec<String> = c
            .args
            .iter()
            .map(|a| a.replace("{secret}", secret.to_str().unwrap()))
            .collect();
        let mut diffs = match build_both(&t, &ctx, &tag, &args) {
            Ok([k, d]) => {
                let mut diffs = differences(&k, &d, &run_stub_dirs(c.dockerfile));
                if c.args.iter().any(|a| a.contains("{secret}")) {
                    for who in ["kiln", "docker"] {
                        let file = tag.replace([':', '/'], "_");
                        let saved =
                            fs::read(t.dir.path().join(format!("{who}-{file}.tar"))).unwrap();
                        if saved.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()) {
                            diffs.push(format!("the secret is in {who}'s image"));
                        }
                    }
                }
                diffs
            }
            Err(e) => vec![e],
        };
        for known in c.known {
            if !diffs.iter().any(|d| d.starts_with(known)) {
                diffs.push(format!(
                    "a known difference is gone (update the case and docs/compat.md): {known}"
                ));
            }
        }
        diffs.retain(|d| !c.known.iter().any(|k| d.starts_with(k)));
        let _ = Docker::get().try_run(&["rmi", &tag]);
        eprintln!(
            "compat {}: {}",
            c.name,
            if diffs.is_empty() { "same" } else { "DIFFERS" }
        );
        if !diffs.is_empty() {
            failed.push(format!("{}:\n    {}", c.name, diffs.join("\n    ")));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} Dockerfiles differ between kiln build and docker build:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
}

/// COPY and ADD: sources, destinations, owners, modes, archives, stages.
#[test]
fn copy_and_add_like_docker() {
    compare_all(&[
        Case {
            known: &[],
            name: "copy-many",
            dockerfile: r#"FROM scratch AS assets
COPY --chown=5:6 a.txt /out/a
COPY files/sub /out/sub

FROM busybox
LABEL org.example.team="web" version=1
ENV APP=/app PORT=8080
COPY a.txt /app/
COPY files/ /app/files/
WORKDIR $APP
COPY --chown=nobody:nobody a.txt b.txt
COPY --chmod=0640 a.txt c.txt
COPY files /app/other/
COPY *.txt link /app/glob/
WORKDIR /srv/www
ADD pkg.tar.gz /opt/
COPY --from=assets /out/ /assets/
EXPOSE $PORT 53/udp
USER 1000:1000
WORKDIR /home/user/work
COPY --chown=1000 a.txt ./
VOLUME /data
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s CMD ["true"]
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/app/run"]
CMD echo serve
"#,
            args: &[],
            files: &[(".dockerignore", "**/*.md\n")],
        },
        case(
            "dest-rules",
            r#"FROM busybox
WORKDIR /w
COPY a.txt rel
COPY a.txt reldir/
COPY a.txt b.txt /multi/
COPY *.txt /glob/
COPY dir /contents
COPY dir/ /contents2/
COPY dir /bin/
COPY a.txt /etc/
COPY link /followed
COPY dir /existing-dir-contents/
"#,
        ),
        case(
            "archives",
            r#"FROM busybox
ADD pkg.tar.gz /gz/
ADD pkg.tar.bz2 /bz2/
ADD pkg.tar.xz /xz/
ADD pkg.tar /plain/
ADD a.txt /not-an-archive/
ADD plain.gz /gzip-not-tar/
"#,
        ),
        case(
            "add-archive-into-existing",
            r#"FROM busybox
RUN mkdir -p /opt/dir && echo old > /opt/dir/f && echo keep > /opt/dir/keep
ADD pkg.tar.gz /opt/
ADD --chown=11:12 pkg.tar.xz /chowned/
ADD pkg.tar /opt/new/deeper/
ADD a.txt b.txt /two/
"#,
        ),
        case(
            "owners",
            r#"FROM busybox
COPY --chown=nobody a.txt /o/user-only
COPY --chown=nobody:root a.txt /o/user-group
COPY --chown=123:456 dir /o/numeric/
USER nobody
WORKDIR /home/nobody/work
"#,
        ),
        Case {
            name: "chown-chmod-dirs",
            dockerfile: r#"FROM busybox
COPY --chmod=755 dir /d755
COPY --chown=1:2 --chmod=600 dir /e600/
COPY --chmod=4755 a.txt /suid
COPY --chown=5:5 dir /etc/
COPY --chown=65534 files /var/spool/
"#,
            args: &[],
            files: &[],
            // Current BuildKit makes the destination directory with the
            // --chmod mode and keeps set-id and sticky bits; 20.10's made
            // it 0755 and dropped them.
            known: &["layer 2: differs:     /e600", "layer 3: differs:     /suid"],
        },
        case(
            "chown-names-from-run",
            r#"FROM busybox
RUN echo 'grp:x:2000:' >> /etc/group && echo 'usr:x:2001:2000::/home/usr:/bin/sh' >> /etc/passwd
COPY --chown=usr:grp a.txt /home/usr/
COPY --chown=usr dir /home/usr/dir
COPY --chown=:grp b.txt /group-only
COPY --chown=usr: b.txt /user-colon
USER usr:grp
WORKDIR /home/usr/work
"#,
        ),
        case(
            "copy-from-forms",
            r#"FROM busybox AS first
RUN mkdir -p /out/deep && echo one > /out/deep/one && chmod 600 /out/deep/one && chown 3:4 /out/deep/one
FROM scratch AS second
COPY --from=0 /out /o0
COPY --from=first /out/deep/one /one
COPY --from=busybox /bin/busybox /bb
COPY --from=first --chown=9:9 /out/ /chowned/
"#,
        ),
        case(
            "copy-onto-symlinks",
            r#"FROM busybox
RUN mkdir /real && ln -s /real /lnkdir && ln -s /real/file /lnkfile && ln -s real /rel
COPY a.txt /lnkdir/
COPY b.txt /lnkfile
COPY dir /rel/sub/
"#,
        ),
        Case {
            known: &[],
            name: "wildcards-and-ignore",
            dockerfile: r#"FROM scratch
COPY di* /w/
COPY [ab].txt /x/
COPY dir/*/g /y/
COPY ["a.txt", "/with space/"]
COPY files/ /files/
"#,
            args: &[],
            files: &[
                (".dockerignore", "*.md\n**/*.md\ndir/f\n!dir/keep.md\n"),
                ("dir/x.md", "ignored\n"),
                ("dir/keep.md", "kept\n"),
            ],
        },
        case(
            "copy-symlinks-from-stage",
            r#"FROM busybox AS s
RUN mkdir -p /o/d && echo t > /o/d/t && ln -s d/t /o/rel && ln -s /o/d /o/abs && ln -s missing /o/dangling
FROM scratch
COPY --from=s /o/ /o/
COPY --from=s /o/rel /followed-rel
COPY --from=s /o/abs /abs-dir/
"#,
        ),
        case(
            "add-tar-with-links",
            r#"FROM busybox
ADD links.tar /l/
ADD links.tar /etc/
"#,
        ),
        Case {
            name: "copy-dot-ignoring-dockerfile",
            dockerfile: r#"FROM busybox
COPY . /all/
WORKDIR /w
COPY . .
"#,
            args: &[],
            files: &[(
                ".dockerignore",
                "Dockerfile\n.dockerignore\n*.tar*\nplain.gz\nfiles/**/x*\n",
            )],
            known: &[],
        },
        case(
            "copy-to-root",
            r#"FROM busybox
COPY dir /
COPY a.txt /
COPY files/sub /etc
"#,
        ),
        case(
            "copy-from-run-stage",
            r#"FROM busybox AS build
RUN mkdir -p /out/bin && printf '#!/bin/sh\necho tool\n' > /out/bin/tool && chmod 755 /out/bin/tool && chown -R 1:1 /out
FROM scratch
COPY --from=build /out/ /
COPY --from=build --chown=2:2 /out/bin /bin2
"#,
        ),
    ]);
}

/// RUN: shell and exec forms, files with owners and modes, deletions,
/// what a step sees (env, args, shell, working directory, user, volumes).
#[test]
fn run_steps_like_docker() {
    compare_all(&[
        case(
            "run-shell-form",
            r#"FROM busybox
RUN echo hi > /hi && mkdir -p /a/b/c && echo x > /a/b/c/f
RUN echo "multi" \
    "line" > /ml
RUN set -e; for i in 1 2 3; do echo $i >> /loop; done
"#,
        ),
        case(
            "run-exec-form",
            r#"FROM busybox
RUN ["/bin/sh", "-c", "echo exec > /exec.txt"]
RUN ["touch", "/touched"]
RUN ["mkdir", "-p", "/e/f"]
"#,
        ),
        case(
            "run-owners-modes",
            r#"FROM busybox
RUN mkdir /d && chmod 1777 /d && echo x > /d/f && chown 123:456 /d/f && chmod 4750 /d/f \
 && ln -s /d/f /d/link && ln /d/f /d/hard && mkfifo /d/fifo \
 && (umask 077 && echo y > /d/private && mkdir /d/pdir) && ln /bin/busybox /bb-hard
"#,
        ),
        case(
            "run-deletes",
            r#"FROM busybox
RUN rm /etc/shadow && rm -r /var/spool && rm -rf /home && mkdir /home && echo n > /home/new
RUN rm /bin/ls
RUN echo changed >> /etc/passwd && chmod 700 /var/www && chown 1:1 /tmp
"#,
        ),
        case(
            "run-env",
            r#"FROM busybox
ENV A=1 B="two words"
ARG C=3
RUN env | sort > /env.txt && echo "$A|$B|$C" > /vals
"#,
        ),
        Case {
            known: &[],
            name: "run-args",
            dockerfile: r#"ARG GLOBAL=g
FROM busybox
ARG V=1
ARG EMPTY
ARG GLOBAL
ARG UNSEEN=u
RUN echo "[$V][$EMPTY][$GLOBAL][$UNSEEN]" > /args
ARG LATE=late
RUN echo "$LATE" > /late
"#,
            args: &["--build-arg", "V=2", "--build-arg", "LATE=cli"],
            files: &[],
        },
        case(
            "run-global-arg-unseen",
            r#"ARG G=1
FROM busybox
RUN echo "[$G]" > /g
"#,
        ),
        case(
            "run-shell-instruction",
            r#"FROM busybox
SHELL ["/bin/ash", "-e", "-c"]
RUN echo "$0" > /zero
SHELL ["/bin/sh", "-c"]
RUN echo second > /second
CMD echo shell-form cmd
ENTRYPOINT echo ep
"#,
        ),
        case(
            "run-workdir",
            r#"FROM busybox
WORKDIR /w/x
RUN pwd > p && touch here
WORKDIR rel
RUN touch there && pwd > /pwd2
"#,
        ),
        case(
            "run-volume",
            r#"FROM busybox
RUN mkdir /data && echo before > /data/before
VOLUME /data
RUN echo after > /data/after && mkdir /data/sub
VOLUME ["/v2", "/v3"]
RUN mkdir -p /v2 && touch /v2/x
"#,
        ),
        case(
            "run-users",
            r#"FROM busybox
RUN mkdir /shared && chmod 777 /shared && echo 'extra:x:3000:nobody' >> /etc/group
USER 1000:1000
RUN id > /shared/id1 && touch /shared/f1
USER nobody
RUN id > /shared/id2 && touch /shared/f2 && echo $HOME > /shared/home2
USER nobody:root
RUN id > /shared/id3 && touch /shared/f3
USER 65534:0
RUN id > /shared/id4 && touch /shared/f4
"#,
        ),
        case(
            "run-passwd-user",
            r#"FROM busybox
RUN echo 'app:x:1234:1234::/home/app:/bin/sh' >> /etc/passwd && mkdir -p /home/app && chown 1234:1234 /home/app
USER app
WORKDIR /home/app/w
RUN touch f && echo "$HOME $(id -un) $(id -G)" > info
"#,
        ),
        case(
            "run-path",
            r#"FROM busybox
ENV PATH=/custom:$PATH
RUN mkdir /custom && printf '#!/bin/sh\necho custom > /custom.out\n' > /custom/tool && chmod 755 /custom/tool
RUN tool && echo "$PATH" > /path
"#,
        ),
        case(
            "run-root-dir-mode",
            r#"FROM busybox
RUN chmod 700 /root/.. && chown 0:1 / && touch /f
"#,
        ),
        case(
            "run-arg-env-precedence",
            r#"FROM busybox
ARG X=arg
ENV X=env
ARG Y=arg-y
RUN echo "$X $Y" > /xy
ENV Y=env-y
RUN echo "$X $Y" > /xy2
"#,
        ),
        case(
            "run-setgid-dir",
            r#"FROM busybox
RUN mkdir /sg && chown 0:100 /sg && chmod 2775 /sg && touch /sg/f && mkdir /sg/d
USER 1000:1000
RUN touch /tmp/u && mkdir /tmp/ud
"#,
        ),
        case(
            "run-type-changes",
            r#"FROM busybox
RUN rm -r /var/www && ln -s /tmp /var/www
RUN rm /etc/nsswitch.conf && mkdir /etc/nsswitch.conf && rmdir /var/spool/mail && echo m > /var/spool/mail
RUN rm /var/www && mkdir /var/www && echo back > /var/www/index.html
"#,
        ),
        case(
            "workdir-forms",
            r#"FROM busybox
ENV BASE=/srv
WORKDIR $BASE/app
WORKDIR rel/../sub
WORKDIR /existing-not
USER 4000:4000
WORKDIR owned
WORKDIR /tmp
"#,
        ),
    ]);
}

/// RUN --mount: cache, secret, bind (context, stage, image), tmpfs.
#[test]
fn run_mounts_like_docker() {
    compare_all(&[
        case(
            "mount-cache",
            r#"FROM busybox
RUN --mount=type=cache,target=/var/cache/app,id=kiln-compat-cache,uid=1000,gid=1000,mode=0750 stat -c '%u:%g %a' /var/cache/app > /cachestat && touch /var/cache/app/x
RUN --mount=type=cache,target=/root/.cache,sharing=locked ls -a /root/.cache > /dev/null && echo ok > /done
"#,
        ),
        Case {
            known: &[],
            name: "mount-secret",
            dockerfile: r#"FROM busybox
RUN --mount=type=secret,id=tok wc -c < /run/secrets/tok > /len && stat -c '%a %u' /run/secrets/tok > /stat
RUN --mount=type=secret,id=tok,target=/etc/app/token,mode=0440,uid=5,gid=6 stat -c '%a %u:%g' /etc/app/token > /stat2
RUN --mount=type=secret,id=missing test ! -e /run/secrets/missing && echo absent > /optional
"#,
            args: &["--secret", "id=tok,src={secret}"],
            files: &[],
        },
        case(
            "mount-bind",
            r#"FROM busybox AS data
RUN mkdir /data && echo from-stage > /data/file && chmod 640 /data/file
FROM busybox
RUN --mount=type=bind,from=data,source=/data,target=/mnt/data cp -p /mnt/data/file /copied
RUN --mount=type=bind,source=dir,target=/src cp -r /src /fromctx
RUN --mount=type=bind,from=data,source=/data,target=/mnt/rw,rw echo x > /mnt/rw/new && ls /mnt/rw > /listing
RUN --mount=from=busybox,target=/bb cp /bb/etc/group /group-copy
"#,
        ),
        case(
            "mount-tmpfs",
            r#"FROM busybox
RUN --mount=type=tmpfs,target=/tmp/t echo x > /tmp/t/x && touch /after
RUN --mount=type=tmpfs,target=/scratch grep -c scratch /proc/mounts > /n
"#,
        ),
        case(
            "mount-bind-context-root",
            r#"FROM busybox
RUN --mount=type=bind,target=/ctx ls -lnR /ctx | grep -v '^total' | awk '{print $1, $3, $4, $5, $NF}' > /ls
"#,
        ),
        case(
            "mount-cache-shared",
            r#"FROM busybox
RUN --mount=type=cache,target=/c,id=kiln-compat-shared echo one > /c/f
RUN --mount=type=cache,target=/elsewhere,id=kiln-compat-shared cp /elsewhere/f /from-cache
RUN --mount=type=cache,target=/c2 test ! -e /c2/f && touch /separate
"#,
        ),
    ]);
}

/// Config-only instructions and stages: ARG/ENV scoping, CMD/ENTRYPOINT
/// forms, EXPOSE, HEALTHCHECK, STOPSIGNAL, USER, LABEL, --target.
#[test]
fn config_instructions_like_docker() {
    compare_all(&[
        case(
            "scoping",
            r#"ARG BASE=scratch
ARG GLOBAL=g1
FROM $BASE
ARG GLOBAL
ARG LOCAL=l1
ENV FROM_ARG=$LOCAL-$GLOBAL PATH=/opt/bin:$PATH
ENV LOCAL=shadowed
LABEL combined="$FROM_ARG $LOCAL"
SHELL ["/bin/ash", "-c"]
ENTRYPOINT exec /app "$@"
CMD ["--flag"]
COPY a.txt /$LOCAL
"#,
        ),
        case(
            "env-forms",
            r#"FROM busybox
ENV A B C
ENV D=1 E="two words" F=three\ words
ENV G=${A:-def} H=${UNSET:-def} I=${D:+set} J=$UNSET K="$A"'$A'
LABEL "quoted key"="v" multi="a b" empty=""
"#,
        ),
        case(
            "entrypoint-resets-cmd",
            r#"FROM busybox AS base
CMD ["from-base"]
FROM base AS ep
ENTRYPOINT ["/bin/echo"]
FROM ep
"#,
        ),
        case(
            "entrypoint-then-cmd",
            r#"FROM busybox
ENTRYPOINT ["/bin/echo"]
CMD ["a", "b"]
ENTRYPOINT /bin/echo shell form
"#,
        ),
        case(
            "cmd-empty-forms",
            r#"FROM busybox
ENTRYPOINT []
CMD []
"#,
        ),
        Case {
            known: &[],
            name: "target",
            dockerfile: r#"FROM busybox AS base
RUN echo base > /base
FROM base AS mid
RUN echo mid > /mid
LABEL stage=mid
FROM mid AS final
RUN echo final > /final
"#,
            args: &["--target", "mid"],
            files: &[],
        },
        case(
            "stage-inherits",
            r#"FROM busybox AS a
ENV X=1
WORKDIR /a
USER nobody
FROM a AS b
RUN echo "$X $(pwd) $(id -u)" > /tmp/b
FROM b
"#,
        ),
        Case {
            known: &[],
            name: "global-args-in-from",
            dockerfile: r#"ARG IMG=scratch
ARG TAG
FROM ${IMG}:${TAG:-latest} AS b
ARG TAG
RUN echo "tag=$TAG" > /tag
"#,
            args: &["--build-arg", "IMG=busybox"],
            files: &[],
        },
        case(
            "platform-args",
            r#"FROM --platform=$BUILDPLATFORM busybox
ARG TARGETPLATFORM
ARG TARGETOS
ARG TARGETARCH
ARG BUILDPLATFORM
RUN echo "$TARGETPLATFORM $TARGETOS $TARGETARCH $BUILDPLATFORM" > /platform
"#,
        ),
        case(
            "expose-forms",
            r#"FROM busybox
EXPOSE 80 443/tcp 53/udp
EXPOSE 8000-8002
ARG P=9000
EXPOSE $P/sctp
"#,
        ),
        case(
            "healthcheck-shell",
            r#"FROM busybox
SHELL ["/bin/ash", "-c"]
HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=4 CMD wget -q localhost
"#,
        ),
        case(
            "healthcheck-none",
            r#"FROM busybox AS hc
HEALTHCHECK CMD ["true"]
FROM hc
HEALTHCHECK NONE
"#,
        ),
        case(
            "stopsignal-user-forms",
            r#"FROM busybox
STOPSIGNAL 9
ARG SIG=SIGUSR1
STOPSIGNAL $SIG
USER app:staff
MAINTAINER someone <someone@example.com>
"#,
        ),
        case(
            "expose-label-continuations",
            "FROM busybox\nENV P=80\nEXPOSE $P ${P}/tcp 80/udp \\\n  443\nLABEL a=1 \\\n  b=\"x y\" \\\n  c='$P'\n",
        ),
        case(
            "env-empty-and-quotes",
            r#"FROM busybox
ENV E= U=é Q="a\"b" S='single $E'
ARG A=1
ARG B=${A}-2
ENV C=${B:-x} D=${NOPE:-${A}}
LABEL "k.with.dots"="$C" other=${D}
"#,
        ),
        case(
            "onbuild-config",
            r#"FROM busybox
ONBUILD RUN echo x > /x
ONBUILD ARG X=1
ONBUILD COPY --chown=1:1 a.txt /
"#,
        ),
        case(
            "user-workdir-existing",
            r#"FROM busybox
USER nobody
WORKDIR /tmp
WORKDIR /var/www
WORKDIR /var/www/new
"#,
        ),
        case(
            "labels-inherit",
            r#"FROM busybox AS a
LABEL a=1 b=1
FROM a
LABEL b=2 c="$UNDEFINED"
"#,
        ),
    ]);
}

/// ONBUILD: a parent with triggers (COPY, ENV, RUN), built by each, then
/// a child of it built by each.
#[test]
fn onbuild_like_docker() {
    let t = store_with_docker_busybox();
    let pid = std::process::id();
    let parent = Case {
        known: &[],
        name: "onbuild-parent",
        dockerfile: "FROM busybox\nONBUILD COPY a.txt /app/\nONBUILD ENV BUILT=child\n\
                     ONBUILD RUN echo \"$BUILT\" > /triggered\nLABEL parent=1\n",
        args: &[],
        files: &[],
    };
    let ptag = format!("kiln-compat-onbuild-parent:{pid}");
    let ctx = common_context(&t, &parent);
    let [k, d] = build_both(&t, &ctx, &ptag, &[]).unwrap();
    let diffs = differences(&k, &d, &run_stub_dirs(parent.dockerfile));
    assert!(diffs.is_empty(), "onbuild-parent:\n{}", diffs.join("\n"));
    let child = Case {
        known: &[],
        name: "onbuild-child",
        dockerfile: Box::leak(format!("FROM {ptag}\nLABEL child=1\n").into_boxed_str()),
        args: &[],
        files: &[],
    };
    let ctx = common_context(&t, &child);
    let ctag = format!("kiln-compat-onbuild-child:{pid}");
    let [k, d] = build_both(&t, &ctx, &ctag, &[]).unwrap();
    Docker::get().run(&["rmi", &ctag, &ptag]);
    // Docker 20.10's BuildKit records the triggers' own history entries
    // differently; config and files must agree.
    let diffs: Vec<String> = differences(&k, &d, &run_stub_dirs(parent.dockerfile))
        .into_iter()
        .filter(|l| !l.starts_with("history"))
        .collect();
    assert!(diffs.is_empty(), "onbuild-child:\n{}", diffs.join("\n"));
}
