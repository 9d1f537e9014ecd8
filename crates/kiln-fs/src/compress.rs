//! Layer compression: gzip (flate2 on zlib-rs, or [`crate::pgzip`] on
//! several threads), zstd (multi-threaded) or none, as writers for the layer
//! writer to write through, and readers that detect the compression of what
//! they are given by its magic bytes, so that a layer is read correctly
//! whatever its media type claims.
//!
//! [`write_compressed_layer`] is the whole streaming pipeline: tar → DiffID
//! hash → compress → digest hash → output, in one pass with flat memory.
//! With `threads` ≥ 1 the tar walk (and its DiffID hash) runs on a thread of
//! its own and hands the tar to the caller's thread in 256 KiB chunks
//! through a bounded queue; the caller's thread compresses (gzip on
//! `threads` pgzip workers, zstd on `threads` zstdmt workers), hashes and
//! writes the output. The bytes depend on whether `threads` is 0 or not,
//! never on its value: pgzip's output is independent of its thread count,
//! and so is zstd's multi-threaded format for any number of workers ≥ 1.
//! So a layer's digest does not depend on the machine's core count.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, SyncSender};

use kiln_oci::media_types::Compression;
use kiln_oci::Digest;
use thiserror::Error;

use crate::hash::HashingWriter;
use crate::layer::{write_layer, LayerInfo, LayerWriteError, WriteOptions};
use crate::pgzip::ParallelGzEncoder;

/// How to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressOptions {
    /// The algorithm.
    pub compression: Compression,
    /// Level: gzip 0–9 (default 6), zstd 1–19 (default 3).
    pub level: Option<i32>,
    /// Compression worker threads. 0: everything on the caller's thread,
    /// single-stream gzip and single-threaded zstd. 1 or more: the tar walk
    /// on its own thread, and gzip in pgzip blocks or zstd in zstdmt jobs on
    /// this many workers; the output is the same for any value ≥ 1.
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
    /// Setting up, feeding or finishing the compressor failed.
    #[error("failed to {action} the {algorithm} stream: {source}")]
    Stream {
        /// What was being done.
        action: &'static str,
        /// gzip, zstd or tar.
        algorithm: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// The compressor the tar is written through.
enum Encoder<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    ParallelGzip(ParallelGzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn new(out: W, opts: &CompressOptions) -> Result<Self, CompressError> {
        let err = |algorithm| {
            move |source| CompressError::Stream {
                action: "start",
                algorithm,
                source,
            }
        };
        Ok(match opts.compression {
            Compression::None => Encoder::Plain(out),
            Compression::Gzip => {
                let level = opts.level.unwrap_or(6).clamp(0, 9) as u32;
                if opts.threads == 0 {
                    Encoder::Gzip(flate2::write::GzEncoder::new(
                        out,
                        flate2::Compression::new(level),
                    ))
                } else {
                    Encoder::ParallelGzip(
                        ParallelGzEncoder::new(out, level, opts.threads as usize)
                            .map_err(err("gzip"))?,
                    )
                }
            }
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, opts.level.unwrap_or(3))
                    .map_err(err("zstd"))?;
                if opts.threads > 0 {
                    enc.multithread(opts.threads).map_err(err("zstd"))?;
                }
                Encoder::Zstd(enc)
            }
        })
    }

    fn algorithm(&self) -> &'static str {
        match self {
            Encoder::Plain(_) => "tar",
            Encoder::Gzip(_) | Encoder::ParallelGzip(_) => "gzip",
            Encoder::Zstd(_) => "zstd",
        }
    }

    fn finish(self) -> Result<W, CompressError> {
        let algorithm = self.algorithm();
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::ParallelGzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
        .map_err(|source| CompressError::Stream {
            action: "finish",
            algorithm,
            source,
        })
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(e) => e.write(buf),
            Encoder::ParallelGzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.write_all(buf),
            Encoder::Gzip(e) => e.write_all(buf),
            Encoder::ParallelGzip(e) => e.write_all(buf),
            Encoder::Zstd(e) => e.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(e) => e.flush(),
            Encoder::ParallelGzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

/// Write the tree under `root` as a compressed layer into `out`.
pub fn write_compressed_layer<W: Write>(
    root: &Path,
    out: W,
    write: &WriteOptions,
    compress: &CompressOptions,
) -> Result<(CompressedLayer, W), CompressError> {
    let enc = Encoder::new(HashingWriter::new(out), compress)?;
    let (layer, hashed) = if compress.threads == 0 {
        let (layer, enc) = write_layer(root, enc, write)?;
        (layer, enc.finish()?)
    } else {
        pipelined(root, enc, write)?
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

/// Bytes of tar per chunk handed from the tar thread to the compressor.
const CHUNK: usize = 256 * 1024;
/// Chunks queued between them (so at most ~2 MiB of tar in flight).
const QUEUED_CHUNKS: usize = 6;

/// The tar walk on a scoped thread of its own, the compressor here.
fn pipelined<W: Write>(
    root: &Path,
    mut enc: Encoder<W>,
    write: &WriteOptions,
) -> Result<(LayerInfo, W), CompressError> {
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(QUEUED_CHUNKS);
        let (recycle, spare) = mpsc::sync_channel::<Vec<u8>>(QUEUED_CHUNKS + 2);
        let tar = std::thread::Builder::new()
            .name("kiln-tar".into())
            .spawn_scoped(s, move || {
                let chunks = ChunkWriter {
                    buf: Vec::with_capacity(CHUNK),
                    tx,
                    spare,
                };
                let (layer, chunks) = write_layer(root, chunks, write)?;
                chunks.finish().map_err(|source| LayerWriteError::Write {
                    path: "end of archive".into(),
                    source,
                })?;
                Ok::<_, LayerWriteError>(layer)
            })
            .map_err(|source| CompressError::Stream {
                action: "start",
                algorithm: "tar",
                source,
            })?;
        // `rx` is dropped when this closure returns, so a failed compressor
        // stops the tar thread (its sends fail) instead of leaving it
        // blocked.
        let compressed = (move || {
            let algorithm = enc.algorithm();
            for chunk in rx {
                enc.write_all(&chunk)
                    .map_err(|source| CompressError::Stream {
                        action: "write",
                        algorithm,
                        source,
                    })?;
                let _ = recycle.try_send(chunk);
            }
            enc.finish()
        })();
        let layer = match tar.join() {
            Ok(layer) => layer,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        // The compressor's failure is the cause when both failed (the tar
        // thread then only saw the queue close).
        let out = compressed?;
        Ok((layer?, out))
    })
}

/// The tar thread's writer: fills chunks and queues them.
struct ChunkWriter {
    buf: Vec<u8>,
    tx: SyncSender<Vec<u8>>,
    /// Chunks the compressor is done with, to reuse.
    spare: Receiver<Vec<u8>>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        let mut next = self.spare.try_recv().unwrap_or_default();
        next.clear();
        next.reserve(CHUNK);
        let full = std::mem::replace(&mut self.buf, next);
        self.tx
            .send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the compressor stopped"))
    }

    fn finish(mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = (CHUNK - self.buf.len()).min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The compression of a stream, from its first bytes.
pub fn detect(head: &[u8]) -> Compression {
    match head {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    }
}

/// A reader of the uncompressed content of `r`, whatever its compression.
pub fn decompressed<'a, R: Read + 'a>(r: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut r = BufReader::with_capacity(128 * 1024, r);
    let kind = detect(r.fill_buf()?);
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
