#![allow(clippy::unwrap_used)]
//! A build ending on a signal keeps the steps that finished: the layer
//! still being written when the signal comes is published first
//! ([`kiln_build::publish_in_flight`], which `kiln build` calls from its
//! signal thread). In a test binary of its own: it changes this process's
//! builds for good.

use std::collections::BTreeMap;
use std::fs;
use std::sync::Mutex;
use std::time::Duration;

use kiln_build::{BuildOptions, Builder, RunError, RunRequest, Silent, StepRunner};
use kiln_dockerfile::lower::{lower, LowerOptions};
use kiln_oci::Platform;
use kiln_store::Store;

/// A RUN that is "interrupted": it asks for the layers in flight to be
/// published, as the signal thread does, and fails.
#[derive(Default)]
struct Interrupted {
    /// Whether they were published in time; whether the lower directory
    /// of the step below was still where the step was told (it must not
    /// be: published means moved into snapshots/).
    seen: Mutex<Vec<(bool, bool)>>,
}

impl StepRunner for Interrupted {
    fn run(&self, req: &RunRequest<'_>, _output: &mut dyn FnMut(&[u8])) -> Result<(), RunError> {
        let published = kiln_build::publish_in_flight(Duration::from_secs(30));
        let below_in_place = req.lower.last().unwrap().is_dir();
        self.seen.lock().unwrap().push((published, below_in_place));
        Err(RunError::Exit {
            argv: req.argv.to_vec(),
            code: 130,
        })
    }
}

#[test]
fn the_layer_in_flight_is_published_when_the_build_is_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(ctx.join("big")).unwrap();
    for i in 0..8 {
        let data: Vec<u8> = (0..1_000_000u32).map(|b| (b * 13 + i) as u8).collect();
        fs::write(ctx.join(format!("big/f{i}")), data).unwrap();
    }
    let text = "FROM scratch\nCOPY big/ /big/\nRUN [\"interrupted\"]\n";
    let df = kiln_dockerfile::parse(text).unwrap();
    let args = BTreeMap::new();
    let host = Platform::host();
    let build = lower(&df, &LowerOptions::new(&args, &host)).unwrap();
    let opts = BuildOptions {
        context: Some(ctx),
        ..BuildOptions::default()
    };
    let runner = Interrupted::default();
    let err = Builder::new(&store, &opts, &Silent, Some(&runner))
        .build(&build)
        .unwrap_err();
    assert!(err.to_string().contains("130"), "{err}");
    assert_eq!(runner.seen.lock().unwrap().clone(), vec![(true, false)]);
    // The COPY is in the cache: only the RUN runs again.
    let err = Builder::new(&store, &opts, &Silent, Some(&runner))
        .build(&build)
        .unwrap_err();
    assert!(err.to_string().contains("130"), "{err}");
    let seen = runner.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    // Nothing in flight then: the step's lower directory is a snapshot.
    assert_eq!(seen[1], (true, true));
}
