//! `kiln pull`: a registry image into the store.
//!
//! The manifest (and the platform's manifest from an index) and the config
//! come first, verified; then the layers, several at a time, each streamed
//! from the registry straight into the store's one-pass layer ingest
//! (download, digest check, decompression, DiffID check and extraction in
//! one read of the bytes). Everything is protected by a lease from the
//! start; the image is registered (with the pulled manifest's exact bytes
//! and its repository digest) only when every layer is in. A failure leaves
//! nothing: the lease's release collects what was published for it.
//!
//! Output, as Docker's: `TAG: Pulling from REPO`, per-layer lines or bars,
//! `Digest: …`, `Status: …` on stderr; the full reference on stdout.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use kiln_fs::apply::ApplyOptions;
use kiln_oci::media_types::layer_compression;
use kiln_oci::{Descriptor, ImageConfig, Platform, Reference};
use kiln_registry::{BlockingBlobReader, Client, Resolved};
use kiln_store::records::{chain_ids, ImageRecord, LayerRecord};
use kiln_store::Store;

use crate::cli::{Cli, PullArgs};
use crate::commands::open_store;
use crate::commands::registry::{client, runtime, short, LayerProgress};

/// `kiln pull`.
pub(crate) fn run(cli: &Cli, args: &PullArgs) -> Result<u8> {
    let reference = Reference::parse(&args.image)?;
    if args.all_tags && (reference.tag().is_some() || reference.digest().is_some()) {
        bail!("tag can't be used with --all-tags/-a");
    }
    let platform = match &args.platform {
        Some(p) => p.parse::<Platform>()?,
        None => Platform::host(),
    };
    let store = open_store(cli)?;
    let client = client()?;
    let rt = runtime()?;
    let references = if args.all_tags {
        let tags = rt
            .block_on(client.tags(&reference))
            .with_context(|| format!("failed to list the tags of {}", reference.familiar()))?;
        if tags.is_empty() {
            bail!("{} has no tags", reference.familiar());
        }
        tags.iter()
            .map(|t| reference.with_tag(t))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        vec![reference.with_default_tag()]
    };
    for r in &references {
        let opts = PullOptions {
            platform: &platform,
            concurrency: args.max_concurrent_downloads as usize,
            quiet: args.quiet,
        };
        let outcome = pull(cli, &store, &client, &rt, r, &opts)
            .with_context(|| format!("failed to pull {}", r.familiar()))?;
        if !args.quiet {
            eprintln!("Digest: {}", outcome.digest);
            let status = if outcome.new {
                "Downloaded newer image for"
            } else {
                "Image is up to date for"
            };
            eprintln!("Status: {status} {}", r.familiar());
        }
        println!("{r}");
    }
    Ok(0)
}

/// How to pull.
pub(crate) struct PullOptions<'a> {
    /// Which manifest of an index.
    pub(crate) platform: &'a Platform,
    /// Layers at a time.
    pub(crate) concurrency: usize,
    /// No progress output.
    pub(crate) quiet: bool,
}

/// What a pull did.
pub(crate) struct Outcome {
    /// The digest the reference resolved to (an index's, for a
    /// multi-platform image), as Docker prints it.
    pub(crate) digest: kiln_oci::Digest,
    /// Whether the image under that name changed.
    pub(crate) new: bool,
}

/// Pull one image (a reference with a tag or digest) into `store`: the
/// entry point for `run`, `create` and `build` when an image is missing
/// (`registry::client()` and `registry::runtime()` give the other arguments).
pub(crate) fn pull(
    cli: &Cli,
    store: &Store,
    client: &Client,
    rt: &tokio::runtime::Runtime,
    reference: &Reference,
    opts: &PullOptions<'_>,
) -> Result<Outcome> {
    // Refused before anything is fetched.
    let mode = super::progress::mode(cli, opts.quiet)?;
    let label = match (reference.tag(), reference.digest()) {
        (_, Some(d)) => d.to_string(),
        (Some(t), None) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    if !opts.quiet {
        // Docker Hub's repositories by path (`library/debian`), others
        // in full.
        let from = if reference.domain() == kiln_oci::reference::DOCKER_HUB {
            reference.path().to_string()
        } else {
            reference.repository()
        };
        eprintln!("{label}: Pulling from {from}");
    }
    let resolved: Resolved = rt.block_on(client.resolve(reference, opts.platform))?;
    let manifest = resolved.manifest().clone();
    let repo = resolved.repository.clone();
    for l in &manifest.layers {
        if layer_compression(&l.media_type).is_none() {
            bail!(
                "layer {} has media type {:?}, which is not an image layer kiln can unpack",
                l.digest,
                l.media_type
            );
        }
        if !l.urls.is_empty() && l.media_type.contains("foreign") {
            tracing::debug!(layer = %l.digest, "foreign layer: fetched from the registry, not its urls");
        }
    }
    let before = store.resolve(&reference.to_string()).ok();
    let lease = store.lease()?;
    lease.protect([&resolved.image.digest, &manifest.config.digest], [])?;
    let config_bytes = if store.content().contains(&manifest.config.digest) {
        store.content().read(&manifest.config.digest)?
    } else {
        let bytes = rt.block_on(repo.blob_bytes(&manifest.config))?;
        store.content().put(
            &bytes,
            Some((manifest.config.digest.clone(), manifest.config.size)),
        )?;
        bytes
    };
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .with_context(|| format!("invalid image config {}", manifest.config.digest))?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        bail!(
            "manifest {} has {} layers but its config lists {} DiffIDs",
            resolved.image.digest,
            manifest.layers.len(),
            diff_ids.len()
        );
    }
    let chains = chain_ids(diff_ids);
    let ids: Vec<String> = manifest.layers.iter().map(|l| short(&l.digest)).collect();
    let progress = LayerProgress::new(mode, ids);
    let mut present = Vec::with_capacity(manifest.layers.len());
    for (i, (layer, chain)) in manifest.layers.iter().zip(&chains).enumerate() {
        present.push(store.content().contains(&layer.digest) && store.snapshot(chain)?.is_some());
        progress.status(
            i,
            if present[i] {
                "Already exists"
            } else {
                "Pulling fs layer"
            },
        );
    }

    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..manifest.layers.len()).collect());
    let results: Mutex<Vec<Option<LayerRecord>>> = Mutex::new(vec![None; manifest.layers.len()]);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let workers = opts.concurrency.clamp(1, manifest.layers.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(i) = next else { return };
                let desc: &Descriptor = &manifest.layers[i];
                let parent = i.checked_sub(1).map(|p| &chains[p]);
                let reader = Progressed {
                    inner: BlockingBlobReader::new(rt.handle().clone(), repo.download(desc)),
                    progress: &progress,
                    index: i,
                    total: desc.size,
                    done: 0,
                    started: false,
                    finished: false,
                };
                match store.ingest_layer_blob(
                    &lease,
                    reader,
                    desc,
                    &diff_ids[i],
                    parent,
                    &ApplyOptions::default(),
                ) {
                    Ok(rec) => {
                        // As Docker: a layer that was there says so once.
                        if !present[i] {
                            progress.status(i, "Pull complete");
                        }
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(rec);
                    }
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        let mut slot = first_error.lock().unwrap_or_else(|e| e.into_inner());
                        if slot.is_none() {
                            *slot = Some(anyhow::Error::new(e));
                        }
                        return;
                    }
                }
            });
        }
    });
    progress.finish();
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    let layers: Vec<LayerRecord> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| anyhow!("a layer was not pulled"))?;
    let image = &resolved.image;
    if !store.content().contains(&image.digest) {
        store.content().put(
            &image.bytes,
            Some((image.digest.clone(), image.bytes.len() as u64)),
        )?;
    }
    let platform = Platform {
        os: config.os.clone(),
        architecture: config.architecture.clone(),
        variant: config.variant.clone().unwrap_or_default(),
    };
    let repo_digest = format!("{}@{}", reference.repository(), resolved.top.digest);
    let record = ImageRecord {
        manifest: Descriptor::new(
            &image.media_type,
            image.digest.clone(),
            image.bytes.len() as u64,
        ),
        config: manifest.config.clone(),
        layers,
        created: config.created.clone(),
        platform: platform.to_string(),
        added: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        repo_digests: [repo_digest].into_iter().collect(),
    };
    let names: Vec<Reference> = match (reference.tag(), reference.digest()) {
        (Some(_), None) => vec![reference.clone()],
        _ => Vec::new(),
    };
    store.add_image(&record, &names)?;
    drop(lease);
    let new = before.is_none_or(|b| b.record.manifest.digest != image.digest);
    Ok(Outcome {
        digest: resolved.top.digest.clone(),
        new,
    })
}

/// A layer's byte stream, reporting progress as it is read.
struct Progressed<'a> {
    inner: BlockingBlobReader,
    progress: &'a LayerProgress,
    index: usize,
    total: u64,
    done: u64,
    started: bool,
    finished: bool,
}

impl std::io::Read for Progressed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.started {
            self.started = true;
            self.progress.status(self.index, "Downloading");
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.progress.bytes(self.index, self.done, self.total);
        if n == 0 && !self.finished {
            // The reader returns end of stream only once the digest and
            // size were verified.
            self.finished = true;
            self.progress.status(self.index, "Download complete");
        }
        Ok(n)
    }
}

/// `--pull` of `run`, `create` and `build`: when to fetch an image from
/// its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum PullPolicy {
    /// Pull even when the store has the image.
    Always,
    /// Pull only when the store does not have it.
    #[default]
    Missing,
    /// Never pull: a missing image is an error.
    Never,
}

/// Makes sure `name` is in the store, pulling it as `policy` says, with
/// Docker's `Unable to find image 'NAME' locally` and the pull's progress
/// on stderr. A name that is an image id (or its prefix) is never pulled.
pub(crate) fn ensure_image(
    cli: &Cli,
    store: &Store,
    name: &str,
    policy: PullPolicy,
    platform: Option<&str>,
) -> Result<()> {
    let present = store.resolve(name).is_ok();
    let wanted = match policy {
        PullPolicy::Never => false,
        PullPolicy::Missing => !present,
        PullPolicy::Always => true,
    };
    if !wanted {
        return Ok(());
    }
    let is_id = {
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        hex.len() >= 12
            && hex
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    if is_id && present {
        return Ok(());
    }
    let reference = Reference::parse(name)
        .with_context(|| format!("invalid reference format: {name:?}"))?
        .with_default_tag();
    if !present {
        eprintln!("Unable to find image '{}' locally", reference.familiar());
    }
    let platform = match platform {
        Some(p) => p.parse::<Platform>()?,
        None => Platform::host(),
    };
    let client = client()?;
    let rt = runtime()?;
    let opts = PullOptions {
        platform: &platform,
        concurrency: 4,
        quiet: false,
    };
    let outcome = pull(cli, store, &client, &rt, &reference, &opts)
        .with_context(|| format!("failed to pull {}", reference.familiar()))?;
    eprintln!("Digest: {}", outcome.digest);
    let status = if outcome.new {
        "Downloaded newer image for"
    } else {
        "Image is up to date for"
    };
    eprintln!("Status: {status} {}", reference.familiar());
    Ok(())
}

/// The base images of a build, pulled as `--pull` says the first time the
/// lowering asks for one (every `FROM` of an image), then read from the
/// store.
pub(crate) struct PullingImages<'a> {
    pub(crate) cli: &'a Cli,
    pub(crate) store: &'a Store,
    pub(crate) inner: &'a dyn kiln_dockerfile::lower::ImageEnv,
    pub(crate) policy: PullPolicy,
    pub(crate) platform: Option<String>,
    seen: Mutex<std::collections::BTreeSet<String>>,
    error: Mutex<Option<anyhow::Error>>,
}

impl<'a> PullingImages<'a> {
    /// Pull through `inner`'s store.
    pub(crate) fn new(
        cli: &'a Cli,
        store: &'a Store,
        inner: &'a dyn kiln_dockerfile::lower::ImageEnv,
        policy: PullPolicy,
        platform: Option<String>,
    ) -> Self {
        PullingImages {
            cli,
            store,
            inner,
            policy,
            platform,
            seen: Mutex::new(Default::default()),
            error: Mutex::new(None),
        }
    }

    /// The first pull that failed.
    pub(crate) fn take_error(&self) -> Option<anyhow::Error> {
        self.error.lock().ok().and_then(|mut e| e.take())
    }
}

impl kiln_dockerfile::lower::ImageEnv for PullingImages<'_> {
    fn env(&self, image: &str, platform: &Platform) -> Option<Vec<(String, String)>> {
        let first = self
            .seen
            .lock()
            .map(|mut s| s.insert(image.to_string()))
            .unwrap_or(false);
        if first && image != "scratch" {
            if let Err(e) = ensure_image(
                self.cli,
                self.store,
                image,
                self.policy,
                self.platform.as_deref(),
            ) {
                if let Ok(mut slot) = self.error.lock() {
                    slot.get_or_insert(e);
                }
                return None;
            }
        }
        self.inner.env(image, platform)
    }
}
