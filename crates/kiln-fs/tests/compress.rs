//! The compression pipeline: digests of both forms, round trips through the
//! applier, detection by content, truncated streams and bombs.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Read;
use std::process::Command;

use kiln_fs::apply::{apply_layer, ApplyOptions};
use kiln_fs::compress::{
    decompressed, decompressed_in_background, write_compressed_layer, CompressOptions,
};
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
        for threads in [0, 1, 2] {
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

/// A larger tree than `tree()`: several pgzip blocks and zstd jobs.
fn big_tree() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let mut x: u32 = 1;
    for d in 0..3 {
        let dir = t.path().join(format!("d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..20 {
            let mut body = format!("file {d}/{i}\n").repeat(200 * (i + 1)).into_bytes();
            for b in body.iter_mut().step_by(97) {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                *b = (x >> 16) as u8;
            }
            fs::write(dir.join(format!("f{i}")), body).unwrap();
        }
    }
    t
}

#[test]
fn threaded_output_does_not_depend_on_the_thread_count() {
    let t = big_tree();
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let write = |threads| {
            let opts = CompressOptions {
                compression,
                level: None,
                threads,
            };
            write_compressed_layer(t.path(), Vec::new(), &WriteOptions::default(), &opts).unwrap()
        };
        let (one, blob) = write(1);
        for threads in [2, 4] {
            let (c, b) = write(threads);
            assert_eq!(c, one, "{compression:?} with {threads} threads");
            assert!(b == blob, "{compression:?} with {threads} threads");
        }
        let (serial, _) = write(0);
        assert_eq!(serial.layer, one.layer, "the tar is the same");
    }
}

#[test]
fn parallel_gzip_is_what_gzip_and_go_read() {
    let t = big_tree();
    let opts = CompressOptions {
        compression: Compression::Gzip,
        level: Some(6),
        threads: 2,
    };
    let (c, blob) =
        write_compressed_layer(t.path(), Vec::new(), &WriteOptions::default(), &opts).unwrap();
    assert!(
        c.layer.size > 4 * 128 * 1024,
        "several blocks: {}",
        c.layer.size
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("layer.tar.gz");
    fs::write(&f, &blob).unwrap();
    let out = Command::new("gzip").arg("-t").arg(&f).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // flate2's single-member reader, too.
    let mut back = Vec::new();
    flate2::read::GzDecoder::new(blob.as_slice())
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back.len() as u64, c.layer.size);
    // Go's compress/gzip, as Docker and containerd read layers, when Go is
    // installed.
    if Command::new("go").arg("version").output().is_ok() {
        let prog = dir.path().join("gunzip.go");
        fs::write(
            &prog,
            r#"package main

import (
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		panic(err)
	}
	z.Multistream(false)
	h := sha256.New()
	if _, err := io.Copy(h, z); err != nil {
		panic(err)
	}
	fmt.Printf("sha256:%x\n", h.Sum(nil))
}
"#,
        )
        .unwrap();
        let out = Command::new("go")
            .arg("run")
            .arg(&prog)
            .arg(&f)
            .env("GOFLAGS", "-mod=mod")
            .env("GO111MODULE", "off")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            c.layer.diff_id.to_string()
        );
    }
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

#[test]
fn background_decompression_reads_all_and_reports_truncation() {
    let t = big_tree();
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let opts = CompressOptions {
            compression,
            level: None,
            threads: 2,
        };
        let (c, blob) =
            write_compressed_layer(t.path(), Vec::new(), &WriteOptions::default(), &opts).unwrap();
        let mut back = Vec::new();
        decompressed_in_background(std::io::Cursor::new(blob.clone()))
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(sha(&back), c.layer.diff_id, "{compression:?}");
        let dest = tempfile::tempdir().unwrap();
        apply_layer(
            decompressed_in_background(std::io::Cursor::new(blob.clone())).unwrap(),
            dest.path(),
            &ApplyOptions::default(),
        )
        .unwrap();
        if compression != Compression::None {
            let cut = blob[..blob.len() / 2].to_vec();
            let r = decompressed_in_background(std::io::Cursor::new(cut))
                .unwrap()
                .read_to_end(&mut Vec::new());
            assert!(r.is_err(), "{compression:?}");
        }
        // Dropped half-way: the thread stops.
        let mut r = decompressed_in_background(std::io::Cursor::new(blob)).unwrap();
        r.read_exact(&mut [0u8; 1000]).unwrap();
        drop(r);
    }
}
