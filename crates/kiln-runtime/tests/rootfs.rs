//! The container overlay against the real kernel (as root).

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;

use kiln_runtime::rootfs::Overlay;

#[test]
fn an_overlay_of_more_layers_than_one_page_of_options_mounts() {
    // Paths as long as a store's (…/snapshots/<64 hex>/fs): 150 of them
    // are ~14 KB of `lowerdir=`, past mount(2)'s one page.
    let dir = tempfile::tempdir().unwrap();
    let lowers: Vec<PathBuf> = (0..150)
        .map(|i| {
            let d = dir
                .path()
                .join("snapshots")
                .join(format!("{i:064}"))
                .join("fs");
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join(format!("f{i}")), i.to_string()).unwrap();
            // Every layer writes `top`: the last one (topmost) must win.
            fs::write(d.join("top"), i.to_string()).unwrap();
            d
        })
        .collect();
    let mut o = Overlay::in_dir(&dir.path().join("container"), lowers);
    o.volatile = true;
    o.mount().unwrap();
    let read = |name: &str| fs::read_to_string(o.target.join(name)).unwrap();
    assert_eq!(read("top"), "149");
    assert_eq!(read("f0"), "0");
    assert_eq!(read("f77"), "77");
    // The upper directory takes the writes.
    fs::write(o.target.join("new"), "x").unwrap();
    o.unmount().unwrap();
    assert_eq!(fs::read_to_string(o.upper.join("new")).unwrap(), "x");
    assert!(!o.is_mounted());

    // A few layers: the plain mount(2) path.
    let mut small = Overlay::in_dir(&dir.path().join("small"), o.lowers[..3].to_vec());
    small.volatile = false;
    small.mount().unwrap();
    assert_eq!(fs::read_to_string(small.target.join("top")).unwrap(), "2");
    small.unmount().unwrap();
}
