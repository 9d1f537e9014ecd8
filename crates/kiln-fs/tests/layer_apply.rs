//! The layer applier: round trips, overlay forms, and the breakout table.
//! Each hostile layer is applied into `root/` with a decoy directory beside
//! it; the decoy's content must not change, whatever the layer does.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use kiln_fs::apply::{apply_layer, ApplyOptions};
use kiln_fs::layer::{write_layer, WriteOptions};

/// One tar entry, written with raw header bytes so that hostile names
/// (`..`, absolute paths) go in as given.
enum E<'a> {
    File(&'a [u8], &'a [u8]),
    Dir(&'a [u8]),
    Symlink(&'a [u8], &'a [u8]),
    Hardlink(&'a [u8], &'a [u8]),
}

fn raw_tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_ustar();
        let (name, kind, data, link): (&[u8], tar::EntryType, &[u8], &[u8]) = match e {
            E::File(n, d) => (n, tar::EntryType::Regular, d, b""),
            E::Dir(n) => (n, tar::EntryType::Directory, b"", b""),
            E::Symlink(n, t) => (n, tar::EntryType::Symlink, b"", t),
            E::Hardlink(n, t) => (n, tar::EntryType::Link, b"", t),
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_size(data.len() as u64);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// A scene: `root/` to apply into, `decoy/` beside it with a secret.
struct Scene {
    dir: tempfile::TempDir,
}

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("root")).unwrap();
        fs::create_dir(dir.path().join("decoy")).unwrap();
        fs::write(dir.path().join("decoy/secret"), "do not touch").unwrap();
        Scene { dir }
    }
    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }
    fn decoy_listing(&self) -> Vec<(String, u64, String)> {
        let mut v: Vec<_> = fs::read_dir(self.dir.path().join("decoy"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                let content = fs::read_to_string(e.path()).unwrap_or_default();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    m.len(),
                    content,
                )
            })
            .collect();
        v.sort();
        v
    }
    fn apply(&self, tar: &[u8]) -> Result<kiln_fs::apply::ApplyStats, kiln_fs::apply::ApplyError> {
        apply_layer(tar, &self.root(), &ApplyOptions::default())
    }
}

fn decoy_path(scene: &Scene) -> Vec<u8> {
    scene
        .dir
        .path()
        .join("decoy")
        .to_string_lossy()
        .into_owned()
        .into_bytes()
}

/// Apply and check the decoy is untouched; return whether the layer applied.
fn hostile(scene: &Scene, tar: &[u8]) -> bool {
    let before = scene.decoy_listing();
    let result = scene.apply(tar);
    assert_eq!(
        scene.decoy_listing(),
        before,
        "the decoy changed: {result:?}"
    );
    if let Err(e) = &result {
        assert!(e.to_string().contains("layer"), "unclear error: {e}");
    }
    result.is_ok()
}

#[test]
fn absolute_symlink_then_file_through_it() {
    let s = Scene::new();
    let abs = decoy_path(&s);
    hostile(
        &s,
        &raw_tar(&[E::Symlink(b"evil", &abs), E::File(b"evil/pwned", b"x")]),
    );
    assert!(!s.dir.path().join("decoy/pwned").exists());
}

#[test]
fn relative_symlink_up_and_out() {
    let s = Scene::new();
    hostile(
        &s,
        &raw_tar(&[
            E::Symlink(b"up", b"../../../decoy"),
            E::File(b"up/pwned", b"x"),
        ]),
    );
    assert!(!s.dir.path().join("decoy/pwned").exists());
}

#[test]
fn chain_of_symlinks() {
    let s = Scene::new();
    let abs = decoy_path(&s);
    hostile(
        &s,
        &raw_tar(&[
            E::Symlink(b"a", b"b"),
            E::Symlink(b"b", b"c/../../.."),
            E::Dir(b"c"),
            E::Symlink(b"d", &abs),
            E::File(b"a/decoy/pwned", b"x"),
            E::File(b"d/pwned", b"x"),
        ]),
    );
}

#[test]
fn dotdot_names_stay_inside() {
    let s = Scene::new();
    assert!(hostile(
        &s,
        &raw_tar(&[
            E::File(b"../decoy/secret", b"overwritten"),
            E::File(b"/../../x", b"y")
        ])
    ));
    assert_eq!(
        fs::read_to_string(s.root().join("decoy/secret")).unwrap(),
        "overwritten"
    );
    assert!(s.root().join("x").exists());
}

#[test]
fn hardlinks_absolute_relative_up_and_through_symlink() {
    let s = Scene::new();
    let secret = format!("{}/secret", String::from_utf8(decoy_path(&s)).unwrap());
    assert!(!hostile(
        &s,
        &raw_tar(&[E::Hardlink(b"h1", secret.as_bytes())])
    ));
    let s = Scene::new();
    assert!(!hostile(
        &s,
        &raw_tar(&[E::Hardlink(b"h2", b"../decoy/secret")])
    ));
    let s = Scene::new();
    let abs = decoy_path(&s);
    assert!(!hostile(
        &s,
        &raw_tar(&[E::Symlink(b"l", &abs), E::Hardlink(b"h3", b"l/secret")])
    ));
    // A hardlink to a symlink links the symlink itself, not its target.
    let s = Scene::new();
    assert!(hostile(
        &s,
        &raw_tar(&[E::Symlink(b"l", &abs), E::Hardlink(b"h4", b"l")])
    ));
    assert!(fs::symlink_metadata(s.root().join("h4"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn directory_overriding_a_symlink() {
    let s = Scene::new();
    let abs = decoy_path(&s);
    assert!(hostile(
        &s,
        &raw_tar(&[
            E::Symlink(b"d", &abs),
            E::Dir(b"d/"),
            E::File(b"d/f", b"in")
        ])
    ));
    assert!(s.root().join("d").is_dir());
    assert_eq!(fs::read_to_string(s.root().join("d/f")).unwrap(), "in");
}

#[test]
fn whiteout_names() {
    for bad in [&b".wh.."[..], b".wh...", b".wh.", b"sub/.wh..wh.x"] {
        let s = Scene::new();
        assert!(
            !hostile(&s, &raw_tar(&[E::File(bad, b"")])),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let s = Scene::new();
    assert!(
        !hostile(&s, &raw_tar(&[E::File(b".wh.dir/file", b"x")])),
        ".wh. as a directory name"
    );
}

#[test]
fn whiteout_of_a_symlink_and_through_a_symlinked_parent() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: whiteout devices need root");
        return;
    }
    let s = Scene::new();
    let abs = decoy_path(&s);
    assert!(hostile(
        &s,
        &raw_tar(&[E::Symlink(b"s", &abs), E::File(b".wh.s", b"")])
    ));
    let m = fs::symlink_metadata(s.root().join("s")).unwrap();
    assert!(m.file_type().is_char_device() && m.rdev() == 0);
    let s = Scene::new();
    hostile(
        &s,
        &raw_tar(&[E::Symlink(b"p", &abs), E::File(b"p/.wh.secret", b"")]),
    );
    assert!(s.dir.path().join("decoy/secret").is_file());
}

/// The applier keeps the previous entry's parent open; these layers change
/// what a parent path resolves to between entries, and each later entry
/// must land where resolving its path afresh puts it.
#[test]
fn a_replaced_parent_is_resolved_again() {
    // A directory replaced by a symlink to another: later entries follow
    // the symlink.
    let s = Scene::new();
    assert!(hostile(
        &s,
        &raw_tar(&[
            E::Dir(b"b/"),
            E::Dir(b"a/"),
            E::File(b"a/f1", b"1"),
            E::Symlink(b"a", b"/b"),
            E::File(b"a/f2", b"2"),
        ])
    ));
    assert!(!s.root().join("b/f1").exists());
    assert_eq!(fs::read_to_string(s.root().join("b/f2")).unwrap(), "2");

    // A parent whose resolution goes through one of its own children
    // (`a` -> `c/n/x/../..`): replacing that child by an entry with the
    // same parent moves the parent, and the next entry follows it.
    let s = Scene::new();
    assert!(hostile(
        &s,
        &raw_tar(&[
            E::Dir(b"c/"),
            E::Dir(b"c/n/"),
            E::Dir(b"c/n/x/"),
            E::Dir(b"e/"),
            E::Dir(b"e/n/"),
            E::Dir(b"e/n/q/"),
            E::Symlink(b"a", b"c/n/x/../.."),
            E::File(b"a/n/f1", b"1"),
            E::Symlink(b"a/n/x", b"/e/n/q"),
            E::File(b"a/n/f2", b"2"),
        ])
    ));
    assert_eq!(fs::read_to_string(s.root().join("c/n/f1")).unwrap(), "1");
    assert!(s.root().join("c/n/x").is_symlink());
    assert_eq!(fs::read_to_string(s.root().join("e/n/f2")).unwrap(), "2");
    assert!(!s.root().join("c/n/f2").exists());
}

#[test]
fn duplicate_entries_last_wins() {
    let s = Scene::new();
    assert!(hostile(
        &s,
        &raw_tar(&[
            E::File(b"f", b"first"),
            E::File(b"f", b"second"),
            E::Dir(b"f/"),
            E::File(b"f/x", b"")
        ])
    ));
    assert!(s.root().join("f").is_dir());
}

#[test]
fn truncated_archives_fail() {
    let full = raw_tar(&[E::File(b"f", &[7u8; 4000])]);
    for cut in [100, 512, 1500, 4000] {
        let s = Scene::new();
        assert!(!hostile(&s, &full[..cut]), "cut at {cut}");
    }
}

#[test]
fn size_cap_stops_a_bomb() {
    let s = Scene::new();
    let tar = raw_tar(&[E::File(b"a", &[0u8; 3000]), E::File(b"b", &[0u8; 3000])]);
    let e = apply_layer(tar.as_slice(), &s.root(), &ApplyOptions { max_size: 4000 }).unwrap_err();
    assert!(e.to_string().contains("more than 4000 bytes"), "{e}");
}

#[test]
fn long_and_non_utf8_names_round_trip() {
    let src = tempfile::tempdir().unwrap();
    let deep: String = (0..30)
        .map(|i| format!("dir{i:03}-{}/", "x".repeat(120)))
        .collect();
    fs::create_dir_all(src.path().join(&deep)).unwrap();
    fs::write(src.path().join(&deep).join("f"), "deep").unwrap();
    use std::os::unix::ffi::OsStrExt;
    fs::write(
        src.path().join(std::ffi::OsStr::from_bytes(b"n\xffx")),
        "raw",
    )
    .unwrap();
    let (_, tar) = write_layer(src.path(), Vec::new(), &WriteOptions::default()).unwrap();
    let s = Scene::new();
    assert!(hostile(&s, &tar));
    assert_eq!(
        fs::read_to_string(s.root().join(&deep).join("f")).unwrap(),
        "deep"
    );
    assert!(s
        .root()
        .join(std::ffi::OsStr::from_bytes(b"n\xffx"))
        .exists());
    assert!(deep.len() > 3800);
}

#[test]
fn round_trip_keeps_modes_owners_links_and_times() {
    let src = tempfile::tempdir().unwrap();
    let r = src.path();
    fs::create_dir(r.join("bin")).unwrap();
    fs::write(r.join("bin/tool"), "#!/bin/sh\n").unwrap();
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::lchown(r.join("bin/tool"), Some(1000), Some(1000)).unwrap();
    }
    // After the chown, which would clear setuid.
    fs::set_permissions(r.join("bin/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::symlink("tool", r.join("bin/alias")).unwrap();
    fs::hard_link(r.join("bin/tool"), r.join("bin/hard")).unwrap();
    let (_, tar) = write_layer(r, Vec::new(), &WriteOptions::default()).unwrap();
    let s = Scene::new();
    s.apply(&tar).unwrap();
    let out = s.root();
    let m = fs::metadata(out.join("bin/tool")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755);
    if rustix::process::geteuid().is_root() {
        assert_eq!((m.uid(), m.gid()), (1000, 1000));
    }
    assert_eq!(m.mtime(), fs::metadata(r.join("bin/tool")).unwrap().mtime());
    assert_eq!(
        fs::read_link(out.join("bin/alias")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(fs::metadata(out.join("bin/hard")).unwrap().ino(), m.ino());
    assert_eq!(
        fs::metadata(out.join("bin")).unwrap().mtime(),
        fs::metadata(r.join("bin")).unwrap().mtime()
    );
    // Written again from the result: the same bytes.
    let (_, again) = write_layer(&out, Vec::new(), &WriteOptions::default()).unwrap();
    assert_eq!(again, tar);
}

#[test]
fn device_and_fifo_modes_are_not_masked() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: device nodes need root");
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let r = src.path();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
    // Whatever the umask did at creation.
    fs::set_permissions(r.join("null"), fs::Permissions::from_mode(0o666)).unwrap();
    fs::set_permissions(r.join("pipe"), fs::Permissions::from_mode(0o622)).unwrap();
    let (_, tar) = write_layer(r, Vec::new(), &WriteOptions::default()).unwrap();
    let s = Scene::new();
    s.apply(&tar).unwrap();
    let null = fs::symlink_metadata(s.root().join("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(
        (null.mode() & 0o7777, null.rdev()),
        (0o666, rustix::fs::makedev(1, 3))
    );
    let pipe = fs::symlink_metadata(s.root().join("pipe")).unwrap();
    assert!(pipe.file_type().is_fifo());
    assert_eq!(pipe.mode() & 0o7777, 0o622);
}
