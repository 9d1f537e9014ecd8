//! Media types of the OCI image spec and of Docker's schema 2, which kiln
//! reads alike.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer, uncompressed.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI layer, zstd.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker container config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer, gzip.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker layer, uncompressed.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker layer, zstd (containerd's name; Docker 23+ reads it).
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker schema 1 (refused: unsigned, no content addressing of the config).
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker schema 1, signed (refused).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The compression of a layer media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// The compression a layer media type declares, or `None` when it is not a
/// layer type kiln knows.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER | DOCKER_LAYER | "application/vnd.oci.image.layer.nondistributable.v1.tar" => {
            Some(Compression::None)
        }
        OCI_LAYER_GZIP
        | DOCKER_LAYER_GZIP
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Compression::Gzip),
        OCI_LAYER_ZSTD
        | DOCKER_LAYER_ZSTD
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// Which family of media types kiln writes: OCI by default, Docker schema 2
/// on request (for registries and tools that predate OCI).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ManifestFormat {
    /// OCI image manifest, config and layer types.
    #[default]
    Oci,
    /// Docker schema 2.
    Docker,
}

impl ManifestFormat {
    /// The manifest's media type.
    pub fn manifest(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_MANIFEST,
            ManifestFormat::Docker => DOCKER_MANIFEST,
        }
    }

    /// The config's media type.
    pub fn config(self) -> &'static str {
        match self {
            ManifestFormat::Oci => OCI_CONFIG,
            ManifestFormat::Docker => DOCKER_CONFIG,
        }
    }

    /// A layer's media type.
    pub fn layer(self, compression: Compression) -> &'static str {
        match (self, compression) {
            (ManifestFormat::Oci, Compression::None) => OCI_LAYER,
            (ManifestFormat::Oci, Compression::Gzip) => OCI_LAYER_GZIP,
            (ManifestFormat::Oci, Compression::Zstd) => OCI_LAYER_ZSTD,
            (ManifestFormat::Docker, Compression::None) => DOCKER_LAYER,
            (ManifestFormat::Docker, Compression::Gzip) => DOCKER_LAYER_GZIP,
            (ManifestFormat::Docker, Compression::Zstd) => DOCKER_LAYER_ZSTD,
        }
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn layer_types_round_trip() {
        for f in [ManifestFormat::Oci, ManifestFormat::Docker] {
            for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
                assert_eq!(layer_compression(f.layer(c)), Some(c));
            }
        }
    }
}
