//! The metadata database (`meta.redb`): images, names, snapshots, leases,
//! and room for containers and the build cache.
//!
//! redb allows one process at a time to have the file open, so every
//! access is a short transaction under an exclusive `flock` on `meta.lock`:
//! lock, open, transact, commit (fsync'd by redb), close, unlock. Long
//! operations (a load, an import) never hold the lock while they move
//! bytes; they hold a lease instead (see [`crate::lease`]). A process killed
//! mid-transaction loses that transaction and nothing else: redb's commit
//! is atomic and the lock dies with the process.
//!
//! Reads open the file read-only under a shared lock: redb then writes
//! nothing (a read-write open costs four `fdatasync`s even for a read: the
//! recovery flag set on open, the allocator state and the flag cleared on
//! close; measured 5 to 30 ms a transaction on a busy disk, most of a
//! no-change build). A file that cannot be opened so (none yet, or left
//! needing repair by a killed writer) is read the read-write way, which
//! creates or repairs it.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use rustix::fs::FlockOperation;
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

/// Images by manifest digest → [`crate::records::ImageRecord`] (JSON).
pub(crate) const IMAGES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("images");
/// Full reference (`docker.io/library/busybox:latest`) → manifest digest.
pub(crate) const NAMES: TableDefinition<'_, &str, &str> = TableDefinition::new("names");
/// Snapshots by chain id → [`crate::records::SnapshotRecord`] (JSON).
pub(crate) const SNAPSHOTS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("snapshots");
/// Leases by id → [`crate::lease::LeaseRecord`] (JSON).
pub(crate) const LEASES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("leases");
/// Containers by id (JSON; the runtime owns their shape, the store reads
/// only `image`, the manifest digest they use).
pub(crate) const CONTAINERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("containers");
/// Build cache records by key (JSON; owned by the build engine, the store
/// reads `blobs` and `snapshots` lists to keep them alive).
pub(crate) const BUILD_CACHE: TableDefinition<'_, &str, &[u8]> =
    TableDefinition::new("build_cache");
/// Volumes by name → [`crate::volumes::VolumeRecord`] (JSON).
pub(crate) const VOLUMES: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("volumes");

/// Database trouble.
#[derive(Debug, Error)]
pub enum MetaError {
    /// The lock or database file cannot be opened or locked.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// redb failed.
    #[error("metadata database {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<redb::Error>,
    },
    /// A change asked for in a read (a bug in the caller).
    #[error("cannot change a {table} record in a read of the metadata database")]
    ReadOnly {
        /// The table.
        table: &'static str,
    },
    /// A record that does not decode.
    #[error("corrupt {table} record {key:?} in the metadata database: {source}")]
    Record {
        /// The table.
        table: &'static str,
        /// Its key.
        key: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// The database file and its lock.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    db: PathBuf,
    lock: PathBuf,
}

/// A transaction on the locked database: a write transaction, or a read
/// of a read-only open (where the `put`s and `remove`s fail).
pub(crate) struct Txn {
    txn: Inner,
    path: PathBuf,
}

// One of each per transaction, on the stack: the size difference is fine.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Write(redb::WriteTransaction),
    Read(redb::ReadTransaction),
}

/// A table of either kind of transaction (`None`: not in a read-only
/// database yet, so empty).
fn read_table<'t, K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &'t Inner,
    path: &Path,
    table: TableDefinition<'_, K, V>,
) -> Result<Option<Table<'t, K, V>>, MetaError> {
    match txn {
        Inner::Write(t) => match t.open_table(table) {
            Ok(t) => Ok(Some(Table::Write(t))),
            Err(e) => Err(db_err(path)(e.into())),
        },
        Inner::Read(t) => match t.open_table(table) {
            Ok(t) => Ok(Some(Table::Read(t))),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(db_err(path)(e.into())),
        },
    }
}

enum Table<'t, K: redb::Key + 'static, V: redb::Value + 'static> {
    Write(redb::Table<'t, K, V>),
    Read(redb::ReadOnlyTable<K, V>),
}

impl<'t, K: redb::Key + 'static, V: redb::Value + 'static> Table<'t, K, V> {
    fn get<'a>(
        &self,
        key: impl std::borrow::Borrow<K::SelfType<'a>>,
    ) -> Result<Option<redb::AccessGuard<'_, V>>, redb::StorageError> {
        match self {
            Table::Write(t) => t.get(key),
            Table::Read(t) => t.get(key),
        }
    }

    fn iter(&self) -> Result<redb::Range<'_, K, V>, redb::StorageError> {
        match self {
            Table::Write(t) => t.iter(),
            Table::Read(t) => t.iter(),
        }
    }
}

impl std::fmt::Debug for Txn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Txn").field("path", &self.path).finish()
    }
}

fn db_err(path: &Path) -> impl Fn(redb::Error) -> MetaError + '_ {
    move |e| MetaError::Db {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

macro_rules! redb_try {
    ($path:expr, $e:expr) => {
        $e.map_err(|e| db_err($path)(e.into()))
    };
}

impl Meta {
    pub(crate) fn new(root: &Path) -> Meta {
        Meta {
            db: root.join("meta.redb"),
            lock: root.join("meta.lock"),
        }
    }

    fn lock(&self, op: FlockOperation) -> Result<File, MetaError> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock)
            .map_err(|source| MetaError::Io {
                action: "open",
                path: self.lock.clone(),
                source,
            })?;
        rustix::fs::flock(&f, op).map_err(|e| MetaError::Io {
            action: "lock",
            path: self.lock.clone(),
            source: e.into(),
        })?;
        Ok(f)
    }

    fn open(&self) -> Result<redb::Database, MetaError> {
        let db = redb_try!(
            &self.db,
            redb::Builder::new()
                .set_cache_size(8 << 20)
                .create(&self.db)
        )?;
        Ok(db)
    }

    /// Run `f` in a write transaction, committed if it returns `Ok`.
    pub(crate) fn write<T, E>(&self, f: impl FnOnce(&mut Txn) -> Result<T, E>) -> Result<T, E>
    where
        E: From<MetaError>,
    {
        self.transact(true, f)
    }

    /// Run `f` on a consistent read of the database (see the module docs).
    pub(crate) fn read<T, E>(&self, f: impl FnOnce(&mut Txn) -> Result<T, E>) -> Result<T, E>
    where
        E: From<MetaError>,
    {
        let read_only = (|| {
            let lock = self.lock(FlockOperation::LockShared).ok()?;
            let db = redb::Builder::new()
                .set_cache_size(8 << 20)
                .open_read_only(&self.db)
                .ok()?;
            let txn = db.begin_read().ok()?;
            Some((lock, db, txn))
        })();
        let Some((_lock, _db, txn)) = read_only else {
            return self.transact(false, f);
        };
        let mut t = Txn {
            txn: Inner::Read(txn),
            path: self.db.clone(),
        };
        f(&mut t)
    }

    /// Lock, open, run `f` in a write transaction, and commit it (when
    /// `commit` and `f` succeeded) or abort it. Reads use a write
    /// transaction that is never committed: one API for both kinds of
    /// access, and the tables exist even in a new database.
    fn transact<T, E>(&self, commit: bool, f: impl FnOnce(&mut Txn) -> Result<T, E>) -> Result<T, E>
    where
        E: From<MetaError>,
    {
        let _lock = self.lock(FlockOperation::LockExclusive)?;
        let db = self.open()?;
        let mut txn = redb_try!(&self.db, db.begin_write())?;
        // The commit itself need not sync: closing `db` below, before this
        // function returns, makes what is pending durable with one commit
        // and a clean header (redb's close), so the caller still gets a
        // durable change, for fewer syncs (28 instead of 32 for a `run
        // --rm`).
        redb_try!(&self.db, txn.set_durability(redb::Durability::None))?;
        let mut t = Txn {
            txn: Inner::Write(txn),
            path: self.db.clone(),
        };
        t.ensure_tables()?;
        let out = f(&mut t);
        if let Inner::Write(txn) = t.txn {
            if commit && out.is_ok() {
                redb_try!(&self.db, txn.commit())?;
            } else {
                txn.abort().ok();
            }
        }
        redb_try!(&self.db, db.close())?;
        out
    }
}

impl Txn {
    /// The write transaction, or an error in a read.
    fn writable(&mut self, table: &'static str) -> Result<&mut redb::WriteTransaction, MetaError> {
        match &mut self.txn {
            Inner::Write(t) => Ok(t),
            Inner::Read(_) => Err(MetaError::ReadOnly { table }),
        }
    }

    fn ensure_tables(&mut self) -> Result<(), MetaError> {
        let p = self.path.clone();
        let Inner::Write(txn) = &mut self.txn else {
            return Ok(());
        };
        redb_try!(&p, txn.open_table(IMAGES))?;
        redb_try!(&p, txn.open_table(NAMES))?;
        redb_try!(&p, txn.open_table(SNAPSHOTS))?;
        redb_try!(&p, txn.open_table(LEASES))?;
        redb_try!(&p, txn.open_table(CONTAINERS))?;
        redb_try!(&p, txn.open_table(BUILD_CACHE))?;
        redb_try!(&p, txn.open_table(VOLUMES))?;
        Ok(())
    }

    /// Every (key, record) of a JSON table.
    pub(crate) fn all<T: DeserializeOwned>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
    ) -> Result<Vec<(String, T)>, MetaError> {
        let p = &self.path;
        let Some(t) = read_table(&self.txn, p, table)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in redb_try!(p, t.iter())? {
            let (k, v) = redb_try!(p, row)?;
            let key = k.value().to_string();
            let value = serde_json::from_slice(v.value()).map_err(|source| MetaError::Record {
                table: table.name_static(),
                key: key.clone(),
                source,
            })?;
            out.push((key, value));
        }
        Ok(out)
    }

    /// One record of a JSON table.
    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        table: TableDefinition<'_, &str, &[u8]>,
        key: &str,
    ) -> Result<Option<T>, MetaError> {
        let p = &self.path;
        let Some(t) = read_table(&self.txn, p, table)? else {
            return Ok(None);
        };
        let Some(v) = redb_try!(p, t.get(key))? else {
            return Ok(None);
        };
        serde_json::from_slice(v.value())
            .map(Some)
            .map_err(|source| MetaError::Record {
                table: table.name_static(),
                key: key.to_string(),
                source,
            })
    }

    /// Insert or replace a record of a JSON table.
    pub(crate) fn put<T: Serialize>(
        &mut self,
        table: TableDefinition<'_, &str, &[u8]>,
        key: &str,
        value: &T,
    ) -> Result<(), MetaError> {
        let bytes = serde_json::to_vec(value).map_err(|source| MetaError::Record {
            table: table.name_static(),
            key: key.to_string(),
            source,
        })?;
        let p = self.path.clone();
        let mut t = redb_try!(&p, self.writable(table.name_static())?.open_table(table))?;
        redb_try!(&p, t.insert(key, bytes.as_slice()))?;
        Ok(())
    }

    /// Remove a record of a JSON table; whether it was there.
    pub(crate) fn remove(
        &mut self,
        table: TableDefinition<'_, &str, &[u8]>,
        key: &str,
    ) -> Result<bool, MetaError> {
        let p = self.path.clone();
        let mut t = redb_try!(&p, self.writable(table.name_static())?.open_table(table))?;
        let old = redb_try!(&p, t.remove(key))?;
        Ok(old.is_some())
    }

    /// Every name → manifest digest.
    pub(crate) fn names(&self) -> Result<Vec<(String, String)>, MetaError> {
        let p = &self.path;
        let Some(t) = read_table(&self.txn, p, NAMES)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in redb_try!(p, t.iter())? {
            let (k, v) = redb_try!(p, row)?;
            out.push((k.value().to_string(), v.value().to_string()));
        }
        Ok(out)
    }

    /// The manifest digest a name points at.
    pub(crate) fn name(&self, name: &str) -> Result<Option<String>, MetaError> {
        let p = &self.path;
        let Some(t) = read_table(&self.txn, p, NAMES)? else {
            return Ok(None);
        };
        let found = redb_try!(p, t.get(name))?.map(|v| v.value().to_string());
        Ok(found)
    }

    /// Point a name at a manifest digest; returns the previous target.
    pub(crate) fn set_name(
        &mut self,
        name: &str,
        digest: &str,
    ) -> Result<Option<String>, MetaError> {
        let p = self.path.clone();
        let mut t = redb_try!(&p, self.writable("name")?.open_table(NAMES))?;
        let old = redb_try!(&p, t.insert(name, digest))?;
        Ok(old.map(|v| v.value().to_string()))
    }

    /// Remove a name; returns its target.
    pub(crate) fn remove_name(&mut self, name: &str) -> Result<Option<String>, MetaError> {
        let p = self.path.clone();
        let mut t = redb_try!(&p, self.writable("name")?.open_table(NAMES))?;
        let old = redb_try!(&p, t.remove(name))?;
        Ok(old.map(|v| v.value().to_string()))
    }
}

trait NameStatic {
    fn name_static(&self) -> &'static str;
}

impl NameStatic for TableDefinition<'_, &str, &[u8]> {
    fn name_static(&self) -> &'static str {
        match redb::TableHandle::name(self) {
            "images" => "image",
            "snapshots" => "snapshot",
            "leases" => "lease",
            "containers" => "container",
            "build_cache" => "build cache",
            _ => "metadata",
        }
    }
}
