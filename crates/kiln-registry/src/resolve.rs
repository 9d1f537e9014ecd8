//! From a reference to one image manifest: the endpoints in order
//! (mirrors, then the registry), the tag or digest on each until one
//! answers, and the platform's manifest when that is an index.
//!
//! A mirror that fails for any reason (down, missing the image, serving a
//! bad document) is skipped with a debug log, as Podman does; the error of
//! the last endpoint is the one reported. The platform is matched on OS,
//! architecture and variant after normalisation (`linux/arm64/v8` is
//! `linux/arm64`); with no variant asked, any variant of the architecture
//! is taken, the first one listed.

use kiln_oci::manifest::{ImageIndex, ImageManifest, Manifest};
use kiln_oci::{Descriptor, Platform, Reference};

use crate::client::{Client, Error};
use crate::repository::{PulledManifest, Repository};

/// An image manifest found for a reference.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The repository it came from (a mirror or the registry).
    pub repository: Repository,
    /// What the tag or digest named (an index or the manifest itself): its
    /// digest is the one Docker shows as `Digest:`.
    pub top: PulledManifest,
    /// The image manifest (same as `top` when that is not an index).
    pub image: PulledManifest,
}

impl Resolved {
    /// The image manifest, parsed.
    pub fn manifest(&self) -> &ImageManifest {
        match &self.image.manifest {
            Manifest::Image(m) => m,
            Manifest::Index(_) => unreachable!("Resolved::image is always an image manifest"),
        }
    }
}

/// The descriptor for `platform` in an index.
pub fn select_platform<'a>(index: &'a ImageIndex, platform: &Platform) -> Option<&'a Descriptor> {
    let matches = |d: &&Descriptor, exact_variant: bool| {
        let Some(p) = &d.platform else { return false };
        let text = match &p.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os, p.architecture),
            _ => format!("{}/{}", p.os, p.architecture),
        };
        let Ok(have) = text.parse::<Platform>() else {
            return false;
        };
        have.os == platform.os
            && have.architecture == platform.architecture
            && (!exact_variant || have.variant == platform.variant)
    };
    index
        .manifests
        .iter()
        .find(|d| matches(d, true))
        .or_else(|| {
            if platform.variant.is_empty() {
                index.manifests.iter().find(|d| matches(d, false))
            } else {
                None
            }
        })
}

fn platforms_of(index: &ImageIndex) -> String {
    let mut v: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|d| d.platform.as_ref())
        .map(|p| match &p.variant {
            Some(x) if !x.is_empty() => format!("{}/{}/{x}", p.os, p.architecture),
            _ => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    v.sort();
    v.dedup();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

impl Client {
    /// Find the image manifest of `reference` (with a tag or digest) for
    /// `platform`, trying the endpoints in order.
    pub async fn resolve(
        &self,
        reference: &Reference,
        platform: &Platform,
    ) -> Result<Resolved, Error> {
        let endpoints = self.conf().endpoints(reference)?;
        let mut last = None;
        let n = endpoints.len();
        for (i, ep) in endpoints.into_iter().enumerate() {
            let repo = self.repository(ep, false);
            match resolve_in(&repo, reference, platform).await {
                Ok(r) => return Ok(r),
                Err(e) if i + 1 < n => {
                    tracing::debug!(endpoint = repo.name(), error = %e, "mirror failed; trying the next endpoint");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NotFound {
            what: reference.to_string(),
            registry: reference.domain().to_string(),
        }))
    }

    /// Every tag of `reference`'s repository (`pull -a`), from the first
    /// endpoint that answers.
    pub async fn tags(&self, reference: &Reference) -> Result<Vec<String>, Error> {
        let endpoints = self.conf().endpoints(reference)?;
        let n = endpoints.len();
        let mut last = None;
        for (i, ep) in endpoints.into_iter().enumerate() {
            let repo = self.repository(ep, false);
            match repo.tags().await {
                Ok(t) => return Ok(t),
                Err(e) if i + 1 < n => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::NotFound {
            what: reference.repository(),
            registry: reference.domain().to_string(),
        }))
    }
}

async fn resolve_in(
    repo: &Repository,
    reference: &Reference,
    platform: &Platform,
) -> Result<Resolved, Error> {
    let name = match (reference.digest(), reference.tag()) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.to_string(),
        (None, None) => "latest".to_string(),
    };
    let top = repo.manifest(&name).await?;
    let image = match &top.manifest {
        Manifest::Image(_) => top.clone(),
        Manifest::Index(index) => {
            let desc = select_platform(index, platform).ok_or_else(|| Error::Manifest {
                reference: reference.to_string(),
                message: format!(
                    "no manifest for platform {platform} in the index (it has: {})",
                    platforms_of(index)
                ),
            })?;
            let m = repo.manifest(&desc.digest.to_string()).await?;
            if !matches!(m.manifest, Manifest::Image(_)) {
                return Err(Error::Manifest {
                    reference: reference.to_string(),
                    message: format!("{} in the index is not an image manifest", desc.digest),
                });
            }
            if m.bytes.len() as u64 != desc.size {
                return Err(Error::Size {
                    what: format!("manifest {}", desc.digest),
                    expected: desc.size,
                    actual: m.bytes.len() as u64,
                });
            }
            m
        }
    };
    Ok(Resolved {
        repository: repo.clone(),
        top,
        image,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(platforms: &[&str]) -> ImageIndex {
        let manifests: Vec<serde_json::Value> = platforms
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let parts: Vec<&str> = p.split('/').collect();
                let mut plat = serde_json::json!({"os": parts[0], "architecture": parts[1]});
                if let Some(v) = parts.get(2) {
                    plat["variant"] = serde_json::json!(v);
                }
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": format!("sha256:{:064x}", i),
                    "size": 1,
                    "platform": plat,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({"schemaVersion": 2, "manifests": manifests}))
            .unwrap()
    }

    fn pick(platforms: &[&str], want: &str) -> Option<String> {
        let i = index(platforms);
        select_platform(&i, &want.parse().unwrap()).map(|d| d.digest.to_string())
    }

    #[test]
    fn platform_choice() {
        let d = |i: u32| Some(format!("sha256:{i:064x}"));
        let all = [
            "linux/arm/v7",
            "linux/arm64/v8",
            "linux/amd64",
            "windows/amd64",
        ];
        assert_eq!(pick(&all, "linux/amd64"), d(2));
        assert_eq!(pick(&all, "linux/arm64"), d(1));
        assert_eq!(pick(&all, "linux/arm/v7"), d(0));
        assert_eq!(pick(&all, "windows/amd64"), d(3));
        assert_eq!(pick(&all, "linux/arm/v6"), None);
        assert_eq!(pick(&all, "linux/s390x"), None);
        assert_eq!(pick(&["linux/amd64/v3"], "linux/amd64"), d(0));
        assert_eq!(
            platforms_of(&index(&all)),
            "linux/amd64, linux/arm/v7, linux/arm64/v8, windows/amd64"
        );
    }
}
