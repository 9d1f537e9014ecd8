//! `pull`, `push`, `login` and `logout` against real registries (Debian's
//! docker-registry, plain and TLS with htpasswd, started by
//! `scripts/fixtures/registry.sh`) and real tools (skopeo, curl), and
//! against a small in-test HTTP server for what a real registry never does
//! (flipped bytes, lying digests, ambiguous documents, redirects to another
//! host, connections cut mid-blob, 503s).
//!
//! Needs root (the fixture installs packages and runs the registries);
//! the fixture keeps running between test processes (`registry.sh stop`
//! ends it). Each test uses repositories named after itself and the
//! process, so reruns never see each other's pushes.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

use common::*;
use sha2::Digest as _;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The fixture's exports (started once per test process).
fn fixture() -> &'static BTreeMap<String, String> {
    static ENV: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let script = repo_root().join("scripts/fixtures/registry.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "registry.sh start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("bash")
            .arg(&script)
            .arg("env")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    })
}

fn fx(key: &str) -> String {
    fixture()
        .get(key)
        .unwrap_or_else(|| panic!("{key} not in the fixture's env"))
        .clone()
}

/// A store plus its own Docker config directory, wired to the fixture.
struct Env {
    store: TestStore,
    docker_config: tempfile::TempDir,
    registries_conf: Option<PathBuf>,
}

impl Env {
    fn new() -> Env {
        Env {
            store: TestStore::new(),
            docker_config: tempfile::tempdir().unwrap(),
            registries_conf: Some(PathBuf::from(fx("KILN_REGISTRIES_CONF"))),
        }
    }

    /// A store whose Docker config is `other`'s (a second machine of the
    /// same user).
    fn sharing_login(other: &Env) -> Env {
        let e = Env::new();
        fs_copy_dir(other.docker_config.path(), e.docker_config.path());
        e
    }

    fn cmd(&self) -> Command {
        let mut c = self.store.cmd();
        c.env("DOCKER_CONFIG", self.docker_config.path())
            .env("KILN_CERTS_D", fx("KILN_CERTS_D"))
            .env("KILN_REGISTRY_BACKOFF_MS", "20")
            .env_remove("KILN_LOG");
        match &self.registries_conf {
            Some(p) => c.env("KILN_REGISTRIES_CONF", p),
            // An empty file: no mirrors.
            None => c.env("KILN_REGISTRIES_CONF", "/dev/null"),
        };
        c
    }

    fn output(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Run; expect success; (stdout, stderr).
    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "kiln {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// Run; expect exit 1; stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "kiln {args:?} should fail:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    fn ok_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn login(&self, registry: &str, user: &str, password: &str) -> Output {
        self.ok_stdin(
            &["login", "-u", user, "--password-stdin", registry],
            &format!("{password}\n"),
        )
    }

    /// The manifest digest of a stored image.
    fn manifest_digest(&self, name: &str) -> String {
        let (out, _) = self.ok(&[
            "images",
            "--no-trunc",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.Digest}}",
        ]);
        out.lines()
            .find_map(|l| {
                let (n, d) = l.split_once(' ')?;
                (n == name).then(|| d.to_string())
            })
            .unwrap_or_else(|| panic!("{name} not in the image list:\n{out}"))
    }

    fn check_clean(&self) {
        let (out, _) = self.ok(&["system", "check"]);
        assert_eq!(out, "", "system check found problems");
    }
}

fn fs_copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A repository path unique to this test and process.
fn unique(name: &str) -> String {
    format!("kiln-test/{name}-{}", std::process::id())
}

/// `Digest: sha256:…` from pull's output.
fn digest_line(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap_or_else(|| panic!("no Digest line in:\n{stderr}"))
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

fn skopeo_digest(image: &str, extra: &[&str]) -> String {
    let out = run(Command::new("skopeo")
        .args(["inspect", "--format", "{{.Digest}}"])
        .args(extra)
        .arg(format!("docker://{image}")));
    out.trim().to_string()
}

/// Lines of a registry's access log that are blob uploads (PATCH, or a PUT
/// to an upload session) into `repo`.
fn uploads_in_log(log: &str, repo: &str) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let needle_patch = format!("\"PATCH /v2/{repo}/blobs/uploads/");
    let needle_put = format!("\"PUT /v2/{repo}/blobs/uploads/");
    text.lines()
        .filter(|l| l.contains(&needle_patch) || l.contains(&needle_put))
        .count()
}

// ---------------------------------------------------------------------------
// Against the real registries.

#[test]
fn pull_through_the_docker_io_mirror() {
    let e = Env::new();
    let (out, err) = e.ok(&["pull", "debian:bookworm-slim"]);
    assert_eq!(out, "docker.io/library/debian:bookworm-slim\n");
    assert!(
        err.starts_with("bookworm-slim: Pulling from library/debian\n"),
        "{err}"
    );
    assert!(err.contains(": Pull complete\n"), "{err}");
    assert!(
        err.contains("Status: Downloaded newer image for debian:bookworm-slim"),
        "{err}"
    );
    let want = skopeo_digest(
        &format!("{}/library/debian:bookworm-slim", fx("KILN_REGISTRY")),
        &["--tls-verify=false"],
    );
    assert_eq!(digest_line(&err), want);
    assert_eq!(e.manifest_digest("debian:bookworm-slim"), want);
    // The files are there: the extracted layer has Debian's os-release.
    let (inspect, _) = e.ok(&[
        "image",
        "inspect",
        "--format",
        "json",
        "debian:bookworm-slim",
    ]);
    let v: serde_json::Value = serde_json::from_str(inspect.lines().next().unwrap()).unwrap();
    let lower = v["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
    let os_release = std::fs::read_to_string(Path::new(lower).join("etc/os-release")).unwrap();
    assert!(os_release.contains("bookworm"), "{os_release}");
    assert_eq!(
        v["RepoDigests"][0].as_str().unwrap(),
        format!("docker.io/library/debian@{want}")
    );
    // Again: nothing to fetch.
    let (_, err) = e.ok(&["pull", "debian:bookworm-slim"]);
    assert!(err.contains(": Already exists\n"), "{err}");
    assert!(
        err.contains("Status: Image is up to date for debian:bookworm-slim"),
        "{err}"
    );
    // Quiet: only the reference.
    let (out, err) = e.ok(&["pull", "-q", "busybox"]);
    assert_eq!(out, "docker.io/library/busybox:latest\n");
    assert_eq!(err, "");
    // By digest.
    let (out, _) = e.ok(&["pull", &format!("debian@{want}")]);
    assert_eq!(out, format!("docker.io/library/debian@{want}\n"));
    e.check_clean();
}

#[test]
fn push_to_the_plain_registry_and_pull_back() {
    let e = Env::new();
    e.ok(&["pull", "-q", "busybox"]);
    let local = e.manifest_digest("busybox:latest");
    let reg = fx("KILN_REGISTRY");
    let repo = unique("push");
    let name = format!("{reg}/{repo}:v1");
    e.ok(&["tag", "busybox", &name]);
    let (out, err) = e.ok(&["push", &name]);
    assert_eq!(out.trim(), local, "push prints the manifest digest");
    assert!(
        err.contains(&format!("The push refers to repository [{reg}/{repo}]")),
        "{err}"
    );
    assert!(err.contains(": Pushed\n"), "{err}");
    assert!(
        err.contains(&format!("v1: digest: {local} size: ")),
        "{err}"
    );

    // skopeo sees the same manifest and can copy the image.
    assert_eq!(skopeo_digest(&name, &["--tls-verify=false"]), local);
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{name}"),
        &format!("oci:{}:x", dir.path().join("oci").display()),
    ]));
    assert!(dir.path().join("oci/index.json").is_file());

    // A second store pulls it back with the same digest, without mirrors.
    let mut other = Env::new();
    other.registries_conf = None;
    let (_, err) = other.ok(&["pull", &name]);
    assert_eq!(digest_line(&err), local);
    assert_eq!(other.manifest_digest(&name), local);
    other.check_clean();

    // Pushing again sends no blob bytes.
    let log = fx("KILN_REGISTRY_LOG");
    let before = uploads_in_log(&log, &repo);
    assert!(
        before > 0,
        "the first push's uploads are in the registry's log"
    );
    let (_, err) = e.ok(&["push", &name]);
    assert!(!err.contains("Pushed"), "{err}");
    assert!(err.contains(": Layer already exists\n"), "{err}");
    assert_eq!(uploads_in_log(&log, &repo), before);

    // To a second repository of the same registry: mounted, not uploaded.
    let repo2 = unique("push-second");
    let (out, err) = e.ok(&["push", &name, &format!("{reg}/{repo2}:v2")]);
    assert_eq!(out.trim(), local);
    assert!(err.contains(&format!(": Mounted from {repo}\n")), "{err}");
    assert!(!err.contains("Pushed"), "{err}");
    assert_eq!(uploads_in_log(&log, &repo2), 0);
    e.check_clean();
}

#[test]
fn push_recompressed_with_zstd() {
    let e = Env::new();
    e.ok(&["pull", "-q", "busybox"]);
    let local = e.manifest_digest("busybox:latest");
    let name = format!("{}/{}:zstd", fx("KILN_REGISTRY"), unique("zstd"));
    let (out, _) = e.ok(&["push", "--compression", "zstd", "busybox", &name]);
    let pushed = out.trim().to_string();
    assert_ne!(pushed, local, "new layer blobs make a new manifest");
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}")));
    assert!(raw.contains("tar+zstd"), "{raw}");
    // It pulls and unpacks (same DiffIDs, so the same image id).
    let mut other = Env::new();
    other.registries_conf = None;
    let (_, err) = other.ok(&["pull", &name]);
    assert_eq!(digest_line(&err), pushed);
    let id = |env: &Env, n: &str| {
        let (o, _) = env.ok(&["image", "inspect", "--format", "{{.Id}}", n]);
        o.trim().to_string()
    };
    assert_eq!(id(&other, &name), id(&e, "busybox"));
    e.check_clean();
}

#[test]
fn login_push_and_pull_with_the_tls_registry() {
    let e = Env::new();
    let reg = fx("KILN_REGISTRY_TLS");
    let user = fx("KILN_REGISTRY_USER");
    let password = fx("KILN_REGISTRY_PASSWORD");
    // A wrong password is refused and not stored.
    let out = e.login(&reg, &user, "wrong-password");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("authentication required or refused"), "{err}");
    assert!(!err.contains("wrong-password"), "{err}");
    assert!(!e.docker_config.path().join("config.json").exists());
    // Without login, a push is refused.
    e.ok(&["pull", "-q", "busybox"]);
    let name = format!("{reg}/{}:1", unique("tls"));
    let err = e.fails(&["push", "busybox", &name]);
    assert!(err.contains("authentication required"), "{err}");
    // Logged in.
    let out = e.login(&reg, &user, &password);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Login Succeeded\n");
    let config = std::fs::read_to_string(e.docker_config.path().join("config.json")).unwrap();
    assert!(config.contains(&reg), "{config}");
    let (out, _) = e.ok(&["push", "busybox", &name]);
    let digest = out.trim().to_string();
    assert_eq!(digest, e.manifest_digest("busybox:latest"));
    // skopeo, with the fixture's CA and the same credentials, agrees.
    let certs = format!("{}/{reg}", fx("KILN_CERTS_D"));
    assert_eq!(
        skopeo_digest(
            &name,
            &[
                "--cert-dir",
                &certs,
                "--creds",
                &format!("{user}:{password}")
            ]
        ),
        digest
    );
    // Another store with the same login pulls it back.
    let other = Env::sharing_login(&e);
    let (_, err) = other.ok(&["pull", &name]);
    assert_eq!(digest_line(&err), digest);
    other.check_clean();
    // After logout, anonymous pulls are refused and leave nothing.
    let (out, _) = other.ok(&["logout", &reg]);
    assert_eq!(out, format!("Removing login credentials for {reg}\n"));
    let third = Env::sharing_login(&other);
    let err = third.fails(&["pull", &name]);
    assert!(err.contains("authentication required"), "{err}");
    assert!(!err.contains(&password));
    assert!(
        third.store.state().iter().all(|l| !l.starts_with("blobs/")),
        "{:?}",
        third.store.state()
    );
    // Without the CA, TLS fails and is never downgraded to plain HTTP.
    let out = e
        .cmd()
        .env("KILN_CERTS_D", "/nonexistent")
        .args(["pull", &name])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("https://"), "{err}");
    assert!(!err.contains("http://"), "{err}");
}

#[test]
fn kiln_pulls_what_skopeo_pushes() {
    let e = Env::new();
    let reg = fx("KILN_REGISTRY");
    let cache = run(Command::new("bash").arg(repo_root().join("scripts/fixtures/base-images.sh")));
    let layout = format!("{}/oci", cache.trim());
    for (format, tag) in [("v2s2", "docker"), ("oci", "oci")] {
        let name = format!("{reg}/{}:{tag}", unique("skopeo"));
        run(Command::new("skopeo").args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--format",
            format,
            &format!("oci:{layout}:busybox:latest"),
            &format!("docker://{name}"),
        ]));
        let want = skopeo_digest(&name, &["--tls-verify=false"]);
        let (_, err) = e.ok(&["pull", &name]);
        assert_eq!(digest_line(&err), want, "{format}");
        assert_eq!(e.manifest_digest(&name), want, "{format}");
    }
    // The Docker-typed image keeps its media type through a push elsewhere.
    let src = format!("{reg}/{}:docker", unique("skopeo"));
    let dst = format!("{reg}/{}:copy", unique("skopeo-copy"));
    let (out, _) = e.ok(&["push", &src, &dst]);
    assert_eq!(out.trim(), skopeo_digest(&src, &["--tls-verify=false"]));
    e.check_clean();
}

/// An index with an arm64 manifest first and the amd64 one second, both
/// real: pull picks the host's (linux/amd64) by default and the other with
/// `--platform`.
#[test]
fn a_multi_platform_index_yields_linux_amd64() {
    let reg = fx("KILN_REGISTRY");
    let repo = unique("multi");
    // The blobs into the repository, and its manifest.
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &format!("docker://{reg}/library/busybox:latest"),
        &format!("docker://{reg}/{repo}:base"),
    ]));
    // curl: the exact bytes (no newline added).
    let amd64 = run(Command::new("curl").args([
        "-sf",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!("http://{reg}/v2/{repo}/manifests/base"),
    ]));
    assert!(amd64.contains("\"layers\""), "{amd64}");
    let mut arm: serde_json::Value = serde_json::from_str(&amd64).unwrap();
    arm["annotations"] = serde_json::json!({"kiln.test": "pretend arm64"});
    let arm = serde_json::to_string(&arm).unwrap();
    let sha = |s: &str| format!("sha256:{:x}", sha2::Sha256::digest(s.as_bytes()));
    let put = |reference: &str, media_type: &str, body: &str| {
        let code = run(Command::new("curl").args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "PUT",
            "-H",
            &format!("Content-Type: {media_type}"),
            "--data-binary",
            body,
            &format!("http://{reg}/v2/{repo}/manifests/{reference}"),
        ]));
        assert_eq!(code, "201", "PUT {reference}");
    };
    let oci_manifest = "application/vnd.oci.image.manifest.v1+json";
    put(&sha(&arm), oci_manifest, &arm);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": oci_manifest, "digest": sha(&arm), "size": arm.len(),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"mediaType": oci_manifest, "digest": sha(&amd64), "size": amd64.len(),
             "platform": {"os": "linux", "architecture": "amd64"}},
        ],
    })
    .to_string();
    put("multi", "application/vnd.oci.image.index.v1+json", &index);
    let name = format!("{reg}/{repo}:multi");

    let e = Env::new();
    let (_, err) = e.ok(&["pull", &name]);
    assert_eq!(digest_line(&err), sha(&index), "Digest: is the index's");
    assert_eq!(e.manifest_digest(&name), sha(&amd64));
    let other = Env::new();
    other.ok(&["pull", "--platform", "linux/arm64", &name]);
    assert_eq!(other.manifest_digest(&name), sha(&arm));
    let err = other.fails(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        err.contains("no manifest for platform linux/s390x"),
        "{err}"
    );
    assert!(err.contains("linux/amd64, linux/arm64"), "{err}");
    e.check_clean();
    other.check_clean();
}

// ---------------------------------------------------------------------------
// A small HTTP server for faults.

/// A request as the fault server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// What to answer.
enum Reply {
    /// Status, headers, body.
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Headers for the whole body, then only its first `n` bytes, then the
    /// connection is closed.
    Cut(Vec<u8>, usize),
}

struct FaultServer {
    addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FaultServer {
    /// Serve `handler` on `ip`:random port; the handler also gets how many
    /// requests came before this one.
    fn start(ip: &str, handler: Arc<Handler>) -> FaultServer {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let s = s.clone();
                let h = handler.clone();
                thread::spawn(move || serve(conn, &s, &*h));
            }
        });
        FaultServer { addr, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(conn: TcpStream, seen: &Mutex<Vec<Seen>>, handler: &Handler) {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    loop {
        // A TLS ClientHello (kiln tries HTTPS first on loopback): hang up.
        match r.fill_buf() {
            Ok([0x16, ..]) | Ok([]) | Err(_) => return,
            Ok(_) => {}
        }
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let req = Seen {
            method: method.clone(),
            path,
            headers,
        };
        let n = {
            let mut s = seen.lock().unwrap();
            s.push(req.clone());
            s.len() - 1
        };
        match handler(&req, n) {
            Reply::Full(status, headers, body) => {
                let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for (k, v) in headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                head.push_str("\r\n");
                if w.write_all(head.as_bytes()).is_err() {
                    return;
                }
                if method != "HEAD" && w.write_all(&body).is_err() {
                    return;
                }
            }
            Reply::Cut(body, n) => {
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let _ = w.write_all(head.as_bytes());
                let _ = w.write_all(&body[..n]);
                let _ = w.flush();
                let _ = w.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }
}

fn sha256_hex(b: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(b))
}

/// A one-layer image with an uncompressed layer (so its DiffID is its
/// digest) of `size` bytes of file content.
struct TinyImage {
    layer: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

impl TinyImage {
    fn new(size: usize) -> TinyImage {
        let mut data = Vec::with_capacity(size);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        while data.len() < size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        data.truncate(size);
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "data.bin", &data[..]).unwrap();
        let layer = b.into_inner().unwrap();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256_hex(&layer)]},
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha256_hex(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": sha256_hex(&layer), "size": layer.len()}],
        }))
        .unwrap();
        TinyImage {
            layer,
            config,
            manifest,
        }
    }

    /// The answer a correct registry gives.
    fn answer(&self, req: &Seen) -> Reply {
        let oci = "application/vnd.oci.image.manifest.v1+json";
        if req.path == "/v2/" {
            return Reply::Full(200, vec![], b"{}".to_vec());
        }
        if req.path.contains("/manifests/") {
            return Reply::Full(
                200,
                vec![
                    ("Content-Type".into(), oci.into()),
                    ("Docker-Content-Digest".into(), sha256_hex(&self.manifest)),
                ],
                self.manifest.clone(),
            );
        }
        for blob in [&self.layer, &self.config] {
            if req.path.ends_with(&format!("/blobs/{}", sha256_hex(blob))) {
                return Reply::Full(200, vec![], blob.clone());
            }
        }
        Reply::Full(
            404,
            vec![],
            b"{\"errors\":[{\"code\":\"NOT_FOUND\"}]}".to_vec(),
        )
    }
}

/// The store after a refused pull: nothing in it, and consistent.
fn assert_untouched(e: &Env) {
    let state = e.store.state();
    assert!(
        state.iter().all(|l| l.starts_with("ingest/")) && !state.iter().any(|l| l.contains(' ')),
        "the store changed: {state:?}"
    );
    e.check_clean();
}

fn fault_env() -> Env {
    let mut e = Env::new();
    e.registries_conf = None;
    e
}

#[test]
fn a_flipped_byte_in_a_blob_is_refused() {
    let img = Arc::new(TinyImage::new(100_000));
    let i = img.clone();
    let server = FaultServer::start(
        "127.0.0.1",
        Arc::new(move |req: &Seen, _| {
            if req.path.ends_with(&sha256_hex(&i.layer)) {
                let mut bad = i.layer.clone();
                bad[50_000] ^= 1;
                return Reply::Full(200, vec![], bad);
            }
            i.answer(req)
        }),
    );
    let e = fault_env();
    let name = format!("{}/x/flip:1", server.addr);
    let err = e.fails(&["pull", &name]);
    assert!(err.contains(&format!("failed to pull {name}")), "{err}");
    assert!(err.contains("digest mismatch"), "{err}");
    assert_untouched(&e);
}

#[test]
fn a_lying_manifest_digest_is_refused() {
    let img = Arc::new(TinyImage::new(1000));
    let i = img.clone();
    let liar = format!("sha256:{}", "ab".repeat(32));
    let l = liar.clone();
    let server = FaultServer::start(
        "127.0.0.1",
        Arc::new(move |req: &Seen, _| {
            if req.path.contains("/manifests/") {
                return Reply::Full(
                    200,
                    vec![
                        (
                            "Content-Type".into(),
                            "application/vnd.oci.image.manifest.v1+json".into(),
                        ),
                        ("Docker-Content-Digest".into(), l.clone()),
                    ],
                    i.manifest.clone(),
                );
            }
            i.answer(req)
        }),
    );
    let e = fault_env();
    let err = e.fails(&["pull", &format!("{}/x/liar:1", server.addr)]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(err.contains(&liar), "{err}");
    assert_untouched(&e);
    // By digest: the body must hash to the digest asked for.
    let err = e.fails(&["pull", &format!("{}/x/liar@{liar}", server.addr)]);
    assert!(err.contains("digest mismatch"), "{err}");
    assert_untouched(&e);
}

#[test]
fn a_document_that_is_both_index_and_manifest_is_refused() {
    let img = Arc::new(TinyImage::new(1000));
    let i = img.clone();
    let mut both: serde_json::Value = serde_json::from_slice(&img.manifest).unwrap();
    both["manifests"] = serde_json::json!([]);
    let both = serde_json::to_vec(&both).unwrap();
    let server = FaultServer::start(
        "127.0.0.1",
        Arc::new(move |req: &Seen, _| {
            if req.path.contains("/manifests/") {
                return Reply::Full(
                    200,
                    vec![(
                        "Content-Type".into(),
                        "application/vnd.oci.image.manifest.v1+json".into(),
                    )],
                    both.clone(),
                );
            }
            i.answer(req)
        }),
    );
    let e = fault_env();
    let err = e.fails(&["pull", &format!("{}/x/both:1", server.addr)]);
    assert!(err.contains("both an image index"), "{err}");
    assert_untouched(&e);
}

/// The registry wants basic auth and redirects blobs to a second host
/// (another loopback address): that host must never see `Authorization`.
#[test]
fn a_redirect_to_another_host_gets_no_credentials() {
    let img = Arc::new(TinyImage::new(50_000));
    let i2 = img.clone();
    let storage = FaultServer::start("127.0.0.2", Arc::new(move |req: &Seen, _| i2.answer(req)));
    let storage_addr = storage.addr.clone();
    let i = img.clone();
    let registry = FaultServer::start(
        "127.0.0.1",
        Arc::new(move |req: &Seen, _| {
            let Some(auth) = req.headers.get("authorization") else {
                return Reply::Full(
                    401,
                    vec![("WWW-Authenticate".into(), "Basic realm=\"fault\"".into())],
                    vec![],
                );
            };
            // alice:s3cret
            if auth != "Basic YWxpY2U6czNjcmV0" {
                return Reply::Full(
                    401,
                    vec![("WWW-Authenticate".into(), "Basic realm=\"fault\"".into())],
                    vec![],
                );
            }
            if req.path.contains("/blobs/") {
                let to = format!("http://{storage_addr}/storage{}", req.path);
                return Reply::Full(307, vec![("Location".into(), to)], vec![]);
            }
            i.answer(req)
        }),
    );
    let e = fault_env();
    let out = e.login(&registry.addr, "alice", "s3cret");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, err) = e.ok(&["pull", &format!("{}/x/redirect:1", registry.addr)]);
    assert_eq!(digest_line(&err), sha256_hex(&img.manifest));
    let storage_seen = storage.seen();
    assert!(
        storage_seen
            .iter()
            .filter(|r| r.path.starts_with("/storage/"))
            .count()
            >= 2,
        "config and layer came from the second host: {storage_seen:?}"
    );
    for r in &storage_seen {
        assert!(!r.headers.contains_key("authorization"), "{r:?}");
    }
    assert!(registry.seen().iter().any(|r| r
        .headers
        .get("authorization")
        .is_some_and(|a| a.starts_with("Basic "))));
    e.check_clean();
}

/// The first download of the layer is cut in the middle; kiln resumes
/// with `Range` and the image is whole.
#[test]
fn a_pull_cut_in_the_middle_resumes_with_range() {
    let img = Arc::new(TinyImage::new(8 << 20));
    let i = img.clone();
    let layer_digest = sha256_hex(&img.layer);
    let cut_done = Arc::new(Mutex::new(false));
    let c = cut_done.clone();
    let server = FaultServer::start(
        "127.0.0.1",
        Arc::new(move |req: &Seen, _| {
            if req.path.ends_with(&layer_digest) && req.method == "GET" {
                let mut cut = c.lock().unwrap();
                if !*cut {
                    *cut = true;
                    return Reply::Cut(i.layer.clone(), i.layer.len() / 2);
                }
                if let Some(range) = req.headers.get("range") {
                    let start: usize = range
                        .strip_prefix("bytes=")
                        .and_then(|r| r.strip_suffix('-'))
                        .and_then(|s| s.parse().ok())
                        .unwrap();
                    let total = i.layer.len();
                    return Reply::Full(
                        206,
                        vec![(
                            "Content-Range".into(),
                            format!("bytes {start}-{}/{total}", total - 1),
                        )],
                        i.layer[start..].to_vec(),
                    );
                }
            }
            i.answer(req)
        }),
    );
    let e = fault_env();
    let name = format!("{}/x/cut:1", server.addr);
    let (_, err) = e.ok(&["pull", &name]);
    assert_eq!(digest_line(&err), sha256_hex(&img.manifest));
    let ranges: Vec<String> = server
        .seen()
        .iter()
        .filter_map(|r| r.headers.get("range").cloned())
        .collect();
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    let start: usize = ranges[0]
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(start > 0 && start <= img.layer.len() / 2, "{ranges:?}");
    // The file is whole.
    let (inspect, _) = e.ok(&["image", "inspect", "--format", "json", &name]);
    let v: serde_json::Value = serde_json::from_str(inspect.lines().next().unwrap()).unwrap();
    let lower = v["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
    let data = std::fs::read(Path::new(lower).join("data.bin")).unwrap();
    assert_eq!(data.len(), 8 << 20);
    e.check_clean();
}

/// 503s are retried; a registry that keeps failing is reported with its
/// status, and nothing is stored.
#[test]
fn server_errors_are_retried_then_reported() {
    let img = Arc::new(TinyImage::new(1000));
    let i = img.clone();
    let flaky = FaultServer::start(
        "127.0.0.1",
        Arc::new(move |req: &Seen, n| {
            // The first two requests for anything fail.
            if n < 3 && req.path != "/v2/" {
                return Reply::Full(503, vec![], vec![]);
            }
            i.answer(req)
        }),
    );
    let e = fault_env();
    e.ok(&["pull", &format!("{}/x/flaky:1", flaky.addr)]);
    e.check_clean();
    let down = FaultServer::start(
        "127.0.0.1",
        Arc::new(|req: &Seen, _| {
            if req.path == "/v2/" {
                return Reply::Full(200, vec![], vec![]);
            }
            Reply::Full(503, vec![], vec![])
        }),
    );
    let e = fault_env();
    let err = e.fails(&["pull", &format!("{}/x/down:1", down.addr)]);
    assert!(err.contains("503"), "{err}");
    assert!(down.seen().len() >= 4, "retried: {:?}", down.seen().len());
    assert_untouched(&e);
}

// ---------------------------------------------------------------------------
// Interruptions and Docker.

/// Start `kiln args`, wait for a stderr line ending with `marker`, send
/// `signal`; the exit status and all of stderr.
fn interrupt(
    e: &Env,
    args: &[&str],
    marker: &str,
    signal: &str,
) -> (std::process::ExitStatus, String) {
    let mut child = e
        .cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.ends_with(marker) {
            run(Command::new("kill").args([signal, &child.id().to_string()]));
            break;
        }
    }
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    (child.wait().unwrap(), seen)
}

/// A push interrupted by SIGINT while a layer is uploading leaves no tag
/// (the manifest goes last), or, if it finished first, a tag whose blobs
/// are all there; the repeated push completes.
#[test]
fn an_interrupted_push_never_leaves_a_tag_without_its_blobs() {
    use std::os::unix::process::ExitStatusExt;
    let e = Env::new();
    e.ok(&["pull", "-q", "debian:bookworm-slim"]);
    let name = format!("{}/{}:1", fx("KILN_REGISTRY"), unique("sigint"));
    let (status, err) = interrupt(
        &e,
        &["push", "debian:bookworm-slim", &name],
        ": Pushing",
        "-INT",
    );
    let tag_exists = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}"))
        .output()
        .unwrap()
        .status
        .success();
    if status.signal() == Some(2) {
        assert!(!tag_exists, "an interrupted push left a tag:\n{err}");
    } else {
        eprintln!("the push finished before SIGINT arrived ({status})");
    }
    e.check_clean();
    let (out, _) = e.ok(&["push", "debian:bookworm-slim", &name]);
    assert_eq!(out.trim(), e.manifest_digest("debian:bookworm-slim"));
    // Every blob the tag names is there: skopeo copies it whole.
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{name}"),
        &format!("dir:{}", dir.path().join("d").display()),
    ]));
}

/// A pull killed mid-layer leaves a store that checks clean, with no
/// image; the next pull completes.
#[test]
fn a_killed_pull_leaves_a_consistent_store() {
    let e = Env::new();
    let (status, err) = interrupt(
        &e,
        &["pull", "debian:bookworm-slim"],
        ": Downloading",
        "-KILL",
    );
    if status.success() {
        eprintln!("the pull finished before SIGKILL arrived");
    } else {
        assert!(!err.contains("Status:"), "{err}");
        e.check_clean();
        let (out, _) = e.ok(&["images", "-q"]);
        assert_eq!(out, "", "no image after a killed pull");
    }
    let (_, err) = e.ok(&["pull", "debian:bookworm-slim"]);
    assert!(err.contains("Status: Downloaded newer image"), "{err}");
    e.check_clean();
}

/// Docker (the fixture's dockerd) pulls what kiln pushed, with the same
/// digest, and runs it.
#[test]
fn docker_pulls_and_runs_what_kiln_pushes() {
    let e = Env::new();
    e.ok(&["pull", "-q", "busybox"]);
    let name = format!("{}/{}:docker", fx("KILN_REGISTRY"), unique("docker"));
    let (out, _) = e.ok(&["push", "busybox", &name]);
    let digest = out.trim().to_string();
    let dockerd = repo_root().join("scripts/fixtures/dockerd.sh");
    run(Command::new("bash").arg(&dockerd).arg("start"));
    let host = run(Command::new("bash").arg(&dockerd).arg("env"))
        .trim()
        .trim_start_matches("export DOCKER_HOST=")
        .to_string();
    let docker = |args: &[&str]| run(Command::new("docker").env("DOCKER_HOST", &host).args(args));
    let pulled = docker(&["pull", &name]);
    assert!(pulled.contains(&format!("Digest: {digest}")), "{pulled}");
    let hello = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "echo",
        "hello from kiln",
    ]);
    assert_eq!(hello.trim(), "hello from kiln");
    docker(&["rmi", &name]);
}

/// `pull -a` brings every tag of a repository; `push` of an id without a
/// destination is refused.
#[test]
fn pull_all_tags() {
    let e = Env::new();
    e.ok(&["pull", "-q", "busybox"]);
    let repo = format!("{}/{}", fx("KILN_REGISTRY"), unique("all-tags"));
    for tag in ["a", "b", "c"] {
        e.ok(&["push", "-q", "busybox", &format!("{repo}:{tag}")]);
    }
    let other = fault_env();
    let (out, _) = other.ok(&["pull", "-a", "-q", &repo]);
    assert_eq!(out, format!("{repo}:a\n{repo}:b\n{repo}:c\n"));
    let err = other.fails(&["pull", "-a", &format!("{repo}:a")]);
    assert!(err.contains("--all-tags"), "{err}");
    let (id, _) = e.ok(&["image", "inspect", "--format", "{{.Id}}", "busybox"]);
    let id = id.trim().trim_start_matches("sha256:")[..12].to_string();
    let err = e.fails(&["push", &id]);
    assert!(err.contains("does not exist locally with the tag"), "{err}");
}

/// Docker Hub's scheme: a 401 with a `Bearer` challenge, a token from the
/// realm (with basic credentials when logged in, anonymously otherwise),
/// one token per scope reused for every request of the pull.
#[test]
fn bearer_tokens_from_the_realm() {
    let img = Arc::new(TinyImage::new(10_000));
    let i = img.clone();
    let addr: Arc<OnceLock<String>> = Arc::new(OnceLock::new());
    let a = addr.clone();
    let server = FaultServer::start(
        "127.0.0.1",
        Arc::new(move |req: &Seen, _| {
            if req.path.starts_with("/token?") {
                let token = match req.headers.get("authorization").map(String::as_str) {
                    Some("Basic YWxpY2U6czNjcmV0") => "alice-token",
                    Some(_) => return Reply::Full(401, vec![], vec![]),
                    None => "anonymous-token",
                };
                let body = format!("{{\"token\":\"{token}\",\"expires_in\":300}}");
                return Reply::Full(200, vec![], body.into_bytes());
            }
            let ok = matches!(
                req.headers.get("authorization").map(String::as_str),
                Some("Bearer alice-token" | "Bearer anonymous-token")
            );
            if !ok {
                let realm = format!("http://{}/token", a.get().unwrap());
                let scope = if req.path == "/v2/" {
                    String::new()
                } else {
                    ",scope=\"repository:x/tok:pull\"".to_string()
                };
                return Reply::Full(
                    401,
                    vec![(
                        "WWW-Authenticate".into(),
                        format!("Bearer realm=\"{realm}\",service=\"fault\"{scope}"),
                    )],
                    vec![],
                );
            }
            i.answer(req)
        }),
    );
    addr.set(server.addr.clone()).unwrap();
    let name = format!("{}/x/tok:1", server.addr);
    let tokens = |s: &FaultServer| -> Vec<Seen> {
        s.seen()
            .into_iter()
            .filter(|r| r.path.starts_with("/token?"))
            .collect()
    };
    // Anonymous.
    let e = fault_env();
    let (_, err) = e.ok(&["pull", &name]);
    assert_eq!(digest_line(&err), sha256_hex(&img.manifest));
    let t = tokens(&server);
    assert_eq!(t.len(), 1, "one token for the pull scope, reused: {t:?}");
    assert!(t[0].path.contains("service=fault"), "{:?}", t[0]);
    assert!(
        t[0].path.contains("scope=repository%3Ax%2Ftok%3Apull"),
        "{:?}",
        t[0]
    );
    assert!(!t[0].headers.contains_key("authorization"));
    // Logged in: the realm gets the credentials, the registry the token.
    let e = fault_env();
    let out = e.login(&server.addr, "alice", "wrong");
    assert_eq!(out.status.code(), Some(1));
    let out = e.login(&server.addr, "alice", "s3cret");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, err) = e.ok(&["pull", &name]);
    assert_eq!(digest_line(&err), sha256_hex(&img.manifest));
    let last = tokens(&server).pop().unwrap();
    assert_eq!(
        last.headers.get("authorization").map(String::as_str),
        Some("Basic YWxpY2U6czNjcmV0")
    );
    assert!(server
        .seen()
        .iter()
        .any(|r| r.headers.get("authorization").map(String::as_str) == Some("Bearer alice-token")));
    e.check_clean();
}

/// A blob larger than the chunk size goes up in PATCH chunks; the image
/// arrives whole (skopeo copies it, kiln pulls it back).
#[test]
fn chunked_upload() {
    let e = Env::new();
    e.ok(&["pull", "-q", "debian:bookworm-slim"]);
    let local = e.manifest_digest("debian:bookworm-slim");
    let repo = unique("chunked");
    let name = format!("{}/{repo}:1", fx("KILN_REGISTRY"));
    let out = e
        .cmd()
        .env("KILN_REGISTRY_CHUNK_SIZE", (4 << 20).to_string())
        .args(["push", "debian:bookworm-slim", &name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), local);
    let log = std::fs::read_to_string(fx("KILN_REGISTRY_LOG")).unwrap();
    let patches = log
        .lines()
        .filter(|l| l.contains(&format!("\"PATCH /v2/{repo}/blobs/uploads/")))
        .count();
    // The Debian layer is about 29 MB: at least 7 chunks of 4 MiB.
    assert!(patches >= 7, "{patches} PATCH requests");
    let dir = tempfile::tempdir().unwrap();
    run(Command::new("skopeo").args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{name}"),
        &format!("dir:{}", dir.path().join("d").display()),
    ]));
    let mut other = Env::new();
    other.registries_conf = None;
    let (_, err) = other.ok(&["pull", &name]);
    assert_eq!(digest_line(&err), local);
    other.check_clean();
}

#[test]
fn run_create_and_build_pull_what_is_missing() {
    let e = Env::new();
    // --pull never: a missing image is an error, nothing fetched.
    let out = e.output(&["run", "--rm", "--pull", "never", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    let (images, _) = e.ok(&["images", "-q"]);
    assert_eq!(images, "");
    // run pulls it through the docker.io mirror, as Docker does.
    let (out, err) = e.ok(&["run", "--rm", "--network", "none", "busybox", "echo", "hi"]);
    assert_eq!(out, "hi\n");
    assert!(
        err.starts_with("Unable to find image 'busybox:latest' locally\n"),
        "{err}"
    );
    assert!(
        err.contains("Status: Downloaded newer image for busybox"),
        "{err}"
    );
    // Present now: no pull, no message.
    let (_, err) = e.ok(&["create", "--name", "c1", "busybox", "true"]);
    assert_eq!(err, "");
    // --pull always asks the registry again.
    let (_, err) = e.ok(&["create", "--pull", "always", "busybox", "true"]);
    assert!(
        err.contains("Status: Image is up to date for busybox"),
        "{err}"
    );
    // A build FROM an image not in the store pulls it.
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM debian:bookworm-slim\nLABEL pulled=yes\n",
    )
    .unwrap();
    let (_, err) = e.ok(&["build", "-t", "pulled:1", ctx.path().to_str().unwrap()]);
    assert!(
        err.contains("Unable to find image 'debian:bookworm-slim' locally"),
        "{err}"
    );
    let (label, _) = e.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Config.Labels.pulled}}",
        "pulled:1",
    ]);
    assert_eq!(label.trim(), "yes");
    e.check_clean();
}

#[test]
fn build_push_pushes_every_name() {
    let e = Env::new();
    e.ok(&["pull", "-q", "busybox"]);
    let reg = fx("KILN_REGISTRY");
    let repo = unique("buildpush");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN echo built-and-pushed > /p\n",
    )
    .unwrap();
    let (a, b) = (format!("{reg}/{repo}:a"), format!("{reg}/{repo}:b"));
    let c = ctx.path().to_str().unwrap();
    // No name, nothing to push to.
    let err = e.fails(&["build", "--push", c]);
    assert!(err.contains("--push needs a name"), "{err}");
    // `-q`: stdout is the image id alone, as without --push.
    let (out, _) = e.ok(&["build", "-q", "--push", "-t", &a, "-t", &b, c]);
    assert!(
        out.trim().starts_with("sha256:") && out.lines().count() == 1,
        "{out}"
    );
    // Both names are in the registry: another store pulls and runs them.
    let mut other = Env::new();
    other.registries_conf = None;
    for name in [&a, &b] {
        other.ok(&["pull", "-q", name]);
        let (out, _) = other.ok(&["run", "--rm", name, "cat", "/p"]);
        assert_eq!(out, "built-and-pushed\n");
    }
}

#[test]
fn a_built_image_is_stored_uncompressed_and_pushed_with_gzip() {
    let e = Env::new();
    e.ok(&["pull", "-q", "busybox"]);
    let reg = fx("KILN_REGISTRY");
    let repo = unique("uncompressed");
    let name = format!("{reg}/{repo}:v1");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN seq 1 20000 > /numbers\n",
    )
    .unwrap();
    e.ok(&["build", "-q", "-t", &name, ctx.path().to_str().unwrap()]);
    let layer_types = |raw: &str| -> Vec<String> {
        let m: serde_json::Value = serde_json::from_str(raw).unwrap();
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["mediaType"].as_str().unwrap().to_string())
            .collect()
    };
    // In the store: busybox's layer as pulled, the RUN's as a plain tar.
    let local = e.manifest_digest(&name);
    let raw =
        std::fs::read_to_string(e.store.root().join("blobs/sha256").join(&local[7..])).unwrap();
    assert_eq!(
        layer_types(&raw),
        [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar"
        ],
        "{raw}"
    );
    // Pushed: every layer gzip-compressed, so another manifest digest,
    // which the image now lists among its repository digests.
    let (out, err) = e.ok(&["push", &name]);
    let pushed = out.trim().to_string();
    assert_ne!(pushed, local, "{err}");
    let raw = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}")));
    assert_eq!(
        layer_types(&raw),
        ["application/vnd.oci.image.layer.v1.tar+gzip"; 2],
        "{raw}"
    );
    let (digests, _) = e.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &name,
    ]);
    assert!(
        digests.contains(&format!("{reg}/{repo}@{pushed}")),
        "{digests}"
    );
    // The same image elsewhere: the same id, and it runs.
    let mut other = Env::new();
    other.registries_conf = None;
    other.ok(&["pull", "-q", &name]);
    let id = |env: &Env| {
        let (o, _) = env.ok(&["image", "inspect", "--format", "{{.Id}}", &name]);
        o.trim().to_string()
    };
    assert_eq!(id(&other), id(&e));
    let (out, _) = other.ok(&["run", "--rm", &name, "tail", "-n1", "/numbers"]);
    assert_eq!(out, "20000\n");
    // Pushed again: compressed the same, so nothing is sent.
    let log = fx("KILN_REGISTRY_LOG");
    let before = uploads_in_log(&log, &repo);
    let (out, err) = e.ok(&["push", &name]);
    assert_eq!(out.trim(), pushed);
    assert!(!err.contains("Pushed"), "{err}");
    assert_eq!(uploads_in_log(&log, &repo), before);
    e.check_clean();
}
