//! Writers that hash what passes through them, so a digest is computed in
//! the same pass that writes the bytes (a layer's DiffID while its tar is
//! produced, its digest while it is compressed).

use std::io::{self, Read, Write};

use kiln_oci::Digest;
use sha2::{Digest as _, Sha256};

/// Passes bytes to `inner`, hashing them with SHA-256 and counting them.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The digest of everything written, the count, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        let bytes: [u8; 32] = self.hasher.finalize().into();
        (Digest::sha256_from_bytes(bytes), self.written, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that copies every byte it reads from `inner` into `copy`: one
/// pass over a stream both feeds its consumer and (say) hashes or stores it.
#[derive(Debug)]
pub struct TeeReader<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> TeeReader<R, W> {
    /// Read from `inner`, copying into `copy`.
    pub fn new(inner: R, copy: W) -> Self {
        TeeReader { inner, copy }
    }

    /// Read what is left of `inner` (through the copy) and return both.
    pub fn drain(mut self) -> io::Result<(R, W)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.inner, self.copy))
    }

    /// The copy's writer.
    pub fn copy_mut(&mut self) -> &mut W {
        &mut self.copy
    }
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_known_input() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").expect("in memory");
        let (d, n, out) = w.finish();
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!((n, out.as_slice()), (3, &b"abc"[..]));
        let (empty, _, _) = HashingWriter::new(io::sink()).finish();
        let mut tee = TeeReader::new(&b"abcdef"[..], HashingWriter::new(Vec::new()));
        let mut first = [0u8; 2];
        tee.read_exact(&mut first).expect("in memory");
        let (_, copy) = tee.drain().expect("in memory");
        let (_, n, bytes) = copy.finish();
        assert_eq!((n, bytes.as_slice()), (6, &b"abcdef"[..]));
        assert_eq!(
            empty.hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
