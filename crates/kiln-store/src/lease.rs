//! Leases: what an operation in progress uses, so that a concurrent
//! garbage collection (another kiln process's `rmi`, `prune`, or the
//! recovery that runs when a store is opened after a crash) never deletes it.
//!
//! A lease names its process (pid and the kernel's start time for that pid,
//! so a recycled pid is not mistaken for the owner) and an expiry. A lease
//! whose process is gone is dead: the garbage collector removes it and what
//! only it protected. Callers protect a blob or snapshot *before* they rely
//! on it being there, or before they publish it.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use kiln_oci::Digest;
use serde::{Deserialize, Serialize};

use crate::meta::{Txn, LEASES};
use crate::{Error, Store};

/// How long a lease lives if its process never ends (a day).
const LEASE_TTL: u64 = 24 * 3600;

/// A lease as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The owning process.
    pub pid: u32,
    /// Its start time (clock ticks after boot, `/proc/PID/stat` field 22).
    pub start_time: u64,
    /// Seconds since the epoch after which the lease is dead anyway.
    pub expires: u64,
    /// Blobs protected.
    #[serde(default)]
    pub blobs: BTreeSet<Digest>,
    /// Snapshots (chain ids) protected.
    #[serde(default)]
    pub snapshots: BTreeSet<Digest>,
}

impl LeaseRecord {
    /// Whether the owner still runs and the lease has not expired.
    pub fn alive(&self) -> bool {
        now() < self.expires && process_start_time(self.pid) == Some(self.start_time)
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The start time of a process, or `None` if it does not exist.
pub fn process_start_time(pid: u32) -> Option<u64> {
    kiln_fs::process::start_time(pid)
}

/// Whether `pid` is a live process.
pub fn pid_alive(pid: u32) -> bool {
    process_start_time(pid).is_some()
}

/// A lease held by this process; released when dropped, or in the
/// transaction that records an operation's image
/// ([`Store::add_image_releasing`]).
///
/// (It is recorded when taken, not at its first protection: an operation
/// killed before that leaves temporary files that only a dead lease makes
/// the next command collect.)
#[derive(Debug)]
pub struct Lease<'a> {
    store: &'a Store,
    id: String,
    /// Ended by [`Lease::release_in`]: the drop does nothing.
    released: AtomicBool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// Take a new lease.
    pub fn lease(&self) -> Result<Lease<'_>, Error> {
        let pid = std::process::id();
        let record = LeaseRecord {
            pid,
            start_time: process_start_time(pid).unwrap_or(0),
            expires: now() + LEASE_TTL,
            blobs: BTreeSet::new(),
            snapshots: BTreeSet::new(),
        };
        let id = format!(
            "{pid}-{}-{}",
            COUNTER.fetch_add(1, Ordering::Relaxed),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        );
        self.meta
            .write(|t| t.put(LEASES, &id, &record).map_err(Error::from))?;
        Ok(Lease {
            store: self,
            id,
            released: AtomicBool::new(false),
        })
    }
}

impl Lease<'_> {
    /// Protect blobs and snapshots from garbage collection while the lease
    /// lives.
    pub fn protect<'d>(
        &self,
        blobs: impl IntoIterator<Item = &'d Digest>,
        snapshots: impl IntoIterator<Item = &'d Digest>,
    ) -> Result<(), Error> {
        self.store
            .meta
            .write(|t| self.protect_in(t, blobs, snapshots))
    }

    /// [`Lease::protect`] inside the caller's write transaction.
    pub(crate) fn protect_in<'d>(
        &self,
        t: &mut Txn,
        blobs: impl IntoIterator<Item = &'d Digest>,
        snapshots: impl IntoIterator<Item = &'d Digest>,
    ) -> Result<(), Error> {
        let mut r: LeaseRecord = t.get(LEASES, &self.id)?.ok_or(Error::LeaseLost {
            id: self.id.clone(),
        })?;
        r.blobs.extend(blobs.into_iter().cloned());
        r.snapshots.extend(snapshots.into_iter().cloned());
        t.put(LEASES, &self.id, &r)?;
        Ok(())
    }

    /// End the lease inside the caller's write transaction: its record is
    /// removed and what only it protected is collected. The drop then does
    /// nothing.
    pub(crate) fn release_in(&self, t: &mut Txn) -> Result<(), Error> {
        self.store.release_lease_in(t, &self.id)?;
        self.released.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// The lease's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for Lease<'_> {
    /// The lease ends, and what only it protected goes with it: content a
    /// failed operation published before it gave up.
    fn drop(&mut self) {
        if !self.released.load(Ordering::SeqCst) {
            let _ = self.store.release_lease(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time() {
        let me = std::process::id();
        assert!(process_start_time(me).is_some());
        assert!(pid_alive(me));
        assert!(!pid_alive(u32::MAX));
    }
}
