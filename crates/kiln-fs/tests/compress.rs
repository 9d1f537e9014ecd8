//! The compression pipeline: digests of both forms, round trips through the
//! applier, detection by content, truncated streams and bombs.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Read;
use std::process::Command;

use kiln_fs::apply::{apply_layer, ApplyOptions};
use kiln_fs::compress::{decompressed, write_compressed_layer, CompressOptions};
use kiln_fs::hash::HashingWriter;
use kiln_fs::layer::{write_layer, WriteOptions};
use kiln_oci::media_types::Compression;

fn tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir_all(t.path().join("usr/share/doc")).unwrap();
    for i in 0..50 {
        fs::write(
            t.path().join(format!("usr/share/doc/f{i}")),
            format!("content {i}\n").repeat(100),
        )
        .unwrap();
    }
    t
}

fn sha(bytes: &[u8]) -> kiln_oci::Digest {
    let mut h = HashingWriter::new(std::io::sink());
    std::io::Write::write_all(&mut h, bytes).unwrap();
    h.finish().0
}

#[test]
fn every_compression_round_trips_with_both_digests() {
    let t = tree();
    let (plain_info, plain) = write_layer(t.path(), Vec::new(), &WriteOptions::default()).unwrap();
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        for threads in [0, 2] {
            let opts = CompressOptions {
                compression,
                level: None,
                threads,
            };
            let (c, blob) =
                write_compressed_layer(t.path(), Vec::new(), &WriteOptions::default(), &opts)
                    .unwrap();
            assert_eq!(c.digest, sha(&blob), "{compression:?}");
            assert_eq!(c.size, blob.len() as u64);
            assert_eq!(c.layer.diff_id, plain_info.diff_id, "{compression:?}");
            let mut back = Vec::new();
            decompressed(blob.as_slice())
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, plain, "{compression:?}");
            if compression != Compression::None {
                assert!(blob.len() < plain.len() / 4, "{compression:?} compresses");
            }
            let dest = tempfile::tempdir().unwrap();
            apply_layer(
                decompressed(blob.as_slice()).unwrap(),
                dest.path(),
                &ApplyOptions::default(),
            )
            .unwrap();
            assert_eq!(
                fs::read_to_string(dest.path().join("usr/share/doc/f7")).unwrap(),
                "content 7\n".repeat(100)
            );
        }
    }
}

#[test]
fn gzip_is_what_gzip_reads() {
    let t = tree();
    let opts = CompressOptions {
        compression: Compression::Gzip,
        level: Some(9),
        threads: 0,
    };
    let (_, blob) =
        write_compressed_layer(t.path(), Vec::new(), &WriteOptions::default(), &opts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("layer.tar.gz");
    fs::write(&f, &blob).unwrap();
    let out = Command::new("gzip").arg("-t").arg(&f).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn truncated_compressed_streams_fail() {
    let t = tree();
    for compression in [Compression::Gzip, Compression::Zstd] {
        let opts = CompressOptions {
            compression,
            ..CompressOptions::default()
        };
        let (_, blob) =
            write_compressed_layer(t.path(), Vec::new(), &WriteOptions::default(), &opts).unwrap();
        let cut = &blob[..blob.len() / 2];
        let dest = tempfile::tempdir().unwrap();
        let r = decompressed(cut).and_then(|r| {
            apply_layer(r, dest.path(), &ApplyOptions::default()).map_err(std::io::Error::other)
        });
        assert!(r.is_err(), "{compression:?}");
    }
}

#[test]
fn a_gzip_bomb_hits_the_cap() {
    // 16 MiB of zeros in one file compresses to about 16 KiB.
    let t = tempfile::tempdir().unwrap();
    fs::write(t.path().join("zeros"), vec![0u8; 16 << 20]).unwrap();
    let opts = CompressOptions {
        compression: Compression::Gzip,
        ..CompressOptions::default()
    };
    let (c, blob) =
        write_compressed_layer(t.path(), Vec::new(), &WriteOptions::default(), &opts).unwrap();
    assert!(c.size < 1 << 20);
    let dest = tempfile::tempdir().unwrap();
    let e = apply_layer(
        decompressed(blob.as_slice()).unwrap(),
        dest.path(),
        &ApplyOptions { max_size: 4 << 20 },
    )
    .unwrap_err();
    assert!(e.to_string().contains("more than"), "{e}");
}
