//! The layer writer on real trees (as root, as CI runs): every file type,
//! overlay whiteouts and opaque directories, xattrs, long and non-UTF-8
//! names, determinism, and agreement with GNU tar's reading.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use kiln_fs::layer::{write_layer, WriteOptions};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// (path, type char, mode, size, link) of every entry, in order; PAX
/// records applied by the tar reader.
fn listing(tar_bytes: &[u8]) -> Vec<(String, char, u32, u64, String)> {
    let mut ar = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let h = e.header();
        let t = match h.entry_type() {
            tar::EntryType::Regular => 'f',
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => 'h',
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            tar::EntryType::Fifo => 'p',
            _ => '?',
        };
        let mode = h.mode().unwrap();
        let size = h.size().unwrap();
        let link = e
            .link_name_bytes()
            .map(|l| String::from_utf8_lossy(&l).into_owned())
            .unwrap_or_default();
        let mut sink = Vec::new();
        e.read_to_end(&mut sink).unwrap();
        out.push((path, t, mode, size, link));
    }
    out
}

fn layer(root: &Path, opts: &WriteOptions) -> (Vec<u8>, kiln_fs::layer::LayerInfo) {
    let (info, out) = write_layer(root, Vec::new(), opts).unwrap();
    (out, info)
}

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    fs::create_dir_all(r.join("etc/app")).unwrap();
    fs::write(r.join("etc/app/conf"), "a=1\n").unwrap();
    fs::write(r.join("b.txt"), "bee").unwrap();
    fs::set_permissions(r.join("b.txt"), fs::Permissions::from_mode(0o4755)).unwrap();
    symlink("etc/app/conf", r.join("link")).unwrap();
    fs::hard_link(r.join("b.txt"), r.join("z-hard")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    t
}

#[test]
fn types_order_and_determinism() {
    let t = tree();
    let (bytes, info) = layer(t.path(), &WriteOptions::default());
    let l = listing(&bytes);
    let names: Vec<&str> = l.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "b.txt",
            "etc/",
            "etc/app/",
            "etc/app/conf",
            "fifo",
            "link",
            "z-hard"
        ]
    );
    assert_eq!(l[0].1, 'f');
    assert_eq!(l[0].2, 0o4755, "setuid kept");
    assert_eq!(l[0].3, 3);
    assert_eq!(l[4].1, 'p');
    assert_eq!((l[5].1, l[5].4.as_str()), ('l', "etc/app/conf"));
    assert_eq!((l[6].1, l[6].4.as_str()), ('h', "b.txt"));
    assert_eq!(info.entries, 7);
    assert_eq!(info.size, bytes.len() as u64);
    // The same tree, the same bytes.
    let (again, info2) = layer(t.path(), &WriteOptions::default());
    assert_eq!(again, bytes);
    assert_eq!(info2.diff_id, info.diff_id);
}

#[test]
fn source_date_epoch_clamps_mtimes() {
    let t = tree();
    let opts = WriteOptions {
        source_date_epoch: Some(1_000_000),
        ..WriteOptions::default()
    };
    let (bytes, _) = layer(t.path(), &opts);
    let mut ar = tar::Archive::new(bytes.as_slice());
    for e in ar.entries().unwrap() {
        assert!(e.unwrap().header().mtime().unwrap() <= 1_000_000);
    }
}

#[test]
fn overlay_whiteouts_and_opaque_dirs() {
    if !is_root() {
        eprintln!("skipped: needs root for whiteout devices and trusted xattrs");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    fs::create_dir(r.join("opq")).unwrap();
    fs::write(r.join("opq/new"), "n").unwrap();
    rustix::fs::lsetxattr(
        r.join("opq"),
        "trusted.overlay.opaque",
        b"y",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        r.join("gone"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::empty(),
        0,
    )
    .unwrap();
    fs::write(r.join("aaa"), "x").unwrap();
    let (bytes, _) = layer(
        r,
        &WriteOptions {
            overlay: true,
            ..WriteOptions::default()
        },
    );
    let names: Vec<String> = listing(&bytes).into_iter().map(|e| e.0).collect();
    assert_eq!(
        names,
        [".wh.gone", "aaa", "opq/", "opq/.wh..wh..opq", "opq/new"]
    );
    // Not an overlay: the device is written as it is.
    let (plain, _) = layer(r, &WriteOptions::default());
    let l = listing(&plain);
    assert!(l.iter().any(|e| e.0 == "gone" && e.1 == 'c'));
    assert!(!l.iter().any(|e| e.0.contains(".wh.")));
}

#[test]
fn xattrs_travel_but_not_trusted_ones() {
    if !is_root() {
        eprintln!("skipped: needs root for trusted xattrs");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("f");
    fs::write(&f, "x").unwrap();
    rustix::fs::lsetxattr(&f, "user.kiln", b"v", rustix::fs::XattrFlags::empty()).unwrap();
    rustix::fs::lsetxattr(&f, "trusted.secret", b"no", rustix::fs::XattrFlags::empty()).unwrap();
    let (bytes, _) = layer(t.path(), &WriteOptions::default());
    let mut ar = tar::Archive::new(bytes.as_slice());
    let mut e = ar.entries().unwrap().next().unwrap().unwrap();
    let pax: Vec<(String, Vec<u8>)> = e
        .pax_extensions()
        .unwrap()
        .unwrap()
        .map(|x| {
            let x = x.unwrap();
            (x.key().unwrap().to_string(), x.value_bytes().to_vec())
        })
        .collect();
    assert_eq!(
        pax,
        vec![("SCHILY.xattr.user.kiln".to_string(), b"v".to_vec())]
    );
}

#[test]
fn long_and_non_utf8_names_in_pax() {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    let deep = "d".repeat(120);
    fs::create_dir(r.join(&deep)).unwrap();
    let long_file = format!("{deep}/{}", "f".repeat(200));
    fs::write(r.join(&long_file), "long").unwrap();
    let raw = OsStr::from_bytes(b"bad\xffname");
    fs::write(r.join(raw), "nonutf8").unwrap();
    symlink("t".repeat(150), r.join("longlink")).unwrap();
    let (bytes, _) = layer(r, &WriteOptions::default());
    let l = listing(&bytes);
    assert!(l.iter().any(|e| e.0 == long_file && e.3 == 4), "{l:?}");
    assert!(l.iter().any(|e| e.0 == "bad\u{fffd}name"), "{l:?}");
    assert!(l
        .iter()
        .any(|e| e.0 == "longlink" && e.4 == "t".repeat(150)));
    // GNU tar agrees.
    let tarfile = t.path().join("../layer-long.tar");
    fs::write(&tarfile, &bytes).unwrap();
    let out = Command::new("tar")
        .arg("-tf")
        .arg(&tarfile)
        .output()
        .unwrap();
    let _ = fs::remove_file(&tarfile);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.lines().any(|l| l == long_file), "{listed}");
}

#[test]
fn gnu_tar_reads_what_we_write() {
    let t = tree();
    let (bytes, _) = layer(t.path(), &WriteOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let tarfile = dir.path().join("l.tar");
    fs::write(&tarfile, &bytes).unwrap();
    let out = Command::new("tar")
        .arg("-tvf")
        .arg(&tarfile)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("z-hard link to b.txt"), "{text}");
    assert!(text.contains("link -> etc/app/conf"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("-rwsr-xr-x") && l.ends_with(" b.txt")),
        "{text}"
    );
}

/// `tree-listing.sh --mtime ROOT` (the root's own line left out).
fn tree_listing(root: &Path) -> String {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fixtures/tree-listing.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("--mtime")
        .arg(root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(".\t"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn cp_a(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .unwrap();
    assert!(ok.success());
}

/// A lower tree and an upper tree copied from it (`cp -a`, so unchanged
/// entries keep their mtimes) then changed in every way a diff must see.
fn lower_and_changed_upper() -> (tempfile::TempDir, tempfile::TempDir) {
    let lower = tempfile::tempdir().unwrap();
    let l = lower.path();
    fs::create_dir_all(l.join("usr/lib/deep")).unwrap();
    fs::write(l.join("usr/lib/deep/keep"), "same").unwrap();
    fs::write(l.join("usr/lib/edit"), "old").unwrap();
    fs::write(l.join("usr/lib/same-size"), "aaaa").unwrap();
    fs::create_dir_all(l.join("var/cache/sub")).unwrap();
    fs::write(l.join("var/cache/sub/f"), "x").unwrap();
    fs::write(l.join("var/old"), "o").unwrap();
    fs::write(l.join("becomes-dir"), "f").unwrap();
    fs::create_dir(l.join("becomes-link")).unwrap();
    fs::write(l.join("becomes-link/inner"), "i").unwrap();
    symlink("usr/lib/edit", l.join("link")).unwrap();
    fs::create_dir(l.join("mode")).unwrap();
    fs::set_permissions(l.join("mode"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(l.join("unchanged"), "u").unwrap();

    let upper = tempfile::tempdir().unwrap();
    let u = upper.path();
    cp_a(l, u);
    // Added deep in an unchanged directory: its parents are written too.
    fs::write(u.join("usr/lib/deep/new"), "new").unwrap();
    fs::write(u.join("usr/lib/edit"), "newer").unwrap();
    // Same size, content changed, mtime set back to the lower's to the
    // second: only the content shows it.
    fs::write(u.join("usr/lib/same-size"), "bbbb").unwrap();
    let lower_mtime = fs::metadata(l.join("usr/lib/same-size")).unwrap().mtime();
    let t = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: lower_mtime,
            tv_nsec: 0,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: lower_mtime,
            tv_nsec: 0,
        },
    };
    for p in [l.join("usr/lib/same-size"), u.join("usr/lib/same-size")] {
        rustix::fs::utimensat(rustix::fs::CWD, &p, &t, rustix::fs::AtFlags::empty()).unwrap();
    }
    fs::remove_dir_all(u.join("var/cache")).unwrap();
    fs::remove_file(u.join("var/old")).unwrap();
    fs::remove_file(u.join("becomes-dir")).unwrap();
    fs::create_dir(u.join("becomes-dir")).unwrap();
    fs::write(u.join("becomes-dir/child"), "c").unwrap();
    fs::remove_dir_all(u.join("becomes-link")).unwrap();
    symlink("usr", u.join("becomes-link")).unwrap();
    fs::remove_file(u.join("link")).unwrap();
    symlink("usr/lib/deep/keep", u.join("link")).unwrap();
    fs::set_permissions(u.join("mode"), fs::Permissions::from_mode(0o700)).unwrap();
    (lower, upper)
}

#[test]
fn diff_of_two_directories() {
    let (lower, upper) = lower_and_changed_upper();
    let opts = WriteOptions {
        lower: Some(lower.path().to_path_buf()),
        ..WriteOptions::default()
    };
    let (bytes, info) = layer(upper.path(), &opts);
    let l = listing(&bytes);
    let names: Vec<&str> = l.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "becomes-dir/",
            "becomes-dir/child",
            "becomes-link",
            "link",
            "mode/",
            "usr/",
            "usr/lib/",
            "usr/lib/deep/",
            "usr/lib/deep/new",
            "usr/lib/edit",
            "usr/lib/same-size",
            "var/",
            "var/.wh.cache",
            "var/.wh.old",
        ]
    );
    let mode = l.iter().find(|e| e.0 == "mode/").unwrap();
    assert_eq!(mode.2, 0o700);
    let link = l.iter().find(|e| e.0 == "link").unwrap();
    assert_eq!(link.4, "usr/lib/deep/keep");
    // The same trees give the same bytes.
    let (again, info2) = layer(upper.path(), &opts);
    assert_eq!(again, bytes);
    assert_eq!(info2.diff_id, info.diff_id);
    // Identical trees: an empty layer.
    let same = tempfile::tempdir().unwrap();
    cp_a(lower.path(), same.path());
    let (empty, _) = layer(
        same.path(),
        &WriteOptions {
            lower: Some(lower.path().to_path_buf()),
            ..WriteOptions::default()
        },
    );
    assert!(listing(&empty).is_empty());
    // Overlay and lower together are refused.
    let both = WriteOptions {
        overlay: true,
        lower: Some(lower.path().to_path_buf()),
        ..WriteOptions::default()
    };
    assert!(write_layer(upper.path(), Vec::new(), &both).is_err());
}

/// The diff, applied as a snapshot on top of the lower tree's and mounted
/// with overlayfs as Docker stacks layers, shows exactly the upper tree.
#[test]
fn diff_stacked_on_its_lower_is_the_upper() {
    if !is_root() {
        eprintln!("skipped: needs root to mount overlayfs");
        return;
    }
    let (lower, upper) = lower_and_changed_upper();
    let base = layer(lower.path(), &WriteOptions::default()).0;
    let diff = layer(
        upper.path(),
        &WriteOptions {
            lower: Some(lower.path().to_path_buf()),
            ..WriteOptions::default()
        },
    )
    .0;
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    for d in ["a", "b", "merged"] {
        fs::create_dir(w.join(d)).unwrap();
    }
    let opts = kiln_fs::apply::ApplyOptions::default();
    kiln_fs::apply::apply_layer(base.as_slice(), &w.join("a"), &opts).unwrap();
    kiln_fs::apply::apply_layer(diff.as_slice(), &w.join("b"), &opts).unwrap();
    let data = format!(
        "lowerdir={}:{}",
        w.join("b").display(),
        w.join("a").display()
    );
    rustix::mount::mount(
        "overlay",
        w.join("merged"),
        "overlay",
        rustix::mount::MountFlags::RDONLY,
        std::ffi::CString::new(data).unwrap().as_c_str(),
    )
    .unwrap();
    let merged = tree_listing(&w.join("merged"));
    let expected = tree_listing(upper.path());
    rustix::mount::unmount(w.join("merged"), rustix::mount::UnmountFlags::DETACH).unwrap();
    assert_eq!(merged, expected);
}

#[test]
fn an_upper_directory_extracts_as_it_is_unless_the_tar_cannot_say_it() {
    use kiln_fs::layer::extracts_as_is;
    use rustix::fs::{lgetxattr, lsetxattr, mknodat, FileType, Mode, XattrFlags, CWD};
    if !is_root() {
        eprintln!("skipped: needs root for whiteout devices and trusted xattrs");
        return;
    }
    let set = |p: &Path, name: &str, v: &[u8]| lsetxattr(p, name, v, XattrFlags::empty()).unwrap();
    let has = |p: &Path, name: &str| lgetxattr(p, name, &mut [0u8; 64]).is_ok();
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    fs::create_dir(r.join("opq")).unwrap();
    fs::write(r.join("opq/new"), "new").unwrap();
    fs::write(r.join("copied-up"), "0123456789").unwrap();
    fs::hard_link(r.join("copied-up"), r.join("link")).unwrap();
    symlink("copied-up", r.join("sym")).unwrap();
    mknodat(
        CWD,
        r.join("gone"),
        FileType::CharacterDevice,
        Mode::empty(),
        0,
    )
    .unwrap();
    set(&r.join("opq"), "trusted.overlay.opaque", b"y");
    set(&r.join("copied-up"), "trusted.overlay.origin", b"\x00\xfb");
    set(r, "trusted.overlay.impure", b"y");
    set(r, "trusted.overlay.opaque", b"y");
    // What overlayfs (Linux >= 6.6) stores on the upper root.
    set(r, "trusted.overlay.uuid", &[0xab; 16]);
    set(&r.join("copied-up"), "user.note", b"kept");
    let before = layer(
        r,
        &WriteOptions {
            overlay: true,
            ..WriteOptions::default()
        },
    );
    // Files' bytes, a hard-linked inode once.
    assert_eq!(extracts_as_is(r, true).unwrap(), Some(13));
    // Overlay's bookkeeping is gone, the opaque marker and user xattrs
    // stay, and the tar is the same.
    assert!(!has(&r.join("copied-up"), "trusted.overlay.origin"));
    assert!(!has(r, "trusted.overlay.impure"));
    assert!(!has(r, "trusted.overlay.uuid"));
    assert!(!has(r, "trusted.overlay.opaque"));
    assert!(has(&r.join("opq"), "trusted.overlay.opaque"));
    assert!(has(&r.join("copied-up"), "user.note"));
    let after = layer(
        r,
        &WriteOptions {
            overlay: true,
            ..WriteOptions::default()
        },
    );
    assert_eq!(before.1, after.1);
    // Not an overlay: a 0/0 device is a device, which is not kept as it is.
    assert_eq!(extracts_as_is(r, false).unwrap(), None);

    // What the tar cannot say, each alone.
    let refused = |make: &dyn Fn(&Path)| {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join("f"), "f").unwrap();
        make(t.path());
        assert_eq!(extracts_as_is(t.path(), true).unwrap(), None);
    };
    refused(&|p| fs::write(p.join(".wh.name"), "").unwrap());
    refused(&|p| {
        mknodat(CWD, p.join("fifo"), FileType::Fifo, Mode::RUSR, 0).unwrap();
    });
    refused(&|p| {
        std::os::unix::net::UnixListener::bind(p.join("sock")).unwrap();
    });
    refused(&|p| {
        mknodat(
            CWD,
            p.join("null"),
            FileType::CharacterDevice,
            Mode::RUSR,
            0x103,
        )
        .unwrap();
    });
    refused(&|p| set(&p.join("f"), "trusted.kiln", b"x"));
    refused(&|p| set(&p.join("f"), "user.overlay.origin", b"x"));
    refused(&|p| set(&p.join("f"), "trusted.overlay.opaque", b"y"));
    refused(&|p| {
        fs::create_dir(p.join("d")).unwrap();
        set(&p.join("d"), "trusted.overlay.opaque", b"x");
    });
}
