//! A stage's layers while it is built, the newest one possibly still being
//! written.
//!
//! Making a step's layer has two parts: its directory (a RUN's upper
//! directory, a COPY's staged tree) is ready when the step ends, and that
//! is all the next step needs (as an overlay lower directory, or a tree to
//! read); its tar, hashed and written as a blob, is needed only for the
//! layer's record (DiffID, chain id) and the image. So the tar of step N is
//! written on a thread of its own while step N+1 runs (for a 20 MB COPY,
//! ~20 ms of hashing and disk writes beside the next RUN's container
//! start), as BuildKit exports layers apart from running the steps.
//!
//! Publishing the layer renames its directory into `snapshots/<chain-id>`,
//! which must wait until the next step no longer opens it by its path:
//! [`StageLayers::release`] says so (a RUN's root is mounted, a COPY has
//! read what it needed), and the publishing thread waits for it. At most
//! one layer is in flight: before a step's layer is started, the one
//! before it is [`StageLayers::settle`]d (its record is needed as the new
//! one's parent). A stage that ends, or fails, releases its layer in
//! flight; a failed stage's layer is still published (the step finished,
//! and stays in the cache). A build ending on a signal calls
//! [`publish_in_flight`] before it exits, for the same reason.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use kiln_fs::layer::WriteOptions;
use kiln_store::layer::{LayerDir, NewLayerOptions};
use kiln_store::lease::Lease;
use kiln_store::records::LayerRecord;
use kiln_store::Store;

use crate::solve::StepError;

/// A one-way gate: closed until [`Latch::release`].
#[derive(Debug, Default)]
pub(crate) struct Latch {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Latch {
    pub(crate) fn release(&self) {
        if let Ok(mut open) = self.open.lock() {
            *open = true;
            self.opened.notify_all();
        }
    }

    fn wait(&self) {
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        while !*open {
            match self.opened.wait(open) {
                Ok(o) => open = o,
                Err(_) => return,
            }
        }
    }
}

/// The layers in flight in this process, for [`publish_in_flight`].
struct Registry {
    state: Mutex<Flights>,
    changed: Condvar,
}

struct Flights {
    /// Threads writing or publishing a layer.
    running: usize,
    /// [`publish_in_flight`] was called: layers started from now on do
    /// not wait for their next step.
    stopping: bool,
    latches: Vec<Weak<Latch>>,
}

static FLIGHTS: Registry = Registry {
    state: Mutex::new(Flights {
        running: 0,
        stopping: false,
        latches: Vec::new(),
    }),
    changed: Condvar::new(),
};

/// Counts a layer thread in [`FLIGHTS`] until dropped.
struct Flight;

impl Flight {
    fn enter(latch: &Arc<Latch>) -> Flight {
        if let Ok(mut f) = FLIGHTS.state.lock() {
            f.running += 1;
            f.latches.retain(|l| l.strong_count() > 0);
            f.latches.push(Arc::downgrade(latch));
            if f.stopping {
                latch.release();
            }
        }
        Flight
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        if let Ok(mut f) = FLIGHTS.state.lock() {
            f.running -= 1;
            FLIGHTS.changed.notify_all();
        }
    }
}

/// For a build about to end on a signal: let every layer in flight be
/// published without waiting for the step after it (which may then fail:
/// its lower directory moves), and wait up to `limit` for them. The steps
/// that finished stay in the cache, as when the build ended between
/// steps. Whether all were published in time.
pub fn publish_in_flight(limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let Ok(mut f) = FLIGHTS.state.lock() else {
        return false;
    };
    f.stopping = true;
    for l in f.latches.iter().filter_map(Weak::upgrade) {
        l.release();
    }
    while f.running > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match FLIGHTS.changed.wait_timeout(f, left) {
            Ok((g, _)) => f = g,
            Err(_) => return false,
        }
    }
    true
}

/// Something run with the layer's record once it is published (on the
/// stage's thread).
pub(crate) type AfterPublish<'s> = Box<dyn FnOnce(&LayerRecord) + 's>;

/// The layer being written.
struct InFlight<'s> {
    /// Its directory, where it is until published.
    dir: PathBuf,
    latch: Arc<Latch>,
    thread: ScopedJoinHandle<'s, Result<LayerRecord, StepError>>,
    after: Option<AfterPublish<'s>>,
}

/// The layers of a stage: published records, bottom first, and perhaps one
/// more in flight on top.
pub(crate) struct StageLayers<'s> {
    records: Vec<LayerRecord>,
    in_flight: Option<InFlight<'s>>,
}

impl<'s> StageLayers<'s> {
    pub(crate) fn new(records: Vec<LayerRecord>) -> Self {
        StageLayers {
            records,
            in_flight: None,
        }
    }

    /// The stage's file system as directories, bottom first, to read now
    /// (until [`StageLayers::release`]).
    pub(crate) fn dirs(&self, store: &Store) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .records
            .iter()
            .map(|l| store.snapshot_path(&l.chain_id))
            .collect();
        dirs.extend(self.in_flight.as_ref().map(|f| f.dir.clone()));
        dirs
    }

    /// The gate of the layer in flight, for a step to open as soon as it
    /// no longer needs its directory by path.
    pub(crate) fn latch(&self) -> Option<Arc<Latch>> {
        self.in_flight.as_ref().map(|f| Arc::clone(&f.latch))
    }

    /// The directories from [`StageLayers::dirs`] are no longer opened.
    pub(crate) fn release(&self) {
        if let Some(f) = &self.in_flight {
            f.latch.release();
        }
    }

    /// Wait for the layer in flight to be published; then every layer has
    /// its record.
    pub(crate) fn settle(&mut self) -> Result<(), StepError> {
        let Some(f) = self.in_flight.take() else {
            return Ok(());
        };
        f.latch.release();
        let record = f.thread.join().map_err(|_| StepError::Io {
            action: "write a layer from",
            path: f.dir.clone(),
            source: std::io::Error::other("the layer writer panicked"),
        })??;
        if let Some(after) = f.after {
            after(&record);
        }
        self.records.push(record);
        Ok(())
    }

    /// The published records ([`StageLayers::settle`] first for all).
    pub(crate) fn records(&self) -> &[LayerRecord] {
        &self.records
    }

    /// Add a published layer (after [`StageLayers::settle`]).
    pub(crate) fn push(&mut self, record: LayerRecord) -> Result<(), StepError> {
        self.settle()?;
        self.records.push(record);
        Ok(())
    }

    /// Put `layer` in flight on top: its tar written on a thread of
    /// `scope`, then (once released) published on the layers below with
    /// `opts`. `staging` (its directory's guard) ends with that thread.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start<'e: 's, G: Send + 's>(
        &mut self,
        scope: &'s Scope<'s, 'e>,
        store: &'e Store,
        lease: &'e Lease<'e>,
        layer: LayerDir,
        staging: G,
        opts: NewLayerOptions,
        write: WriteOptions,
        after: Option<AfterPublish<'s>>,
    ) -> Result<(), StepError> {
        self.settle()?;
        let parent = self.records.last().map(|l| l.chain_id.clone());
        let latch = Arc::new(Latch::default());
        let gate = Arc::clone(&latch);
        let dir = layer.path().to_path_buf();
        let flight = Flight::enter(&latch);
        let thread = scope.spawn(move || {
            let _flight = flight;
            let _staging = staging;
            let written = layer.write(store, &opts, &write)?;
            gate.wait();
            Ok(written.publish(store, lease, parent.as_ref(), &opts)?)
        });
        self.in_flight = Some(InFlight {
            dir,
            latch,
            thread,
            after,
        });
        Ok(())
    }

    /// All the records, the last one published.
    pub(crate) fn finish(mut self) -> Result<Vec<LayerRecord>, StepError> {
        self.settle()?;
        Ok(std::mem::take(&mut self.records))
    }
}

impl Drop for StageLayers<'_> {
    /// A stage that failed: its layer in flight is still published (the
    /// scope waits for it).
    fn drop(&mut self) {
        self.release();
    }
}
