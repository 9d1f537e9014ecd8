//! Layer compression: gzip (flate2 on zlib-rs, or [`crate::pgzip`] on
//! several threads), zstd (multi-threaded) or none, as writers for the layer
//! writer to write through, and readers that detect the compression of what
//! they are given by its magic bytes, so that a layer is read correctly
//! whatever its media type claims.
//!
//! [`write_compressed_layer`] is the whole streaming pipeline: tar → DiffID
//! hash → compress → digest hash → output, in one pass with flat memory.
//! With `threads` ≥ 1 the tar walk runs on a thread of its own, the DiffID
//! hash on another, and the tar moves between them and on to the caller's
//! thread in 256 KiB chunks through bounded queues; the caller's thread
//! compresses (gzip on `threads` pgzip workers, zstd on `threads` zstdmt
//! workers in 4 MiB jobs), hashes and writes the output. Peak memory is
//! about 70 MB for zstd on two workers (zstdmt's buffers), a few MB for
//! gzip. The bytes depend on whether `threads` is 0 or not,
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
use crate::layer::{write_entries, write_layer, LayerInfo, LayerWriteError, WriteOptions};
use crate::pgzip::ParallelGzEncoder;
use crate::pipe::ChunkWriter;

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

impl CompressOptions {
    /// `compression` at its default level on every available core (what
    /// committing a layer should use; the bytes are the same on any machine
    /// with at least one core, see the module doc).
    pub fn on_all_cores(compression: Compression) -> Self {
        CompressOptions {
            compression,
            level: None,
            threads: available_threads(),
        }
    }
}

/// The number of cores this process may use (at least 1).
pub fn available_threads() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
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

/// zstdmt's job size (see [`Encoder::new`]).
const ZSTD_JOB_SIZE: u32 = 4 << 20;

/// The compressor a layer's tar is written through (also used by the
/// store for layers made from a tar stream).
pub enum Encoder<W: Write> {
    /// No compression.
    Plain(W),
    /// gzip on this thread.
    Gzip(flate2::write::GzEncoder<W>),
    /// gzip on worker threads.
    ParallelGzip(ParallelGzEncoder<W>),
    /// zstd (multi-threaded unless `threads` is 0).
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// A compressor writing into `out`.
    pub fn new(out: W, opts: &CompressOptions) -> Result<Self, CompressError> {
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
                    // zstd's default job at level 3 is 8 MiB, and zstdmt keeps
                    // about (2 × workers + 3) jobs of input and output: 96 MiB
                    // peak on two cores. 4 MiB jobs: ~70 MiB, 0.3% larger
                    // output (measured on a debootstrap minbase rootfs). Fixed,
                    // so the bytes never depend on the thread count.
                    enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))
                        .map_err(err("zstd"))?;
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

    /// End the stream; returns the output.
    pub fn finish(self) -> Result<W, CompressError> {
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

impl<W: Write> std::fmt::Debug for Encoder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Encoder").field(&self.algorithm()).finish()
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

/// Chunks queued between them (so at most ~2 MiB of tar in flight).
const QUEUED_CHUNKS: usize = 6;

/// Three stages on three threads, so that no one thread carries the walk,
/// the DiffID and the compressor's feeding in series (on two cores a thread
/// gets about half of one while the compression workers run, and the walk
/// with its hash was the slowest stage): the tar walk on one, the DiffID
/// hash on a second, the compressor (feeding its workers), the digest hash
/// and the output on the caller's. Chunks move from one to the next by
/// bounded queues, and come back to the walk to be reused.
fn pipelined<W: Write>(
    root: &Path,
    mut enc: Encoder<W>,
    write: &WriteOptions,
) -> Result<(LayerInfo, W), CompressError> {
    let spawn_err = |source| CompressError::Stream {
        action: "start",
        algorithm: "tar",
        source,
    };
    std::thread::scope(|s| {
        let (to_hash, tarred) = mpsc::sync_channel::<Vec<u8>>(QUEUED_CHUNKS);
        let (to_compress, hashed) = mpsc::sync_channel::<Vec<u8>>(QUEUED_CHUNKS);
        let (recycle, spare) = mpsc::sync_channel::<Vec<u8>>(2 * QUEUED_CHUNKS + 4);
        let tar = std::thread::Builder::new()
            .name("kiln-tar".into())
            .spawn_scoped(s, move || {
                let chunks = ChunkWriter::new(to_hash).recycling(spare);
                let (entries, chunks) = write_entries(root, chunks, write)?;
                chunks.finish().map_err(|source| LayerWriteError::Write {
                    path: "end of archive".into(),
                    source,
                })?;
                Ok::<_, LayerWriteError>(entries)
            })
            .map_err(spawn_err)?;
        let diff_id = std::thread::Builder::new()
            .name("kiln-diffid".into())
            .spawn_scoped(s, move || {
                let mut h = HashingWriter::new(io::sink());
                for chunk in tarred {
                    h.write_all(&chunk).expect("a sink never fails");
                    if to_compress.send(chunk).is_err() {
                        break; // the compressor failed
                    }
                }
                let (digest, size, _) = h.finish();
                (digest, size)
            })
            .map_err(spawn_err)?;
        // `hashed` is dropped when this closure returns, so a failed
        // compressor stops the other stages (their sends fail) instead of
        // leaving them blocked.
        let compressed = (move || {
            let algorithm = enc.algorithm();
            for chunk in hashed {
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
        let entries = match tar.join() {
            Ok(entries) => entries,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let (diff_id, size) = match diff_id.join() {
            Ok(d) => d,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        // The compressor's failure is the cause when both failed (the tar
        // thread then only saw the queue close).
        let out = compressed?;
        let entries = entries?;
        Ok((
            LayerInfo {
                diff_id,
                size,
                entries,
            },
            out,
        ))
    })
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

/// Decompressed bytes per chunk handed from the decompressing thread.
const READ_CHUNK: usize = 256 * 1024;

/// The uncompressed content of `r` (compression detected as by
/// [`decompressed`]), decompressed on a thread of its own and handed over
/// in 256 KiB chunks through a bounded queue (at most ~2 MiB ahead), so
/// that decompression runs beside whatever consumes it (the applier), as
/// `zstd -d | tar -x` runs in two processes.
///
/// An error of the source or the decompressor is returned by `read` where
/// it happened in the stream. Dropping the reader stops the thread.
pub fn decompressed_in_background<R: Read + Send + 'static>(r: R) -> io::Result<BackgroundReader> {
    let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(QUEUED_CHUNKS);
    let (recycle, spare) = mpsc::sync_channel::<Vec<u8>>(QUEUED_CHUNKS + 2);
    let thread = std::thread::Builder::new()
        .name("kiln-decompress".into())
        .spawn(move || {
            let mut src = match decompressed(r) {
                Ok(src) => src,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            loop {
                // A recycled chunk is already READ_CHUNK long: no zeroing.
                let mut buf = spare.try_recv().unwrap_or_default();
                buf.resize(READ_CHUNK, 0);
                // Fill the chunk (decoders return short reads).
                let mut n = 0;
                let result = loop {
                    match src.read(&mut buf[n..]) {
                        Ok(0) => break Ok(()),
                        Ok(k) => {
                            n += k;
                            if n == buf.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(n);
                let end = n < READ_CHUNK;
                if n > 0 && tx.send(Ok(buf)).is_err() {
                    return; // the reader is gone
                }
                if let Err(e) = result {
                    let _ = tx.send(Err(e));
                    return;
                }
                if end {
                    return;
                }
            }
        })?;
    Ok(BackgroundReader {
        rx: Some(rx),
        recycle,
        chunk: Vec::new(),
        pos: 0,
        thread: Some(thread),
    })
}

/// The reader [`decompressed_in_background`] returns.
#[derive(Debug)]
pub struct BackgroundReader {
    rx: Option<Receiver<io::Result<Vec<u8>>>>,
    recycle: SyncSender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundReader {
    /// Make the current chunk non-empty; false at the end of the stream.
    fn fill(&mut self) -> io::Result<bool> {
        while self.pos == self.chunk.len() {
            let Some(rx) = &self.rx else { return Ok(false) };
            match rx.recv() {
                Ok(Ok(next)) => {
                    let done = std::mem::replace(&mut self.chunk, next);
                    let _ = self.recycle.try_send(done);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.rx = None;
                    return Err(e);
                }
                Err(_) => {
                    self.rx = None;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}

impl Read for BackgroundReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || !self.fill()? {
            return Ok(0);
        }
        let n = (self.chunk.len() - self.pos).min(buf.len());
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl BufRead for BackgroundReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if !self.fill()? {
            return Ok(&[]);
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.chunk.len());
    }
}

impl Drop for BackgroundReader {
    fn drop(&mut self) {
        // Closing the queue makes the thread's next send fail.
        self.rx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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
