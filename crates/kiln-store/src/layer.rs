//! Bringing a layer into the store: its blob into `blobs/`, its files into
//! a snapshot, in one pass over the bytes, with the digest, size and DiffID
//! verified before anything is published.
//!
//! Two ways in:
//! - [`Store::ingest_layer_blob`]: the bytes *are* the blob (a layer from an
//!   archive or a registry): stored as they are, so the manifest that names
//!   them keeps its digest.
//! - [`Store::ingest_layer_tar`]: a tar stream in any compression (`import`):
//!   compressed anew on a second thread while it is extracted.
//!
//! Order of publication: the blob and snapshot are protected by the caller's
//! lease, then published (blob renamed, snapshot directory renamed and
//! recorded). A failure before that leaves nothing: temporary files and
//! directories are removed on drop, or by the next collection if the
//! process was killed.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use kiln_fs::apply::{apply_layer, ApplyError, ApplyOptions, ApplyStats};
use kiln_fs::compress::{available_threads, decompressed, CompressOptions, Encoder};
use kiln_fs::hash::{HashingWriter, TeeReader};
use kiln_fs::layer::{write_layer, WriteOptions};
use kiln_fs::pipe::ChunkWriter;
use kiln_oci::media_types::{Compression, ManifestFormat};
use kiln_oci::{Descriptor, Digest};
use thiserror::Error;

use crate::content::Ingest;
use crate::lease::Lease;
use crate::meta::{Txn, SNAPSHOTS};
use crate::records::{chain_id, LayerRecord, SnapshotRecord};
use crate::store::io_err;
use crate::{Error, Store};

/// A layer that cannot be stored.
#[derive(Debug, Error)]
pub enum LayerError {
    /// The layer's files cannot be extracted.
    #[error("failed to apply layer {digest}: {source}")]
    Apply {
        /// The layer (blob digest, or DiffID for a new layer).
        digest: String,
        /// Why.
        #[source]
        source: ApplyError,
    },
    /// Reading or decompressing the layer failed.
    #[error("failed to read layer {digest}: {source}")]
    Read {
        /// The layer.
        digest: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The uncompressed content is not what the image config says.
    #[error("layer {digest}: uncompressed content has DiffID {actual}, but the image config says {expected}")]
    DiffId {
        /// The layer blob.
        digest: Digest,
        /// From the config.
        expected: Digest,
        /// Computed.
        actual: Digest,
    },
    /// Compressing the new layer failed.
    #[error("failed to compress the new layer: {source}")]
    Compress {
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// How a new layer is compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLayerOptions {
    /// gzip, zstd or none.
    pub compression: Compression,
    /// Level (gzip 0–9, zstd 1–19); default per algorithm.
    pub level: Option<i32>,
    /// Limits for the extraction.
    pub apply: ApplyOptions,
    /// OCI or Docker media types.
    pub format: ManifestFormat,
    /// Record the new layer in the build cache under this key (a build
    /// step's result), in the transaction that publishes it.
    pub cache: Option<crate::build_cache::CacheEntry>,
}

impl Default for NewLayerOptions {
    fn default() -> Self {
        NewLayerOptions {
            compression: Compression::Gzip,
            level: None,
            apply: ApplyOptions::default(),
            format: ManifestFormat::Oci,
            cache: None,
        }
    }
}

impl Store {
    /// Store the layer blob read from `input` (exactly `blob.size` bytes
    /// with digest `blob.digest`, whose uncompressed tar must have DiffID
    /// `diff_id`), on top of the snapshot `parent`. What is already in the
    /// store is not read again: then `input` may be left unread.
    pub fn ingest_layer_blob(
        &self,
        lease: &Lease<'_>,
        input: impl Read,
        blob: &Descriptor,
        diff_id: &Digest,
        parent: Option<&Digest>,
        apply: &ApplyOptions,
    ) -> Result<LayerRecord, Error> {
        let chain = chain_id(parent, diff_id);
        lease.protect([&blob.digest], [&chain])?;
        let have_blob = self.content().contains(&blob.digest);
        let existing = self.existing_snapshot(&chain)?;
        let record = |unpacked_size, tar_size| LayerRecord {
            blob: blob.clone(),
            diff_id: diff_id.clone(),
            chain_id: chain.clone(),
            unpacked_size,
            tar_size,
        };
        if let (true, Some(s)) = (have_blob, &existing) {
            return Ok(record(s.size, s.tar_size));
        }
        let name = blob.digest.to_string();
        let read_err = |source| LayerError::Read {
            digest: name.clone(),
            source,
        };
        let mut ingest = match have_blob {
            true => None,
            false => Some(
                self.content()
                    .ingest(Some((blob.digest.clone(), blob.size)))?,
            ),
        };
        let mut input = input;
        let mut snapshot = match existing {
            Some(_) => None,
            None => Some(NewSnapshot::create(self)?),
        };
        let (actual, tar_size, stats) = {
            let raw = TeeReader::new(&mut input, MaybeWriter(ingest.as_mut()));
            let tar = decompressed(raw).map_err(read_err)?;
            let mut tar = TeeReader::new(tar, HashingWriter::new(io::sink()));
            let stats = match &snapshot {
                Some(s) => {
                    apply_layer(&mut tar, &s.fs, apply).map_err(|source| LayerError::Apply {
                        digest: name.clone(),
                        source,
                    })?
                }
                None => ApplyStats::default(),
            };
            let (_, hasher) = tar.drain().map_err(read_err)?;
            let (digest, size, _) = hasher.finish();
            (digest, size, stats)
        };
        // The blob is whole only when the input is exhausted (a compressed
        // stream may carry bytes after its end).
        io::copy(&mut input, &mut MaybeWriter(ingest.as_mut())).map_err(read_err)?;
        if actual != *diff_id {
            return Err(LayerError::DiffId {
                digest: blob.digest.clone(),
                expected: diff_id.clone(),
                actual,
            }
            .into());
        }
        if let Some(ingest) = ingest {
            ingest.finish()?.publish()?;
        }
        let size = match snapshot.take() {
            Some(s) => {
                s.publish(
                    self,
                    &chain,
                    &snapshot_record(diff_id, parent, stats, tar_size),
                )?;
                stats.bytes
            }
            None => existing.map_or(0, |s| s.size),
        };
        Ok(record(size, tar_size))
    }

    /// Make a new layer from the tar stream `input` (plain, gzip or zstd,
    /// detected): extracted into a snapshot on top of `parent` and
    /// compressed into a new blob, in one pass on two threads.
    pub fn ingest_layer_tar(
        &self,
        lease: &Lease<'_>,
        input: impl Read,
        parent: Option<&Digest>,
        opts: &NewLayerOptions,
    ) -> Result<LayerRecord, Error> {
        let read_err = |source| LayerError::Read {
            digest: "(new layer)".into(),
            source,
        };
        let snapshot = NewSnapshot::create(self)?;
        let ((diff_id, tar_size, stats), ingest) = self.compressing(opts, |chunks| {
            let tar = decompressed(input).map_err(read_err)?;
            let mut tar = TeeReader::new(tar, HashingWriter::new(chunks));
            let stats = apply_layer(&mut tar, &snapshot.fs, &opts.apply).map_err(|source| {
                LayerError::Apply {
                    digest: "(new layer)".into(),
                    source,
                }
            })?;
            let (_, copy) = tar.drain().map_err(read_err)?;
            let (diff_id, tar_size, chunks) = copy.finish();
            chunks.finish().map_err(read_err)?;
            Ok((diff_id, tar_size, stats))
        })?;
        self.publish_layer(
            lease,
            ingest,
            snapshot,
            parent,
            opts,
            Some((diff_id, tar_size)),
            stats,
        )
    }

    /// Whether the directory tree `dir` on the store's file system (a
    /// COPY's staging tree, or with `write.overlay` a RUN's overlay upper
    /// directory) can become its layer's snapshot as it is: renamed, not
    /// extracted again from the tar (for a COPY of 20 MB, 20 MB written and
    /// ~60 ms of CPU less; for a RUN, every file it made is not made a
    /// second time). `None`, with `dir` left as it was, when the extraction
    /// of its tar would not give `dir` back as it is (see
    /// [`kiln_fs::layer::extracts_as_is`]; overlay's bookkeeping xattrs are
    /// removed either way) or when `write` clamps times to a
    /// SOURCE_DATE_EPOCH or diffs against a lower tree: the caller goes the
    /// tar way. Otherwise the root takes the owner and mode an extraction
    /// leaves (the tar has no entry for it: the staging root is private,
    /// and a RUN's took the image root's owner and mode, or whatever the
    /// command made of them), and from here on `dir` is what the layer's
    /// snapshot will be: it may be read, as the next build step's lower
    /// directory say, while [`LayerDir::write`] writes its tar, hashed and
    /// compressed into a new blob on two threads;
    /// [`WrittenLayerDir::publish`] then makes it a layer of the store.
    pub fn layer_dir(&self, dir: &Path, write: &WriteOptions) -> Result<Option<LayerDir>, Error> {
        if write.source_date_epoch.is_some() || write.lower.is_some() {
            return Ok(None);
        }
        let as_is = kiln_fs::layer::extracts_as_is(dir, write.overlay);
        let Some(bytes) = as_is.map_err(io_err("read", dir))? else {
            return Ok(None);
        };
        rustix::fs::chown(
            dir,
            Some(rustix::process::geteuid()),
            Some(rustix::process::getegid()),
        )
        .map_err(|e| io_err("chown", dir)(e.into()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .map_err(io_err("chmod", dir))?;
        Ok(Some(LayerDir {
            dir: dir.to_path_buf(),
            bytes,
        }))
    }

    /// Run `produce` on this thread with a chunk writer whose bytes are
    /// compressed, on another, into a new blob being ingested; returns what
    /// `produce` returned and the ingest. A failure of either ends both
    /// (the sender is dropped with `produce`'s writer; the compressor's
    /// failure is reported before `produce`'s, which then only saw the
    /// queue close).
    fn compressing<T>(
        &self,
        opts: &NewLayerOptions,
        produce: impl FnOnce(ChunkWriter) -> Result<T, Error>,
    ) -> Result<(T, Ingest), Error> {
        let ingest = self.content().ingest(None)?;
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
        let (compression, level) = (opts.compression, opts.level);
        std::thread::scope(|scope| {
            let compressor = scope.spawn(move || compress_chunks(rx, ingest, compression, level));
            let result = produce(ChunkWriter::new(tx));
            let ingest = compressor
                .join()
                .map_err(|_| LayerError::Compress {
                    source: io::Error::other("the compression thread panicked"),
                })?
                .map_err(|source| LayerError::Compress { source });
            let out = result?;
            Ok((out, ingest?))
        })
    }

    /// Publish a new layer, in one metadata transaction (one commit, where
    /// three made a build step's layer before): its blob and snapshot
    /// protected by `lease`, the blob renamed into `blobs/`, the snapshot
    /// (unless its chain has one already) into `snapshots/` and recorded,
    /// and with `opts.cache` its build cache record. The renames happen
    /// under the database lock, after the protection, so a collection never
    /// sees them unprotected. `tar` is the DiffID and size of the layer's
    /// tar, or `None` when the blob is that tar.
    #[allow(clippy::too_many_arguments)]
    fn publish_layer(
        &self,
        lease: &Lease<'_>,
        ingest: Ingest,
        snapshot: NewSnapshot,
        parent: Option<&Digest>,
        opts: &NewLayerOptions,
        tar: Option<(Digest, u64)>,
        stats: ApplyStats,
    ) -> Result<LayerRecord, Error> {
        let verified = ingest.finish()?;
        let (diff_id, tar_size) =
            tar.unwrap_or_else(|| (verified.digest().clone(), verified.size()));
        let chain = chain_id(parent, &diff_id);
        let record = LayerRecord {
            blob: Descriptor::new(
                opts.format.layer(opts.compression),
                verified.digest().clone(),
                verified.size(),
            ),
            diff_id: diff_id.clone(),
            chain_id: chain.clone(),
            unpacked_size: stats.bytes,
            tar_size,
        };
        self.meta.write(|t| {
            lease.protect_in(t, [verified.digest()], [&chain])?;
            verified.publish()?;
            let r = snapshot_record(&diff_id, parent, stats, tar_size);
            snapshot.publish_in(t, self, &chain, &r)?;
            if let Some(c) = &opts.cache {
                let r =
                    crate::build_cache::BuildCacheRecord::new(record.clone(), c.created.clone());
                t.put(crate::meta::BUILD_CACHE, &c.key, &r)?;
            }
            Ok::<_, Error>(())
        })?;
        Ok(record)
    }

    /// The record of a snapshot whose directory is in place.
    fn existing_snapshot(&self, chain: &Digest) -> Result<Option<SnapshotRecord>, Error> {
        Ok(self
            .snapshot(chain)?
            .filter(|_| self.snapshot_path(chain).is_dir()))
    }
}

/// A snapshot being extracted, in `snapshots/.tmp-PID-…/fs`; removed if
/// dropped unpublished.
#[derive(Debug)]
struct NewSnapshot {
    dir: PathBuf,
    fs: PathBuf,
}

impl NewSnapshot {
    fn create(store: &Store) -> Result<NewSnapshot, Error> {
        let snapshot = NewSnapshot::without_fs(store)?;
        fs::DirBuilder::new()
            .mode(0o755)
            .create(&snapshot.fs)
            .map_err(io_err("create", &snapshot.fs))?;
        Ok(snapshot)
    }

    /// One whose `fs` is still to be put in place (renamed into it).
    fn without_fs(store: &Store) -> Result<NewSnapshot, Error> {
        let dir = kiln_fs::atomic::temp_path(store.snapshots_dir());
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io_err("create", &dir))?;
        let fs = dir.join("fs");
        Ok(NewSnapshot { dir, fs })
    }

    /// Rename into `snapshots/<hex>` and record it as `record` (the chain
    /// id must be protected by the caller's lease already). If another
    /// process published the same snapshot meanwhile, ours is discarded.
    fn publish(self, store: &Store, chain: &Digest, record: &SnapshotRecord) -> Result<(), Error> {
        store
            .meta
            .write(|t| self.publish_in(t, store, chain, record))
    }

    /// [`NewSnapshot::publish`] in the caller's write transaction.
    fn publish_in(
        mut self,
        t: &mut Txn,
        store: &Store,
        chain: &Digest,
        record: &SnapshotRecord,
    ) -> Result<(), Error> {
        let target = store.snapshots_dir().join(chain.hex());
        if t.get::<SnapshotRecord>(SNAPSHOTS, &chain.to_string())?
            .is_some()
            && target.is_dir()
        {
            return Ok(());
        }
        if target.exists() {
            crate::gc::remove_dir(&target)?;
        }
        fs::rename(&self.dir, &target).map_err(io_err("rename into", &target))?;
        kiln_fs::atomic::sync_dir(store.snapshots_dir())
            .map_err(io_err("sync", store.snapshots_dir()))?;
        self.dir = PathBuf::new();
        t.put(SNAPSHOTS, &chain.to_string(), record)?;
        Ok(())
    }
}

/// A directory on its way to becoming a layer and its snapshot as it is
/// ([`Store::layer_dir`]).
#[derive(Debug)]
pub struct LayerDir {
    dir: PathBuf,
    /// Bytes of file content.
    bytes: u64,
}

impl LayerDir {
    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Write its tar, hashed and compressed on two threads, into a new
    /// blob (not published yet). Only reads the directory.
    pub fn write(
        self,
        store: &Store,
        opts: &NewLayerOptions,
        write: &WriteOptions,
    ) -> Result<WrittenLayerDir, Error> {
        let write_err = |e: kiln_fs::layer::LayerWriteError| LayerError::Compress {
            source: io::Error::other(e.to_string()),
        };
        let dir = &self.dir;
        let ((entries, tar), ingest) = store.compressing(opts, |chunks| {
            let (entries, tar, chunks) = if opts.compression == Compression::None {
                // The blob is the tar itself: the ingest's digest is its
                // DiffID (one SHA-256 pass over the bytes, not two).
                let (entries, chunks) =
                    kiln_fs::layer::write_entries(dir, chunks, write).map_err(write_err)?;
                (entries, None, chunks)
            } else {
                let (info, chunks) = write_layer(dir, chunks, write).map_err(write_err)?;
                (info.entries, Some((info.diff_id, info.size)), chunks)
            };
            chunks
                .finish()
                .map_err(|source| LayerError::Compress { source })?;
            Ok((entries, tar))
        })?;
        Ok(WrittenLayerDir {
            dir: self.dir,
            ingest,
            tar,
            stats: ApplyStats {
                entries,
                bytes: self.bytes,
            },
        })
    }
}

/// A [`LayerDir`] whose blob is written: [`WrittenLayerDir::publish`]
/// makes it a layer of the store. Dropped unpublished, its blob is
/// removed (the directory stays where it was).
#[derive(Debug)]
pub struct WrittenLayerDir {
    dir: PathBuf,
    ingest: Ingest,
    tar: Option<(Digest, u64)>,
    stats: ApplyStats,
}

impl WrittenLayerDir {
    /// Rename the directory into `snapshots/` and publish the layer on
    /// `parent`, with its blob, protected by `lease` (see
    /// [`Store::layer_dir`]).
    pub fn publish(
        self,
        store: &Store,
        lease: &Lease<'_>,
        parent: Option<&Digest>,
        opts: &NewLayerOptions,
    ) -> Result<LayerRecord, Error> {
        let snapshot = NewSnapshot::without_fs(store)?;
        fs::rename(&self.dir, &snapshot.fs).map_err(io_err("rename into", &snapshot.fs))?;
        store.publish_layer(
            lease,
            self.ingest,
            snapshot,
            parent,
            opts,
            self.tar,
            self.stats,
        )
    }
}

/// The record of a snapshot made of a layer with DiffID `diff_id` on
/// `parent`.
fn snapshot_record(
    diff_id: &Digest,
    parent: Option<&Digest>,
    stats: ApplyStats,
    tar_size: u64,
) -> SnapshotRecord {
    SnapshotRecord {
        diff_id: diff_id.clone(),
        parent: parent.cloned(),
        size: stats.bytes,
        entries: stats.entries,
        tar_size,
    }
}

impl Drop for NewSnapshot {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = crate::gc::remove_dir(&self.dir);
        }
    }
}

/// Writes to the ingest when there is one, discards otherwise.
struct MaybeWriter<'a>(Option<&'a mut Ingest>);

impl Write for MaybeWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(w) => w.write(buf),
            None => Ok(buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

fn compress_chunks(
    rx: mpsc::Receiver<Vec<u8>>,
    ingest: Ingest,
    compression: Compression,
    level: Option<i32>,
) -> io::Result<Ingest> {
    let opts = CompressOptions {
        compression,
        level,
        // pgzip and zstdmt: the same bytes whatever the core count.
        threads: available_threads(),
    };
    let mut enc = Encoder::new(ingest, &opts).map_err(io::Error::other)?;
    for c in rx {
        enc.write_all(&c)?;
    }
    enc.finish().map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn tree(dir: &Path) {
        fs::create_dir_all(dir.join("app/sub")).unwrap();
        fs::write(dir.join("app/a"), b"alpha").unwrap();
        fs::write(dir.join("app/sub/b"), vec![7u8; 70_000]).unwrap();
        fs::hard_link(dir.join("app/a"), dir.join("app/a2")).unwrap();
        std::os::unix::fs::symlink("a", dir.join("app/link")).unwrap();
        fs::set_permissions(dir.join("app/sub/b"), fs::Permissions::from_mode(0o751)).unwrap();
    }

    /// (path, mode, size, link target, content) of every entry, sorted.
    fn listing(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let m = fs::symlink_metadata(&p).unwrap();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                let extra = if m.file_type().is_symlink() {
                    fs::read_link(&p).unwrap().display().to_string()
                } else if m.is_file() {
                    format!("{:?}", fs::read(&p).unwrap().len())
                } else {
                    stack.push(p.clone());
                    String::new()
                };
                out.push(format!(
                    "{rel} {:o} {} {} {extra}",
                    m.mode(),
                    m.nlink(),
                    m.mtime()
                ));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn a_plain_tree_becomes_the_snapshot_of_the_layer_its_tar_makes() {
        let opts = NewLayerOptions::default();
        // The tree moved into one store…
        let a = tempfile::tempdir().unwrap();
        let store_a = Store::open(a.path()).unwrap();
        let lease_a = store_a.lease().unwrap();
        let src = a.path().join("ingest/tree");
        tree(&src);
        let expected = listing(&src);
        let (_, tar) = write_layer(&src, Vec::new(), &WriteOptions::default()).unwrap();
        let w = WriteOptions::default();
        let by_dir = store_a
            .layer_dir(&src, &w)
            .unwrap()
            .expect("a plain tree")
            .write(&store_a, &opts, &w)
            .unwrap()
            .publish(&store_a, &lease_a, None, &opts)
            .unwrap();
        assert!(!src.exists(), "the tree was moved into the store");
        // …and its tar extracted into another.
        let b = tempfile::tempdir().unwrap();
        let store_b = Store::open(b.path()).unwrap();
        let lease_b = store_b.lease().unwrap();
        let by_tar = store_b
            .ingest_layer_tar(&lease_b, tar.as_slice(), None, &opts)
            .unwrap();
        assert_eq!(by_dir, by_tar, "same blob, DiffID, chain and sizes");
        let snap_a = listing(&store_a.snapshot_path(&by_dir.chain_id));
        assert_eq!(snap_a, expected);
        assert_eq!(snap_a, listing(&store_b.snapshot_path(&by_tar.chain_id)));
        assert_eq!(by_dir.unpacked_size, 5 + 70_000);
        assert_eq!(
            store_a.snapshot(&by_dir.chain_id).unwrap(),
            store_b.snapshot(&by_tar.chain_id).unwrap()
        );
    }

    #[test]
    fn a_tree_a_tar_would_change_is_left_for_the_tar_way() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let src = root.path().join("ingest/tree");
        tree(&src);
        fs::write(src.join("app/.wh.gone"), b"").unwrap();
        let r = store.layer_dir(&src, &WriteOptions::default()).unwrap();
        assert!(r.is_none());
        assert!(src.join("app/.wh.gone").exists(), "left alone");
    }
}
