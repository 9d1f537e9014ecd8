//! `load`: docker-archive and oci-archive into the store.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};

use kiln_fs::apply::ApplyOptions;
use kiln_fs::compress::{decompressed, detect, is_xz};
use kiln_oci::manifest::{parse_manifest, Manifest};
use kiln_oci::media_types::{self as mt, Compression};
use kiln_oci::{Descriptor, Digest, ImageConfig, ImageIndex, ImageManifest, Platform, Reference};
use serde::Deserialize;

use super::{ArchiveError, IndexedTar, Source};
use crate::lease::now;
use crate::records::ImageRecord;
use crate::{Error, Store};

/// An image that was loaded.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    /// Its record.
    pub record: ImageRecord,
    /// The names it was given.
    pub names: Vec<Reference>,
}

/// What a load did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// The images, in archive order.
    pub images: Vec<LoadedImage>,
}

/// One image of an archive, before loading.
#[derive(Debug)]
struct Plan {
    /// The manifest's bytes (kept as they are) and media type.
    manifest: Vec<u8>,
    manifest_media_type: String,
    manifest_digest: Digest,
    config: Descriptor,
    config_entry: String,
    layers: Vec<(Descriptor, String)>,
    names: Vec<Reference>,
}

/// An entry of docker's `manifest.json`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

/// `io.containerd.image.name`: the full name Docker and containerd write.
const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// `org.opencontainers.image.ref.name`: a tag, or (skopeo) a whole name.
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

impl Store {
    /// Load every image of a docker-archive or oci-archive (detected; the
    /// archive may be compressed).
    pub fn load(&self, source: &Source) -> Result<LoadReport, Error> {
        let lease = self.lease()?;
        let input = source.describe();
        let (file, _spool) = self.open_archive(source)?;
        let tar = IndexedTar::new(file, &input)?;
        let plans = if tar.has("index.json") && tar.has("oci-layout") {
            oci_plans(&tar)?
        } else if tar.has("manifest.json") {
            docker_plans(&tar)?
        } else {
            return Err(tar
                .invalid("it has neither manifest.json (docker-archive) nor index.json and oci-layout (oci-archive)")
                .into());
        };
        if plans.is_empty() {
            return Err(tar.invalid("it contains no image").into());
        }
        let mut report = LoadReport::default();
        for plan in plans {
            let record = self.load_plan(&lease, &tar, &plan)?;
            self.add_image(&record, &plan.names)?;
            report.images.push(LoadedImage {
                record,
                names: plan.names,
            });
        }
        Ok(report)
    }

    /// The archive as a seekable, uncompressed file: the file itself, or a
    /// decompressed copy in `ingest/` (removed when the guard drops).
    fn open_archive(&self, source: &Source) -> Result<(File, Option<Spool>), Error> {
        let input = source.describe();
        let io_err = |action| {
            let input = input.clone();
            move |source| ArchiveError::Io {
                action,
                input,
                source,
            }
        };
        let reader: Box<dyn Read> = match source {
            Source::Path(p) => {
                let mut f = File::open(p).map_err(io_err("open"))?;
                let mut head = [0u8; 6];
                let n = read_head(&mut f, &mut head).map_err(io_err("read"))?;
                f.seek(SeekFrom::Start(0)).map_err(io_err("read"))?;
                if detect(&head[..n]) == Compression::None && !is_xz(&head[..n]) {
                    return Ok((f, None));
                }
                Box::new(f)
            }
            Source::Stdin => Box::new(io::stdin().lock()),
        };
        let (mut tmp, path) =
            kiln_fs::atomic::create_temp(&self.root().join("ingest")).map_err(io_err("spool"))?;
        let spool = Spool(path);
        let mut r = decompressed(BufReader::new(reader)).map_err(io_err("decompress"))?;
        io::copy(&mut r, &mut tmp).map_err(io_err("read"))?;
        tmp.flush().map_err(io_err("spool"))?;
        Ok((tmp, Some(spool)))
    }

    fn load_plan(
        &self,
        lease: &crate::lease::Lease<'_>,
        tar: &IndexedTar,
        plan: &Plan,
    ) -> Result<ImageRecord, Error> {
        lease.protect([&plan.manifest_digest, &plan.config.digest], [])?;
        let config_bytes = tar.read(&plan.config_entry)?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| tar.invalid(format!("image config {}: {e}", plan.config.digest)))?;
        if config.rootfs.diff_ids.len() != plan.layers.len() {
            return Err(tar
                .invalid(format!(
                    "image {} has {} layers but its config lists {} DiffIDs",
                    plan.manifest_digest,
                    plan.layers.len(),
                    config.rootfs.diff_ids.len()
                ))
                .into());
        }
        if !self.content().contains(&plan.config.digest) {
            self.content().put(
                &config_bytes,
                Some((plan.config.digest.clone(), plan.config.size)),
            )?;
        }
        let mut layers = Vec::with_capacity(plan.layers.len());
        let mut parent: Option<Digest> = None;
        for ((blob, entry), diff_id) in plan.layers.iter().zip(&config.rootfs.diff_ids) {
            let (reader, size) = tar.open(entry)?;
            if size != blob.size {
                return Err(tar
                    .invalid(format!(
                        "layer {} is {size} bytes in the archive, {} in its manifest",
                        blob.digest, blob.size
                    ))
                    .into());
            }
            let rec = self.ingest_layer_blob(
                lease,
                reader,
                blob,
                diff_id,
                parent.as_ref(),
                &ApplyOptions::default(),
            )?;
            parent = Some(rec.chain_id.clone());
            layers.push(rec);
        }
        if !self.content().contains(&plan.manifest_digest) {
            self.content().put(
                &plan.manifest,
                Some((plan.manifest_digest.clone(), plan.manifest.len() as u64)),
            )?;
        }
        let platform = Platform {
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: config.variant.clone().unwrap_or_default(),
        };
        Ok(ImageRecord {
            manifest: Descriptor::new(
                &plan.manifest_media_type,
                plan.manifest_digest.clone(),
                plan.manifest.len() as u64,
            ),
            config: plan.config.clone(),
            layers,
            created: config.created.clone(),
            platform: platform.to_string(),
            added: now(),
            repo_digests: Default::default(),
        })
    }
}

/// A spooled archive in `ingest/`, removed on drop.
#[derive(Debug)]
struct Spool(std::path::PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn read_head(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn blob_entry(d: &Digest) -> String {
    format!("blobs/{}/{}", d.algorithm().name(), d.hex())
}

/// A blob of the layout, verified against its descriptor.
fn read_blob(tar: &IndexedTar, desc: &Descriptor) -> Result<Vec<u8>, Error> {
    let bytes = tar.read(&blob_entry(&desc.digest))?;
    let actual = sha256(&bytes);
    if actual != desc.digest || bytes.len() as u64 != desc.size {
        return Err(tar
            .invalid(format!(
                "blob {} has digest {actual} and {} bytes, expected {} bytes",
                desc.digest,
                bytes.len(),
                desc.size
            ))
            .into());
    }
    Ok(bytes)
}

fn sha256(bytes: &[u8]) -> Digest {
    use sha2::Digest as _;
    Digest::sha256_from_bytes(sha2::Sha256::digest(bytes).into())
}

fn oci_plans(tar: &IndexedTar) -> Result<Vec<Plan>, Error> {
    let index: ImageIndex = serde_json::from_slice(&tar.read("index.json")?)
        .map_err(|e| tar.invalid(format!("index.json: {e}")))?;
    let mut plans = Vec::new();
    for desc in &index.manifests {
        let names = names_from_annotations(desc);
        let chosen = match desc.media_type.as_str() {
            mt::OCI_INDEX | mt::DOCKER_MANIFEST_LIST => {
                let bytes = read_blob(tar, desc)?;
                let doc = parse_manifest(&desc.media_type, bytes)
                    .map_err(|e| tar.invalid(format!("index {}: {e}", desc.digest)))?;
                let Manifest::Index(inner) = doc.value else {
                    return Err(tar
                        .invalid(format!("{} is not an index", desc.digest))
                        .into());
                };
                pick_platform(&inner.manifests)
                    .ok_or_else(|| {
                        tar.invalid(format!(
                            "index {} has no manifest for {}",
                            desc.digest,
                            Platform::host()
                        ))
                    })?
                    .clone()
            }
            _ => desc.clone(),
        };
        let bytes = read_blob(tar, &chosen)?;
        let doc = parse_manifest(&chosen.media_type, bytes)
            .map_err(|e| tar.invalid(format!("manifest {}: {e}", chosen.digest)))?;
        let Manifest::Image(m) = doc.value else {
            return Err(tar
                .invalid(format!("{} is not an image manifest", chosen.digest))
                .into());
        };
        plans.push(plan_from_manifest(
            doc.bytes,
            doc.media_type,
            chosen.digest,
            &m,
            names,
        ));
    }
    Ok(plans)
}

fn plan_from_manifest(
    bytes: Vec<u8>,
    media_type: String,
    digest: Digest,
    m: &ImageManifest,
    names: Vec<Reference>,
) -> Plan {
    Plan {
        manifest: bytes,
        manifest_media_type: media_type,
        manifest_digest: digest,
        config_entry: blob_entry(&m.config.digest),
        config: m.config.clone(),
        layers: m
            .layers
            .iter()
            .map(|l| (l.clone(), blob_entry(&l.digest)))
            .collect(),
        names,
    }
}

/// The host's manifest in an index (or the only one).
fn pick_platform(manifests: &[Descriptor]) -> Option<&Descriptor> {
    let host = Platform::host();
    manifests
        .iter()
        .find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == host.os
                    && p.architecture == host.architecture
                    && p.variant.as_deref().unwrap_or("") == host.variant
            })
        })
        .or_else(|| (manifests.len() == 1).then(|| &manifests[0]))
}

fn names_from_annotations(desc: &Descriptor) -> Vec<Reference> {
    if let Some(n) = desc.annotations.get(ANNOTATION_IMAGE_NAME) {
        if let Ok(r) = Reference::parse(n) {
            return vec![r.with_default_tag()];
        }
    }
    // A bare tag names no repository; skopeo writes a whole name here.
    match desc.annotations.get(ANNOTATION_REF_NAME) {
        Some(n) if n.contains([':', '/']) => Reference::parse(n)
            .map(|r| vec![r.with_default_tag()])
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn docker_plans(tar: &IndexedTar) -> Result<Vec<Plan>, Error> {
    let entries: Vec<DockerEntry> = serde_json::from_slice(&tar.read("manifest.json")?)
        .map_err(|e| tar.invalid(format!("manifest.json: {e}")))?;
    let mut plans = Vec::new();
    for e in entries {
        let config_bytes = tar.read(&e.config)?;
        let config_digest = sha256(&config_bytes);
        // A config named by its digest (`<hex>.json`, `blobs/sha256/<hex>`)
        // must have that digest.
        let stem = e.config.rsplit('/').next().unwrap_or("");
        let stem = stem.strip_suffix(".json").unwrap_or(stem);
        if stem.len() == 64
            && stem.bytes().all(|b| b.is_ascii_hexdigit())
            && stem != config_digest.hex()
        {
            return Err(tar
                .invalid(format!("{} has digest {config_digest}", e.config))
                .into());
        }
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|err| tar.invalid(format!("{}: {err}", e.config)))?;
        if config.rootfs.diff_ids.len() != e.layers.len() {
            return Err(tar
                .invalid(format!(
                    "{} lists {} layers but its config has {} DiffIDs",
                    e.config,
                    e.layers.len(),
                    config.rootfs.diff_ids.len()
                ))
                .into());
        }
        let mut layers = Vec::new();
        for (path, diff_id) in e.layers.iter().zip(&config.rootfs.diff_ids) {
            layers.push((layer_descriptor(tar, path, diff_id)?, path.clone()));
        }
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(mt::OCI_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(mt::OCI_CONFIG, config_digest, config_bytes.len() as u64),
            layers: layers.iter().map(|(d, _)| d.clone()).collect(),
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        };
        let bytes = serde_json::to_vec(&manifest)
            .map_err(|err| tar.invalid(format!("cannot write its manifest: {err}")))?;
        let digest = sha256(&bytes);
        let mut names = Vec::new();
        for t in e.repo_tags.unwrap_or_default() {
            let r = Reference::parse(&t)
                .map_err(|err| tar.invalid(format!("RepoTags entry {t:?}: {err}")))?;
            names.push(r.with_default_tag());
        }
        let mut plan = plan_from_manifest(bytes, mt::OCI_MANIFEST.into(), digest, &manifest, names);
        // Entries are where manifest.json says, not where a layout would
        // put them.
        plan.config_entry = e.config.clone();
        plan.layers = layers;
        plans.push(plan);
    }
    Ok(plans)
}

/// The descriptor of a docker-archive layer: its digest is in its name
/// (`blobs/sha256/<hex>`), or is its DiffID when it is not compressed, or
/// is computed.
fn layer_descriptor(tar: &IndexedTar, path: &str, diff_id: &Digest) -> Result<Descriptor, Error> {
    let (mut r, size) = tar.open(path)?;
    let head = {
        let mut b = BufReader::new(&mut r);
        b.fill_buf()
            .map_err(|source| ArchiveError::Io {
                action: "read",
                input: tar.input().to_string(),
                source,
            })?
            .get(..6)
            .map(<[u8]>::to_vec)
            .unwrap_or_default()
    };
    let compression = detect(&head);
    let media_type = match compression {
        Compression::Gzip => mt::OCI_LAYER_GZIP,
        Compression::Zstd => mt::OCI_LAYER_ZSTD,
        Compression::None => mt::OCI_LAYER,
    };
    let named = path
        .strip_prefix("blobs/sha256/")
        .and_then(|h| format!("sha256:{h}").parse::<Digest>().ok());
    let digest = match (named, compression) {
        (Some(d), _) => d,
        (None, Compression::None) => diff_id.clone(),
        (None, _) => {
            let (mut r, _) = tar.open(path)?;
            let mut w = kiln_fs::hash::HashingWriter::new(io::sink());
            io::copy(&mut r, &mut w).map_err(|source| ArchiveError::Io {
                action: "read",
                input: tar.input().to_string(),
                source,
            })?;
            w.finish().0
        }
    };
    Ok(Descriptor::new(media_type, digest, size))
}
