//! Helpers for the tests that run the real `kiln` binary on a store.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::Digest as _;

/// A store in a temporary directory.
pub(crate) struct TestStore {
    pub(crate) dir: tempfile::TempDir,
}

/// The bridge of the tests' containers.
#[allow(dead_code)]
pub(crate) const TEST_BRIDGE: &str = "kilntest0";
/// Its subnet.
#[allow(dead_code)]
pub(crate) const TEST_SUBNET: &str = "10.213.0.0/16";

impl TestStore {
    pub(crate) fn new() -> TestStore {
        TestStore {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub(crate) fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kiln"));
        c.env("KILN_ROOT", self.root()).stdin(Stdio::null());
        // Every test store shares one test bridge and its address book,
        // apart from a user's kiln0 (see NetworkConfig::from_env).
        c.env("KILN_BRIDGE", TEST_BRIDGE)
            .env("KILN_SUBNET", TEST_SUBNET)
            .env("KILN_NETWORK_DIR", "/run/kiln-tests/network");
        c
    }

    pub(crate) fn output(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Run, expect success, return stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "kiln {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run with `input` on stdin, expect success, return stdout.
    pub(crate) fn ok_stdin(&self, args: &[&str], input: Vec<u8>) -> String {
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(
            out.status.success(),
            "kiln {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Run, expect failure (exit 1), return stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "kiln {args:?} should fail; stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// What the store holds: blob and snapshot names, temporary files,
    /// and the image list.
    pub(crate) fn state(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["blobs/sha256", "snapshots", "ingest"] {
            let dir = self.root().join(sub);
            let mut names: Vec<String> = fs::read_dir(&dir)
                .map(|rd| {
                    rd.map(|e| format!("{sub}/{}", e.unwrap().file_name().to_string_lossy()))
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            out.extend(names);
        }
        if self.root().join("meta.redb").exists() {
            let images = self.ok(&[
                "images",
                "--no-trunc",
                "--format",
                "{{.Repository}}:{{.Tag}} {{.ID}} {{.Digest}}",
            ]);
            out.extend(images.lines().map(str::to_string));
        }
        out
    }
}

/// A small root file system: directories, files of `size` bytes, a
/// symlink, a hardlink, an executable, odd modes.
pub(crate) fn make_rootfs(root: &Path, files: usize, size: usize) {
    for d in ["bin", "etc", "usr/share/doc", "tmp", "var/empty"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..files {
        let mut data = Vec::with_capacity(size);
        while data.len() < size {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            // Half random, half text: compressible like real files.
            if data.len() % 2048 < 1024 {
                data.extend_from_slice(&seed.to_le_bytes());
            } else {
                data.extend_from_slice(b"lorem ipsum dolor");
            }
        }
        data.truncate(size);
        fs::write(root.join(format!("usr/share/doc/file-{i:05}")), data).unwrap();
    }
    fs::write(root.join("bin/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::symlink("tool", root.join("bin/link")).unwrap();
    fs::hard_link(root.join("etc/passwd"), root.join("etc/passwd-")).unwrap();
}

/// `tar -C dir -cf out .` with GNU tar.
pub(crate) fn tar_dir(dir: &Path, out: &Path) -> PathBuf {
    let status = Command::new("tar")
        .arg("--numeric-owner")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    out.to_path_buf()
}

/// Path → (type, mode, uid, gid, size, link target, content hash).
pub(crate) fn listing(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let ft = m.file_type();
        let (kind, extra) = if ft.is_dir() {
            for e in fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            ("d", String::new())
        } else if ft.is_symlink() {
            ("l", fs::read_link(&p).unwrap().display().to_string())
        } else if ft.is_file() {
            ("f", sha256_hex(&fs::read(&p).unwrap()))
        } else {
            ("o", String::new())
        };
        if rel.is_empty() {
            continue;
        }
        out.insert(
            rel,
            format!(
                "{kind} {:o} {}:{} {} {extra}",
                m.mode() & 0o7777,
                m.uid(),
                m.gid(),
                if ft.is_file() { m.len() } else { 0 }
            ),
        );
    }
    out
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    let h = sha2::Sha256::digest(data);
    h.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn largest_file(dir: &Path) -> PathBuf {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| fs::metadata(p).unwrap().len())
        .unwrap()
}

/// Offset of the largest entry's data in a tar archive.
pub(crate) fn find_layer_offset(archive: &Path) -> usize {
    let mut a = tar::Archive::new(fs::File::open(archive).unwrap());
    let mut best = (0u64, 0u64);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        if e.size() > best.0 {
            best = (e.size(), e.raw_file_position());
        }
    }
    best.1 as usize
}

fn append(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, name, data).unwrap();
}

/// An OCI archive whose one layer uses a whiteout name as a directory
/// and tries to climb out of its root.
pub(crate) fn hostile_oci_archive() -> Vec<u8> {
    let mut layer = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    layer
        .append_link(&mut h, "evil", "../../../../escaped")
        .unwrap();
    append(&mut layer, "evil/pwned", b"outside?");
    append(&mut layer, ".wh.x/y", b"whiteout as a directory");
    let layer = layer.into_inner().unwrap();
    let layer_hex = sha256_hex(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["sha256:{layer_hex}"]}}}}"#
    );
    let config_hex = sha256_hex(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{config_hex}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:{layer_hex}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let manifest_hex = sha256_hex(manifest.as_bytes());
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{manifest_hex}","size":{},"annotations":{{"io.containerd.image.name":"docker.io/library/hostile:latest"}}}}]}}"#,
        manifest.len()
    );
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    append(&mut b, &format!("blobs/sha256/{layer_hex}"), &layer);
    append(
        &mut b,
        &format!("blobs/sha256/{config_hex}"),
        config.as_bytes(),
    );
    append(
        &mut b,
        &format!("blobs/sha256/{manifest_hex}"),
        manifest.as_bytes(),
    );
    append(&mut b, "index.json", index.as_bytes());
    b.into_inner().unwrap()
}

/// A docker-archive of the image in `oci_archive` (saved by kiln) whose
/// config claims another DiffID for the layer.
pub(crate) fn docker_archive_with_wrong_diffid(t: &TestStore, _oci_archive: &Path) -> Vec<u8> {
    let tmp = t.dir.path().join("wrong-diffid.src.tar");
    let images = t.ok(&["images", "-q"]);
    let id = images.lines().next().unwrap().to_string();
    t.ok(&["save", "-o", tmp.to_str().unwrap(), &id]);
    let mut a = tar::Archive::new(fs::File::open(&tmp).unwrap());
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if e.header().entry_type().is_file() {
            entries.push((name, data));
        }
    }
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        if name.ends_with(".json") && name != "manifest.json" {
            let mut v: serde_json::Value = serde_json::from_slice(&data).unwrap();
            v["rootfs"]["diff_ids"][0] =
                serde_json::Value::String(format!("sha256:{}", "0".repeat(64)));
            append(&mut b, "config.json", &serde_json::to_vec(&v).unwrap());
        } else if name == "manifest.json" {
            let mut v: serde_json::Value = serde_json::from_slice(&data).unwrap();
            v[0]["Config"] = "config.json".into();
            append(&mut b, &name, &serde_json::to_vec(&v).unwrap());
        } else {
            append(&mut b, &name, &data);
        }
    }
    b.into_inner().unwrap()
}

/// A test that failed half-way leaves no container running (and no mount)
/// behind it: every container of the store is removed by force.
impl Drop for TestStore {
    fn drop(&mut self) {
        let has_containers = std::fs::read_dir(self.root().join("containers"))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if !has_containers {
            return;
        }
        let Ok(out) = self.cmd().args(["ps", "-a", "-q", "--no-trunc"]).output() else {
            return;
        };
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        if !ids.is_empty() {
            let _ = self.cmd().args(["rm", "-f", "-v"]).args(&ids).output();
        }
    }
}
