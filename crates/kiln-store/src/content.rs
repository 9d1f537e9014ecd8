//! The content store: blobs named by their digest.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use kiln_fs::atomic;
use kiln_fs::hash::HashingWriter;
use kiln_oci::digest::Algorithm;
use kiln_oci::Digest;
use thiserror::Error;

/// A content store operation that failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// File-system trouble.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The bytes are not what they were said to be.
    #[error("content verification failed: expected {expected} ({expected_size} bytes), got {actual} ({actual_size} bytes)")]
    Mismatch {
        /// The digest promised.
        expected: Digest,
        /// The size promised.
        expected_size: u64,
        /// The digest of what arrived.
        actual: Digest,
        /// The size of what arrived.
        actual_size: u64,
    },
    /// More bytes arrived than the descriptor allows.
    #[error("content for {expected} exceeds its declared size of {size} bytes")]
    TooLong {
        /// The digest promised.
        expected: Digest,
        /// The size promised.
        size: u64,
    },
    /// A digest kiln does not store.
    #[error("unsupported digest algorithm for {digest}: kiln stores sha256 content")]
    Algorithm {
        /// The digest.
        digest: Digest,
    },
    /// No such blob.
    #[error("blob {digest} is not in the store")]
    NotFound {
        /// The digest.
        digest: Digest,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The process id in a temporary name made by [`atomic::temp_path`]
/// (`.tmp-PID-…`).
pub fn temp_owner(name: &std::ffi::OsStr) -> Option<u32> {
    name.to_str()?
        .strip_prefix(".tmp-")?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// The sha256 digest a file named by its hex (a blob, a snapshot
/// directory) stands for; `None` for any other name.
pub(crate) fn sha256_name(name: &std::ffi::OsStr) -> Option<Digest> {
    format!("sha256:{}", name.to_str()?).parse().ok()
}

/// The blob store under a store root.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
    ingest: PathBuf,
}

/// Mark `dir` as the top of a hierarchy (`FS_TOPDIR_FL`, `chattr +T`):
/// ext4 then places each directory made in it in a block group of its own
/// choosing (Orlov's allocator, as for directories at the root), not beside
/// its parent. Best effort: file systems without the flag ignore it.
///
/// Why: `ingest/` holds the directories layers are made in (a RUN's upper
/// directory, a COPY's staging), and every file a step creates is
/// allocated in its directory's group. On ext4 without a journal an
/// allocation skips each inode of that group freed in the last minute or
/// more (`recently_deleted`), and the store's own removals (an old store,
/// a pruned cache) sit right there. Measured on this project's VM, cold
/// builds of the benchmark just after a store was removed: median 91 and
/// 97 ms with the flag, 109 and 106 ms without.
fn spread_subdirectories(dir: &Path) {
    use rustix::fs::{ioctl_getflags, ioctl_setflags, IFlags, Mode, OFlags};
    let Ok(fd) = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return;
    };
    if let Ok(flags) = ioctl_getflags(&fd) {
        if !flags.contains(IFlags::TOPDIR) {
            let _ = ioctl_setflags(&fd, flags | IFlags::TOPDIR);
        }
    }
}

impl ContentStore {
    /// Open (creating, mode 0700) the content store under `root`.
    pub fn open(root: &Path) -> Result<ContentStore, StoreError> {
        let blobs = root.join("blobs/sha256");
        let ingest = root.join("ingest");
        for dir in [root, &root.join("blobs"), &blobs, &ingest] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err("create", dir))?;
        }
        // The root may have existed already: it is 0700 all the same.
        fs::set_permissions(root, fs::Permissions::from_mode(0o700))
            .map_err(io_err("chmod", root))?;
        spread_subdirectories(&ingest);
        Ok(ContentStore { blobs, ingest })
    }

    /// Where the blob `digest` lives (whether or not it is there).
    pub fn path(&self, digest: &Digest) -> Result<PathBuf, StoreError> {
        if digest.algorithm() != Algorithm::Sha256 {
            return Err(StoreError::Algorithm {
                digest: digest.clone(),
            });
        }
        // The hex is validated by the Digest type: no separators, no `..`.
        Ok(self.blobs.join(digest.hex()))
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_ok_and(|p| p.is_file())
    }

    /// Open a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let p = self.path(digest)?;
        File::open(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::NotFound {
                digest: digest.clone(),
            },
            _ => StoreError::Io {
                action: "open",
                path: p.clone(),
                source: e,
            },
        })
    }

    /// Read a whole blob.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        let p = self.path(digest)?;
        self.open_blob(digest)?
            .read_to_end(&mut out)
            .map_err(io_err("read", &p))?;
        Ok(out)
    }

    /// Start writing a blob, whose digest and size are checked on commit
    /// (and, when `expected` is given, as the bytes arrive).
    pub fn ingest(&self, expected: Option<(Digest, u64)>) -> Result<Ingest, StoreError> {
        let (file, path) =
            atomic::create_temp(&self.ingest).map_err(io_err("create", &self.ingest))?;
        Ok(Ingest {
            writer: Some(HashingWriter::new(BlobFile::new(file))),
            path,
            store: self.clone(),
            expected,
        })
    }

    /// Store `bytes`; with `expected`, only if they are what it says.
    pub fn put(&self, bytes: &[u8], expected: Option<(Digest, u64)>) -> Result<Digest, StoreError> {
        let mut w = self.ingest(expected)?;
        w.write_all(bytes).map_err(|source| {
            match source
                .get_ref()
                .and_then(|e| e.downcast_ref::<TooLongMarker>())
            {
                Some(_) => w.too_long(),
                None => StoreError::Io {
                    action: "write",
                    path: w.path.clone(),
                    source,
                },
            }
        })?;
        w.commit()
    }

    /// Remove temporary files left by writers that died: those whose
    /// name (`.tmp-PID-…`) names a process for which `alive` is false.
    /// Returns how many were removed.
    pub fn clean_ingest(&self, alive: impl Fn(u32) -> bool) -> Result<usize, StoreError> {
        let mut n = 0;
        for e in fs::read_dir(&self.ingest).map_err(io_err("list", &self.ingest))? {
            let e = e.map_err(io_err("list", &self.ingest))?;
            if temp_owner(&e.file_name()).is_some_and(&alive) {
                continue;
            }
            let p = e.path();
            let removed = if e.file_type().is_ok_and(|t| t.is_dir()) {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            match removed {
                Ok(()) => n += 1,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(io_err("remove", &p)(err)),
            }
        }
        Ok(n)
    }

    /// Every blob in the store, with its size (unsorted).
    pub fn list(&self) -> Result<Vec<(Digest, u64)>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).map_err(io_err("list", &self.blobs))? {
            let e = e.map_err(io_err("list", &self.blobs))?;
            // A stray file that is not a digest is not a blob (check reports it).
            let Some(d) = sha256_name(&e.file_name()) else {
                continue;
            };
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((d, size));
        }
        Ok(out)
    }

    /// Files in `blobs/sha256/` whose name is not a digest.
    pub fn strays(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.blobs).map_err(io_err("list", &self.blobs))? {
            let e = e.map_err(io_err("list", &self.blobs))?;
            if sha256_name(&e.file_name()).is_none() {
                out.push(e.path());
            }
        }
        Ok(out)
    }

    /// Remove a blob (no error if it is already gone).
    pub fn remove(&self, digest: &Digest) -> Result<(), StoreError> {
        let p = self.path(digest)?;
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &p)(e)),
        }
    }

    /// Re-hash a blob: whether its content matches its name, and its size.
    pub fn verify(&self, digest: &Digest) -> Result<(bool, u64), StoreError> {
        let p = self.path(digest)?;
        let mut f = self.open_blob(digest)?;
        let mut w = HashingWriter::new(io::sink());
        io::copy(&mut f, &mut w).map_err(io_err("read", &p))?;
        let (actual, size, _) = w.finish();
        Ok((actual == *digest, size))
    }
}

#[derive(Debug)]
struct TooLongMarker;

impl std::fmt::Display for TooLongMarker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("more bytes than the descriptor's size")
    }
}

impl std::error::Error for TooLongMarker {}

/// A blob being written. Dropped without [`Ingest::commit`], it leaves
/// nothing in the store (its temporary file is removed).
#[derive(Debug)]
pub struct Ingest {
    /// Taken by `commit`.
    writer: Option<HashingWriter<BlobFile>>,
    path: PathBuf,
    store: ContentStore,
    expected: Option<(Digest, u64)>,
}

/// Alignment of `O_DIRECT` writes (memory, offset, length).
const DIRECT_ALIGN: usize = 4096;

/// Bytes gathered before one `O_DIRECT` write.
const DIRECT_CHUNK: usize = 1 << 20;

/// A new blob's file, written around the page cache (`O_DIRECT`) in whole
/// aligned 1 MiB chunks where the file system allows it, the tail (less
/// than a chunk: all of a small blob) through it. From the second chunk
/// on, whole chunks are written by a thread of their own while the caller
/// hashes and fills the next.
///
/// Why: a blob is written once, synced, and rarely read soon after; going
/// through the page cache costs a fresh page per 4 KiB and then the
/// writeback the `fsync` waits for. Measured on this project's VM, 20 MB:
/// buffered write + fsync 16-63 ms (growing with the page cache), direct
/// 9-10 ms. And the direct writes wait for the disk while the digest of
/// the same bytes takes as long again on the CPU (SHA-256 of 20 MB: ~12
/// ms): one after the other they made most of a 20 MB COPY step. The
/// digest is unchanged: the bytes are the same.
struct BlobFile {
    file: Arc<File>,
    /// The chunk being filled, while direct.
    chunk: Chunk,
    /// Where the next write goes.
    offset: u64,
    direct: bool,
    /// The thread writing whole chunks, once one was written directly.
    writer: Option<ChunkWriter>,
}

/// A `DIRECT_CHUNK + DIRECT_ALIGN` buffer (allocated at the first write),
/// its aligned chunk starting at `start`, `len` bytes of it filled.
#[derive(Default)]
struct Chunk {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

impl Chunk {
    fn new() -> Chunk {
        let buf = vec![0; DIRECT_CHUNK + DIRECT_ALIGN];
        let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
        Chunk { buf, start, len: 0 }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }
}

/// The background writer of whole direct chunks: chunks go in with their
/// offset; emptied buffers come back for reuse.
struct ChunkWriter {
    tx: Option<mpsc::SyncSender<(Chunk, u64)>>,
    spare: mpsc::Receiver<Chunk>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl ChunkWriter {
    fn spawn(file: Arc<File>) -> io::Result<ChunkWriter> {
        let (tx, rx) = mpsc::sync_channel::<(Chunk, u64)>(1);
        let (spare_tx, spare) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("blob-writer".into())
            .spawn(move || {
                for (mut chunk, offset) in rx {
                    file.write_all_at(chunk.bytes(), offset)?;
                    chunk.len = 0;
                    let _ = spare_tx.send(chunk);
                }
                Ok(())
            })?;
        Ok(ChunkWriter {
            tx: Some(tx),
            spare,
            thread: Some(thread),
        })
    }

    /// Queue `chunk` (waiting while another is queued); a buffer to fill
    /// next, or the error that stopped the thread.
    fn send(&mut self, chunk: Chunk, offset: u64) -> io::Result<Chunk> {
        let sent = self.tx.as_ref().map(|tx| tx.send((chunk, offset)));
        if !matches!(sent, Some(Ok(()))) {
            return Err(self
                .wait()
                .err()
                .unwrap_or_else(|| io::Error::other("the blob writer thread ended early")));
        }
        Ok(self.spare.try_recv().unwrap_or_else(|_| Chunk::new()))
    }

    /// Wait for every queued chunk to be written.
    fn wait(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(io::Error::other("the blob writer thread panicked")),
        }
    }
}

impl Drop for ChunkWriter {
    fn drop(&mut self) {
        let _ = self.wait();
    }
}

impl std::fmt::Debug for BlobFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobFile")
            .field("file", &self.file)
            .field("pending", &self.chunk.len)
            .field("direct", &self.direct)
            .finish()
    }
}

impl BlobFile {
    fn new(file: File) -> BlobFile {
        let direct = rustix::fs::fcntl_getfl(&file)
            .and_then(|fl| rustix::fs::fcntl_setfl(&file, fl | rustix::fs::OFlags::DIRECT))
            .is_ok();
        BlobFile {
            file: Arc::new(file),
            chunk: Chunk::default(),
            offset: 0,
            direct,
            writer: None,
        }
    }

    /// Leave direct mode (the tail, a short write, a flush): what follows
    /// goes through the page cache. Waits for the writer thread first.
    fn buffered(&mut self) -> io::Result<()> {
        if let Some(mut w) = self.writer.take() {
            w.wait()?;
        }
        if self.direct {
            let fl = rustix::fs::fcntl_getfl(&*self.file)?;
            rustix::fs::fcntl_setfl(&*self.file, fl - rustix::fs::OFlags::DIRECT)?;
            self.direct = false;
        }
        Ok(())
    }

    /// Write a whole chunk: by the writer thread once one was written
    /// directly here (which also tells whether the file system takes
    /// direct writes at all).
    fn write_chunk(&mut self) -> io::Result<()> {
        let offset = self.offset;
        self.offset += self.chunk.len as u64;
        if let Some(w) = &mut self.writer {
            let chunk = std::mem::take(&mut self.chunk);
            self.chunk = w.send(chunk, offset)?;
            return Ok(());
        }
        match self.file.write_all_at(self.chunk.bytes(), offset) {
            Ok(()) => self.writer = Some(ChunkWriter::spawn(Arc::clone(&self.file))?),
            // A file system that took the flag but not the write.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                self.buffered()?;
                self.file.write_all_at(self.chunk.bytes(), offset)?;
            }
            Err(e) => return Err(e),
        }
        self.chunk.len = 0;
        Ok(())
    }

    /// Write everything pending (the tail through the page cache).
    fn drain(&mut self) -> io::Result<()> {
        self.buffered()?;
        if self.chunk.len > 0 {
            self.file.write_all_at(self.chunk.bytes(), self.offset)?;
            self.offset += self.chunk.len as u64;
            self.chunk.len = 0;
        }
        Ok(())
    }
}

impl Write for BlobFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.direct {
            self.file.write_all_at(data, self.offset)?;
            self.offset += data.len() as u64;
            return Ok(data.len());
        }
        if self.chunk.buf.is_empty() {
            self.chunk = Chunk::new();
        }
        let n = (DIRECT_CHUNK - self.chunk.len).min(data.len());
        let at = self.chunk.start + self.chunk.len;
        self.chunk.buf[at..at + n].copy_from_slice(&data[..n]);
        self.chunk.len += n;
        if self.chunk.len == DIRECT_CHUNK {
            self.write_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.drain()
    }
}

impl Ingest {
    fn too_long(&self) -> StoreError {
        let (expected, size) = self
            .expected
            .clone()
            .expect("only raised with an expected size");
        StoreError::TooLong { expected, size }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.writer.as_ref().map_or(0, HashingWriter::written)
    }

    /// Verify and publish the blob; returns its digest.
    pub fn commit(self) -> Result<Digest, StoreError> {
        self.finish()?.publish()
    }

    /// Verify the blob and make it durable, without publishing it yet: the
    /// caller learns the digest (to protect it with a lease, say) before
    /// [`Verified::publish`] renames it into place.
    pub fn finish(mut self) -> Result<Verified, StoreError> {
        let path = std::mem::take(&mut self.path);
        let Some(writer) = self.writer.take() else {
            unreachable!("finish consumes the ingest, so the writer is still there");
        };
        let (digest, size, mut blob) = writer.finish();
        let cleanup = |e: StoreError| {
            let _ = fs::remove_file(&path);
            e
        };
        if let Some((expected, expected_size)) = &self.expected {
            if *expected != digest || *expected_size != size {
                return Err(cleanup(StoreError::Mismatch {
                    expected: expected.clone(),
                    expected_size: *expected_size,
                    actual: digest,
                    actual_size: size,
                }));
            }
        }
        blob.flush()
            .and_then(|()| blob.file.sync_all())
            .map_err(io_err("sync", &path))
            .map_err(cleanup)?;
        let file = blob.file;
        // Blobs are immutable: read-only for everyone.
        let mut perms = file
            .metadata()
            .map_err(io_err("stat", &path))
            .map_err(cleanup)?
            .permissions();
        perms.set_readonly(true);
        fs::set_permissions(&path, perms)
            .map_err(io_err("chmod", &path))
            .map_err(cleanup)?;
        Ok(Verified {
            path,
            digest,
            size,
            store: self.store.clone(),
        })
    }
}

/// A blob verified and synced in `ingest/`, not yet in `blobs/`. Dropped
/// without [`Verified::publish`], it leaves nothing.
#[derive(Debug)]
pub struct Verified {
    path: PathBuf,
    digest: Digest,
    size: u64,
    store: ContentStore,
}

impl Verified {
    /// The blob's digest.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// Its size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Rename it into `blobs/` (durably); returns its digest.
    pub fn publish(mut self) -> Result<Digest, StoreError> {
        let path = std::mem::take(&mut self.path);
        let cleanup = |e: StoreError| {
            let _ = fs::remove_file(&path);
            e
        };
        let target = self.store.path(&self.digest).map_err(cleanup)?;
        atomic::commit(&path, &target)
            .map_err(io_err("rename into", &target))
            .map_err(cleanup)?;
        Ok(self.digest.clone())
    }
}

impl Drop for Verified {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some((_, size)) = &self.expected {
            if self.written() + buf.len() as u64 > *size {
                return Err(io::Error::other(TooLongMarker));
            }
        }
        let Some(w) = &mut self.writer else {
            return Err(io::Error::other("write after commit"));
        };
        w.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.writer {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}
