//! What the metadata database records about images and snapshots.

use std::collections::BTreeSet;

use kiln_oci::{Descriptor, Digest};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// An image: a manifest in the store, its config and its layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The manifest blob (its digest is the image's key).
    pub manifest: Descriptor,
    /// The config blob; its digest is the image ID Docker shows.
    pub config: Descriptor,
    /// The layers, bottom first.
    pub layers: Vec<LayerRecord>,
    /// The config's `created`, as written there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `os/arch[/variant]` from the config.
    pub platform: String,
    /// When it entered this store (seconds since the epoch).
    pub added: u64,
    /// `repository@digest` names it is known by in registries.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub repo_digests: BTreeSet<String>,
}

impl ImageRecord {
    /// The image ID (the config digest).
    pub fn id(&self) -> &Digest {
        &self.config.digest
    }

    /// Bytes the image's files take unpacked (sum of its layers').
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.unpacked_size).sum()
    }

    /// Every blob it references: manifest, config, layers.
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        [&self.manifest.digest, &self.config.digest]
            .into_iter()
            .chain(self.layers.iter().map(|l| &l.blob.digest))
    }

    /// Every snapshot (chain id) it stands on.
    pub fn snapshots(&self) -> impl Iterator<Item = &Digest> {
        self.layers.iter().map(|l| &l.chain_id)
    }
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The blob as stored (compressed or not).
    pub blob: Descriptor,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// The snapshot holding this layer on top of those below it.
    pub chain_id: Digest,
    /// Bytes of file content the layer unpacks to.
    pub unpacked_size: u64,
    /// Bytes of the uncompressed tar.
    #[serde(default)]
    pub tar_size: u64,
}

/// An extracted layer under `snapshots/<chain-id>/fs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// The layer's DiffID.
    pub diff_id: Digest,
    /// The snapshot below, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Digest>,
    /// Bytes of file content.
    pub size: u64,
    /// Entries applied.
    pub entries: u64,
    /// Bytes of the layer's uncompressed tar.
    #[serde(default)]
    pub tar_size: u64,
}

/// The chain id of a layer: its DiffID alone at the bottom, else
/// `sha256(parent_chain_id + " " + diff_id)` (OCI image spec, config.md).
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => {
            let h = Sha256::digest(format!("{p} {diff_id}").as_bytes());
            Digest::sha256_from_bytes(h.into())
        }
    }
}

/// Chain ids of a stack of DiffIDs, bottom first.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let id = chain_id(out.last(), d);
        out.push(id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let b: Digest = format!("sha256:{}", "b".repeat(64)).parse().unwrap();
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        let expected = Sha256::digest(format!("{a} {b}").as_bytes());
        assert_eq!(ids[1], Digest::sha256_from_bytes(expected.into()));
    }
}
