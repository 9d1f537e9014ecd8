//! Layer compression: gzip (flate2 on zlib-rs), zstd (multi-threaded) or
//! none, as writers for the layer writer to write through, and readers that
//! detect the compression of what they are given by its magic bytes, so
//! that a layer is read correctly whatever its media type claims.
//!
//! [`write_compressed_layer`] is the whole streaming pipeline: tar → DiffID
//! hash → compress → digest hash → output, in one pass with flat memory.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;

use kiln_oci::media_types::Compression;
use kiln_oci::Digest;
use thiserror::Error;

use crate::hash::HashingWriter;
use crate::layer::{write_layer, LayerInfo, LayerWriteError, WriteOptions};

/// How to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressOptions {
    /// The algorithm.
    pub compression: Compression,
    /// Level: gzip 0–9 (default 6), zstd 1–19 (default 3).
    pub level: Option<i32>,
    /// zstd worker threads (0: single-threaded).
    pub threads: u32,
}

impl Default for CompressOptions {
    fn default() -> Self {
        CompressOptions {
            compression: Compression::Gzip,
            level: None,
            threads: 0,
        }
    }
}

/// A compressed layer as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressedLayer {
    /// The uncompressed tar: DiffID, size, entries.
    pub layer: LayerInfo,
    /// Digest of the bytes written (the blob's digest).
    pub digest: Digest,
    /// Size of the bytes written.
    pub size: u64,
}

/// Compression failed.
#[derive(Debug, Error)]
pub enum CompressError {
    /// The layer writer failed.
    #[error(transparent)]
    Layer(#[from] LayerWriteError),
    /// Setting up or finishing the compressor failed.
    #[error("failed to {action} the {algorithm} stream: {source}")]
    Stream {
        /// What was being done.
        action: &'static str,
        /// gzip or zstd.
        algorithm: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Write the tree under `root` as a compressed layer into `out`.
pub fn write_compressed_layer<W: Write>(
    root: &Path,
    out: W,
    write: &WriteOptions,
    compress: &CompressOptions,
) -> Result<(CompressedLayer, W), CompressError> {
    let hashed = HashingWriter::new(out);
    let (layer, hashed) = match compress.compression {
        Compression::None => write_layer(root, hashed, write)?,
        Compression::Gzip => {
            let level = compress.level.unwrap_or(6).clamp(0, 9) as u32;
            let enc = flate2::write::GzEncoder::new(hashed, flate2::Compression::new(level));
            let (layer, enc) = write_layer(root, enc, write)?;
            let hashed = enc.finish().map_err(|source| CompressError::Stream {
                action: "finish",
                algorithm: "gzip",
                source,
            })?;
            (layer, hashed)
        }
        Compression::Zstd => {
            let stream = |action| {
                move |source| CompressError::Stream {
                    action,
                    algorithm: "zstd",
                    source,
                }
            };
            let mut enc = zstd::stream::write::Encoder::new(hashed, compress.level.unwrap_or(3))
                .map_err(stream("start"))?;
            if compress.threads > 0 {
                enc.multithread(compress.threads).map_err(stream("start"))?;
            }
            let (layer, enc) = write_layer(root, enc, write)?;
            (layer, enc.finish().map_err(stream("finish"))?)
        }
    };
    let (digest, size, out) = hashed.finish();
    Ok((
        CompressedLayer {
            layer,
            digest,
            size,
        },
        out,
    ))
}

/// The compression of a stream, from its first bytes.
pub fn detect(head: &[u8]) -> Compression {
    match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    }
}

/// Whether a stream starts with xz's magic bytes. Layers are never xz,
/// but root file system tarballs (`import`) and archives (`load`) may be.
pub fn is_xz(head: &[u8]) -> bool {
    head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
}

/// A reader of the uncompressed content of `r`, whatever its compression
/// (gzip, zstd, xz or none).
pub fn decompressed<'a, R: Read + 'a>(r: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(128 * 1024, r);
    let head = r.fill_buf()?;
    if is_xz(head) {
        return Ok(Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(r)));
    }
    let kind = detect(head);
    Ok(match kind {
        Compression::None => Box::new(r),
        // Concatenated gzip members are one stream, as gzip(1) reads them.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(r)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        assert_eq!(detect(&[0x1f, 0x8b, 8]), Compression::Gzip);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(detect(b"ustar"), Compression::None);
        assert_eq!(detect(&[]), Compression::None);
    }
}
