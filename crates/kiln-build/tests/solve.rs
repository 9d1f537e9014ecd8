#![allow(clippy::unwrap_used)]
//! The solver on a real store, without the binary: RUN through a fake
//! [`StepRunner`] (what the runtime will implement), its cache key, the
//! scheduler running independent stages at the same time, and the events
//! a [`Reporter`] gets.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use kiln_build::{
    BuildOptions, Builder, Event, Graph, Reporter, RunError, RunRequest, Silent, Status, StepRunner,
};
use kiln_dockerfile::lower::{lower, Build, LowerOptions};
use kiln_oci::Platform;
use kiln_store::Store;

fn lowered(text: &str, args: &BTreeMap<String, String>, target: Option<&str>) -> Build {
    let df = kiln_dockerfile::parse(text).unwrap();
    let host = Platform::host();
    let mut opts = LowerOptions::new(args, &host);
    opts.target = target;
    lower(&df, &opts).unwrap()
}

/// A runner that records what it was asked and writes `argv`'s last word
/// into `/out/<n>` of the upper directory.
/// argv, env, user, workdir, number of lower directories.
type Call = (Vec<String>, Vec<String>, String, String, usize);

#[derive(Default)]
struct FakeRunner {
    calls: Mutex<Vec<Call>>,
    fail: bool,
}

impl StepRunner for FakeRunner {
    fn run(&self, req: &RunRequest<'_>, output: &mut dyn FnMut(&[u8])) -> Result<(), RunError> {
        let mut calls = self.calls.lock().unwrap();
        calls.push((
            req.argv.to_vec(),
            req.env.to_vec(),
            req.user.to_string(),
            req.workdir.to_string(),
            req.lower.len(),
        ));
        if self.fail {
            output(b"boom\n");
            return Err(RunError::Exit {
                argv: req.argv.to_vec(),
                code: 3,
            });
        }
        fs::create_dir_all(req.upper.join("out")).unwrap();
        fs::write(
            req.upper.join("out").join(calls.len().to_string()),
            req.argv.last().unwrap(),
        )
        .unwrap();
        output(b"ran\n");
        Ok(())
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Reporter for Recorder {
    fn event(&self, e: &Event<'_>) {
        let line = match e {
            Event::Plan { total } => format!("plan {total}"),
            Event::Vertex { name, status, .. } => match status {
                Status::Started => format!("start {name}"),
                Status::Cached => format!("cached {name}"),
                Status::Done(_) => format!("done {name}"),
                Status::Failed => format!("failed {name}"),
            },
            Event::Output { data, .. } => format!("output {}", String::from_utf8_lossy(data)),
            Event::Explain { reasons, .. } => format!("explain {}", reasons.join("; ")),
        };
        self.0.lock().unwrap().push(line);
    }
}

#[test]
fn run_steps_go_through_the_runner_and_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let mut args = BTreeMap::new();
    args.insert("V".to_string(), "7".to_string());
    args.insert(
        "HTTP_PROXY".to_string(),
        "http://user:pw@proxy:3128".to_string(),
    );
    let build = lowered(
        "FROM scratch\nARG V=1\nENV E=x\nUSER 5\nWORKDIR /w\nRUN make $V\nRUN [\"/bin/true\", \"two\"]\n",
        &args,
        None,
    );
    let runner = FakeRunner::default();
    let opts = BuildOptions {
        build_args: args.clone(),
        ..BuildOptions::default()
    };
    let rec = Recorder::default();
    let result = Builder::new(&store, &opts, &rec, Some(&runner))
        .build(&build)
        .unwrap();
    {
        let calls = runner.calls.lock().unwrap();
        assert_eq!(calls.len(), 2);
        let (argv, env, user, wd, lower) = &calls[0];
        assert_eq!(argv, &["/bin/sh", "-c", "make $V"]);
        assert!(env.contains(&"E=x".to_string()), "{env:?}");
        assert!(
            env.contains(&"V=7".to_string()),
            "ARGs are environment for RUN: {env:?}"
        );
        assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
        assert!(
            env.contains(&"HTTP_PROXY=http://user:pw@proxy:3128".to_string()),
            "proxy args reach RUN: {env:?}"
        );
        assert_eq!((user.as_str(), wd.as_str()), ("5", "/w"));
        assert_eq!(*lower, 1, "the WORKDIR layer is below it");
        assert_eq!(calls[1].0, vec!["/bin/true", "two"]);
        assert_eq!(calls[1].4, 2);
    }
    // The upper directory became a layer.
    let top = result.image.layers.last().unwrap();
    let p = store.snapshot_path(&top.chain_id).join("out/2");
    assert_eq!(fs::read_to_string(p).unwrap(), "two");
    let history: Vec<&str> = result
        .config
        .history
        .iter()
        .map(|h| h.created_by.as_deref().unwrap())
        .collect();
    assert_eq!(
        history,
        vec![
            "ARG V=7",
            "ENV E=x",
            "USER 5",
            "WORKDIR /w",
            "RUN |1 V=7 /bin/sh -c make $V # buildkit",
            "RUN |1 V=7 /bin/true two # buildkit",
        ]
    );
    let events = rec.0.lock().unwrap().clone();
    assert!(events.contains(&"output ran\n".to_string()), "{events:?}");
    // The plan comes first: FROM, WORKDIR and the two RUNs.
    assert_eq!(events[0], "plan 4", "{events:?}");
    let finished = events
        .iter()
        .filter(|e| e.starts_with("done ") || e.starts_with("cached "))
        .count();
    assert_eq!(finished, 4, "{events:?}");

    // Again: every step from the cache, the runner not called, same image.
    let again = Builder::new(&store, &opts, &Silent, Some(&runner))
        .build(&build)
        .unwrap();
    assert_eq!(runner.calls.lock().unwrap().len(), 2);
    assert_eq!(again.image.id(), result.image.id());
    // Another proxy is not another key (nor is it in the history).
    let mut proxied = args.clone();
    proxied.insert("HTTP_PROXY".to_string(), "http://other:1".to_string());
    let other_proxy = lowered(
        "FROM scratch\nARG V=1\nENV E=x\nUSER 5\nWORKDIR /w\nRUN make $V\nRUN [\"/bin/true\", \"two\"]\n",
        &proxied,
        None,
    );
    let same = Builder::new(&store, &opts, &Silent, Some(&runner))
        .build(&other_proxy)
        .unwrap();
    assert_eq!(runner.calls.lock().unwrap().len(), 2);
    assert_eq!(same.image.id(), result.image.id());
    assert!(again
        .steps
        .iter()
        .filter(|(n, _)| !n.contains("FROM"))
        .all(|(_, s)| *s == Status::Cached));

    // Another build arg value is another key for the RUN that sees it.
    args.insert("V".to_string(), "8".to_string());
    let changed = lowered(
        "FROM scratch\nARG V=1\nENV E=x\nUSER 5\nWORKDIR /w\nRUN make $V\nRUN [\"/bin/true\", \"two\"]\n",
        &args,
        None,
    );
    let opts = BuildOptions {
        build_args: args.clone(),
        ..BuildOptions::default()
    };
    let third = Builder::new(&store, &opts, &Silent, Some(&runner))
        .build(&changed)
        .unwrap();
    assert_eq!(runner.calls.lock().unwrap().len(), 4);
    assert_eq!(
        third.config.history[0].created_by.as_deref(),
        Some("ARG V=8")
    );
}

#[test]
fn a_failed_run_names_its_line_and_leaves_no_image() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let build = lowered("FROM scratch\n\nRUN false\n", &BTreeMap::new(), None);
    let runner = FakeRunner {
        fail: true,
        ..FakeRunner::default()
    };
    let rec = Recorder::default();
    let opts = BuildOptions::default();
    let err = Builder::new(&store, &opts, &rec, Some(&runner))
        .build(&build)
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("Dockerfile:3: RUN false"), "{msg}");
    assert!(format!("{:?}", err).contains("code: 3"), "{err:?}");
    assert!(store.images().unwrap().is_empty());
    let events = rec.0.lock().unwrap().clone();
    assert!(
        events.iter().any(|e| e.starts_with("failed ")),
        "{events:?}"
    );
    assert!(events.contains(&"output boom\n".to_string()));
    // Without a runner the build fails before it starts.
    let err = Builder::new(&store, &opts, &Silent, None)
        .build(&build)
        .unwrap_err();
    assert!(err.to_string().contains("Dockerfile:3"), "{err}");
    assert!(
        err.to_string().contains("RUN is not supported yet"),
        "{err}"
    );
}

/// A runner whose steps wait until `n` of them run at the same time.
struct Rendezvous {
    barrier: Barrier,
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl StepRunner for Rendezvous {
    fn run(&self, req: &RunRequest<'_>, _output: &mut dyn FnMut(&[u8])) -> Result<(), RunError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        if req.argv.last().is_some_and(|a| a.starts_with("wait")) {
            self.barrier.wait();
        }
        std::thread::sleep(Duration::from_millis(20));
        fs::write(req.upper.join(req.argv.last().unwrap()), "x").unwrap();
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn independent_stages_run_in_parallel_and_only_what_the_target_needs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let text = "FROM scratch AS a\nRUN wait-a\n\nFROM scratch AS b\nRUN wait-b\n\nFROM scratch AS unused\nRUN never\n\nFROM scratch\nCOPY --from=a /wait-a /a\nCOPY --from=b /wait-b /b\n";
    let build = lowered(text, &BTreeMap::new(), None);
    let graph = Graph::new(&build);
    let names: Vec<&str> = graph.vertices.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "[a 1/2] FROM scratch",
            "[a 2/2] RUN wait-a",
            "[b 1/2] FROM scratch",
            "[b 2/2] RUN wait-b",
            "[stage-3 1/3] FROM scratch",
            "[stage-3 2/3] COPY --from=a /wait-a /a",
            "[stage-3 3/3] COPY --from=b /wait-b /b",
        ]
    );
    assert_eq!(graph.vertices[5].deps, vec![4, 1]);
    assert_eq!(graph.vertices[6].deps, vec![5, 3]);
    // Both RUNs wait for each other: with two jobs the build finishes only
    // if the two stages run at once.
    let runner = Arc::new(Rendezvous {
        barrier: Barrier::new(2),
        running: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    });
    let opts = BuildOptions {
        jobs: 2,
        ..BuildOptions::default()
    };
    let result = Builder::new(&store, &opts, &Silent, Some(runner.as_ref()))
        .build(&build)
        .unwrap();
    assert_eq!(runner.peak.load(Ordering::SeqCst), 2);
    let top = store.snapshot_path(&result.image.layers[1].chain_id);
    assert!(top.join("b").is_file());
    assert!(
        !Path::new(&store.snapshot_path(&result.image.layers[0].chain_id))
            .join("never")
            .exists()
    );
    assert_eq!(result.image.layers.len(), 2);
}

/// Builds `text` (to `target`) on another thread; `None` if it has not
/// finished within 30 s (a scheduling deadlock).
fn build_within(
    store: &Store,
    text: &str,
    target: Option<&str>,
    jobs: usize,
    runner: &(dyn StepRunner + Sync),
) -> Option<Vec<String>> {
    let build = lowered(text, &BTreeMap::new(), target);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let opts = BuildOptions {
                jobs,
                ..BuildOptions::default()
            };
            let result = Builder::new(store, &opts, &Silent, Some(runner)).build(&build);
            let layers = result.map(|r| {
                r.image
                    .layers
                    .iter()
                    .map(|l| l.chain_id.to_string())
                    .collect()
            });
            let _ = tx.send(layers.unwrap());
        });
        let got = rx.recv_timeout(Duration::from_secs(30)).ok();
        if got.is_none() {
            // Leave the stuck build behind: the test fails below.
            std::process::exit(101);
        }
        got
    })
}

#[test]
fn a_stage_starts_before_the_stages_it_copies_from_finish() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    // The final stage's first RUN and the builder's RUN wait for each
    // other: the build finishes only if the final stage starts while the
    // builder runs (its COPY --from comes later), as in BuildKit.
    let runner = Rendezvous {
        barrier: Barrier::new(2),
        running: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    };
    let text = "FROM scratch AS builder\nRUN wait-builder\n\nFROM scratch\nRUN wait-final\nCOPY --from=builder /wait-builder /b\n";
    let layers = build_within(&store, text, None, 2, &runner).expect("the build finished");
    assert_eq!(layers.len(), 2);
    assert_eq!(runner.peak.load(Ordering::SeqCst), 2);
    // One job: the stage that waits gives its slot to the one it waits
    // for, even when that one comes later in the Dockerfile.
    let runner = FakeRunner::default();
    let text = "FROM scratch AS first\nRUN one\nCOPY --from=second /out /two\n\nFROM scratch AS second\nRUN two\n";
    let layers = build_within(&store, text, Some("first"), 1, &runner).expect("the build finished");
    assert_eq!(layers.len(), 2);
    assert_eq!(runner.calls.lock().unwrap().len(), 2);
}

#[test]
fn explain_names_the_build_arg_a_run_saw_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let runner = FakeRunner::default();
    let text = "FROM scratch\nARG V=1\nRUN make $V\n";
    for (v, want) in [
        ("1", "no earlier build of this step to compare with"),
        ("2", "env V: 1 -> 2"),
    ] {
        let mut args = BTreeMap::new();
        args.insert("V".to_string(), v.to_string());
        let build = lowered(text, &args, None);
        let opts = BuildOptions {
            build_args: args,
            explain: Some("test-scope".into()),
            ..BuildOptions::default()
        };
        let rec = Recorder::default();
        Builder::new(&store, &opts, &rec, Some(&runner))
            .build(&build)
            .unwrap();
        let explained: Vec<String> = rec
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.starts_with("explain "))
            .cloned()
            .collect();
        assert_eq!(explained, vec![format!("explain {want}")]);
    }
}

/// A runner that records the mounts it was given.
#[derive(Default)]
struct MountRunner {
    seen: Mutex<Vec<Vec<kiln_build::ResolvedMount>>>,
}

impl StepRunner for MountRunner {
    fn run(&self, req: &RunRequest<'_>, _output: &mut dyn FnMut(&[u8])) -> Result<(), RunError> {
        self.seen.lock().unwrap().push(req.mounts.to_vec());
        fs::write(req.upper.join("ran"), "").unwrap();
        Ok(())
    }
}

#[test]
fn run_mounts_are_resolved_and_keyed_by_content() {
    use kiln_build::MountSource;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(ctx.join("src")).unwrap();
    fs::write(ctx.join("src/main.c"), "int main;").unwrap();
    fs::write(ctx.join("README"), "r").unwrap();
    fs::write(ctx.join("stage-file"), "1").unwrap();
    let text = "FROM scratch AS dep\nCOPY stage-file /out/f\n\nFROM scratch\nWORKDIR /w\nRUN --mount=type=bind,from=dep,source=/out,target=/dep --mount=source=src,target=src --mount=type=cache,id=ccache,target=/c,sharing=locked,uid=7,mode=0700 --mount=type=secret,id=tok build\n";
    let build = lowered(text, &BTreeMap::new(), None);
    let runner = MountRunner::default();
    let mut opts = BuildOptions {
        context: Some(ctx.clone()),
        ..BuildOptions::default()
    };
    opts.secrets.insert(
        "tok".into(),
        kiln_build::SecretSource::Env("NOT_READ_BY_THE_BUILD".into()),
    );
    let run = |runner: &MountRunner| {
        Builder::new(&store, &opts, &Silent, Some(runner))
            .build(&build)
            .unwrap()
    };
    run(&runner);
    let seen = runner.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].target.as_deref(), Some("/dep"));
    match &seen[0].source {
        MountSource::Layers { lower, path } => {
            assert_eq!(path, "/out");
            assert!(lower[0].join("out/f").is_file());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(seen[1].target.as_deref(), Some("/w/src"));
    assert_eq!(
        seen[1].source,
        MountSource::Context {
            dir: ctx.clone(),
            path: "/src".into()
        }
    );
    match &seen[2].source {
        MountSource::Cache { dir } => {
            use std::os::unix::fs::MetadataExt;
            let m = fs::metadata(dir).unwrap();
            assert_eq!((m.uid(), m.mode() & 0o7777), (7, 0o700));
            assert!(dir.starts_with(store.root().join("cache/mounts")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(seen[3].source, MountSource::None);
    drop(seen);
    // Nothing changed: cached.
    run(&runner);
    assert_eq!(runner.seen.lock().unwrap().len(), 1);
    // A file outside the bound path: still cached.
    fs::write(ctx.join("README"), "changed").unwrap();
    run(&runner);
    assert_eq!(runner.seen.lock().unwrap().len(), 1);
    // A file under the bound context path: the RUN runs again.
    fs::write(ctx.join("src/main.c"), "int main(void);").unwrap();
    run(&runner);
    assert_eq!(runner.seen.lock().unwrap().len(), 2);
    // The stage it binds changed: again.
    fs::write(ctx.join("stage-file"), "2").unwrap();
    run(&runner);
    assert_eq!(runner.seen.lock().unwrap().len(), 3);
}

#[test]
fn required_secrets_must_be_given_and_optional_ones_are_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let runner = MountRunner::default();
    let opts = BuildOptions::default();
    let build = lowered(
        "FROM scratch\nRUN --mount=type=secret,id=opt --mount=type=secret,id=need,required x\n",
        &BTreeMap::new(),
        None,
    );
    let err = Builder::new(&store, &opts, &Silent, Some(&runner))
        .build(&build)
        .unwrap_err();
    assert!(err.to_string().contains("secret need is required"), "{err}");
    let mut opts = BuildOptions::default();
    opts.secrets.insert(
        "need".into(),
        kiln_build::SecretSource::File(dir.path().join("s")),
    );
    Builder::new(&store, &opts, &Silent, Some(&runner))
        .build(&build)
        .unwrap();
    let seen = runner.seen.lock().unwrap();
    assert_eq!(seen[0].len(), 1, "the optional secret is not mounted");
    assert_eq!(seen[0][0].mount.cache_id.as_deref(), Some("need"));
}

/// Records, for each RUN, its cache directories and how many RUNs were
/// running at once while it ran (it waits up to a second for a second one).
#[derive(Default)]
struct SharingRunner {
    active: Mutex<Vec<std::path::PathBuf>>,
    wake: std::sync::Condvar,
    seen: Mutex<Vec<(std::path::PathBuf, usize)>>,
}

impl StepRunner for SharingRunner {
    fn run(&self, req: &RunRequest<'_>, _output: &mut dyn FnMut(&[u8])) -> Result<(), RunError> {
        let dir = req
            .mounts
            .iter()
            .find_map(|m| match &m.source {
                kiln_build::MountSource::Cache { dir } => Some(dir.clone()),
                _ => None,
            })
            .unwrap();
        let mut active = self.active.lock().unwrap();
        active.push(dir.clone());
        self.wake.notify_all();
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let mut most = active.len();
        while active.len() < 2 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            active = self.wake.wait_timeout(active, left).unwrap().0;
            most = most.max(active.len());
        }
        // Let the other one see this one too before leaving.
        drop(active);
        std::thread::sleep(Duration::from_millis(100));
        let mut active = self.active.lock().unwrap();
        let i = active.iter().position(|d| *d == dir).unwrap();
        active.remove(i);
        self.wake.notify_all();
        self.seen.lock().unwrap().push((dir, most));
        fs::write(req.upper.join("ran"), "").unwrap();
        Ok(())
    }
}

/// Two stages that can run in parallel, both with a cache of one id:
/// `shared` gives both the same directory at once, `private` two
/// directories at once, `locked` one directory, one step after the other.
#[test]
fn cache_sharing_between_parallel_stages() {
    for (sharing, same_dir, together) in [
        ("shared", true, true),
        ("private", false, true),
        ("locked", true, false),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let text = format!(
            "FROM scratch AS a\nRUN --mount=type=cache,id=c,target=/c,sharing={sharing} step-a\n\
             FROM scratch AS b\nRUN --mount=type=cache,id=c,target=/c,sharing={sharing} step-b\n\
             FROM scratch\nCOPY --from=a /ran /a\nCOPY --from=b /ran /b\n"
        );
        let build = lowered(&text, &BTreeMap::new(), None);
        let runner = SharingRunner::default();
        let opts = BuildOptions {
            jobs: 3,
            ..BuildOptions::default()
        };
        Builder::new(&store, &opts, &Silent, Some(&runner))
            .build(&build)
            .unwrap();
        let seen = runner.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{sharing}");
        assert_eq!(seen[0].0 == seen[1].0, same_dir, "{sharing}: {seen:?}");
        let at_once = if together { 2 } else { 1 };
        assert!(
            seen.iter().all(|(_, n)| *n == at_once),
            "{sharing}: {seen:?}"
        );
        for (d, _) in &seen {
            assert!(d.starts_with(store.root().join("cache/mounts")), "{d:?}");
        }
    }
}

/// Reads `f` of each cache it gets (recorded), then writes `f` there.
#[derive(Default)]
struct SeedRunner {
    seen: Mutex<Vec<(std::path::PathBuf, String)>>,
}

impl StepRunner for SeedRunner {
    fn run(&self, req: &RunRequest<'_>, _output: &mut dyn FnMut(&[u8])) -> Result<(), RunError> {
        for m in req.mounts {
            if let kiln_build::MountSource::Cache { dir } = &m.source {
                let f = fs::read_to_string(dir.join("f")).unwrap_or_default();
                self.seen.lock().unwrap().push((dir.clone(), f));
                fs::write(dir.join("f"), "written-by-a-step").unwrap();
            }
        }
        fs::write(req.upper.join("ran"), "").unwrap();
        Ok(())
    }
}

/// `RUN --mount=type=cache,from=STAGE,source=PATH`: a new cache starts as a
/// copy of PATH in the stage (resolved in its root); an existing one is
/// used as it is; another content of the stage is another cache; the
/// plain cache of the same id is apart.
#[test]
fn cache_mounts_from_a_stage_are_seeded_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(ctx.join("seed/sub")).unwrap();
    fs::write(ctx.join("seed/sub/f"), "seed-1").unwrap();
    // Leads far above the root: resolved in the stage, it is /data/sub.
    std::os::unix::fs::symlink("../../../../../../../data/sub", ctx.join("seed/up")).unwrap();
    let text = "FROM scratch AS seed\nCOPY seed/ /data/\n\
                FROM scratch\n\
                RUN --mount=type=cache,id=c,target=/c,from=seed,source=/data/up use-seeded\n\
                RUN --mount=type=cache,id=c,target=/c use-plain\n";
    let build = lowered(text, &BTreeMap::new(), None);
    let opts = BuildOptions {
        context: Some(ctx.clone()),
        no_cache: true,
        ..BuildOptions::default()
    };
    let runner = SeedRunner::default();
    let run = || {
        Builder::new(&store, &opts, &Silent, Some(&runner))
            .build(&build)
            .unwrap()
    };
    run();
    let seen = runner.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].1, "seed-1");
    // The plain cache of the id is another directory, empty at first.
    assert_ne!(seen[0].0, seen[1].0);
    assert_eq!(seen[1].1, "");
    // The seed is not copied again into the existing cache.
    run();
    let seen = runner.seen.lock().unwrap().clone();
    assert_eq!(seen[2], (seen[0].0.clone(), "written-by-a-step".into()));
    assert_eq!(seen[3], (seen[1].0.clone(), "written-by-a-step".into()));
    // The stage changed: a new cache, seeded from its new content.
    fs::write(ctx.join("seed/sub/f"), "seed-2").unwrap();
    run();
    let seen = runner.seen.lock().unwrap().clone();
    assert_ne!(seen[4].0, seen[0].0);
    assert_eq!(seen[4].1, "seed-2");
    assert_eq!(seen[5].0, seen[1].0);
    // The store's temporary directories are all gone.
    let ingest: Vec<_> = fs::read_dir(store.root().join("ingest"))
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(ingest.is_empty(), "{ingest:?}");
}

/// A cache `source` needs a `from` (BuildKit: it does not exist in the
/// empty base), and a `source` that is a file is refused.
#[test]
fn cache_mount_sources_must_be_directories_of_a_from() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(&ctx).unwrap();
    fs::write(ctx.join("file"), "x").unwrap();
    let opts = BuildOptions {
        context: Some(ctx.clone()),
        ..BuildOptions::default()
    };
    let runner = SeedRunner::default();
    for (text, want) in [
        (
            "FROM scratch\nRUN --mount=type=cache,target=/c,source=/x true\n",
            "needs a `from`",
        ),
        (
            "FROM scratch AS s\nCOPY file /file\nFROM scratch\nRUN --mount=type=cache,target=/c,from=s,source=/file true\n",
            "is not a directory",
        ),
    ] {
        let build = lowered(text, &BTreeMap::new(), None);
        let err = Builder::new(&store, &opts, &Silent, Some(&runner))
            .build(&build)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{err}");
    }
    assert!(runner.seen.lock().unwrap().is_empty());
}

/// A runner that checks, at the start of each step and again after the
/// layer below has had time to be written, that every lower directory it
/// was given is still there with the files of the steps before; then says
/// its root is mounted and leaves a file.
#[derive(Default)]
struct LowerChecker {
    /// Per step: told it could say when mounted; lowers complete at the
    /// start; still complete after the wait.
    seen: Mutex<Vec<(bool, bool, bool)>>,
}

impl LowerChecker {
    /// Whether the lower directories hold every file written below.
    fn complete(req: &RunRequest<'_>) -> bool {
        let mut found = 0;
        for dir in req.lower {
            if !dir.is_dir() {
                return false;
            }
            if dir.join("big/f9").is_file() {
                found += 1;
            }
            if let Ok(rd) = fs::read_dir(dir.join("out")) {
                found += rd.count();
            }
        }
        let below = req.argv.last().unwrap().parse::<usize>().unwrap();
        found == below
    }
}

impl StepRunner for LowerChecker {
    fn run(&self, req: &RunRequest<'_>, _output: &mut dyn FnMut(&[u8])) -> Result<(), RunError> {
        let at_start = Self::complete(req);
        std::thread::sleep(Duration::from_millis(300));
        let later = Self::complete(req);
        self.seen
            .lock()
            .unwrap()
            .push((req.lowers_mounted.is_some(), at_start, later));
        if let Some(mounted) = req.lowers_mounted {
            (mounted.0)();
        }
        let n = req.argv.last().unwrap();
        fs::create_dir_all(req.upper.join("out")).unwrap();
        fs::write(req.upper.join("out").join(n), n).unwrap();
        Ok(())
    }
}

/// A layer's tar is written while the next step runs (pipeline.rs): the
/// next step still finds the layer's directory where it was told, however
/// long it takes, and the image and the cache have every layer.
#[test]
fn a_layer_being_written_stays_where_the_next_step_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(ctx.join("big")).unwrap();
    for i in 0..10 {
        let data: Vec<u8> = (0..1_000_000u32).map(|b| (b * 7 + i) as u8).collect();
        fs::write(ctx.join(format!("big/f{i}")), data).unwrap();
    }
    let text = "FROM scratch\nCOPY big/ /big/\nRUN [\"step\", \"1\"]\nRUN [\"step\", \"2\"]\n\
                RUN [\"step\", \"3\"]\n";
    let build = lowered(text, &BTreeMap::new(), None);
    let mut opts = BuildOptions {
        context: Some(ctx.clone()),
        no_cache: true,
        ..BuildOptions::default()
    };
    opts.layer.compression = kiln_oci::media_types::Compression::None;
    let runner = LowerChecker::default();
    let result = Builder::new(&store, &opts, &Silent, Some(&runner))
        .build(&build)
        .unwrap();
    let seen = runner.seen.lock().unwrap().clone();
    assert_eq!(seen, vec![(true, true, true); 3]);
    // Every layer is in the image and in the cache.
    let image = &result.image;
    assert_eq!(image.layers.len(), 4);
    for l in &image.layers {
        assert!(store.snapshot_path(&l.chain_id).is_dir(), "{l:?}");
        assert!(store.content().contains(&l.blob.digest), "{l:?}");
    }
    opts.no_cache = false;
    let again = Builder::new(&store, &opts, &Silent, Some(&runner))
        .build(&build)
        .unwrap();
    assert_eq!(again.image.layers, result.image.layers);
    assert_eq!(runner.seen.lock().unwrap().len(), 3, "all cached");
    let ingest: Vec<_> = fs::read_dir(store.root().join("ingest"))
        .map(|rd| rd.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(ingest.is_empty(), "{ingest:?}");
}
