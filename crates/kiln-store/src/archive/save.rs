//! `save`: images from the store into a docker-archive or oci-archive.
//!
//! docker-archive is the `manifest.json` format every version of `docker
//! load` and `skopeo` reads: the config as `<hex>.json`, each layer
//! uncompressed as `<diffid-hex>/layer.tar` (so a layer's digest in the
//! archive is its DiffID). oci-archive is an OCI image layout with the
//! blobs exactly as stored, so manifest digests do not change; `index.json`
//! names each image with `io.containerd.image.name` (the full name) and
//! `org.opencontainers.image.ref.name` (the tag), as Docker writes them.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use kiln_fs::compress::decompressed;
use kiln_oci::media_types as mt;
use kiln_oci::{Descriptor, Digest, ImageIndex, Reference};
use serde::Serialize;

use super::ArchiveError;
use crate::{Error, Image, Store};

/// The archive format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// Docker's `manifest.json` format.
    DockerArchive,
    /// An OCI image layout.
    OciArchive,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn out_err(source: io::Error) -> Error {
    ArchiveError::Io {
        action: "write",
        input: "the archive".into(),
        source,
    }
    .into()
}

impl Store {
    /// Write `images` (each with the names to record for it) to `out`.
    pub fn save<W: Write>(
        &self,
        images: &[(Image, Vec<Reference>)],
        format: SaveFormat,
        out: W,
    ) -> Result<W, Error> {
        let mut b = tar::Builder::new(out);
        b.mode(tar::HeaderMode::Deterministic);
        match format {
            SaveFormat::DockerArchive => self.save_docker(images, &mut b)?,
            SaveFormat::OciArchive => self.save_oci(images, &mut b)?,
        }
        b.into_inner().map_err(out_err)
    }

    fn save_docker<W: Write>(
        &self,
        images: &[(Image, Vec<Reference>)],
        b: &mut tar::Builder<W>,
    ) -> Result<(), Error> {
        let mut written = BTreeSet::new();
        let mut manifest = Vec::new();
        for (image, names) in images {
            let r = &image.record;
            let config_name = format!("{}.json", r.config.digest.hex());
            if written.insert(config_name.clone()) {
                let bytes = self.content().read(&r.config.digest)?;
                append_bytes(b, &config_name, &bytes)?;
            }
            let mut layers = Vec::new();
            for l in &r.layers {
                let dir = l.diff_id.hex().to_string();
                let name = format!("{dir}/layer.tar");
                if written.insert(name.clone()) {
                    append_dir(b, &dir)?;
                    let blob = self.content().open_blob(&l.blob.digest)?;
                    let tar_size = match l.tar_size {
                        0 => self.tar_size(&l.blob.digest)?,
                        n => n,
                    };
                    let r = decompressed(blob).map_err(out_err)?;
                    append_reader(b, &name, tar_size, r, &l.diff_id)?;
                }
                layers.push(name);
            }
            let tags: Vec<String> = names.iter().map(Reference::familiar).collect();
            manifest.push(DockerEntry {
                config: config_name,
                repo_tags: (!tags.is_empty()).then_some(tags),
                layers,
            });
        }
        let json = serde_json::to_vec(&manifest).map_err(|e| out_err(io::Error::other(e)))?;
        append_bytes(b, "manifest.json", &json)?;
        // The legacy `repositories` file: older `docker load` reads tags
        // from it; the value is the top layer's v1 id, which kiln does not
        // have, so only `manifest.json` carries names.
        Ok(())
    }

    fn save_oci<W: Write>(
        &self,
        images: &[(Image, Vec<Reference>)],
        b: &mut tar::Builder<W>,
    ) -> Result<(), Error> {
        append_bytes(b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        append_dir(b, "blobs")?;
        append_dir(b, "blobs/sha256")?;
        let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
        let mut index = ImageIndex {
            schema_version: 2,
            media_type: Some(mt::OCI_INDEX.into()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: Default::default(),
            extra: Default::default(),
        };
        for (image, names) in images {
            let r = &image.record;
            for d in r.blobs() {
                blobs.entry(d.clone()).or_insert(0);
            }
            let desc = |name: Option<&Reference>| {
                let mut d = Descriptor::new(
                    &r.manifest.media_type,
                    r.manifest.digest.clone(),
                    r.manifest.size,
                );
                if let Some(n) = name {
                    d.annotations
                        .insert("io.containerd.image.name".into(), n.to_string());
                    if let Some(t) = n.tag() {
                        d.annotations
                            .insert("org.opencontainers.image.ref.name".into(), t.into());
                    }
                }
                d
            };
            if names.is_empty() {
                index.manifests.push(desc(None));
            }
            for n in names {
                index.manifests.push(desc(Some(n)));
            }
        }
        for d in blobs.keys() {
            let f = self.content().open_blob(d)?;
            let size = f.metadata().map_err(out_err)?.len();
            append_reader(b, &format!("blobs/sha256/{}", d.hex()), size, f, d)?;
        }
        let json = serde_json::to_vec(&index).map_err(|e| out_err(io::Error::other(e)))?;
        append_bytes(b, "index.json", &json)?;
        Ok(())
    }

    /// The uncompressed size of a layer blob (for layers recorded before
    /// kiln kept it), by decompressing it.
    fn tar_size(&self, d: &Digest) -> Result<u64, Error> {
        let f = self.content().open_blob(d)?;
        let mut r = decompressed(f).map_err(out_err)?;
        io::copy(&mut r, &mut io::sink()).map_err(out_err)
    }
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append_dir<W: Write>(b: &mut tar::Builder<W>, name: &str) -> Result<(), Error> {
    let mut h = header(tar::EntryType::Directory, 0, 0o755);
    b.append_data(&mut h, format!("{name}/"), io::empty())
        .map_err(out_err)
}

fn append_bytes<W: Write>(b: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let mut h = header(tar::EntryType::Regular, bytes.len() as u64, 0o644);
    b.append_data(&mut h, name, bytes).map_err(out_err)
}

/// Append exactly `size` bytes of `r`; a blob that turns out shorter or
/// longer than the store says is an error naming it (the archive is then
/// incomplete, and the caller discards it).
fn append_reader<W: Write, R: Read>(
    b: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    r: R,
    what: &Digest,
) -> Result<(), Error> {
    let mut h = header(tar::EntryType::Regular, size, 0o644);
    let mut counted = Counted { inner: r, n: 0 };
    b.append_data(&mut h, name, (&mut counted).take(size))
        .map_err(out_err)?;
    let mut extra = [0u8; 1];
    let more = counted.inner.read(&mut extra).map_err(out_err)?;
    if counted.n != size || more != 0 {
        return Err(out_err(io::Error::other(format!(
            "content of {what} in the store changed size while it was being saved"
        ))));
    }
    Ok(())
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}
