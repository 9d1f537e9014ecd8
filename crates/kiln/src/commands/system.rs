//! `system df`, `system prune`, `system check`.

use std::io::Write;

use anyhow::Result;
use serde_json::json;

use crate::cli::{BuilderPruneArgs, CheckArgs, Cli, DfArgs, SystemPruneArgs};
use crate::commands::images::{go_time, print_pruned};
use crate::commands::{confirm, open_store};
use crate::format::units::human_size;
use crate::format::{render, render_table};
use crate::EXIT_FAILURE;

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return String::new();
    }
    format!(" ({}%)", part * 100 / whole)
}

/// `kiln system df`.
pub(crate) fn df(cli: &Cli, args: &DfArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let u = store.disk_usage()?;
    let volumes = crate::commands::volume::usage(&store)?;
    let caches = kiln_build::cache_mounts_usage(&super::store_root(cli));
    let active = u.images.iter().filter(|i| i.containers > 0).count();
    let rows = vec![
        json!({
            "Type": "Images",
            "TotalCount": u.images.len().to_string(),
            "Active": active.to_string(),
            "Size": human_size(u.images_size),
            "Reclaimable": format!("{}{}", human_size(u.images_reclaimable), percent(u.images_reclaimable, u.images_size)),
        }),
        json!({
            "Type": "Containers",
            "TotalCount": u.containers.to_string(),
            "Active": "0",
            "Size": human_size(0),
            "Reclaimable": human_size(0),
        }),
        json!({
            "Type": "Local Volumes",
            "TotalCount": volumes.0.to_string(),
            "Active": volumes.1.to_string(),
            "Size": human_size(volumes.2),
            "Reclaimable": format!("{}{}", human_size(volumes.3), percent(volumes.3, volumes.2)),
        }),
        json!({
            // Cache records (their layers are counted with the images they
            // share them with) and RUN cache-mount directories.
            "Type": "Build Cache",
            "TotalCount": (u.build_cache + caches.caches).to_string(),
            "Active": "0",
            "Size": human_size(caches.bytes),
            "Reclaimable": human_size(caches.bytes),
        }),
    ];
    let headers = [
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ];
    let mut out = std::io::stdout().lock();
    if args.verbose && args.format.is_none() {
        writeln!(out, "Images space usage:\n")?;
        let rows: Vec<_> = u
            .images
            .iter()
            .flat_map(|i| {
                let names: Vec<Option<&kiln_oci::Reference>> = if i.image.names.is_empty() {
                    vec![None]
                } else {
                    i.image.names.iter().map(Some).collect()
                };
                names.into_iter().map(move |n| {
                    let created = i
                        .image
                        .record
                        .created
                        .as_deref()
                        .and_then(kiln_oci::time::parse_rfc3339);
                    json!({
                        "Repository": n.map_or("<none>".into(), |n| n.familiar_repository()),
                        "Tag": n.and_then(|n| n.tag()).unwrap_or("<none>"),
                        "ID": i.image.record.id().short(),
                        "CreatedAt": created.map(go_time).unwrap_or_default(),
                        "Size": human_size(i.shared + i.unique),
                        "SharedSize": human_size(i.shared),
                        "UniqueSize": human_size(i.unique),
                        "Containers": i.containers.to_string(),
                    })
                })
            })
            .collect();
        render(
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedAt}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
            &rows,
            &[
                ("Repository", "REPOSITORY"),
                ("Tag", "TAG"),
                ("ID", "IMAGE ID"),
                ("CreatedAt", "CREATED"),
                ("Size", "SIZE"),
                ("SharedSize", "SHARED SIZE"),
                ("UniqueSize", "UNIQUE SIZE"),
                ("Containers", "CONTAINERS"),
            ],
            &mut out,
        )?;
        return Ok(0);
    }
    match args.format.as_deref() {
        None | Some("table") => render_table(&headers, &rows, &mut out)?,
        Some(f) => render(f, &rows, &headers, &mut out)?,
    }
    Ok(0)
}

/// `kiln system prune`.
pub(crate) fn prune(cli: &Cli, args: &SystemPruneArgs) -> Result<u8> {
    if !args.force {
        let images = if args.all {
            "all images without at least one container associated to them"
        } else {
            "all dangling images"
        };
        let volumes = if args.volumes {
            "  - anonymous volumes not used by at least one container\n"
        } else {
            ""
        };
        eprintln!(
            "WARNING! This will remove:\n  - all stopped containers\n{volumes}  - {images}\n  - unused build cache\n"
        );
        if !confirm("Are you sure you want to continue?")? {
            return Ok(0);
        }
    }
    let store = open_store(cli)?;
    let mut volume_bytes = 0;
    if args.volumes {
        let removed = store.remove_volumes_where(|v, _| v.anonymous, false)?;
        if !removed.is_empty() {
            let mut out = std::io::stdout().lock();
            writeln!(out, "Deleted Volumes:")?;
            for (n, b) in &removed {
                writeln!(out, "{n}")?;
                volume_bytes += b;
            }
            writeln!(out)?;
        }
    }
    let (events, bytes) = store.prune_images(args.all)?;
    // "unused build cache", as the warning says: every record (kiln has no
    // build running in another process to keep one for; a running build
    // holds its layers under its lease).
    store.build_cache_clear()?;
    let caches = kiln_build::prune_cache_mounts(&super::store_root(cli))?;
    let gc = store.gc()?;
    // Addresses and veths that a killed monitor could not give back.
    let net = kiln_runtime::network::NetworkConfig::from_env(store.root())?;
    if net.state_dir.exists() {
        kiln_runtime::network::release_stale(&net, &|id| store.container(id).is_ok())?;
    }
    print_pruned(
        &mut std::io::stdout().lock(),
        &events,
        bytes + gc.bytes + volume_bytes + caches.bytes,
    )?;
    Ok(0)
}

/// `kiln builder prune`: remove the build cache.
pub(crate) fn builder_prune(cli: &Cli, args: &BuilderPruneArgs) -> Result<u8> {
    if !args.force {
        eprintln!("WARNING! This will remove all build cache.");
        if !confirm("Are you sure you want to continue?")? {
            return Ok(0);
        }
    }
    let store = open_store(cli)?;
    let records = store.build_cache_clear()?;
    let gc = store.gc()?;
    // RUN --mount=type=cache directories too, as Docker's prune does (but
    // not those a running build holds).
    let caches = kiln_build::prune_cache_mounts(&super::store_root(cli))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "Deleted build cache records: {records}")?;
    writeln!(out, "Deleted cache mounts: {}", caches.caches)?;
    writeln!(
        out,
        "Total reclaimed space: {}",
        human_size(gc.bytes + caches.bytes)
    )?;
    Ok(0)
}

/// `kiln system check`.
pub(crate) fn check(cli: &Cli, args: &CheckArgs) -> Result<u8> {
    let store = open_store(cli)?;
    let report = store.check(args.repair)?;
    let mut out = std::io::stdout().lock();
    for p in &report.problems {
        writeln!(out, "{p}")?;
    }
    for d in &report.removed_images {
        writeln!(out, "removed image {d}: its content is lost")?;
    }
    let n = report.problems.len();
    let summary = format!(
        "checked {} blobs, {} images, {} snapshots: {}",
        report.blobs,
        report.images,
        report.snapshots,
        match (n, args.repair) {
            (0, _) => "no problems".to_string(),
            (n, false) => format!(
                "{n} problem{} (run with --repair to fix)",
                if n == 1 { "" } else { "s" }
            ),
            (n, true) => format!("{n} problem{} repaired", if n == 1 { "" } else { "s" }),
        }
    );
    eprintln!("{summary}");
    Ok(if n > 0 && !args.repair {
        EXIT_FAILURE
    } else {
        0
    })
}
