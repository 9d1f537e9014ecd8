//! `images`, `inspect`, `history`, `tag`, `rmi`, `image prune`: the image
//! commands that need no registry, with Docker's flags and output.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use kiln_oci::time::{format_rfc3339, parse_rfc3339};
use kiln_oci::{Digest, ImageConfig, Reference};
use kiln_store::{Image, Removal, Store};
use serde_json::{json, Value};

use crate::cli::{
    Cli, HistoryArgs, ImageInspectArgs, ImagePruneArgs, ImagesArgs, InspectArgs, RmiArgs, TagArgs,
};
use crate::commands::{confirm, open_store};
use crate::format::units::{human_duration_since, human_size};
use crate::format::{render, IMAGE_HEADERS, IMAGE_TABLE};
use crate::EXIT_FAILURE;

const HISTORY_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

/// `2024-01-02 03:04:05 +0000 UTC`, Go's default time format, which
/// Docker's `CreatedAt` uses.
pub(crate) fn go_time(t: SystemTime) -> String {
    let s = format_rfc3339(t);
    format!("{} {} +0000 UTC", &s[..10], &s[11..19])
}

fn ago(t: Option<SystemTime>) -> String {
    match t {
        Some(t) => human_duration_since(t, SystemTime::now()),
        None => "N/A".into(),
    }
}

fn created(image: &Image) -> Option<SystemTime> {
    image.record.created.as_deref().and_then(parse_rfc3339)
}

fn short_id(d: &Digest, no_trunc: bool) -> String {
    if no_trunc {
        d.to_string()
    } else {
        d.short().to_string()
    }
}

/// `kiln images`.
pub(crate) fn images(cli: &Cli, args: &ImagesArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let all = store.images()?;
    let mut filters = Filters::parse(&args.filters, &store)?;
    // As Docker: a pattern (`team/*`, `busybox:1.*`) is a reference filter;
    // a plain name is matched after normalising (`busybox` is
    // `docker.io/library/busybox`).
    let wanted = match &args.repository {
        Some(r) if r.contains(['*', '?', '[']) => {
            filters.references.push(r.clone());
            None
        }
        Some(r) => Some(Reference::parse(r).with_context(|| format!("invalid reference {r:?}"))?),
        None => None,
    };
    let mut rows = Vec::new();
    for image in &all {
        if !filters.keep_image(image, || image_labels(&store, image)) {
            continue;
        }
        let names: Vec<Option<&Reference>> = if image.names.is_empty() {
            vec![None]
        } else {
            image.names.iter().map(Some).collect()
        };
        for name in names {
            if let Some(w) = &wanted {
                let Some(n) = name else { continue };
                if n.repository() != w.repository() || w.tag().is_some_and(|t| Some(t) != n.tag()) {
                    continue;
                }
            }
            if !filters.keep_name(name) {
                continue;
            }
            rows.push(image_row(image, name, args.no_trunc));
        }
    }
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for r in &rows {
            writeln!(out, "{}", r["ID"].as_str().unwrap_or_default())?;
        }
        return Ok(0);
    }
    let default = if args.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        IMAGE_TABLE
    };
    let format = match args.format.as_deref() {
        None | Some("table") => default,
        Some(f) => f,
    };
    render(format, &rows, IMAGE_HEADERS, &mut out)?;
    Ok(0)
}

fn image_row(image: &Image, name: Option<&Reference>, no_trunc: bool) -> Value {
    let r = &image.record;
    let t = created(image);
    let size = human_size(r.size());
    json!({
        "Containers": "N/A",
        "CreatedAt": t.map(go_time).unwrap_or_default(),
        "CreatedSince": ago(t),
        "Digest": r.manifest.digest.to_string(),
        "ID": short_id(r.id(), no_trunc),
        "Repository": name.map_or("<none>".into(), Reference::familiar_repository),
        "SharedSize": "N/A",
        "Size": size,
        "Tag": name.and_then(Reference::tag).unwrap_or("<none>"),
        "UniqueSize": "N/A",
        "VirtualSize": size,
    })
}

/// `--filter` of `images`.
#[derive(Debug, Default)]
struct Filters {
    dangling: Option<bool>,
    references: Vec<String>,
    labels: Vec<(String, Option<String>)>,
    before: Option<SystemTime>,
    since: Option<SystemTime>,
}

impl Filters {
    fn parse(specs: &[String], store: &Store) -> Result<Filters> {
        let mut f = Filters::default();
        for spec in specs {
            let Some((key, value)) = spec.split_once('=') else {
                bail!("bad format of filter (expected name=value): {spec}");
            };
            match key {
                "dangling" => {
                    f.dangling = Some(match value.to_ascii_lowercase().as_str() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => bail!("invalid filter 'dangling={value}'"),
                    })
                }
                "reference" => f.references.push(value.to_string()),
                "label" => f.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.to_string(), None),
                }),
                "before" | "since" => {
                    let image = store.resolve(value)?;
                    let t = created(&image).unwrap_or(SystemTime::UNIX_EPOCH);
                    if key == "before" {
                        f.before = Some(t);
                    } else {
                        f.since = Some(t);
                    }
                }
                _ => bail!("invalid filter '{key}'"),
            }
        }
        Ok(f)
    }

    fn keep_image(&self, image: &Image, labels: impl FnOnce() -> BTreeMap<String, String>) -> bool {
        if let Some(d) = self.dangling {
            if image.names.is_empty() != d {
                return false;
            }
        }
        let t = created(image).unwrap_or(SystemTime::UNIX_EPOCH);
        if self.before.is_some_and(|b| t >= b) || self.since.is_some_and(|s| t <= s) {
            return false;
        }
        if !self.labels.is_empty() {
            let labels = labels();
            for (k, v) in &self.labels {
                match (labels.get(k), v) {
                    (Some(_), None) => {}
                    (Some(have), Some(want)) if have == want => {}
                    _ => return false,
                }
            }
        }
        true
    }

    fn keep_name(&self, name: Option<&Reference>) -> bool {
        if self.references.is_empty() {
            return true;
        }
        let Some(n) = name else { return false };
        self.references.iter().any(|p| {
            glob(p, &n.familiar())
                || glob(p, &n.familiar_repository())
                || glob(p, &n.to_string())
                || glob(p, &n.repository())
        })
    }
}

/// Labels live in the config blob; the record does not copy them.
fn image_labels(store: &Store, image: &Image) -> BTreeMap<String, String> {
    config_of(store, image)
        .ok()
        .and_then(|c| c.config)
        .map(|c| c.labels)
        .unwrap_or_default()
}

/// Go's `path.Match`: `*` and `?` within a path segment, `[…]` classes.
fn glob(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => {
                let rest = &p[1..];
                for i in 0..=n.len() {
                    if go(rest, &n[i..]) {
                        return true;
                    }
                    if i < n.len() && n[i] == b'/' {
                        break;
                    }
                }
                false
            }
            Some(b'?') => !n.is_empty() && n[0] != b'/' && go(&p[1..], &n[1..]),
            Some(b'[') => {
                let Some(end) = p.iter().position(|&c| c == b']') else {
                    return false;
                };
                let class = &p[1..end];
                let (negate, class) = match class.first() {
                    Some(b'^') => (true, &class[1..]),
                    _ => (false, class),
                };
                let Some(&c) = n.first() else { return false };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == b'-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 1..], &n[1..])
            }
            Some(b'\\') if p.len() > 1 => !n.is_empty() && n[0] == p[1] && go(&p[2..], &n[1..]),
            Some(&c) => !n.is_empty() && n[0] == c && go(&p[1..], &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

/// The config of an image, parsed.
fn config_of(store: &Store, image: &Image) -> Result<ImageConfig> {
    let bytes = store.content().read(image.record.id())?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("image {}: invalid config", image.record.id()))
}

fn inspect_object(store: &Store, image: &Image) -> Result<Value> {
    let config = config_of(store, image)?;
    let r = &image.record;
    let mut lower: Vec<String> = r
        .layers
        .iter()
        .map(|l| store.snapshot_path(&l.chain_id).display().to_string())
        .collect();
    lower.reverse();
    let mut o = json!({
        "Id": r.id().to_string(),
        "RepoTags": image.names.iter().map(Reference::familiar).collect::<Vec<_>>(),
        "RepoDigests": r.repo_digests.iter().collect::<Vec<_>>(),
        "Parent": "",
        "Comment": config.extra.get("comment").and_then(Value::as_str).unwrap_or(""),
        "Created": config.created.clone().unwrap_or_default(),
        "DockerVersion": config.extra.get("docker_version").and_then(Value::as_str).unwrap_or(""),
        "Author": config.author.clone().unwrap_or_default(),
        "Config": config.config,
        "Architecture": config.architecture,
        "Os": config.os,
        "Size": r.size(),
        "GraphDriver": {
            "Data": {"LowerDir": lower.join(":")},
            "Name": "overlay",
        },
        "RootFS": {
            "Type": config.rootfs.kind,
            "Layers": config.rootfs.diff_ids,
        },
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        "Descriptor": r.manifest,
    });
    if let Some(v) = config.variant {
        o["Variant"] = Value::String(v);
    }
    Ok(o)
}

/// What `inspect` looks a name up as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kinds {
    /// Images only (`image inspect`, `inspect --type image`).
    Image,
    /// Containers only (`inspect --type container`).
    Container,
    /// A container, else an image: Docker's order for `inspect` (its CLI
    /// tries containers before images), so a container's name or id
    /// prefix is never taken for an image whose id starts the same.
    Any,
}

fn inspect_names(cli: &Cli, names: &[String], kinds: Kinds, format: Option<&str>) -> Result<u8> {
    let store = open_store(cli)?;
    let mut objects = Vec::new();
    let mut failed = false;
    for n in names {
        if kinds != Kinds::Image {
            match store.container(n) {
                Ok(c) => {
                    objects.push(super::container::inspect_object(&store, &c));
                    continue;
                }
                Err(e) if kinds == Kinds::Container => {
                    eprintln!("error: {e}");
                    failed = true;
                    continue;
                }
                Err(_) => {}
            }
        }
        match store.resolve(n) {
            Ok(image) => objects.push(inspect_object(&store, &image)?),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    match format {
        None => {
            let mut buf = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
            serde::Serialize::serialize(&objects, &mut ser)?;
            out.write_all(&buf)?;
            writeln!(out)?;
        }
        Some(f) => render(f, &objects, &[], &mut out)?,
    }
    Ok(if failed { EXIT_FAILURE } else { 0 })
}

/// `kiln inspect`.
pub(crate) fn inspect(cli: &Cli, args: &InspectArgs) -> Result<u8> {
    let kinds = match args.kind.as_deref() {
        None => Kinds::Any,
        Some("image") => Kinds::Image,
        Some("container") => Kinds::Container,
        Some(t) => bail!("kiln can inspect images and containers, not {t:?}"),
    };
    inspect_names(cli, &args.names, kinds, args.format.as_deref())
}

/// `kiln image inspect`.
pub(crate) fn image_inspect(cli: &Cli, args: &ImageInspectArgs) -> Result<u8> {
    inspect_names(cli, &args.names, Kinds::Image, args.format.as_deref())
}

/// Docker's `stringutils.Ellipsis`.
fn ellipsis(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_string();
    }
    let mut out: String = chars[..max - 1].iter().collect();
    out.push('…');
    out
}

/// `kiln history`.
pub(crate) fn history(cli: &Cli, args: &HistoryArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let image = store.resolve(&args.image)?;
    let config = config_of(&store, &image)?;
    let mut layers = image.record.layers.iter();
    let mut rows = Vec::new();
    for h in &config.history {
        let size = if h.empty_layer {
            0
        } else {
            layers.next().map_or(0, |l| l.unpacked_size)
        };
        let t = h.created.as_deref().and_then(parse_rfc3339);
        let created_by = h.created_by.clone().unwrap_or_default();
        rows.push(json!({
            "ID": "<missing>",
            "CreatedSince": if args.human { ago(t) } else { h.created.clone().unwrap_or_default() },
            "CreatedAt": if args.human { t.map(go_time).unwrap_or_default() } else { h.created.clone().unwrap_or_default() },
            "CreatedBy": if args.no_trunc { created_by } else { ellipsis(&created_by, 45) },
            "Size": if args.human { human_size(size) } else { size.to_string() },
            "Comment": h.comment.clone().unwrap_or_default(),
        }));
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top["ID"] = Value::String(short_id(image.record.id(), args.no_trunc));
    }
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for r in &rows {
            writeln!(out, "{}", r["ID"].as_str().unwrap_or_default())?;
        }
        return Ok(0);
    }
    let format = match args.format.as_deref() {
        None | Some("table") => {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
        }
        Some(f) => f,
    };
    render(format, &rows, HISTORY_HEADERS, &mut out)?;
    Ok(0)
}

/// `kiln tag`.
pub(crate) fn tag(cli: &Cli, args: &TagArgs) -> Result<u8> {
    let target = Reference::parse(&args.target)
        .with_context(|| format!("invalid reference {:?}", args.target))?;
    if target.digest().is_some() {
        bail!("refusing to create a tag with a digest reference");
    }
    let store = open_store(cli)?;
    store.tag(&args.source, &target)?;
    Ok(0)
}

fn print_removals(out: &mut impl Write, events: &[Removal], lower: bool) -> Result<()> {
    for e in events {
        match e {
            Removal::Untagged(n) => writeln!(
                out,
                "{}: {}",
                if lower { "untagged" } else { "Untagged" },
                n.familiar()
            )?,
            Removal::Deleted(d) => {
                writeln!(out, "{}: {d}", if lower { "deleted" } else { "Deleted" })?
            }
        }
    }
    Ok(())
}

/// `kiln rmi`.
pub(crate) fn rmi(cli: &Cli, args: &RmiArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for name in &args.images {
        match store.remove_image(name, args.force) {
            Ok(events) => print_removals(&mut out, &events, false)?,
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { EXIT_FAILURE } else { 0 })
}

/// `kiln image prune`.
pub(crate) fn prune(cli: &Cli, args: &ImagePruneArgs) -> Result<u8> {
    if !args.force {
        let warning = if args.all {
            "WARNING! This will remove all images without at least one container associated to them."
        } else {
            "WARNING! This will remove all dangling images."
        };
        eprintln!("{warning}");
        if !confirm("Are you sure you want to continue?")? {
            return Ok(0);
        }
    }
    let store = open_store(cli)?;
    let (events, bytes) = store.prune_images(args.all)?;
    print_pruned(&mut std::io::stdout().lock(), &events, bytes)?;
    Ok(0)
}

/// What `image prune` and `system prune` print: the removals, then the
/// space reclaimed.
pub(crate) fn print_pruned(out: &mut impl Write, events: &[Removal], bytes: u64) -> Result<()> {
    if !events.is_empty() {
        writeln!(out, "Deleted Images:")?;
        print_removals(out, events, true)?;
        writeln!(out)?;
    }
    writeln!(out, "Total reclaimed space: {}", human_size(bytes))?;
    Ok(())
}
