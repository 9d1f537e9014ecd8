//! The layer writer: a directory tree → an OCI layer tar (uncompressed; the
//! compressor wraps the output writer), with its DiffID computed in the
//! same pass.
//!
//! What it guarantees:
//! - the same tree gives the same bytes: entries are sorted by name (bytes),
//!   parents before children, owner names left empty, and with
//!   `source_date_epoch` no mtime is later than it;
//! - every file type: regular files, directories, symlinks, hardlinks
//!   (the second path of an inode is a link to the first), character and
//!   block devices, fifos; sockets are skipped, as Docker does;
//! - from an overlay upper directory (`overlay: true`), overlay's whiteouts
//!   (a 0/0 character device) become `.wh.<name>` and an opaque directory
//!   (`trusted.overlay.opaque=y`, or `user.overlay.opaque` in userxattr
//!   mode) gets a `.wh..wh..opq` entry, written before its siblings;
//! - xattrs `security.capability` and `user.*` travel as PAX
//!   `SCHILY.xattr.*` records; `trusted.*` (overlay's own) never do;
//! - names too long for a ustar header, or not UTF-8, travel in PAX `path`
//!   and `linkpath` records (`hdrcharset=BINARY` when not UTF-8), sizes of
//!   8 GiB and more in a PAX `size` record.
//!
//! - from the difference of two directories (`lower`): what the upper tree
//!   adds or changes (type, mode, owner, size, mtime, content, link target,
//!   device, xattrs), and a `.wh.<name>` for each name of the lower tree
//!   the upper lacks; a directory whose own metadata did not change is
//!   written only as the parent of something that did, so that parents
//!   still come before their children.
//!
//! Symlinks are never followed: the walk uses `lstat`, and files are opened
//! with `O_NOFOLLOW`.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use kiln_oci::Digest;
use rustix::fs::OFlags;
use tar::{EntryType, Header};
use thiserror::Error;

use crate::hash::HashingWriter;

/// How to write a layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// The source is an overlay upper directory: translate whiteouts and
    /// opaque directories.
    pub overlay: bool,
    /// Write only how the source differs from this directory (a plain
    /// tree, not an overlay upper directory; exclusive with `overlay`).
    pub lower: Option<PathBuf>,
    /// Clamp every mtime to at most this many seconds since the epoch
    /// (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: Option<u64>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// SHA-256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Entries written.
    pub entries: u64,
}

/// A layer that could not be written.
#[derive(Debug, Error)]
pub enum LayerWriteError {
    /// Reading the tree failed.
    #[error("failed to read {path} for the layer: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The options contradict each other.
    #[error("a layer is written from an overlay upper directory or from the difference of two directories, not both")]
    OverlayAndLower,
    /// Writing the tar failed.
    #[error("failed to write the layer entry for {path}: {source}")]
    Write {
        /// The path in the layer.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

/// Write the tree under `root` as a layer tar into `out`; returns what was
/// written and `out`.
pub fn write_layer<W: Write>(
    root: &Path,
    out: W,
    opts: &WriteOptions,
) -> Result<(LayerInfo, W), LayerWriteError> {
    let (entries, hashing) = write_entries(root, HashingWriter::new(out), opts)?;
    let (diff_id, size, out) = hashing.finish();
    Ok((
        LayerInfo {
            diff_id,
            size,
            entries,
        },
        out,
    ))
}

/// The tar of [`write_layer`] without its DiffID, for a caller that hashes
/// the stream elsewhere (the store's ingest hashes what it reads: a second
/// SHA-256 pass here cost ~13 ms per 20 MB layer).
pub fn write_tar<W: Write>(root: &Path, out: W, opts: &WriteOptions) -> Result<W, LayerWriteError> {
    write_entries(root, out, opts).map(|(_, out)| out)
}

/// The tar of [`write_layer`] without its hash, for a caller that hashes
/// it elsewhere (on another thread, or the store's ingest when the blob is
/// the tar itself); returns the number of entries.
pub fn write_entries<W: Write>(
    root: &Path,
    out: W,
    opts: &WriteOptions,
) -> Result<(u64, W), LayerWriteError> {
    if opts.overlay && opts.lower.is_some() {
        return Err(LayerWriteError::OverlayAndLower);
    }
    let mut w = Walker {
        builder: tar::Builder::new(out),
        opts: opts.clone(),
        inodes: HashMap::new(),
        entries: 0,
        buf: vec![0u8; READ_BUF],
        pending: Vec::new(),
    };
    let lower = opts.lower.clone();
    w.dir(root, lower.as_deref(), Vec::new())?;
    let out = w
        .builder
        .into_inner()
        .map_err(|source| LayerWriteError::Write {
            path: "end of archive".into(),
            source,
        })?;
    Ok((w.entries, out))
}

struct Walker<W: Write> {
    builder: tar::Builder<W>,
    opts: WriteOptions,
    /// (device, inode) of files with several links → their first path.
    inodes: HashMap<(u64, u64), Vec<u8>>,
    entries: u64,
    /// File content passes through here.
    buf: Vec<u8>,
    /// In a diff, unchanged directories on the way to the current one, not
    /// written yet: written (outermost first) before the first entry under
    /// them, forgotten if there is none.
    pending: Vec<Pending>,
}

/// A directory entry held back until something under it is written.
struct Pending {
    header: Header,
    layer_path: Vec<u8>,
    xattrs: Vec<(String, Vec<u8>)>,
}

/// Bytes read from a file at a time.
const READ_BUF: usize = 256 * 1024;

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> LayerWriteError + '_ {
    move |source| LayerWriteError::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = prefix.to_vec();
    if !p.is_empty() {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

impl<W: Write> Walker<W> {
    /// Emit the children of directory `dir` (whose layer path is `prefix`);
    /// in a diff, `lower` is the same directory in the lower tree, if it
    /// has one.
    fn dir(
        &mut self,
        dir: &Path,
        lower: Option<&Path>,
        prefix: Vec<u8>,
    ) -> Result<(), LayerWriteError> {
        let names = sorted_names(dir)?;

        let mut whiteouts = Vec::new();
        let mut others = Vec::new();
        if let Some(lower) = lower {
            // Names only the lower tree has are deleted; their whiteouts
            // take the time of the directory that lost them.
            let upper: std::collections::HashSet<&OsString> = names.iter().collect();
            let dir_meta = fs::symlink_metadata(dir).map_err(read_err(dir))?;
            for name in sorted_names(lower)? {
                if !upper.contains(&name) {
                    whiteouts.push((name, dir_meta.clone()));
                }
            }
        }
        for name in names {
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path).map_err(read_err(&path))?;
            let ft = meta.file_type();
            if self.opts.overlay && ft.is_char_device() && meta.rdev() == 0 {
                whiteouts.push((name, meta));
            } else {
                others.push((name, path, meta));
            }
        }
        if self.opts.overlay && !prefix.is_empty() && is_opaque(dir) {
            let meta = fs::symlink_metadata(dir).map_err(read_err(dir))?;
            self.marker(&join(&prefix, b".wh..wh..opq"), &meta)?;
        }
        for (name, meta) in whiteouts {
            let mut wh = b".wh.".to_vec();
            wh.extend_from_slice(name.as_bytes());
            self.marker(&join(&prefix, &wh), &meta)?;
        }
        for (name, path, meta) in others {
            let layer_path = join(&prefix, name.as_bytes());
            match lower.map(|l| l.join(&name)) {
                None => self.entry(&path, None, layer_path, &meta)?,
                Some(lower_path) => match fs::symlink_metadata(&lower_path) {
                    Ok(lower_meta) => {
                        self.changed(&path, &meta, &lower_path, &lower_meta, layer_path)?
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        self.entry(&path, None, layer_path, &meta)?
                    }
                    Err(e) => return Err(read_err(&lower_path)(e)),
                },
            }
        }
        Ok(())
    }

    /// In a diff, a name both trees have: written if it differs; a
    /// directory of the same metadata is walked with its counterpart.
    fn changed(
        &mut self,
        path: &Path,
        meta: &fs::Metadata,
        lower_path: &Path,
        lower_meta: &fs::Metadata,
        layer_path: Vec<u8>,
    ) -> Result<(), LayerWriteError> {
        let (ft, lft) = (meta.file_type(), lower_meta.file_type());
        if ft.is_dir() && lft.is_dir() {
            // A directory's mtime follows its entries; what it has of its
            // own is its mode, owner and xattrs (Docker compares the same).
            let same = meta.mode() == lower_meta.mode()
                && meta.uid() == lower_meta.uid()
                && meta.gid() == lower_meta.gid()
                && xattrs(path) == xattrs(lower_path);
            if !same {
                return self.entry(path, Some(lower_path), layer_path, meta);
            }
            let held = self.pending.len();
            let (header, dir_path) = self.dir_header(meta, &layer_path);
            self.pending.push(Pending {
                header,
                layer_path: dir_path,
                xattrs: xattrs(path),
            });
            self.dir(path, Some(lower_path), layer_path)?;
            self.pending.truncate(held);
            return Ok(());
        }
        if ft.is_dir() {
            // A directory where the lower tree has a file: all of it is new.
            return self.entry(path, None, layer_path, meta);
        }
        if !same_entry(path, meta, lower_path, lower_meta).map_err(read_err(path))? {
            return self.entry(path, None, layer_path, meta);
        }
        Ok(())
    }

    /// A directory's header, and its layer path with the trailing slash.
    fn dir_header(&self, meta: &fs::Metadata, layer_path: &[u8]) -> (Header, Vec<u8>) {
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::Directory);
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(u64::from(meta.uid()));
        h.set_gid(u64::from(meta.gid()));
        h.set_mtime(self.mtime(meta));
        h.set_size(0);
        let mut p = layer_path.to_vec();
        p.push(b'/');
        (h, p)
    }

    /// A whiteout or opaque marker: an empty regular file.
    fn marker(&mut self, layer_path: &[u8], meta: &fs::Metadata) -> Result<(), LayerWriteError> {
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime(meta));
        h.set_size(0);
        self.append(h, layer_path.to_vec(), None, Vec::new(), io::empty())
    }

    fn mtime(&self, meta: &fs::Metadata) -> u64 {
        let m = u64::try_from(meta.mtime()).unwrap_or(0);
        match self.opts.source_date_epoch {
            Some(e) => m.min(e),
            None => m,
        }
    }

    /// Write `path` (and, for a directory, what is under it: all of it,
    /// or in a diff what differs from `lower`).
    fn entry(
        &mut self,
        path: &Path,
        lower: Option<&Path>,
        layer_path: Vec<u8>,
        meta: &fs::Metadata,
    ) -> Result<(), LayerWriteError> {
        let ft = meta.file_type();
        let xattrs = xattrs(path);
        if ft.is_dir() {
            let (h, p) = self.dir_header(meta, &layer_path);
            self.append(h, p, None, xattrs, io::empty())?;
            return self.dir(path, lower, layer_path);
        }
        let mut h = Header::new_ustar();
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(u64::from(meta.uid()));
        h.set_gid(u64::from(meta.gid()));
        h.set_mtime(self.mtime(meta));
        h.set_size(0);
        if ft.is_symlink() {
            let target = fs::read_link(path).map_err(read_err(path))?;
            h.set_entry_type(EntryType::Symlink);
            return self.append(
                h,
                layer_path,
                Some(target.into_os_string()),
                xattrs,
                io::empty(),
            );
        }
        if ft.is_file() {
            if meta.nlink() > 1 {
                let key = (meta.dev(), meta.ino());
                if let Some(first) = self.inodes.get(&key).cloned() {
                    h.set_entry_type(EntryType::Link);
                    let target = OsStr::from_bytes(&first).to_os_string();
                    return self.append(h, layer_path, Some(target), xattrs, io::empty());
                }
                self.inodes.insert(key, layer_path.clone());
            }
            h.set_entry_type(EntryType::Regular);
            h.set_size(meta.len());
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(OFlags::NOFOLLOW.bits() as i32)
                .open(path)
                .map_err(read_err(path))?;
            // A file that changes size while it is read fails the write.
            let mut reader = Exact {
                inner: file,
                left: meta.len(),
                path: path.to_path_buf(),
            };
            let shown = String::from_utf8_lossy(&layer_path).into_owned();
            // The header alone (tar's own copy would read in 8 KiB pieces),
            // then the content in large reads, then the padding.
            self.append(h, layer_path, None, xattrs, io::empty())?;
            self.content(&mut reader, meta.len())
                .map_err(|source| LayerWriteError::Write {
                    path: shown,
                    source,
                })?;
            return Ok(());
        }
        if ft.is_char_device() || ft.is_block_device() {
            h.set_entry_type(if ft.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            });
            let rdev = meta.rdev();
            let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
            h.set_device_major(major)
                .map_err(|source| LayerWriteError::Write {
                    path: String::from_utf8_lossy(&layer_path).into_owned(),
                    source,
                })?;
            h.set_device_minor(minor)
                .map_err(|source| LayerWriteError::Write {
                    path: String::from_utf8_lossy(&layer_path).into_owned(),
                    source,
                })?;
            return self.append(h, layer_path, None, xattrs, io::empty());
        }
        if ft.is_fifo() {
            h.set_entry_type(EntryType::Fifo);
            return self.append(h, layer_path, None, xattrs, io::empty());
        }
        // Sockets do not belong in images.
        Ok(())
    }

    /// A regular file's content and its padding to a 512-byte block,
    /// after its header.
    fn content(&mut self, reader: &mut Exact, len: u64) -> io::Result<()> {
        let out = self.builder.get_mut();
        loop {
            let n = io::Read::read(reader, &mut self.buf)?;
            if n == 0 {
                break;
            }
            out.write_all(&self.buf[..n])?;
        }
        let pad = (512 - len % 512) % 512;
        out.write_all(&[0u8; 512][..pad as usize])
    }

    fn append<R: io::Read>(
        &mut self,
        h: Header,
        layer_path: Vec<u8>,
        link: Option<OsString>,
        xattrs: Vec<(String, Vec<u8>)>,
        data: R,
    ) -> Result<(), LayerWriteError> {
        for p in std::mem::take(&mut self.pending) {
            self.append_one(p.header, p.layer_path, None, p.xattrs, io::empty())?;
        }
        self.append_one(h, layer_path, link, xattrs, data)
    }

    fn append_one<R: io::Read>(
        &mut self,
        mut h: Header,
        layer_path: Vec<u8>,
        link: Option<OsString>,
        xattrs: Vec<(String, Vec<u8>)>,
        data: R,
    ) -> Result<(), LayerWriteError> {
        let shown = String::from_utf8_lossy(&layer_path).into_owned();
        let werr = |source| LayerWriteError::Write {
            path: shown.clone(),
            source,
        };
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let mut binary = false;
        if set_name(&mut h, &layer_path).is_err() {
            binary |= std::str::from_utf8(&layer_path).is_err();
            pax.push(("path".into(), layer_path.clone()));
        }
        if let Some(target) = &link {
            let bytes = target.as_bytes();
            if bytes.len() > 100 || std::str::from_utf8(bytes).is_err() {
                binary |= std::str::from_utf8(bytes).is_err();
                pax.push(("linkpath".into(), bytes.to_vec()));
                h.as_old_mut()
                    .linkname
                    .copy_from_slice(&truncated::<100>(bytes));
            } else {
                h.set_link_name_literal(bytes).map_err(werr)?;
            }
        }
        let size = h.size().map_err(werr)?;
        if size >= 8 << 30 {
            pax.push(("size".into(), size.to_string().into_bytes()));
        }
        for (k, v) in xattrs {
            pax.push((format!("SCHILY.xattr.{k}"), v));
        }
        if !pax.is_empty() {
            if binary {
                pax.insert(0, ("hdrcharset".into(), b"BINARY".to_vec()));
            }
            self.builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(werr)?;
        }
        h.set_cksum();
        self.builder.append(&h, data).map_err(werr)?;
        self.entries += 1;
        Ok(())
    }
}

/// The names in a directory, sorted by their bytes.
fn sorted_names(dir: &Path) -> Result<Vec<OsString>, LayerWriteError> {
    let mut names: Vec<OsString> = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err(dir))? {
        names.push(entry.map_err(read_err(dir))?.file_name());
    }
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(names)
}

/// Whether two non-directories are the same entry: type, mode, owner,
/// mtime to the nanosecond, xattrs, then by kind the size and content, the
/// link target or the device number. Content is compared only when the
/// mtimes carry no nanoseconds (a copy that kept mtimes to the second);
/// otherwise equal size and mtime are trusted, as Docker and containerd do.
fn same_entry(
    path: &Path,
    meta: &fs::Metadata,
    lower_path: &Path,
    lower_meta: &fs::Metadata,
) -> io::Result<bool> {
    let (ft, lft) = (meta.file_type(), lower_meta.file_type());
    let kind = |f: fs::FileType| {
        (
            f.is_file(),
            f.is_symlink(),
            f.is_char_device(),
            f.is_block_device(),
            f.is_fifo(),
            f.is_socket(),
        )
    };
    if kind(ft) != kind(lft)
        || meta.mode() != lower_meta.mode()
        || meta.uid() != lower_meta.uid()
        || meta.gid() != lower_meta.gid()
        || meta.mtime() != lower_meta.mtime()
        || meta.mtime_nsec() != lower_meta.mtime_nsec()
        || xattrs(path) != xattrs(lower_path)
    {
        return Ok(false);
    }
    if meta.dev() == lower_meta.dev() && meta.ino() == lower_meta.ino() {
        return Ok(true);
    }
    if ft.is_symlink() {
        return Ok(fs::read_link(path)? == fs::read_link(lower_path)?);
    }
    if ft.is_char_device() || ft.is_block_device() {
        return Ok(meta.rdev() == lower_meta.rdev());
    }
    if ft.is_file() {
        if meta.len() != lower_meta.len() {
            return Ok(false);
        }
        if meta.mtime_nsec() == 0 {
            return same_content(path, lower_path);
        }
    }
    Ok(true)
}

/// Whether two files hold the same bytes (neither followed if a symlink).
fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let open = |p: &Path| {
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(OFlags::NOFOLLOW.bits() as i32)
            .open(p)
    };
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Fill `buf` as far as the file allows; 0 at its end.
fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match io::Read::read(f, &mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// Put `name` in the ustar name (and prefix) fields, or fail when it does
/// not fit; on failure a truncated name is left for readers without PAX.
fn set_name(h: &mut Header, name: &[u8]) -> Result<(), ()> {
    if std::str::from_utf8(name).is_ok() && h.set_path(OsStr::from_bytes(name)).is_ok() {
        // tar's set_path cleans `dir/` to `dir`; keep the slash of directories.
        if name.ends_with(b"/") && name.len() <= 100 {
            h.as_old_mut().name.copy_from_slice(&truncated::<100>(name));
        }
        return Ok(());
    }
    h.as_old_mut().name.copy_from_slice(&truncated::<100>(name));
    Err(())
}

fn truncated<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = bytes.len().min(N);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// Whether a directory is marked opaque by overlayfs.
fn is_opaque(dir: &Path) -> bool {
    OPAQUE_XATTRS.iter().any(|name| xattr_is_y(dir, name))
}

/// Whether `path`'s xattr `name` is overlayfs's `y`.
fn xattr_is_y(path: &Path, name: &str) -> bool {
    let mut buf = [0u8; 8];
    matches!(rustix::fs::lgetxattr(path, name, &mut buf), Ok(n) if buf[..n] == *b"y")
}

/// Whether the xattr `name` travels in a layer (as a PAX record).
fn carried(name: &str) -> bool {
    (name == "security.capability" || name.starts_with("user.")) && !OPAQUE_XATTRS.contains(&name)
}

/// The xattrs of `path` that belong in a layer.
fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for raw in xattr_names(path).unwrap_or_default() {
        let Ok(name) = std::str::from_utf8(&raw) else {
            continue;
        };
        if !carried(name) {
            continue;
        }
        let mut value = vec![0u8; 65536];
        if let Ok(len) = rustix::fs::lgetxattr(path, name, &mut value) {
            value.truncate(len);
            out.push((name.to_string(), value));
        }
    }
    out.sort();
    out
}

/// Reads exactly `left` bytes, failing if the file is shorter or longer
/// (it changed since it was examined): a tar entry's size is fixed first.
struct Exact {
    inner: File,
    left: u64,
    path: PathBuf,
}

impl io::Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(format!(
                    "{} grew while being read",
                    self.path.display()
                ))),
            };
        }
        let want = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while being read", self.path.display()),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// The xattrs overlayfs keeps on an upper directory's entries for its own
/// bookkeeping (`index=off`, `redirect_dir=off`, `metacopy=off`; and, on
/// the upper root since Linux 6.6, the file system's `uuid`): they never
/// travel in a layer and mean nothing in a lower directory.
const OVERLAY_BOOKKEEPING: [&str; 3] = [
    "trusted.overlay.origin",
    "trusted.overlay.impure",
    "trusted.overlay.uuid",
];

/// Whether extracting the layer tar written from `root` (by
/// [`write_layer`], without a SOURCE_DATE_EPOCH clamp or a lower tree)
/// would give `root` back as it is, so that `root` itself can serve as the
/// layer's snapshot: `Some` total size of its regular files (a hard-linked
/// inode counted once), or `None` when the extraction would differ:
///
/// - a name starting with `.wh.` (the tar makes it a whiteout);
/// - a socket (never written), a fifo or a device other than an overlay
///   whiteout;
/// - from an overlay upper directory (`overlay`), an xattr the tar does not
///   carry and the extraction would not make (an ACL, a SELinux label,
///   `user.overlay.*`, an opaque marker other than `y`).
///
/// From an overlay upper directory, overlayfs's bookkeeping xattrs
/// (`trusted.overlay.origin`, `.impure`), which the tar never carries, are
/// removed on the way, and its marks on `root` itself, which has no entry
/// in the tar (any other xattr there: `None`). A tree kiln staged itself
/// (`!overlay`) is not examined for xattrs: kiln wrote only what the tar
/// carries.
pub fn extracts_as_is(root: &Path, overlay: bool) -> io::Result<Option<u64>> {
    if overlay {
        // The tar has no entry for the root: overlay's marks go, anything
        // else could not be made again.
        for raw in xattr_names(root)? {
            let Ok(name) = std::str::from_utf8(&raw) else {
                return Ok(None);
            };
            if !(OVERLAY_BOOKKEEPING.contains(&name) || OPAQUE_XATTRS.contains(&name)) {
                return Ok(None);
            }
            remove_xattr(root, name)?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d)? {
            let e = e?;
            if e.file_name().as_bytes().starts_with(b".wh.") {
                return Ok(None);
            }
            let m = e.metadata()?;
            let ft = m.file_type();
            let whiteout = overlay && ft.is_char_device() && m.rdev() == 0;
            if !(ft.is_dir() || ft.is_file() || ft.is_symlink() || whiteout) {
                return Ok(None);
            }
            let path = e.path();
            if overlay && !whiteout && !upper_xattrs_as_is(&path, ft.is_dir())? {
                return Ok(None);
            }
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                total += m.len();
            }
        }
    }
    Ok(Some(total))
}

/// [`extracts_as_is`] for one entry of an overlay upper directory: its
/// xattrs are the ones the tar carries (but not overlay's own in userxattr
/// mode) or a directory's `y` opaque marker, which the extraction sets
/// again; overlay's bookkeeping is removed.
fn upper_xattrs_as_is(path: &Path, dir: bool) -> io::Result<bool> {
    for raw in xattr_names(path)? {
        let Ok(name) = std::str::from_utf8(&raw) else {
            return Ok(false);
        };
        if OVERLAY_BOOKKEEPING.contains(&name) {
            remove_xattr(path, name)?;
            continue;
        }
        if name == OPAQUE_XATTRS[0] {
            if dir && xattr_is_y(path, name) {
                continue;
            }
            return Ok(false);
        }
        if !carried(name) || name.starts_with("user.overlay.") {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The names of `path`'s xattrs.
fn xattr_names(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let mut names = vec![0u8; 4096];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut names) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) if names.len() < 1 << 20 => {
                names.resize(names.len() * 4, 0);
            }
            Err(e) => return Err(e.into()),
        }
    };
    Ok(names[..n]
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

fn remove_xattr(path: &Path, name: &str) -> io::Result<()> {
    match rustix::fs::lremovexattr(path, name) {
        Ok(()) | Err(rustix::io::Errno::NODATA) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
