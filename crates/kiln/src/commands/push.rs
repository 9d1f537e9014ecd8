//! `kiln push`: an image of the store to a registry.
//!
//! Blobs first (layers, then the config), up to four at a time: a `HEAD`
//! skips what the repository has; a blob the image is known to have in
//! another repository of the same registry (its repository digests and
//! names) is mounted from there; the rest is uploaded. The manifest goes
//! last, as the exact bytes the store keeps, so its digest is the one the
//! image had; with `--compression` the layers in another compression are
//! recompressed into new blobs (under a lease) and a new manifest is
//! written. After a push the image records `REPO@DIGEST` as a repository
//! digest (Docker's `RepoDigests`), which later pushes use for mounts.

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use kiln_fs::compress::{available_threads, decompressed, CompressOptions, Encoder};
use kiln_oci::manifest::{parse_manifest, Manifest};
use kiln_oci::media_types::{self as mt, layer_compression, Compression, ManifestFormat};
use kiln_oci::{Descriptor, Reference};
use kiln_registry::{MountOutcome, Repository};
use kiln_store::lease::Lease;
use kiln_store::Store;

use crate::cli::{Cli, PushArgs, PushCompression};
use crate::commands::open_store;
use crate::commands::registry::{client, runtime, short, LayerProgress};

/// `kiln push`.
pub(crate) fn run(cli: &Cli, args: &PushArgs) -> Result<u8> {
    // Refused before anything is sent.
    let mode = super::progress::mode(cli, args.quiet)?;
    let store = open_store(cli)?;
    let image = store.resolve(&args.image)?;
    let dest_text = args.destination.as_deref().unwrap_or(&args.image);
    let dest = Reference::parse(dest_text)
        .with_context(|| format!("invalid destination {dest_text:?}"))?;
    if dest.digest().is_some() {
        bail!("cannot push to a digest reference ({dest_text}): give a tag");
    }
    let dest = dest.with_default_tag();
    // Without a destination the image must be known by that name (an id
    // prefix would otherwise read as a Docker Hub repository).
    if args.destination.is_none() && !image.names.contains(&dest) {
        bail!(
            "an image does not exist locally with the tag: {}",
            dest.familiar()
        );
    }
    let tag = dest.tag().unwrap_or("latest").to_string();
    let client = client()?;
    let rt = runtime()?;
    let endpoint = client
        .conf()
        .endpoints(&dest)?
        .pop()
        .context("no endpoint for the destination")?;
    let repo = client.repository(endpoint.clone(), true);
    let lease = store.lease()?;

    let mut media_type = image.record.manifest.media_type.clone();
    let mut manifest_bytes = store.content().read(&image.record.manifest.digest)?;
    let doc = parse_manifest(&media_type, manifest_bytes.clone())
        .with_context(|| format!("manifest {} in the store", image.record.manifest.digest))?;
    let Manifest::Image(mut manifest) = doc.value else {
        bail!(
            "{} is an index, not an image manifest",
            image.record.manifest.digest
        );
    };
    media_type = doc.media_type;
    // As asked; without --compression, layers the store keeps uncompressed
    // (a build's) leave gzip-compressed, as `docker push` sends them.
    let (want, only_uncompressed) = match args.compression {
        Some(PushCompression::Gzip) => (Compression::Gzip, false),
        Some(PushCompression::Zstd) => (Compression::Zstd, false),
        None => (Compression::Gzip, true),
    };
    let format = if media_type == mt::DOCKER_MANIFEST {
        ManifestFormat::Docker
    } else {
        ManifestFormat::Oci
    };
    let mut changed = false;
    for layer in &mut manifest.layers {
        let has = layer_compression(&layer.media_type);
        if has == Some(want) || (only_uncompressed && has != Some(Compression::None)) {
            continue;
        }
        *layer = recompress(&store, &lease, layer, want, format)?;
        changed = true;
    }
    if changed {
        manifest_bytes = serde_json::to_vec(&*manifest).context("failed to write the manifest")?;
    }

    // Repositories of the same registry that have this image's blobs:
    // where it was pushed or pulled from (repository digests) first, then
    // its other names there.
    let mut sources: Vec<String> = Vec::new();
    let known = image
        .record
        .repo_digests
        .iter()
        .filter_map(|rd| Reference::parse(rd).ok());
    for r in known.chain(image.names.iter().cloned()) {
        if r.domain() == dest.domain()
            && r.path() != dest.path()
            && !sources.iter().any(|s| s == r.path())
        {
            sources.push(r.path().to_string());
        }
    }

    let mut blobs: Vec<Descriptor> = manifest.layers.clone();
    blobs.push(manifest.config.clone());
    let progress = Arc::new(LayerProgress::new(
        mode,
        blobs.iter().map(|d| short(&d.digest)).collect(),
    ));
    if !progress.quiet() {
        eprintln!("The push refers to repository [{}]", dest.repository());
    }
    for i in 0..blobs.len() {
        progress.status(i, "Preparing");
    }
    rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(4));
        let mut set = tokio::task::JoinSet::new();
        let mut seen = BTreeSet::new();
        for (i, desc) in blobs.iter().enumerate() {
            if !seen.insert(desc.digest.clone()) {
                continue;
            }
            let path = store.content().path(&desc.digest)?;
            let repo = repo.clone();
            let desc = desc.clone();
            let sources = sources.clone();
            let progress = progress.clone();
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                push_blob(&repo, &desc, &path, &sources, &progress, i).await
            });
        }
        while let Some(r) = set.join_next().await {
            r.context("a push task panicked")??;
        }
        Ok::<_, anyhow::Error>(())
    })
    .with_context(|| format!("failed to push {}", dest.familiar()))?;
    progress.finish();
    let digest = rt
        .block_on(repo.put_manifest(&tag, &media_type, &manifest_bytes))
        .with_context(|| format!("failed to push the manifest of {}", dest.familiar()))?;
    if !progress.quiet() {
        eprintln!("{tag}: digest: {digest} size: {}", manifest_bytes.len());
    }
    // The repository knows the image by the digest pushed, which is the
    // store's own unless layers were compressed on the way (the same image:
    // the same config, and so the same ID, as Docker records it).
    let mut record = image.record.clone();
    record
        .repo_digests
        .insert(format!("{}@{digest}", dest.repository()));
    store.add_image(&record, &[])?;
    drop(lease);
    if !args.from_build {
        println!("{digest}");
    }
    Ok(0)
}

async fn push_blob(
    repo: &Repository,
    desc: &Descriptor,
    path: &std::path::Path,
    sources: &[String],
    progress: &LayerProgress,
    i: usize,
) -> Result<()> {
    if repo.blob_exists(&desc.digest).await? {
        progress.status(i, "Layer already exists");
        return Ok(());
    }
    // One mount attempt: a registry that cannot mount opens an upload
    // session instead, which is then used.
    let mut session = None;
    if let Some(from) = sources.first() {
        match repo.mount(&desc.digest, from).await? {
            MountOutcome::Mounted => {
                progress.status(i, &format!("Mounted from {from}"));
                return Ok(());
            }
            MountOutcome::Upload(u) => session = Some(u),
        }
    }
    progress.status(i, "Pushing");
    let path = path.to_path_buf();
    let open = move || -> std::io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(std::fs::File::open(&path)?))
    };
    let total = desc.size;
    let report = |n: u64| progress.bytes(i, n, total);
    repo.upload(desc, session, &open, &report)
        .await
        .with_context(|| format!("failed to upload blob {}", desc.digest))?;
    progress.status(i, "Pushed");
    Ok(())
}

/// A layer blob of the store in another compression, as a new blob of the
/// store (protected by `lease`).
fn recompress(
    store: &Store,
    lease: &Lease<'_>,
    layer: &Descriptor,
    want: Compression,
    format: ManifestFormat,
) -> Result<Descriptor> {
    let blob = store.content().open_blob(&layer.digest)?;
    let mut tar = decompressed(std::io::BufReader::new(blob))
        .with_context(|| format!("failed to decompress layer {}", layer.digest))?;
    let ingest = store.content().ingest(None)?;
    let opts = CompressOptions {
        compression: want,
        level: None,
        threads: available_threads(),
    };
    let mut enc = Encoder::new(ingest, &opts)
        .with_context(|| format!("failed to recompress layer {}", layer.digest))?;
    std::io::copy(&mut tar, &mut enc)
        .with_context(|| format!("failed to recompress layer {}", layer.digest))?;
    let ingest = enc
        .finish()
        .with_context(|| format!("failed to recompress layer {}", layer.digest))?;
    let verified = ingest.finish()?;
    lease.protect([verified.digest()], [])?;
    let desc = Descriptor::new(
        format.layer(want),
        verified.digest().clone(),
        verified.size(),
    );
    verified.publish()?;
    Ok(desc)
}
