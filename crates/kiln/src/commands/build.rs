//! `kiln build`: build an image from a Dockerfile with `kiln-build`, or
//! (`--call targets|outline|check`) what `docker build --call` does, on
//! kiln's Dockerfile frontend.
//!
//! The Dockerfile is read from `-f FILE`, standard input (`-f -`, or `-`
//! as the context: then there is no context, as with `docker build -`) or
//! `CONTEXT/Dockerfile`; the ignore file is `<Dockerfile>.dockerignore`
//! beside it when that exists, else `CONTEXT/.dockerignore`. Data (the
//! table, the findings, JSON, the image ID with `-q`) goes to stdout;
//! progress, the summary and errors go to stderr.
//!
//! Progress ([`super::build_progress`]) is BuildKit's live view, redrawn
//! in place, for `--progress tty` and for `auto` on a terminal (see
//! [`super::progress::mode`]: `tty` without a terminal is refused before
//! anything is done, as buildx does); one line per step event (BuildKit's
//! `#N` style) for `plain` and `auto` elsewhere; BuildKit-shaped JSON lines
//! for `rawjson`; nothing with `quiet` or `-q`. The closing table of steps
//! and the summary follow, but for `rawjson` and `quiet`. Only the host
//! platform is built. RUN steps run in containers ([`super::build_step`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use kiln_build::{BuildError, BuildOptions, Builder, SecretSource, Status, StoreImages};
use kiln_dockerfile::diagnostic::{render, Located};
use kiln_dockerfile::ignore::IgnoreRules;
use kiln_dockerfile::lint::Finding;
use kiln_dockerfile::lower::{self, Build, LowerErrorKind, LowerOptions, UnknownImages};
use kiln_oci::media_types::Compression;
use kiln_oci::{Platform, Reference};
use kiln_store::archive::SaveFormat;
use serde_json::{json, Value};

use super::build_progress::{BuildProgress, PlainProgress, RawJsonProgress, TtyProgress};
use super::progress::{self, Mode};
use crate::cli::{BuildArgs, Call, Cli, Format, Progress};
use crate::EXIT_FAILURE;

/// The Dockerfile text and the name to show in messages.
struct Source {
    name: String,
    path: Option<PathBuf>,
    text: String,
}

fn read_dockerfile(args: &BuildArgs) -> Result<Source> {
    if args.context.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("failed to read the Dockerfile from standard input")?;
        return Ok(Source {
            name: "Dockerfile".into(),
            path: None,
            text,
        });
    }
    match &args.file {
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("failed to read the Dockerfile from standard input")?;
            Ok(Source {
                name: "Dockerfile".into(),
                path: None,
                text,
            })
        }
        other => {
            let path = other
                .clone()
                .unwrap_or_else(|| args.context.join("Dockerfile"));
            let bytes = std::fs::read(&path)
                .with_context(|| format!("failed to read Dockerfile {}", path.display()))?;
            let text = String::from_utf8(bytes)
                .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text: {e}", path.display()))?;
            let name = other
                .as_ref()
                .map_or_else(|| "Dockerfile".into(), |p| p.display().to_string());
            Ok(Source {
                name,
                path: Some(path),
                text,
            })
        }
    }
}

fn read_ignore(args: &BuildArgs, src: &Source) -> Result<Option<IgnoreRules>> {
    if args.context.as_os_str() == "-" {
        return Ok(None);
    }
    let mut candidates = Vec::new();
    if let Some(p) = &src.path {
        let mut beside = p.clone().into_os_string();
        beside.push(".dockerignore");
        candidates.push(PathBuf::from(beside));
    }
    candidates.push(args.context.join(".dockerignore"));
    for c in candidates {
        match std::fs::read_to_string(&c) {
            Ok(text) => {
                let rules = IgnoreRules::parse(&text)
                    .with_context(|| format!("failed to parse {}", c.display()))?;
                return Ok(Some(rules));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", c.display())),
        }
    }
    Ok(None)
}

fn build_args(raw: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in raw {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            Some(_) => bail!("invalid --build-arg `{a}`: the name is empty"),
            None => {
                // Docker takes a bare name's value from the environment and
                // ignores it when unset.
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(out)
}

/// Render a located frontend error the way compilers do.
fn located(src: &Source, e: &dyn Located) -> anyhow::Error {
    anyhow::anyhow!("{}", render(&src.name, &src.text, e.span(), &e.to_string()))
}

/// SIGINT, SIGTERM and SIGHUP end the build as before, but not before the
/// layers of the steps that finished are in the store: a thread takes
/// them (blocked in this thread before any other starts, so every thread
/// of the build inherits the block; children start with none), lets the
/// layers still being written be published
/// ([`kiln_build::publish_in_flight`]), and exits with 128 + the signal.
/// A RUN's step process gets a terminal's signal itself, and the others
/// when the build is gone (their parent-death signal).
fn end_on_signals() {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(sig) = set.wait() {
                kiln_build::publish_in_flight(std::time::Duration::from_secs(60));
                std::process::exit(128 + sig as i32);
            }
        });
    if spawned.is_err() {
        let _ = set.thread_unblock();
    }
}

pub(crate) fn run(cli: &Cli, args: &BuildArgs) -> Result<u8> {
    let Some(call) = args.call else {
        return build(cli, args);
    };
    if !args.context.is_dir() && args.file.is_none() {
        bail!(
            "build context {} is not a directory",
            args.context.display()
        );
    }
    let src = read_dockerfile(args)?;
    let df = kiln_dockerfile::parse(&src.text).map_err(|e| located(&src, &e))?;
    let ignore = read_ignore(args, &src)?;
    let build_args = build_args(&args.build_args)?;
    let host = Platform::host();
    let target_platform = match &args.platform {
        Some(p) => Some(
            p.parse::<Platform>()
                .with_context(|| format!("invalid --platform {p}"))?,
        ),
        None => None,
    };
    let opts = LowerOptions {
        build_args: &build_args,
        target: args.target.as_deref(),
        target_platform: target_platform.as_ref(),
        build_platform: &host,
        images: &UnknownImages,
        ignore: ignore.as_ref(),
    };
    let build = lower::lower(&df, &opts).map_err(|e| match e.kind {
        // Not a place in the Dockerfile: the --target flag is wrong.
        LowerErrorKind::UnknownTarget { .. } => anyhow::anyhow!("{e}"),
        _ => located(&src, &e),
    })?;
    match call {
        Call::Targets => targets(&build, args.format),
        Call::Outline => outline(&build, args.format),
        Call::Check => check(&build, &src, args.format),
    }
}

/// Print rows as left-aligned columns.
fn table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}

fn targets(build: &Build, format: Format) -> Result<u8> {
    match format {
        Format::Json => {
            let targets: Vec<Value> = build
                .stages
                .iter()
                .map(|s| {
                    json!({
                        "name": s.display_name(),
                        "default": s.index == build.target,
                        "description": s.description.clone().unwrap_or_default(),
                        "base": s.base_name,
                        "platform": s.platform.to_string(),
                        "line": s.line,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "targets": targets }))?
            );
        }
        Format::Text => {
            let mut rows = vec![vec!["TARGET".to_string(), "DESCRIPTION".to_string()]];
            for s in &build.stages {
                let mut name = s.display_name();
                if s.index == build.target {
                    name.push_str(" (default)");
                }
                rows.push(vec![name, s.description.clone().unwrap_or_default()]);
            }
            table(&rows);
        }
    }
    Ok(0)
}

fn outline(build: &Build, format: Format) -> Result<u8> {
    let target = &build.stages[build.target];
    let args = build.outline_args();
    let secrets = build.secrets();
    let ssh = build.ssh();
    match format {
        Format::Json => {
            let v = json!({
                "name": target.display_name(),
                "description": target.description.clone().unwrap_or_default(),
                "args": args.iter().map(|a| json!({"name": a.name, "value": a.value, "description": a.description.clone().unwrap_or_default(), "line": a.line})).collect::<Vec<_>>(),
                "secrets": secrets.iter().map(|(n, r)| json!({"name": n, "required": r})).collect::<Vec<_>>(),
                "ssh": ssh.iter().map(|(n, r)| json!({"name": n, "required": r})).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Text => {
            println!("TARGET:      {}", target.display_name());
            if let Some(d) = &target.description {
                println!("DESCRIPTION: {d}");
            }
            if !args.is_empty() {
                println!();
                let mut rows = vec![vec![
                    "BUILD ARG".into(),
                    "VALUE".into(),
                    "DESCRIPTION".into(),
                ]];
                rows.extend(args.iter().map(|a| {
                    vec![
                        a.name.clone(),
                        a.value.clone(),
                        a.description.clone().unwrap_or_default(),
                    ]
                }));
                table(&rows);
            }
            for (title, map) in [("SECRET", &secrets), ("SSH", &ssh)] {
                if map.is_empty() {
                    continue;
                }
                println!();
                let mut rows = vec![vec![title.to_string(), "REQUIRED".to_string()]];
                rows.extend(map.iter().map(|(n, r)| vec![n.clone(), r.to_string()]));
                table(&rows);
            }
        }
    }
    Ok(0)
}

fn check(build: &Build, src: &Source, format: Format) -> Result<u8> {
    let findings: &[Finding] = &build.findings;
    match format {
        Format::Json => {
            let warnings: Vec<Value> = findings
                .iter()
                .map(|f| {
                    json!({
                        "ruleName": f.rule.name(),
                        "description": f.rule.description(),
                        "url": f.rule.url(),
                        "detail": f.message,
                        "hint": f.rule.hint(),
                        "location": { "file": src.name, "line": f.line },
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({ "warnings": warnings }))?
            );
        }
        Format::Text => {
            for f in findings {
                println!("{}:{}: {}: {}", src.name, f.line, f.rule.name(), f.message);
                println!("    hint: {} ({})", f.rule.hint(), f.rule.url());
            }
        }
    }
    if findings.is_empty() {
        eprintln!("Check complete, no warnings found.");
        Ok(0)
    } else {
        let n = findings.len();
        eprintln!(
            "Check complete, {n} warning{} found.",
            if n == 1 { " has been" } else { "s have been" }
        );
        Ok(EXIT_FAILURE)
    }
}

fn key_values(raw: &[String], flag: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for a in raw {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            _ => bail!("invalid {flag} `{a}`: expected KEY=VALUE"),
        }
    }
    Ok(out)
}

/// `kiln build [OPTIONS] CONTEXT`: build the target into the store.
fn build(cli: &Cli, args: &BuildArgs) -> Result<u8> {
    let no_context = args.context.as_os_str() == "-";
    if !no_context && !args.context.is_dir() {
        bail!(
            "build context {} is not a directory",
            args.context.display()
        );
    }
    end_on_signals();
    let quiet = args.quiet || cli.progress == Progress::Quiet;
    // Refused before anything is read, pulled or built.
    let mode = progress::mode(cli, quiet)?;
    let src = read_dockerfile(args)?;
    let df = kiln_dockerfile::parse(&src.text).map_err(|e| located(&src, &e))?;
    let ignore = read_ignore(args, &src)?;
    let build_args = build_args(&args.build_args)?;
    let labels = key_values(&args.labels, "--label")?;
    let host = Platform::host();
    if let Some(p) = &args.platform {
        let p = p
            .parse::<Platform>()
            .with_context(|| format!("invalid --platform {p}"))?;
        if p != host {
            bail!("--platform {p}: only the host's platform ({host}) can be built for now");
        }
    }
    let mut tags = Vec::new();
    for t in &args.tags {
        let r = Reference::parse(t).with_context(|| format!("invalid tag {t:?}"))?;
        if r.digest().is_some() {
            bail!("invalid tag {t:?}: a tag cannot name a digest");
        }
        tags.push(r.with_default_tag());
    }
    if args.push && tags.is_empty() {
        bail!("--push needs a name to push to: give -t NAME[:TAG]");
    }
    let store = super::open_store(cli)?;
    let store_images = StoreImages::new(&store);
    let images = super::pull::PullingImages::new(
        cli,
        &store,
        &store_images,
        args.pull,
        args.platform.clone(),
    );
    let opts = LowerOptions {
        build_args: &build_args,
        target: args.target.as_deref(),
        target_platform: Some(&host),
        build_platform: &host,
        images: &images,
        ignore: ignore.as_ref(),
    };
    let lowered = lower::lower(&df, &opts).map_err(|e| match e.kind {
        LowerErrorKind::UnknownTarget { .. } => anyhow::anyhow!("{e}"),
        _ => located(&src, &e),
    });
    if let Some(e) = images.take_error() {
        return Err(e);
    }
    let lowered = lowered?;
    if !quiet {
        for f in &lowered.findings {
            let text = format!("{}: {} ({}:{})", f.rule.name(), f.message, src.name, f.line);
            if cli.progress == Progress::Rawjson {
                use base64::Engine as _;
                let short = base64::engine::general_purpose::STANDARD.encode(&text);
                eprintln!(
                    "{}",
                    serde_json::json!({"warnings": [{"level": 1, "short": short}]})
                );
            } else {
                eprintln!("WARN: {text}");
            }
        }
        for a in &lowered.unused_build_args {
            eprintln!("WARN: build argument {a} was not consumed");
        }
    }
    let mut options = BuildOptions {
        context: (!no_context).then(|| args.context.clone()),
        ignore,
        build_args: build_args.clone(),
        labels,
        no_cache: args.no_cache,
        tags: tags.clone(),
        ..BuildOptions::default()
    };
    if let Some(j) = args.jobs {
        options.jobs = j.max(1);
    }
    options.no_cache_filter = args.no_cache_filter.clone();
    options.secrets = parse_secrets(&args.secrets)?;
    options.ssh = parse_ssh(&args.ssh)?;
    if args.explain_cache {
        // Steps are remembered per context and Dockerfile.
        let ctx = if no_context {
            "-".to_string()
        } else {
            std::fs::canonicalize(&args.context)
                .unwrap_or_else(|_| args.context.clone())
                .display()
                .to_string()
        };
        let file = src
            .path
            .as_ref()
            .map(|p| {
                std::fs::canonicalize(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string()
            })
            .unwrap_or_else(|| "-".into());
        options.explain = Some(format!("{ctx}\0{file}"));
    }
    let output = parse_output(args.output.as_deref())?;
    // Layers that stay in the store are not compressed (as Docker's and
    // Podman's stores keep them): compression is the largest cost of a
    // commit, and `push` compresses what leaves. Layers that leave with
    // this build (--push, an OCI archive) are compressed as they are made.
    let leaves = args.push || matches!(output, Some((Output::Archive(SaveFormat::OciArchive), _)));
    options.layer.compression = match args.compression.as_deref() {
        Some("gzip") => Compression::Gzip,
        Some("zstd") => Compression::Zstd,
        Some(other) => bail!("invalid --compression {other:?}: gzip or zstd"),
        None if leaves => Compression::Gzip,
        None => Compression::None,
    };
    if let Some((Output::Local, dest)) = &output {
        // Refused before anything is built.
        if std::fs::read_dir(dest).is_ok_and(|mut rd| rd.next().is_some()) {
            bail!("--output dest={} is not empty", dest.display());
        }
    }
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        options.source_date_epoch = epoch.trim().parse().ok();
    }
    if let Some(epoch) = build_args.get("SOURCE_DATE_EPOCH") {
        options.source_date_epoch = epoch.trim().parse().ok();
    }
    let runner = super::build_step::ContainerSteps {
        default_network: match args.network.as_str() {
            "none" => kiln_runtime::options::NetworkMode::None,
            "host" => kiln_runtime::options::NetworkMode::Host,
            _ => super::build_step::default_network(),
        },
        root: super::store_root(cli),
        log_level: if cli.debug > 0 {
            cli.log_level()
        } else {
            "off".into()
        },
        exe: std::sync::Arc::new(kiln_runtime::memfd::SealedExe::open()),
        warm: Default::default(),
    };
    // Started last: the live view owns the terminal's last lines until
    // the build ends.
    let reporter = match mode {
        Mode::Quiet => BuildProgress::Quiet,
        Mode::Plain if cli.progress == Progress::Rawjson => {
            BuildProgress::RawJson(RawJsonProgress::default())
        }
        Mode::Plain => BuildProgress::Plain(PlainProgress),
        Mode::Tty => BuildProgress::Tty(TtyProgress::new()),
    };
    let builder = Builder::new(&store, &options, &reporter, Some(&runner));
    let result = builder.build(&lowered);
    reporter.finish();
    let result = result.map_err(|e| match e {
        BuildError::Step {
            line,
            instruction,
            source,
        } => {
            let text = src.text.lines().nth(line.saturating_sub(1)).unwrap_or("");
            anyhow::anyhow!(
                "{}:{line}: {instruction}: {}\n{line:>5} | {text}",
                src.name,
                anyhow::Error::from(source)
                    .chain()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(": ")
            )
        }
        other => anyhow::Error::from(other),
    })?;
    let id = result.image.id().to_string();
    match &output {
        Some((Output::Archive(format), dest)) => {
            write_archive(&store, &result.image, &tags, *format, dest)?
        }
        Some((out, dest)) => write_rootfs(&store, &result.image, *out, dest)?,
        None => {}
    }
    if let Some(p) = &args.iidfile {
        std::fs::write(p, &id).with_context(|| format!("failed to write {}", p.display()))?;
    }
    if quiet {
        println!("{id}");
    } else if cli.progress == Progress::Rawjson {
        // The events said it all; stderr stays JSON lines only.
    } else {
        let cached = result
            .steps
            .iter()
            .filter(|(_, s)| *s == Status::Cached)
            .count();
        // The closing table: every step with its time or CACHED.
        let width = result
            .steps
            .iter()
            .map(|(n, _)| n.chars().count())
            .max()
            .unwrap_or(0)
            .min(72);
        for (name, status) in &result.steps {
            let shown: String = name.chars().take(width).collect();
            let how = match status {
                Status::Cached => "CACHED".to_string(),
                Status::Done(d) => format!("{:.2}s", d.as_secs_f64()),
                Status::Failed => "ERROR".to_string(),
                Status::Started => String::new(),
            };
            eprintln!("{shown:<width$}  {how}");
        }
        eprintln!(
            "writing image {id} ({} steps, {cached} cached)",
            result.steps.len()
        );
        for t in &tags {
            eprintln!("naming to {t}");
        }
    }
    if args.push {
        for t in &tags {
            let push = crate::cli::PushArgs {
                compression: None,
                quiet: quiet || cli.progress == Progress::Rawjson,
                image: t.to_string(),
                destination: None,
                from_build: true,
            };
            let code = super::push::run(cli, &push)?;
            if code != 0 {
                return Ok(code);
            }
        }
    }
    Ok(0)
}

/// `-o type=…,dest=…`: the archive format and file, or `None` for
/// `type=image` (the store only).
fn parse_output(value: Option<&str>) -> Result<Option<(Output, PathBuf)>> {
    let Some(value) = value else {
        return Ok(None);
    };
    let mut kind: Option<String> = None;
    let mut dest = None;
    for part in value.split(',') {
        match part.split_once('=') {
            Some(("type", t)) => kind = Some(t.to_string()),
            Some(("dest", d)) => dest = Some(PathBuf::from(d)),
            Some(("name", _)) => {}
            _ => bail!(
                "invalid --output {value:?}: expected type=image, or type=docker|oci,dest=FILE"
            ),
        }
    }
    let format = match kind.as_deref() {
        Some("image") => return Ok(None),
        Some("docker") => Output::Archive(SaveFormat::DockerArchive),
        Some("oci") => Output::Archive(SaveFormat::OciArchive),
        Some("local") => Output::Local,
        Some("tar") => Output::Tar,
        Some(other) => {
            bail!("--output type={other} is not supported yet: image, docker, oci, local or tar")
        }
        None => bail!("invalid --output {value:?}: type= is missing"),
    };
    let dest = dest.ok_or_else(|| anyhow::anyhow!("--output type=… needs dest=FILE"))?;
    Ok(Some((format, dest)))
}

/// What `-o` writes besides the image in the store.
#[derive(Debug, Clone, Copy)]
enum Output {
    /// A docker-archive or oci-archive.
    Archive(SaveFormat),
    /// The root file system into a new directory.
    Local,
    /// The root file system as one tar.
    Tar,
}

/// Write the root file system of the built image (`type=local|tar`).
fn write_rootfs(
    store: &kiln_store::Store,
    image: &kiln_store::ImageRecord,
    output: Output,
    dest: &std::path::Path,
) -> Result<()> {
    use std::io::Write;
    match output {
        Output::Local => {
            match std::fs::read_dir(dest) {
                Ok(mut rd) => {
                    if rd.next().is_some() {
                        bail!("--output dest={} is not empty", dest.display());
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(dest)
                        .with_context(|| format!("failed to create {}", dest.display()))?;
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("failed to read {}", dest.display()))
                }
            }
            kiln_build::export_rootfs(store, image, dest)
                .with_context(|| format!("failed to write the image into {}", dest.display()))
        }
        Output::Tar => {
            let dir = dest
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let (file, tmp) = kiln_fs::atomic::create_temp(dir)
                .with_context(|| format!("failed to create a file in {}", dir.display()))?;
            let result = (|| {
                let out = std::io::BufWriter::with_capacity(1 << 20, file);
                let mut out = kiln_build::export_rootfs_tar(store, image, out)?;
                out.flush()?;
                kiln_fs::atomic::commit(&tmp, dest)?;
                Ok::<_, anyhow::Error>(())
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result.with_context(|| format!("failed to write {}", dest.display()))
        }
        Output::Archive(_) => Ok(()),
    }
}

/// Write the built image as an archive, renamed into place when whole.
fn write_archive(
    store: &kiln_store::Store,
    image: &kiln_store::ImageRecord,
    tags: &[Reference],
    format: SaveFormat,
    dest: &std::path::Path,
) -> Result<()> {
    use std::io::Write;
    let img = kiln_store::Image {
        record: image.clone(),
        names: tags.to_vec(),
    };
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let (file, tmp) = kiln_fs::atomic::create_temp(dir)
        .with_context(|| format!("failed to create a file in {}", dir.display()))?;
    let result = (|| {
        let out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut out = store.save(&[(img, tags.to_vec())], format, out)?;
        out.flush()?;
        kiln_fs::atomic::commit(&tmp, dest)?;
        Ok::<_, anyhow::Error>(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("failed to write {}", dest.display()))
}

/// `--secret id=ID,src=FILE|env=VAR` (Docker's: `type=file|env`, `source`
/// for `src`, and an id alone reads the environment variable of that name
/// or else the file of that name).
fn parse_secrets(raw: &[String]) -> Result<BTreeMap<String, SecretSource>> {
    let mut out = BTreeMap::new();
    for spec in raw {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        let mut kind = None;
        for part in spec.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                Some(("env", v)) => env = Some(v.to_string()),
                Some(("type", v)) if v == "file" || v == "env" => kind = Some(v.to_string()),
                _ => bail!("invalid --secret {spec:?}: expected id=ID,src=FILE or id=ID,env=VAR"),
            }
        }
        let id = id.ok_or_else(|| anyhow::anyhow!("invalid --secret {spec:?}: id= is missing"))?;
        let source = match (src, env, kind.as_deref()) {
            (Some(p), None, None | Some("file")) => SecretSource::File(p),
            (None, Some(v), None | Some("env")) => SecretSource::Env(v),
            (None, None, Some("env")) => SecretSource::Env(id.clone()),
            (None, None, Some("file")) => SecretSource::File(PathBuf::from(&id)),
            (None, None, None) => {
                if std::env::var_os(&id).is_some() {
                    SecretSource::Env(id.clone())
                } else {
                    SecretSource::File(PathBuf::from(&id))
                }
            }
            _ => bail!("invalid --secret {spec:?}: give src= or env=, not both"),
        };
        if let SecretSource::File(p) = &source {
            // Checked now, not when a RUN needs it; its content is never
            // read by the build itself.
            if !p.is_file() {
                bail!("--secret {id}: {} is not a file", p.display());
            }
        }
        out.insert(id, source);
    }
    Ok(out)
}

/// `--ssh default` (the agent at $SSH_AUTH_SOCK) or `--ssh ID=SOCKET,…`.
fn parse_ssh(raw: &[String]) -> Result<BTreeMap<String, Vec<PathBuf>>> {
    let mut out = BTreeMap::new();
    for spec in raw {
        let (id, paths) = match spec.split_once('=') {
            Some((id, p)) => (id.to_string(), p.split(',').map(PathBuf::from).collect()),
            None => {
                let sock = std::env::var_os("SSH_AUTH_SOCK").ok_or_else(|| {
                    anyhow::anyhow!("--ssh {spec}: SSH_AUTH_SOCK is not set; give ID=SOCKET")
                })?;
                (spec.clone(), vec![PathBuf::from(sock)])
            }
        };
        if id.is_empty() {
            bail!("invalid --ssh {spec:?}: the id is empty");
        }
        out.insert(id, paths);
    }
    Ok(out)
}
