//! A parallel gzip writer, by pigz's method: the input is cut into blocks
//! (128 KiB by default), each block is deflated on a worker thread as raw
//! deflate with the previous block's last 32 KiB as a preset dictionary
//! (so matches reach back across the cut and the ratio stays within a
//! fraction of a percent of one-stream gzip), and ends with a sync flush so
//! it stops on a byte boundary; the last block ends the deflate stream. The
//! blocks are written in order as ONE gzip member (RFC 1952) whose CRC-32
//! and ISIZE cover the whole input, so any gzip reader reads it: gzip(1),
//! Go's `compress/gzip` (Docker, containerd), flate2's `GzDecoder`.
//!
//! The output depends only on the input, the level and the block size,
//! never on the number of threads or on scheduling: a block's bytes are a
//! function of the block and its dictionary. Memory is bounded: at most
//! `2 × threads + 2` blocks are in flight (their input and output), so the
//! writer's footprint is a few MiB whatever the input size.
//!
//! The caller's thread keeps the output writer (it needs not be `Send`): it
//! fills blocks, hands them out, and writes finished blocks in order as they
//! come back. [`ParallelGzEncoder::flush`] writes what is finished but
//! never cuts a block early (that would make the output depend on when the
//! caller flushed).
//!
//! The CRC-32 is computed per block on the workers and combined in order
//! (`crc32_combine`), with flate2's `Crc`, which on the zlib-rs backend is
//! zlib-rs's PCLMULQDQ/AVX2 CRC-32: no extra dependency for the same
//! hardware-accelerated checksum crc32fast would give.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Bytes of the previous block used as the dictionary (deflate's window).
const DICT_SIZE: usize = 32 * 1024;

/// One block to deflate.
struct Job {
    data: Arc<Vec<u8>>,
    /// The previous block, whose tail is the dictionary.
    prev: Option<Arc<Vec<u8>>>,
    last: bool,
    done: SyncSender<io::Result<Done>>,
}

/// A deflated block and the CRC-32 of its input.
struct Done {
    deflated: Vec<u8>,
    crc: Crc,
}

/// A gzip writer that deflates on `threads` worker threads.
///
/// Write the input, then call [`finish`](Self::finish) to end the stream
/// and get the output writer back. Dropping it unfinished stops the workers
/// and leaves a truncated stream behind.
pub struct ParallelGzEncoder<W: Write> {
    out: Option<W>,
    level: u32,
    block_size: usize,
    /// The block being filled.
    buf: Vec<u8>,
    /// The last block handed out, for the next block's dictionary.
    prev: Option<Arc<Vec<u8>>>,
    /// Blocks handed out, oldest first, each with where its result arrives.
    pending: VecDeque<Receiver<io::Result<Done>>>,
    max_pending: usize,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    crc: Crc,
    header_written: bool,
}

impl<W: Write> std::fmt::Debug for ParallelGzEncoder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParallelGzEncoder")
            .field("level", &self.level)
            .field("block_size", &self.block_size)
            .field("threads", &self.workers.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<W: Write> ParallelGzEncoder<W> {
    /// pigz's default block size.
    pub const DEFAULT_BLOCK_SIZE: usize = 128 * 1024;

    /// A writer of gzip at `level` (0–9, clamped) into `out`, deflating on
    /// `threads` worker threads (at least one), in blocks of
    /// [`DEFAULT_BLOCK_SIZE`](Self::DEFAULT_BLOCK_SIZE).
    pub fn new(out: W, level: u32, threads: usize) -> io::Result<Self> {
        Self::with_block_size(out, level, threads, Self::DEFAULT_BLOCK_SIZE)
    }

    /// As [`new`](Self::new), with blocks of `block_size` bytes (at least
    /// 32 KiB, the dictionary's size).
    pub fn with_block_size(
        out: W,
        level: u32,
        threads: usize,
        block_size: usize,
    ) -> io::Result<Self> {
        let level = level.min(9);
        let threads = threads.max(1);
        let block_size = block_size.max(DICT_SIZE);
        // Enough queued work to keep every worker busy while the caller
        // waits for the oldest block; bounded so memory stays flat.
        let (jobs, queue) = mpsc::sync_channel::<Job>(threads);
        let queue = Arc::new(Mutex::new(queue));
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("kiln-pgzip-{i}"))
                    .spawn(move || worker(&queue, level))?,
            );
        }
        Ok(ParallelGzEncoder {
            out: Some(out),
            level,
            block_size,
            buf: Vec::with_capacity(block_size),
            prev: None,
            pending: VecDeque::new(),
            max_pending: 2 * threads + 2,
            jobs: Some(jobs),
            workers,
            crc: Crc::new(),
            header_written: false,
        })
    }

    /// The output writer.
    pub fn get_ref(&self) -> &W {
        self.out
            .as_ref()
            .expect("the writer is only taken by finish, which consumes self")
    }

    /// Deflate what is left as the last block, write every block in order
    /// and the gzip trailer; returns the output writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        let mut out = self
            .out
            .take()
            .expect("the writer is only taken here, which consumes self");
        out.write_all(&trailer)?;
        self.stop();
        Ok(out)
    }

    /// Hand the current block to the workers.
    fn submit(&mut self, last: bool) -> io::Result<()> {
        while self.pending.len() >= self.max_pending {
            self.write_oldest()?;
        }
        let data = Arc::new(std::mem::replace(
            &mut self.buf,
            if last {
                Vec::new()
            } else {
                Vec::with_capacity(self.block_size)
            },
        ));
        let (done, result) = mpsc::sync_channel(1);
        let job = Job {
            data: Arc::clone(&data),
            prev: self.prev.take(),
            last,
            done,
        };
        self.jobs
            .as_ref()
            .expect("the job queue lives until stop")
            .send(job)
            .map_err(|_| io::Error::other("the gzip workers exited"))?;
        self.pending.push_back(result);
        self.prev = Some(data);
        // Write whatever is already finished, without waiting.
        while let Some(front) = self.pending.front() {
            match front.try_recv() {
                Ok(done) => {
                    self.pending.pop_front();
                    self.write_block(done?)?;
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err(io::Error::other("a gzip worker exited"))
                }
            }
        }
        Ok(())
    }

    /// Wait for the oldest block and write it.
    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(front) = self.pending.pop_front() else {
            return Ok(());
        };
        let done = front
            .recv()
            .map_err(|_| io::Error::other("a gzip worker exited"))??;
        self.write_block(done)
    }

    fn write_block(&mut self, done: Done) -> io::Result<()> {
        let out = self
            .out
            .as_mut()
            .expect("the writer is only taken by finish, which consumes self");
        if !self.header_written {
            out.write_all(&header(self.level))?;
            self.header_written = true;
        }
        out.write_all(&done.deflated)?;
        self.crc.combine(&done.crc);
        Ok(())
    }

    /// Close the queue and wait for the workers.
    fn stop(&mut self) {
        self.jobs = None;
        self.pending.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.block_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.block_size {
            self.submit(false)?;
        }
        Ok(n)
    }

    /// Writes the blocks already deflated; never cuts the current block.
    fn flush(&mut self) -> io::Result<()> {
        while let Some(front) = self.pending.front() {
            match front.try_recv() {
                Ok(done) => {
                    self.pending.pop_front();
                    self.write_block(done?)?;
                }
                Err(_) => break,
            }
        }
        self.out
            .as_mut()
            .expect("the writer is only taken by finish, which consumes self")
            .flush()
    }
}

impl<W: Write> Drop for ParallelGzEncoder<W> {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The gzip member header (RFC 1952): no name, mtime 0 (reproducible),
/// XFL as gzip(1) sets it for the level, OS 255 (unknown) as Go and flate2
/// write it.
fn header(level: u32) -> [u8; 10] {
    let xfl = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

fn worker(queue: &Mutex<Receiver<Job>>, level: u32) {
    loop {
        let job = {
            let Ok(queue) = queue.lock() else { return };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        // A fresh compressor for every block: zlib-rs's `reset` clears the
        // hash heads but keeps the window, the chains and the last match,
        // which then sway the matcher's choices, so a reused compressor's
        // output would depend on which blocks this worker did before
        // (measured: different digests run to run). Raw deflate, 32 KiB
        // window.
        let result = if level > 0 && incompressible(&job) {
            Ok(store_block(&job))
        } else {
            let mut z = Compress::new_with_window_bits(Compression::new(level), false, 15);
            deflate_block(&mut z, &job)
        };
        // The encoder may be gone (dropped unfinished): nothing to do.
        let _ = job.done.send(result);
    }
}

/// The smallest block the incompressibility test is applied to (a short
/// last block is deflated as it is).
const MIN_TESTED: usize = 4 * 1024;

/// Whether the block looks incompressible (random, encrypted or already
/// compressed data): deflate would spend most of the layer's commit time
/// on it to emit stored blocks anyway (measured: 20 MB of random files,
/// 43% of a cold `kiln build`'s CPU in zlib-rs at level 6, for a 0.03%
/// larger output than the input). A function of the block and its
/// dictionary only, in integer arithmetic, so the output stays the same on
/// every machine and thread count. Two tests, both must say so:
/// - order-0 entropy: the byte histogram is within χ² < n/9 of uniform,
///   where Huffman coding alone could save less than about 1%
///   (Kullback–Leibler divergence ≈ χ²/(2n ln 2) bits a byte);
/// - no repeats for LZ77 (a repeated run of noise, two copies of one small
///   compressed file): in windows of 512 bytes every 16 KiB, fewer than 1
///   position in 64 starts a 4-byte string seen at least 16 bytes before
///   ([`repeats`]). Closer matches are runs (the zeros of tar headers and
///   padding, in every block of a layer of random files): those long enough
///   to matter fail the entropy test (about 2% of a block of zeros does).
///   A repeat shorter than the windows' spacing can go unseen: at most
///   that much of a block is then stored instead of deflated.
fn incompressible(job: &Job) -> bool {
    let input = job.data.as_slice();
    let n = input.len();
    if n < MIN_TESTED {
        return false;
    }
    // Four tables, summed after: one table's increments of equal bytes in
    // a row wait for each other (measured: twice the time for 20 MB).
    let mut tables = [[0u32; 256]; 4];
    let mut quads = input.chunks_exact(4);
    for q in &mut quads {
        tables[0][usize::from(q[0])] += 1;
        tables[1][usize::from(q[1])] += 1;
        tables[2][usize::from(q[2])] += 1;
        tables[3][usize::from(q[3])] += 1;
    }
    for &b in quads.remainder() {
        tables[0][usize::from(b)] += 1;
    }
    let mut counts = [0u64; 256];
    for (i, c) in counts.iter_mut().enumerate() {
        *c = tables.iter().map(|t| u64::from(t[i])).sum();
    }
    let n64 = n as u64;
    let chi: u128 = counts
        .iter()
        .map(|&c| {
            let d = i128::from(256 * c as i64 - n64 as i64).unsigned_abs();
            d * d
        })
        .sum();
    // χ² = Σ(256c − n)² / (256 n) < n / 9
    if 9 * chi >= 256 * u128::from(n64) * u128::from(n64) {
        return false;
    }
    let (looked, hits) = repeats(job, input);
    hits * 64 <= looked
}

/// Hash table size of the repeat test (4096 entries: it is cleared for
/// every block, and a bigger one made the test cost as much as sha256).
const BITS: u32 = 12;
/// Positions inserted into the table: one in 8.
const STRIDE: usize = 8;
/// The windows looked up: 512 bytes every 16 KiB.
const WINDOW: usize = 512;
const SPACING: usize = 16 * 1024;

/// How many positions of sampled windows of the block were looked up, and
/// how many of them start a 4-byte string seen at least 16 bytes before
/// (in the block or the last 16 KiB of the dictionary). Every 8th position
/// is remembered, so a repeat of 12 bytes or more that crosses a window is
/// seen; positions between windows are only remembered (measured: 10 ms
/// for 20 MB, where a lookup at every position cost 25 times as much).
fn repeats(job: &Job, input: &[u8]) -> (u64, u64) {
    let dict: &[u8] = match &job.prev {
        Some(p) => &p[p.len().saturating_sub(DICT_SIZE)..],
        None => &[],
    };
    let word = |i: usize| -> u32 {
        let at = |k: usize| {
            if k < dict.len() {
                dict[k]
            } else {
                input[k - dict.len()]
            }
        };
        u32::from_le_bytes([at(i), at(i + 1), at(i + 2), at(i + 3)])
    };
    let slot = |v: u32| (v.wrapping_mul(0x9E37_79B1) >> (32 - BITS)) as usize;
    let mut table = vec![u64::MAX; 1 << BITS];
    let total = dict.len() + input.len();
    let last = total.saturating_sub(3);
    let mut next = dict.len().saturating_sub(16 * 1024) / STRIDE * STRIDE;
    let (mut looked, mut hits) = (0u64, 0u64);
    let mut w = dict.len();
    while w < last {
        while next < w {
            let v = word(next);
            table[slot(v)] = (u64::from(v) << 32) | next as u64;
            next += STRIDE;
        }
        for pos in w..(w + WINDOW).min(last) {
            let v = word(pos);
            let e = table[slot(v)];
            looked += 1;
            if e != u64::MAX && (e >> 32) as u32 == v && pos as u64 - (e & 0xffff_ffff) >= 16 {
                hits += 1;
            }
            if pos == next {
                table[slot(v)] = (u64::from(v) << 32) | pos as u64;
                next += STRIDE;
            }
        }
        w += SPACING;
    }
    (looked, hits)
}

/// The block as deflate stored blocks (RFC 1951 3.2.4), the last one final
/// when the block is the stream's last. Each ends on a byte boundary, as a
/// sync-flushed deflated block does, so blocks of either kind follow each
/// other.
fn store_block(job: &Job) -> Done {
    let input = job.data.as_slice();
    let mut out = Vec::with_capacity(input.len() + input.len() / 65535 * 5 + 5);
    let mut chunks = input.chunks(65535).peekable();
    while let Some(chunk) = chunks.next() {
        let last = job.last && chunks.peek().is_none();
        let len = u16::try_from(chunk.len()).expect("chunks of at most 65535 bytes");
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let mut crc = Crc::new();
    crc.update(input);
    Done { deflated: out, crc }
}

/// Deflate one block with `z`, a compressor fresh from `new`.
fn deflate_block(z: &mut Compress, job: &Job) -> io::Result<Done> {
    let err = |e: flate2::CompressError| io::Error::other(format!("deflate failed: {e}"));
    if let Some(prev) = &job.prev {
        let dict = &prev[prev.len().saturating_sub(DICT_SIZE)..];
        z.set_dictionary(dict).map_err(err)?;
    }
    let input = job.data.as_slice();
    let flush = if job.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // Stored-block worst case is 5 bytes per 16 KiB and a little more.
    let mut out = Vec::with_capacity(input.len() + input.len() / 1000 + 64);
    let mut consumed = 0;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(16 * 1024);
        }
        let before = z.total_in();
        let status = z
            .compress_vec(&input[consumed..], &mut out, flush)
            .map_err(err)?;
        consumed += usize::try_from(z.total_in() - before)
            .expect("a block's length fits in usize because it is in memory");
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // A flush is complete when all input is taken and the output
            // was not filled (zlib's rule: avail_out != 0).
            _ => consumed == input.len() && out.len() < out.capacity(),
        };
        if done {
            break;
        }
    }
    let mut crc = Crc::new();
    crc.update(input);
    Ok(Done { deflated: out, crc })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: text with a varying counter, and
        // some pseudo-random bytes.
        let mut v = Vec::with_capacity(len);
        let mut x: u32 = 12345;
        let mut i = 0u64;
        while v.len() < len {
            if i % 7 == 0 {
                for _ in 0..64 {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    v.push((x >> 16) as u8);
                }
            } else {
                v.extend_from_slice(format!("line {i} of the sample text\n").as_bytes());
            }
            i += 1;
        }
        v.truncate(len);
        v
    }

    fn pgzip(data: &[u8], level: u32, threads: usize, block: usize) -> Vec<u8> {
        let mut enc =
            ParallelGzEncoder::with_block_size(Vec::new(), level, threads, block).expect("spawn");
        // Odd-sized writes, to cross block edges anywhere.
        for chunk in data.chunks(7919) {
            enc.write_all(chunk).expect("in memory");
        }
        enc.finish().expect("in memory")
    }

    fn gunzip_single(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    fn gunzip_multi(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(gz)
            .read_to_end(&mut out)
            .expect("valid gzip");
        out
    }

    #[test]
    fn round_trips_at_every_size_edge() {
        let bs = 32 * 1024;
        for len in [0, 1, bs - 1, bs, bs + 1, 2 * bs, 3 * bs + 17, 300_000] {
            let data = sample(len);
            for threads in [1, 2, 3] {
                let gz = pgzip(&data, 6, threads, bs);
                assert_eq!(gunzip_single(&gz), data, "len {len} threads {threads}");
                assert_eq!(gunzip_multi(&gz), data, "len {len} threads {threads}");
            }
        }
    }

    #[test]
    fn output_is_independent_of_threads_on_real_data() {
        // Machine code, tables and strings: data on which a compressor
        // reused after `reset` made different choices (zlib-rs keeps its
        // old window and hash chains) than a fresh one.
        let exe = std::fs::read(std::env::current_exe().expect("test binary")).expect("read");
        let data = &exe[..exe.len().min(6 << 20)];
        let one = pgzip(data, 6, 1, 128 * 1024);
        assert_eq!(gunzip_single(&one), data);
        for threads in [2, 3] {
            assert!(
                one == pgzip(data, 6, threads, 128 * 1024),
                "{threads} threads"
            );
        }
    }

    #[test]
    fn output_is_independent_of_threads() {
        let data = sample(1 << 20);
        for level in [1, 6, 9] {
            let one = pgzip(&data, level, 1, 64 * 1024);
            assert_eq!(one, pgzip(&data, level, 2, 64 * 1024), "level {level}");
            assert_eq!(one, pgzip(&data, level, 5, 64 * 1024), "level {level}");
        }
    }

    #[test]
    fn ratio_is_close_to_one_stream() {
        let data = sample(2 << 20);
        let par = pgzip(
            &data,
            6,
            2,
            ParallelGzEncoder::<Vec<u8>>::DEFAULT_BLOCK_SIZE,
        );
        let mut one = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        one.write_all(&data).expect("in memory");
        let one = one.finish().expect("in memory");
        // Within 1% (the sync markers are 5 bytes per block).
        assert!(
            (par.len() as f64) < one.len() as f64 * 1.01,
            "parallel {} vs single {}",
            par.len(),
            one.len()
        );
    }

    #[test]
    fn blocks_see_the_previous_block_as_dictionary() {
        // 16 KiB of noise, repeated: every block after the first is all
        // matches into its dictionary, and compresses to almost nothing.
        let mut x: u32 = 7;
        let noise: Vec<u8> = (0..16 * 1024)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let data = noise.repeat(32);
        let gz = pgzip(&data, 6, 2, 64 * 1024);
        assert_eq!(gunzip_single(&gz), data);
        assert!(
            gz.len() < 32 * 1024,
            "{} bytes: the dictionary was not used",
            gz.len()
        );
    }

    #[test]
    fn level_zero_stores() {
        let data = sample(200_000);
        let gz = pgzip(&data, 0, 2, 64 * 1024);
        assert!(gz.len() > data.len());
        assert_eq!(gunzip_single(&gz), data);
    }

    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                // xorshift64*
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn incompressible_blocks_are_stored() {
        let data = noise(1 << 20, 1);
        let gz = pgzip(&data, 6, 2, 128 * 1024);
        assert_eq!(gunzip_single(&gz), data);
        assert_eq!(gunzip_multi(&gz), data);
        // 5 bytes of stored-block header per 64 KiB or less, the frame.
        assert!(gz.len() <= data.len() + data.len() / 5000, "{}", gz.len());
        assert_eq!(gz, pgzip(&data, 6, 1, 128 * 1024));
        // Mixed with text: each block decides alone, the stream is whole.
        let mut mixed = sample(300_000);
        mixed.extend_from_slice(&data[..400_000]);
        mixed.extend_from_slice(&sample(100_000));
        for threads in [1, 3] {
            let gz = pgzip(&mixed, 6, threads, 128 * 1024);
            assert_eq!(gunzip_single(&gz), mixed);
        }
    }

    #[test]
    fn tar_of_random_files_is_stored() {
        // 200 KB random files with 512-byte zero headers between them, as
        // in a layer: the headers' zeros must not make blocks look
        // compressible.
        let mut data = Vec::new();
        for i in 0..8 {
            data.extend_from_slice(&[0u8; 512]);
            data.extend_from_slice(&noise(200_000, 10 + i));
            data.extend_from_slice(&[0u8; 320]);
        }
        let gz = pgzip(&data, 6, 2, 128 * 1024);
        assert_eq!(gunzip_single(&gz), data);
        let stored = data.chunks(128 * 1024).filter(|b| {
            let job = Job {
                data: Arc::new(b.to_vec()),
                prev: None,
                last: false,
                done: mpsc::sync_channel(1).0,
            };
            incompressible(&job)
        });
        assert_eq!(stored.count(), data.len().div_ceil(128 * 1024));
    }

    #[test]
    fn repeated_noise_is_still_deflated() {
        // Copies of one small compressed file in a block: uniform bytes,
        // but LZ77 matches (within deflate's 32 KiB window).
        let one = noise(20 * 1024, 2);
        let data = [one.clone(), one.clone(), one].concat();
        let gz = pgzip(&data, 6, 2, 128 * 1024);
        assert_eq!(gunzip_single(&gz), data);
        assert!(gz.len() < 60 * 1024, "{} bytes", gz.len());
    }

    #[test]
    fn header_and_trailer() {
        let data = b"hello, world\n".repeat(10_000);
        let gz = pgzip(&data, 6, 2, 32 * 1024);
        assert_eq!(gz[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let n = gz.len();
        let mut crc = Crc::new();
        crc.update(&data);
        assert_eq!(gz[n - 8..n - 4], crc.sum().to_le_bytes());
        assert_eq!(gz[n - 4..], (data.len() as u32).to_le_bytes());
    }

    #[test]
    fn dropping_unfinished_stops_the_workers() {
        let mut enc =
            ParallelGzEncoder::with_block_size(Vec::new(), 6, 2, 32 * 1024).expect("spawn");
        enc.write_all(&sample(500_000)).expect("in memory");
        drop(enc);
    }
}
