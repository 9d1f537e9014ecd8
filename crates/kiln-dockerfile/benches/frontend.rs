//! Parsing and lowering a 5,000-line Dockerfile. The goal is under 5 ms for
//! both together; results go to `bench/RESULTS.md`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The allocator the `kiln` binary uses, so that the figures are the
/// binary's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use kiln_dockerfile::lower::{lower, LowerOptions};

/// A realistic multi-stage Dockerfile of exactly `lines` lines: global
/// args, stages with ENV/ARG/RUN (continuations, mounts)/COPY/heredocs.
pub fn synthetic(lines: usize) -> String {
    let mut s =
        String::from("# syntax=docker/dockerfile:1\nARG PY=3.12\nARG BASE=debian:bookworm-slim\n");
    let mut stage = 0;
    while s.lines().count() < lines {
        let _ = writeln!(
            s,
            "\n# s{stage} stage number {stage}\nFROM ${{BASE}} AS s{stage}"
        );
        let _ = writeln!(
            s,
            "ARG PY\nENV APP_HOME=/srv/app{stage} PATH=/opt/venv/bin:$PATH LANG=C.UTF-8"
        );
        let _ = writeln!(s, "WORKDIR $APP_HOME");
        for i in 0..20 {
            let _ = writeln!(
                s,
                "RUN --mount=type=cache,target=/root/.cache/pip,id=pip{i} \\\n    apt-get update && \\\n    apt-get install -y --no-install-recommends pkg{i} && \\\n    rm -rf /var/lib/apt/lists/*"
            );
            let _ = writeln!(
                s,
                "COPY --chown=1000:1000 src/mod{i}.py \"$APP_HOME/mod{i}.py\""
            );
            let _ = writeln!(s, "LABEL org.example.step{i}=\"value {i}\" other=$PY");
        }
        if stage > 0 {
            let _ = writeln!(s, "COPY --from=s{} /srv /srv", stage - 1);
        }
        let _ = writeln!(
            s,
            "COPY <<EOF /etc/app.conf\nhome=$APP_HOME\nversion=$PY\nEOF"
        );
        let _ = writeln!(
            s,
            "EXPOSE 8000\nUSER 1000\nCMD [\"gunicorn\", \"app:application\"]"
        );
        stage += 1;
    }
    let mut out: String = s.lines().take(lines).collect::<Vec<_>>().join("\n");
    out.push('\n');
    // Never cut a stage in the middle of a heredoc.
    if out.matches("<<EOF").count() > out.matches("\nEOF\n").count() {
        out.push_str("EOF\n");
    }
    out
}

fn bench(c: &mut Criterion) {
    let text = synthetic(5000);
    assert!(text.lines().count() >= 5000);
    let args = BTreeMap::new();
    let host: kiln_oci::Platform = "linux/amd64".parse().unwrap();
    let opts = LowerOptions::new(&args, &host);
    c.bench_function("parse 5000 lines", |b| {
        b.iter(|| kiln_dockerfile::parse(black_box(&text)).unwrap())
    });
    let df = kiln_dockerfile::parse(&text).unwrap();
    c.bench_function("lower 5000 lines", |b| {
        b.iter(|| lower(black_box(&df), &opts).unwrap())
    });
    c.bench_function("parse+lower 5000 lines", |b| {
        b.iter(|| {
            let df = kiln_dockerfile::parse(black_box(&text)).unwrap();
            lower(&df, &opts).unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
