//! Image archives: `load` and `save` of docker-archive (Docker's
//! `manifest.json` format, as `docker save` and `skopeo copy
//! docker-archive:` write it) and oci-archive (a tarred OCI image layout),
//! and `import` of a root file system.
//!
//! Loading reads the archive through an index of its entries, so entries
//! may come in any order; a compressed or piped archive is first spooled,
//! decompressed, into `ingest/`. Every byte is verified (blob digests,
//! sizes, DiffIDs) before anything is published, under a lease: a bad
//! archive leaves the store as it was.

mod import;
mod load;
mod save;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use thiserror::Error;

pub use import::{ImportOptions, ImportSource};
pub use load::{LoadReport, LoadedImage};
pub use save::SaveFormat;

/// An archive that cannot be read or written.
#[derive(Debug, Error)]
pub enum ArchiveError {
    /// Reading or writing the archive failed.
    #[error("failed to {action} {input}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The archive (a path, or `standard input`).
        input: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Not an archive kiln can load, or an inconsistent one.
    #[error("invalid image archive {input}: {reason}")]
    Invalid {
        /// The archive.
        input: String,
        /// What is wrong.
        reason: String,
    },
}

/// An entry of an indexed tar archive.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryPos {
    offset: u64,
    size: u64,
}

/// A tar archive on disk whose entries can be read in any order.
#[derive(Debug)]
pub(crate) struct IndexedTar {
    file: File,
    entries: BTreeMap<String, EntryPos>,
    links: BTreeMap<String, String>,
    input: String,
}

/// `a/./b/../c` → `a/c`, without leading `/` or `./`; `None` if it climbs
/// above the root.
pub(crate) fn clean_name(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl IndexedTar {
    pub(crate) fn new(mut file: File, input: &str) -> Result<IndexedTar, ArchiveError> {
        let invalid = |reason: String| ArchiveError::Invalid {
            input: input.to_string(),
            reason,
        };
        let mut entries = BTreeMap::new();
        let mut links = BTreeMap::new();
        file.seek(SeekFrom::Start(0))
            .map_err(|source| ArchiveError::Io {
                action: "read",
                input: input.to_string(),
                source,
            })?;
        {
            let mut archive = tar::Archive::new(&mut file);
            let iter = archive
                .entries_with_seek()
                .map_err(|e| invalid(format!("not a tar archive: {e}")))?;
            for entry in iter {
                let entry = entry.map_err(|e| invalid(format!("bad tar entry: {e}")))?;
                let raw = entry.path_bytes();
                let name = String::from_utf8_lossy(&raw).into_owned();
                let Some(clean) = clean_name(&name) else {
                    return Err(invalid(format!("entry {name:?} climbs out of the archive")));
                };
                let kind = entry.header().entry_type();
                if kind.is_symlink() || kind.is_hard_link() {
                    let target = entry
                        .link_name_bytes()
                        .map(|t| String::from_utf8_lossy(&t).into_owned())
                        .unwrap_or_default();
                    // Symlinks are relative to their directory; hard links
                    // name another entry from the archive root.
                    let joined = if kind.is_symlink() && !target.starts_with('/') {
                        match clean.rsplit_once('/') {
                            Some((dir, _)) => format!("{dir}/{target}"),
                            None => target,
                        }
                    } else {
                        target
                    };
                    if let Some(t) = clean_name(&joined) {
                        links.insert(clean, t);
                    }
                } else if kind.is_file() {
                    entries.insert(
                        clean,
                        EntryPos {
                            offset: entry.raw_file_position(),
                            size: entry.size(),
                        },
                    );
                }
            }
        }
        Ok(IndexedTar {
            file,
            entries,
            links,
            input: input.to_string(),
        })
    }

    /// Where a regular-file entry is, following links inside the archive.
    pub(crate) fn find(&self, name: &str) -> Option<EntryPos> {
        let mut name = clean_name(name)?;
        for _ in 0..16 {
            if let Some(p) = self.entries.get(&name) {
                return Some(*p);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// A reader of one entry's content.
    pub(crate) fn open(&self, name: &str) -> Result<(impl Read + Send + '_, u64), ArchiveError> {
        let pos = self.find(name).ok_or_else(|| ArchiveError::Invalid {
            input: self.input.clone(),
            reason: format!("entry {name:?} is missing"),
        })?;
        let mut f = self.file.try_clone().map_err(|source| ArchiveError::Io {
            action: "read",
            input: self.input.clone(),
            source,
        })?;
        f.seek(SeekFrom::Start(pos.offset))
            .map_err(|source| ArchiveError::Io {
                action: "read",
                input: self.input.clone(),
                source,
            })?;
        Ok((
            io::BufReader::with_capacity(256 * 1024, f.take(pos.size)),
            pos.size,
        ))
    }

    /// A whole (small) entry; documents over 16 MiB are refused.
    pub(crate) fn read(&self, name: &str) -> Result<Vec<u8>, ArchiveError> {
        let (r, size) = self.open(name)?;
        if size > 16 << 20 {
            return Err(ArchiveError::Invalid {
                input: self.input.clone(),
                reason: format!("{name} is {size} bytes: too large for a JSON document"),
            });
        }
        let mut out = Vec::with_capacity(size as usize);
        r.take(size)
            .read_to_end(&mut out)
            .map_err(|source| ArchiveError::Io {
                action: "read",
                input: self.input.clone(),
                source,
            })?;
        Ok(out)
    }

    pub(crate) fn input(&self) -> &str {
        &self.input
    }

    pub(crate) fn invalid(&self, reason: impl Into<String>) -> ArchiveError {
        ArchiveError::Invalid {
            input: self.input.clone(),
            reason: reason.into(),
        }
    }
}

/// Where an archive comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file.
    Path(PathBuf),
    /// Standard input.
    Stdin,
}

impl Source {
    pub(crate) fn describe(&self) -> String {
        match self {
            Source::Path(p) => p.display().to_string(),
            Source::Stdin => "standard input".into(),
        }
    }
}
