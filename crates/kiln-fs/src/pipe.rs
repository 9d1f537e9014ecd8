//! Byte streams between threads in large chunks: a writer that fills
//! 256 KiB chunks and sends them on a bounded queue, and a reader over the
//! receiving end. The layer pipelines (tar → hash → compress, extract →
//! recompress, directory → importer) move their bytes with these, so a
//! stage never waits on another for each small write, and memory stays at
//! the queue's bound whatever the stream's size.
//!
//! A stage that fails drops its end: the other end's send fails
//! (`BrokenPipe`) or its receive ends, so no stage stays blocked.

use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};

/// Bytes per chunk.
pub const CHUNK: usize = 256 * 1024;

/// A bounded chunk queue: the writing end and the receiving end.
pub fn chunk_pipe(queued: usize) -> (ChunkWriter, Receiver<Vec<u8>>) {
    let (tx, rx) = mpsc::sync_channel(queued);
    (ChunkWriter::new(tx), rx)
}

/// Fills chunks and queues them; [`ChunkWriter::finish`] sends the last,
/// partial one (`flush` does not, so that a flushing writer above it never
/// sends small chunks).
#[derive(Debug)]
pub struct ChunkWriter {
    buf: Vec<u8>,
    tx: SyncSender<Vec<u8>>,
    /// Chunks the consumer is done with, to reuse.
    spare: Option<Receiver<Vec<u8>>>,
}

impl ChunkWriter {
    /// A writer sending on `tx`.
    pub fn new(tx: SyncSender<Vec<u8>>) -> Self {
        ChunkWriter {
            buf: Vec::with_capacity(CHUNK),
            tx,
            spare: None,
        }
    }

    /// Take new chunks from `spare` (where the consumer returns the ones it
    /// is done with) rather than allocating them.
    pub fn recycling(mut self, spare: Receiver<Vec<u8>>) -> Self {
        self.spare = Some(spare);
        self
    }

    fn send(&mut self) -> io::Result<()> {
        let mut next = self
            .spare
            .as_ref()
            .and_then(|s| s.try_recv().ok())
            .unwrap_or_default();
        next.clear();
        next.reserve(CHUNK);
        let full = std::mem::replace(&mut self.buf, next);
        self.tx
            .send(full)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the consumer stopped"))
    }

    /// Send what is buffered; dropping the writer then ends the stream.
    pub fn finish(mut self) -> io::Result<()> {
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

/// Reads the chunks of a queue as one stream, ending when every sender is
/// gone.
#[derive(Debug)]
pub struct ChunkReader {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl ChunkReader {
    /// A reader over `rx`.
    pub fn new(rx: Receiver<Vec<u8>>) -> Self {
        ChunkReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(b) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_stream_crosses_in_order_and_whole() {
        let data: Vec<u8> = (0..(3 * CHUNK + 1234))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let (mut w, rx) = chunk_pipe(2);
        let sent = data.clone();
        let t = std::thread::spawn(move || {
            for piece in sent.chunks(1000) {
                w.write_all(piece).unwrap();
            }
            w.finish().unwrap();
        });
        let mut got = Vec::new();
        ChunkReader::new(rx).read_to_end(&mut got).unwrap();
        t.join().unwrap();
        assert_eq!(got, data);
    }

    #[test]
    fn a_gone_reader_fails_the_writer() {
        let (mut w, rx) = chunk_pipe(1);
        drop(rx);
        let err = w.write_all(&vec![0u8; 2 * CHUNK]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    }
}
