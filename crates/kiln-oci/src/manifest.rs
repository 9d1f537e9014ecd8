//! Manifests and indexes, OCI and Docker schema 2, and parsing a pulled or
//! loaded document while keeping its exact bytes (its digest is the digest
//! of those bytes, so they are never re-serialised).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::descriptor::Descriptor;
use crate::media_types as mt;

/// An image manifest (OCI or Docker schema 2: the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's own media type (required by Docker, optional in OCI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The image config.
    pub config: Descriptor,
    /// The layers, base first.
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields kiln does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// An image index (OCI) or manifest list (Docker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    /// Always 2.
    pub schema_version: u32,
    /// The index's own media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifests.
    pub manifests: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields kiln does not know, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A manifest or an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// One image.
    Image(Box<ImageManifest>),
    /// Several (one per platform).
    Index(Box<ImageIndex>),
}

/// A document parsed from bytes that are kept as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDocument<T> {
    /// The exact bytes (what the digest is of).
    pub bytes: Vec<u8>,
    /// The media type it was parsed as.
    pub media_type: String,
    /// The parsed value.
    pub value: T,
}

/// A manifest that cannot be used.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// Schema 1.
    #[error("manifest media type {media_type} is Docker schema 1, which kiln does not support: push the image again with a current Docker or registry")]
    Schema1 {
        /// The media type.
        media_type: String,
    },
    /// A media type that is not a manifest or index.
    #[error("unsupported manifest media type `{media_type}`")]
    UnsupportedMediaType {
        /// The media type.
        media_type: String,
    },
    /// Not valid JSON for the type.
    #[error("invalid {what}: {source}")]
    Json {
        /// Manifest or index.
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// `schemaVersion` other than 2.
    #[error("invalid {what}: schemaVersion {version}, expected 2")]
    SchemaVersion {
        /// Manifest or index.
        what: &'static str,
        /// The version found.
        version: u32,
    },
    /// The media type inside disagrees with the one it was served as.
    #[error("{what} declares media type `{inner}` but was received as `{outer}`")]
    MediaTypeMismatch {
        /// Manifest or index.
        what: &'static str,
        /// From the body.
        inner: String,
        /// From the transport (Content-Type, descriptor).
        outer: String,
    },
}

/// Parse a manifest or index served as `media_type` (from a registry's
/// Content-Type or a descriptor; empty to detect from the body).
pub fn parse_manifest(
    media_type: &str,
    bytes: Vec<u8>,
) -> Result<RawDocument<Manifest>, ManifestError> {
    let media_type = if media_type.is_empty() {
        detect_media_type(&bytes)
    } else {
        media_type.to_string()
    };
    let value = match media_type.as_str() {
        mt::DOCKER_SCHEMA1 | mt::DOCKER_SCHEMA1_SIGNED => {
            return Err(ManifestError::Schema1 { media_type });
        }
        mt::OCI_MANIFEST | mt::DOCKER_MANIFEST => {
            let m: ImageManifest =
                serde_json::from_slice(&bytes).map_err(|source| ManifestError::Json {
                    what: "manifest",
                    source,
                })?;
            check(
                "manifest",
                m.schema_version,
                m.media_type.as_deref(),
                &media_type,
            )?;
            Manifest::Image(Box::new(m))
        }
        mt::OCI_INDEX | mt::DOCKER_MANIFEST_LIST => {
            let i: ImageIndex =
                serde_json::from_slice(&bytes).map_err(|source| ManifestError::Json {
                    what: "index",
                    source,
                })?;
            check(
                "index",
                i.schema_version,
                i.media_type.as_deref(),
                &media_type,
            )?;
            Manifest::Index(Box::new(i))
        }
        _ => return Err(ManifestError::UnsupportedMediaType { media_type }),
    };
    Ok(RawDocument {
        bytes,
        media_type,
        value,
    })
}

fn check(
    what: &'static str,
    version: u32,
    inner: Option<&str>,
    outer: &str,
) -> Result<(), ManifestError> {
    if version != 2 {
        return Err(ManifestError::SchemaVersion { what, version });
    }
    if let Some(inner) = inner {
        if inner != outer {
            return Err(ManifestError::MediaTypeMismatch {
                what,
                inner: inner.to_string(),
                outer: outer.to_string(),
            });
        }
    }
    Ok(())
}

/// The media type a manifest body declares, or what its shape says (OCI
/// documents may omit `mediaType`).
fn detect_media_type(bytes: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return String::new();
    };
    if let Some(m) = v.get("mediaType").and_then(Value::as_str) {
        return m.to_string();
    }
    if v.get("schemaVersion").and_then(Value::as_u64) == Some(1) {
        return mt::DOCKER_SCHEMA1.to_string();
    }
    if v.get("manifests").is_some() {
        mt::OCI_INDEX.to_string()
    } else if v.get("config").is_some() {
        mt::OCI_MANIFEST.to_string()
    } else {
        String::new()
    }
}
