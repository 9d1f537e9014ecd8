//! Every kind of document kiln writes validates against the OCI image-spec
//! JSON schemas in `../shared/conformance/image-spec/`, and documents as
//! Docker and registries write them parse and keep their bytes.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use jsonschema::{Retrieve, Uri};
use kiln_oci::config::{ContainerConfig, Empty, HealthConfig, History, RootFs};
use kiln_oci::descriptor::PlatformSpec;
use kiln_oci::json::to_canonical_json;
use kiln_oci::manifest::{parse_manifest, ManifestError};
use kiln_oci::media_types as mt;
use kiln_oci::{Descriptor, Digest, ImageConfig, ImageIndex, ImageManifest, Manifest};
use serde_json::Value;

fn schema_dir() -> PathBuf {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/image-spec");
    assert!(p.is_dir(), "image-spec schemas missing at {}", p.display());
    p
}

/// The schemas refer to each other by file name relative to their ids.
struct Files;

impl Retrieve for Files {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .split('#')
            .next()
            .unwrap_or("");
        let text = std::fs::read_to_string(schema_dir().join(name))?;
        Ok(serde_json::from_str(&text)?)
    }
}

fn validate(schema_file: &str, doc: &[u8]) {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_dir().join(schema_file)).unwrap())
            .unwrap();
    let validator = jsonschema::options()
        .with_retriever(Files)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{schema_file}: {e}"));
    let instance: Value = serde_json::from_slice(doc).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{schema_file}: {errors:?}\n{}",
        String::from_utf8_lossy(doc)
    );
}

fn digest(byte: u8) -> Digest {
    Digest::sha256_from_bytes([byte; 32])
}

fn config() -> ImageConfig {
    ImageConfig {
        created: Some("2026-11-23T07:00:00Z".into()),
        architecture: "amd64".into(),
        os: "linux".into(),
        config: Some(ContainerConfig {
            user: Some("1000:0".into()),
            exposed_ports: BTreeMap::from([("8000/tcp".into(), Empty {})]),
            env: vec!["PATH=/usr/local/bin:/usr/bin:/bin".into()],
            entrypoint: Some(vec!["/usr/bin/tini".into(), "--".into()]),
            cmd: Some(vec!["gunicorn".into(), "app:application".into()]),
            volumes: BTreeMap::from([("/data".into(), Empty {})]),
            working_dir: Some("/srv/app".into()),
            labels: BTreeMap::from([("org.opencontainers.image.title".into(), "app".into())]),
            stop_signal: Some("SIGTERM".into()),
            args_escaped: Some(true),
            healthcheck: Some(HealthConfig {
                test: vec!["CMD-SHELL".into(), "curl -f http://localhost:8000/".into()],
                interval: 30_000_000_000,
                retries: 3,
                ..HealthConfig::default()
            }),
            on_build: vec!["RUN echo child".into()],
            shell: vec!["/bin/sh".into(), "-c".into()],
            ..ContainerConfig::default()
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![digest(1), digest(2)],
        },
        history: vec![
            History {
                created_by: Some("RUN make".into()),
                ..History::default()
            },
            History {
                created_by: Some("ENV A=1".into()),
                empty_layer: true,
                ..History::default()
            },
        ],
        ..ImageConfig::default()
    }
}

fn manifest() -> ImageManifest {
    ImageManifest {
        schema_version: 2,
        media_type: Some(mt::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(mt::OCI_CONFIG, digest(3), 1234),
        layers: vec![
            Descriptor::new(mt::OCI_LAYER_GZIP, digest(4), 5678),
            Descriptor::new(mt::OCI_LAYER_ZSTD, digest(5), 910),
        ],
        subject: None,
        annotations: BTreeMap::from([("org.opencontainers.image.created".into(), "now".into())]),
        extra: BTreeMap::new(),
    }
}

#[test]
fn config_validates() {
    validate("config-schema.json", &to_canonical_json(&config()).unwrap());
}

#[test]
fn manifest_validates() {
    validate(
        "image-manifest-schema.json",
        &to_canonical_json(&manifest()).unwrap(),
    );
}

#[test]
fn index_and_layout_validate() {
    let mut d = Descriptor::new(mt::OCI_MANIFEST, digest(6), 42);
    d.platform = Some(PlatformSpec {
        architecture: "arm64".into(),
        os: "linux".into(),
        os_version: None,
        os_features: Vec::new(),
        variant: Some("v8".into()),
        extra: BTreeMap::new(),
    });
    d.annotations
        .insert("org.opencontainers.image.ref.name".into(), "latest".into());
    let index = ImageIndex {
        schema_version: 2,
        media_type: Some(mt::OCI_INDEX.into()),
        artifact_type: None,
        manifests: vec![d],
        subject: None,
        annotations: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    let bytes = to_canonical_json(&index).unwrap();
    validate("image-index-schema.json", &bytes);
    validate(
        "image-layout-schema.json",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    );
}

#[test]
fn the_schema_check_can_fail() {
    // A manifest without layers must not validate: the test above is not vacuous.
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(schema_dir().join("image-manifest-schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::options()
        .with_retriever(Files)
        .build(&schema)
        .unwrap();
    let mut bad = serde_json::to_value(manifest()).unwrap();
    bad.as_object_mut().unwrap().remove("layers");
    assert!(!validator.is_valid(&bad));
    bad["layers"] = serde_json::json!([{"mediaType": "x", "digest": "nope", "size": 1}]);
    assert!(!validator.is_valid(&bad));
}

#[test]
fn docker_documents_round_trip_with_their_bytes() {
    // As Docker writes them: key order and spacing of its own.
    let docker = format!(
        r#"{{
   "schemaVersion": 2,
   "mediaType": "{}",
   "config": {{"mediaType": "{}", "size": 7023, "digest": "{}"}},
   "layers": [{{"mediaType": "{}", "size": 32654, "digest": "{}"}}],
   "x-unknown": {{"kept": true}}
}}"#,
        mt::DOCKER_MANIFEST,
        mt::DOCKER_CONFIG,
        digest(7),
        mt::DOCKER_LAYER_GZIP,
        digest(8)
    );
    let raw = parse_manifest(mt::DOCKER_MANIFEST, docker.clone().into_bytes()).unwrap();
    assert_eq!(raw.bytes, docker.as_bytes());
    let Manifest::Image(m) = &raw.value else {
        panic!("not an image manifest")
    };
    assert_eq!(m.layers[0].size, 32654);
    assert_eq!(m.extra["x-unknown"]["kept"], true);
    // Detected from the body when no media type is given.
    assert!(matches!(
        parse_manifest("", docker.into_bytes()).unwrap().value,
        Manifest::Image(_)
    ));

    let config = r#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Cmd":null,"Image":"sha256:abc","Healthcheck":{"Test":["NONE"]}},"container_config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[]},"docker_version":"28.2.2"}"#;
    let c: ImageConfig = serde_json::from_str(config).unwrap();
    let cc = c.config.as_ref().unwrap();
    assert_eq!(cc.cmd, None);
    assert_eq!(cc.extra["Image"], "sha256:abc");
    assert_eq!(cc.healthcheck.as_ref().unwrap().test, vec!["NONE"]);
    assert!(c.extra.contains_key("container_config"));
    assert!(c.extra.contains_key("docker_version"));
}

#[test]
fn bad_manifests_get_clear_errors() {
    let schema1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#.to_vec();
    let e = parse_manifest("", schema1).unwrap_err();
    assert!(matches!(e, ManifestError::Schema1 { .. }), "{e}");
    assert!(e.to_string().contains("schema 1"));
    let e = parse_manifest(mt::OCI_MANIFEST, b"{not json".to_vec()).unwrap_err();
    assert!(e.to_string().starts_with("invalid manifest"), "{e}");
    let bad_digest = format!(
        r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","size":1,"digest":"sha256:../../x"}},"layers":[]}}"#,
        mt::OCI_CONFIG
    );
    let e = parse_manifest(mt::OCI_MANIFEST, bad_digest.into_bytes()).unwrap_err();
    assert!(e.to_string().contains("invalid digest"), "{e}");
    let e = parse_manifest("text/html", b"<html>".to_vec()).unwrap_err();
    assert!(matches!(e, ManifestError::UnsupportedMediaType { .. }));
    let mismatch = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[]}}"#,
        mt::DOCKER_MANIFEST_LIST
    );
    let e = parse_manifest(mt::OCI_INDEX, mismatch.into_bytes()).unwrap_err();
    assert!(matches!(e, ManifestError::MediaTypeMismatch { .. }), "{e}");
    let v3 = r#"{"schemaVersion":3,"manifests":[]}"#.to_string();
    let e = parse_manifest(mt::OCI_INDEX, v3.into_bytes()).unwrap_err();
    assert!(matches!(e, ManifestError::SchemaVersion { version: 3, .. }));
}

#[test]
fn docker_nulls_read_as_empty() {
    let c: kiln_oci::ImageConfig = serde_json::from_str(
        r#"{"architecture":"amd64","os":"linux","config":{"Env":null,"Labels":null,"OnBuild":null,"ExposedPorts":null,"Volumes":null,"Cmd":null},"rootfs":{"type":"layers","diff_ids":[]},"history":null}"#,
    )
    .unwrap();
    let cc = c.config.unwrap();
    assert!(cc.env.is_empty() && cc.labels.is_empty() && cc.on_build.is_empty());
    assert!(cc.cmd.is_none() && c.history.is_empty());
}
