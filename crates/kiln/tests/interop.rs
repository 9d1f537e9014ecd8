//! Interoperability with the real tools, on real images made without kiln
//! (`scripts/fixtures/`): kiln loads what skopeo and `docker save` write,
//! with the same config digests and the same files as GNU tar (or Docker
//! itself) extracts; skopeo and Docker read what `kiln save` writes.
//!
//! Needs root (dockerd, overlay mounts); the fixture scripts install
//! skopeo, umoci, debootstrap, busybox-static and docker.io themselves.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

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

/// The fixture cache, made once per test process.
fn cache() -> &'static PathBuf {
    static CACHE: OnceLock<PathBuf> = OnceLock::new();
    CACHE.get_or_init(|| {
        let dir = PathBuf::from(sh("base-images.sh", &[]).trim());
        sh("docker-save.sh", &[]);
        dir
    })
}

fn docker_host() -> String {
    let env = sh("dockerd.sh", &["env"]);
    env.trim()
        .trim_start_matches("export DOCKER_HOST=")
        .to_string()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn tree(root: &Path) -> String {
    sh("tree-listing.sh", &[root.to_str().unwrap()])
}

/// The config digest skopeo sees in an archive.
fn skopeo_config_digest(transport: &str) -> String {
    let config = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--config",
            "--raw",
            transport,
        ])
        .output()
        .unwrap();
    assert!(
        config.status.success(),
        "{}",
        String::from_utf8_lossy(&config.stderr)
    );
    format!("sha256:{}", sha256_hex(&config.stdout))
}

fn inspect(t: &TestStore, name: &str) -> serde_json::Value {
    serde_json::from_str::<serde_json::Value>(&t.ok(&["inspect", name])).unwrap()[0].clone()
}

#[test]
fn kiln_loads_what_skopeo_and_docker_write() {
    let cache = cache();
    for (file, transport, name) in [
        ("busybox.oci-archive.tar", "oci-archive", "busybox:latest"),
        (
            "debian.oci-archive.tar",
            "oci-archive",
            "debian:bookworm-slim",
        ),
        (
            "busybox.docker-archive.tar",
            "docker-archive",
            "busybox:latest",
        ),
        (
            "docker-save.busybox.tar",
            "docker-archive",
            "busybox:latest",
        ),
        (
            "docker-save.debian.tar",
            "docker-archive",
            "debian:bookworm-slim",
        ),
    ] {
        let path = cache.join(file);
        let t = TestStore::new();
        let out = t.ok(&["load", "-i", path.to_str().unwrap()]);
        assert!(
            out.contains(&format!("Loaded image: {name}")),
            "{file}: {out}"
        );
        let v = inspect(&t, name);
        let expected = skopeo_config_digest(&format!("{transport}:{}", path.display()));
        assert_eq!(v["Id"], expected, "{file}: config digest");
        // One layer: kiln's snapshot against GNU tar's extraction of the
        // very blob kiln stored (its digest was verified on load).
        let layers = v["RootFS"]["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1, "{file}");
        let manifest_digest = v["Descriptor"]["digest"].as_str().unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(t.root().join("blobs/sha256").join(&manifest_digest[7..])).unwrap(),
        )
        .unwrap();
        let blob = manifest["layers"][0]["digest"].as_str().unwrap();
        let gnu = t.dir.path().join("gnu");
        std::fs::create_dir(&gnu).unwrap();
        run(Command::new("tar")
            .args(["--numeric-owner", "--same-permissions", "--xattrs", "-xf"])
            .arg(t.root().join("blobs/sha256").join(&blob[7..]))
            .arg("-C")
            .arg(&gnu));
        let snapshot = v["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
        let (a, b) = (tree(Path::new(snapshot)), tree(&gnu));
        assert!(a.lines().count() > 10, "{file}: {a}");
        assert_eq!(a, b, "{file}: kiln's extraction differs from GNU tar's");
        t.ok(&["system", "check"]);
    }
}

#[test]
fn layered_docker_image_matches_docker_export() {
    let cache = cache();
    let t = TestStore::new();
    t.ok(&[
        "load",
        "-i",
        cache.join("docker-save.layered.tar").to_str().unwrap(),
    ]);
    let images = t.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let name = images.lines().next().unwrap().to_string();
    let v = inspect(&t, &name);
    assert!(v["RootFS"]["Layers"].as_array().unwrap().len() > 2);
    // The merged view: kiln's snapshots as overlay lower directories.
    let merged = t.dir.path().join("merged");
    std::fs::create_dir(&merged).unwrap();
    let lower = v["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
    run(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!("ro,lowerdir={lower}"))
        .arg(&merged));
    let ours = tree(&merged);
    run(Command::new("umount").arg(&merged));
    // Docker's own view of the same image.
    let host = docker_host();
    sh("dockerd.sh", &["start"]);
    let docker = |args: &[&str]| run(Command::new("docker").env("DOCKER_HOST", &host).args(args));
    docker(&[
        "load",
        "-i",
        cache.join("docker-save.layered.tar").to_str().unwrap(),
    ]);
    let id = docker(&["create", "--network", "none", &name, "true"]);
    let export = t.dir.path().join("export.tar");
    docker(&["export", "-o", export.to_str().unwrap(), id.trim()]);
    docker(&["rm", id.trim()]);
    let theirs_dir = t.dir.path().join("theirs");
    std::fs::create_dir(&theirs_dir).unwrap();
    run(Command::new("tar")
        .args(["--numeric-owner", "--same-permissions", "-xf"])
        .arg(&export)
        .arg("-C")
        .arg(&theirs_dir));
    let theirs = tree(&theirs_dir);
    // What a container adds (mount points and generated files) is not the
    // image's; the root's own line differs by nature.
    let keep = |l: &&str| {
        let p = l.split('\t').next().unwrap_or("");
        !matches!(
            p,
            "." | "./.dockerenv" | "./dev" | "./proc" | "./sys" | "./etc"
        ) && !p.starts_with("./dev/")
            && !p.starts_with("./proc/")
            && !p.starts_with("./sys/")
            && !matches!(
                p,
                "./etc/hosts" | "./etc/hostname" | "./etc/resolv.conf" | "./etc/mtab"
            )
    };
    let ours: Vec<&str> = ours.lines().filter(keep).collect();
    let theirs: Vec<&str> = theirs.lines().filter(keep).collect();
    assert_eq!(
        ours, theirs,
        "kiln's merged layers differ from docker export"
    );
}

#[test]
fn skopeo_and_docker_read_what_kiln_saves() {
    let cache = cache();
    let t = TestStore::new();
    t.ok(&[
        "load",
        "-i",
        cache.join("busybox.oci-archive.tar").to_str().unwrap(),
    ]);
    t.ok(&["tag", "busybox:latest", "kiln-saved/busybox:interop"]);
    let v = inspect(&t, "kiln-saved/busybox:interop");
    let docker_archive = t.dir.path().join("saved.docker.tar");
    let oci_archive = t.dir.path().join("saved.oci.tar");
    t.ok(&[
        "save",
        "-o",
        docker_archive.to_str().unwrap(),
        "kiln-saved/busybox:interop",
    ]);
    t.ok(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        oci_archive.to_str().unwrap(),
        "kiln-saved/busybox:interop",
    ]);
    let skopeo = |transport: String| -> serde_json::Value {
        let out = run(Command::new("skopeo").args(["--insecure-policy", "inspect", &transport]));
        serde_json::from_str(&out).unwrap()
    };
    // docker-archive layers are uncompressed: their digests are the DiffIDs.
    let d = skopeo(format!("docker-archive:{}", docker_archive.display()));
    assert_eq!(d["Layers"], v["RootFS"]["Layers"], "docker-archive layers");
    assert_eq!(
        skopeo_config_digest(&format!("docker-archive:{}", docker_archive.display())),
        v["Id"]
    );
    // oci-archive keeps the blobs and the manifest as stored.
    let o = skopeo(format!("oci-archive:{}", oci_archive.display()));
    let manifest_digest = v["Descriptor"]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.root().join("blobs/sha256").join(&manifest_digest[7..])).unwrap(),
    )
    .unwrap();
    let layer_digests: Vec<&serde_json::Value> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    let skopeo_layers: Vec<&serde_json::Value> = o["Layers"].as_array().unwrap().iter().collect();
    assert_eq!(skopeo_layers, layer_digests, "oci-archive layers");
    assert_eq!(o["Digest"], manifest_digest, "oci-archive manifest digest");
    // Docker loads the docker-archive and runs it.
    let host = docker_host();
    sh("dockerd.sh", &["start"]);
    let docker = |args: &[&str]| run(Command::new("docker").env("DOCKER_HOST", &host).args(args));
    let loaded = docker(&["load", "-i", docker_archive.to_str().unwrap()]);
    assert!(loaded.contains("kiln-saved/busybox:interop"), "{loaded}");
    let id = docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "kiln-saved/busybox:interop",
    ]);
    assert_eq!(id.trim(), v["Id"].as_str().unwrap());
    let hello = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "kiln-saved/busybox:interop",
        "echo",
        "hello from kiln",
    ]);
    assert_eq!(hello.trim(), "hello from kiln");
    docker(&["rmi", "kiln-saved/busybox:interop"]);
}
