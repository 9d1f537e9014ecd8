//! The content store: what is published is exactly what its name says, and
//! a failed or abandoned write leaves nothing behind.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use kiln_oci::Digest;
use kiln_store::{ContentStore, StoreError};

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

const ABC: &str = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

#[test]
fn put_read_and_layout() {
    let root = tempfile::tempdir().unwrap();
    let store = ContentStore::open(root.path()).unwrap();
    let d = store.put(b"abc", None).unwrap();
    assert_eq!(d.to_string(), ABC);
    assert!(store.contains(&d));
    assert_eq!(store.read(&d).unwrap(), b"abc");
    let p = root.path().join("blobs/sha256").join(d.hex());
    assert!(p.is_file());
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o222,
        0,
        "blobs are read-only"
    );
    assert_eq!(
        fs::metadata(root.path()).unwrap().permissions().mode() & 0o777,
        0o700
    );
    // The same content again is fine.
    assert_eq!(store.put(b"abc", Some((d.clone(), 3))).unwrap(), d);
    assert!(files_in(&root.path().join("ingest")).is_empty());
}

#[test]
fn mismatches_publish_nothing() {
    let root = tempfile::tempdir().unwrap();
    let store = ContentStore::open(root.path()).unwrap();
    let claimed: Digest = ABC.parse().unwrap();
    let e = store.put(b"abd", Some((claimed.clone(), 3))).unwrap_err();
    assert!(matches!(e, StoreError::Mismatch { .. }), "{e}");
    assert!(e.to_string().contains(ABC));
    let e = store.put(b"abc", Some((claimed.clone(), 4))).unwrap_err();
    assert!(matches!(e, StoreError::Mismatch { .. }), "{e}");
    let e = store.put(b"abcd", Some((claimed.clone(), 3))).unwrap_err();
    assert!(matches!(e, StoreError::TooLong { .. }), "{e}");
    assert!(!store.contains(&claimed));
    assert!(files_in(&root.path().join("blobs/sha256")).is_empty());
    assert!(files_in(&root.path().join("ingest")).is_empty());
}

#[test]
fn abandoned_ingest_leaves_nothing() {
    let root = tempfile::tempdir().unwrap();
    let store = ContentStore::open(root.path()).unwrap();
    let mut w = store.ingest(None).unwrap();
    w.write_all(b"partial").unwrap();
    assert_eq!(files_in(&root.path().join("ingest")).len(), 1);
    drop(w);
    assert!(files_in(&root.path().join("ingest")).is_empty());
    assert!(files_in(&root.path().join("blobs/sha256")).is_empty());
}

#[test]
fn other_algorithms_and_missing_blobs() {
    let root = tempfile::tempdir().unwrap();
    let store = ContentStore::open(root.path()).unwrap();
    let d512: Digest = format!("sha512:{}", "a".repeat(128)).parse().unwrap();
    assert!(matches!(
        store.path(&d512),
        Err(StoreError::Algorithm { .. })
    ));
    let missing: Digest = ABC.parse().unwrap();
    assert!(matches!(
        store.open_blob(&missing),
        Err(StoreError::NotFound { .. })
    ));
    // A crashed writer's temporary file is cleaned.
    fs::write(root.path().join("ingest/.tmp-1-2-3"), b"junk").unwrap();
    fs::write(root.path().join("ingest/.tmp-7-2-3"), b"live").unwrap();
    assert_eq!(store.clean_ingest(|pid| pid == 7).unwrap(), 1);
    assert!(root.path().join("ingest/.tmp-7-2-3").exists());
}

/// Blobs of every size around the 1 MiB chunks written with O_DIRECT (and
/// the 4 KiB blocks of the tail), fed in pieces of awkward sizes: what is
/// published is exactly the bytes, under their digest.
#[test]
fn large_blobs_in_odd_pieces_are_stored_exactly() {
    use sha2::Digest as _;
    let root = tempfile::tempdir().unwrap();
    let store = ContentStore::open(root.path()).unwrap();
    let mib = 1 << 20;
    for size in [
        0,
        1,
        4095,
        4096,
        4097,
        mib - 1,
        mib,
        mib + 1,
        3 * mib + 4096,
        3 * mib + 17,
        9 * mib + 123,
    ] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 + i / 4096) as u8).collect();
        let mut w = store.ingest(None).unwrap();
        let mut rest = &data[..];
        let mut piece = 1;
        while !rest.is_empty() {
            let n = piece.min(rest.len());
            w.write_all(&rest[..n]).unwrap();
            rest = &rest[n..];
            piece = piece * 3 + 1001;
        }
        let d = w.commit().unwrap();
        let want = format!("sha256:{:x}", sha2::Sha256::digest(&data));
        assert_eq!(d.to_string(), want, "size {size}");
        assert_eq!(store.read(&d).unwrap(), data, "size {size}");
    }
    assert!(files_in(&root.path().join("ingest")).is_empty());
}

/// On ext4 (the test machines' file system) `ingest/` is marked to spread
/// the directories layers are made in across block groups (see
/// `spread_subdirectories`).
#[test]
fn ingest_spreads_the_directories_made_in_it() {
    use rustix::fs::{ioctl_getflags, IFlags};
    let root = tempfile::tempdir().unwrap();
    ContentStore::open(root.path()).unwrap();
    let ext4 = rustix::fs::statfs(root.path()).unwrap().f_type == 0xEF53;
    if !ext4 {
        return;
    }
    let ingest = std::fs::File::open(root.path().join("ingest")).unwrap();
    assert!(ioctl_getflags(&ingest).unwrap().contains(IFlags::TOPDIR));
}
