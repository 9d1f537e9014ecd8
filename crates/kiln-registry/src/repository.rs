//! One repository on one endpoint: manifests (get, put), blobs (download
//! verified on the fly and resumed with `Range`, existence, cross-repository
//! mount, monolithic and chunked upload) and the tag list.
//!
//! Nothing from the registry is trusted: a manifest fetched by digest must
//! hash to it, a manifest fetched by tag must hash to the digest the
//! registry announces (when it announces one), a document must be either a
//! manifest or an index and not both, a blob must have exactly its
//! descriptor's size and digest — checked as the bytes arrive, before the
//! caller sees the end of the stream.

use std::io::Read;

use bytes::Bytes;
use kiln_oci::manifest::{parse_manifest, Manifest};
use kiln_oci::media_types as mt;
use kiln_oci::{Descriptor, Digest};
use reqwest::header::{HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode, Url};
use sha2::Digest as _;

use crate::auth::{pull_scope, push_scope};
use crate::client::{join, read_limited, status_error, unauthorized, Client, Error, Req};
use crate::config::Endpoint;

/// Manifests larger than this are refused (Distribution's own limit is
/// 4 MiB).
pub const MANIFEST_LIMIT: u64 = 4 << 20;
/// Configs larger than this are refused.
pub const CONFIG_LIMIT: u64 = 64 << 20;

const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.1, \
application/vnd.docker.distribution.manifest.v1+json;q=0.1";

/// A manifest or index as the registry served it.
#[derive(Debug, Clone)]
pub struct PulledManifest {
    /// The digest of `bytes`.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// Parsed.
    pub manifest: Manifest,
}

/// What a mount request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOutcome {
    /// The blob is now in the repository; no bytes moved.
    Mounted,
    /// The registry did not mount; an upload session was opened instead.
    Upload(Url),
}

/// A repository on an endpoint.
#[derive(Debug, Clone)]
pub struct Repository {
    client: Client,
    endpoint: Endpoint,
    push: bool,
}

/// A hash over content as it streams, for any digest algorithm kiln
/// accepts.
#[derive(Clone)]
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn for_digest(d: &Digest) -> Hasher {
        use kiln_oci::digest::Algorithm;
        match d.algorithm() {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    pub(crate) fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha384(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }

    pub(crate) fn finish(self) -> Digest {
        let (alg, bytes): (&str, Vec<u8>) = match self {
            Hasher::Sha256(h) => ("sha256", h.finalize().to_vec()),
            Hasher::Sha384(h) => ("sha384", h.finalize().to_vec()),
            Hasher::Sha512(h) => ("sha512", h.finalize().to_vec()),
        };
        let mut s = format!("{alg}:");
        for b in bytes {
            s.push_str(&format!("{b:02x}"));
        }
        s.parse()
            .expect("a hex string of the algorithm's length is a valid digest")
    }
}

/// The SHA-256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    Digest::sha256_from_bytes(sha2::Sha256::digest(bytes).into())
}

impl Client {
    /// A repository on `endpoint`, for pulling (`push` false) or pushing.
    pub fn repository(&self, endpoint: Endpoint, push: bool) -> Repository {
        Repository {
            client: self.clone(),
            endpoint,
            push,
        }
    }
}

impl Repository {
    /// Where it is.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `host/path`, for messages.
    pub fn name(&self) -> String {
        format!("{}/{}", self.endpoint.host, self.endpoint.path)
    }

    fn scopes(&self, extra_from: Option<&str>) -> Vec<String> {
        let mut s = vec![if self.push {
            push_scope(&self.endpoint.path)
        } else {
            pull_scope(&self.endpoint.path)
        }];
        if let Some(from) = extra_from {
            s.push(pull_scope(from));
        }
        s
    }

    async fn url(&self, rest: &str) -> Result<Url, Error> {
        let base = self
            .client
            .base(&self.endpoint.host, self.endpoint.insecure)
            .await?;
        join(&base, &format!("v2/{}/{rest}", self.endpoint.path))
    }

    async fn send(&self, req: Req, from: Option<&str>) -> Result<reqwest::Response, Error> {
        self.client
            .send(&self.endpoint, req, &self.scopes(from))
            .await
    }

    /// Fetch a manifest or index by tag or digest. Schema 1 is refused; a
    /// document that is both a manifest and an index is refused.
    pub async fn manifest(&self, tag_or_digest: &str) -> Result<PulledManifest, Error> {
        let what = format!("{}:{tag_or_digest}", self.name());
        let url = self.url(&format!("manifests/{tag_or_digest}")).await?;
        let req = Req::new(Method::GET, url.clone()).header(ACCEPT, ACCEPT_MANIFESTS);
        let resp = self.send(req, None).await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => {
                return Err(Error::NotFound {
                    what: format!("manifest {tag_or_digest}"),
                    registry: self.name(),
                })
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(unauthorized(&self.endpoint, resp).await)
            }
            _ => return Err(status_error(Method::GET, &url, resp).await),
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let announced = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_limited(resp, MANIFEST_LIMIT, &format!("manifest {what}"), &url).await?;
        let requested: Option<Digest> = tag_or_digest.parse().ok();
        let expected = match (&requested, &announced) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(a)) => Some(a.parse::<Digest>().map_err(|e| Error::Manifest {
                reference: what.clone(),
                message: format!("the registry announced an invalid digest: {e}"),
            })?),
            (None, None) => None,
        };
        let digest = match &expected {
            Some(e) => {
                let mut h = Hasher::for_digest(e);
                h.update(&bytes);
                let actual = h.finish();
                if &actual != e {
                    return Err(Error::Digest {
                        what: format!("manifest {what}"),
                        expected: e.clone(),
                        actual,
                    });
                }
                // Stored and shown as SHA-256, as everyone does.
                if e.algorithm() == kiln_oci::digest::Algorithm::Sha256 {
                    actual
                } else {
                    sha256(&bytes)
                }
            }
            None => sha256(&bytes),
        };
        check_unambiguous(&bytes).map_err(|message| Error::Manifest {
            reference: what.clone(),
            message,
        })?;
        // A generic Content-Type says nothing: detect from the body.
        let media_type = match content_type.as_str() {
            "" | "application/json" | "text/plain" | "application/octet-stream" => String::new(),
            t => t.to_string(),
        };
        let doc = parse_manifest(&media_type, bytes).map_err(|e| Error::Manifest {
            reference: what.clone(),
            message: e.to_string(),
        })?;
        Ok(PulledManifest {
            digest,
            media_type: doc.media_type,
            bytes: doc.bytes,
            manifest: doc.value,
        })
    }

    /// A small blob (a config) into memory, verified.
    pub async fn blob_bytes(&self, desc: &Descriptor) -> Result<Vec<u8>, Error> {
        if desc.size > CONFIG_LIMIT {
            return Err(Error::TooLarge {
                what: format!("blob {}", desc.digest),
                limit: CONFIG_LIMIT,
            });
        }
        let mut dl = self.download(desc);
        let mut out = Vec::with_capacity(usize::try_from(desc.size).unwrap_or(0));
        while let Some(chunk) = dl.next_chunk().await? {
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// A download of `desc`, started on the first read.
    pub fn download(&self, desc: &Descriptor) -> BlobDownload {
        BlobDownload {
            repo: self.clone(),
            desc: desc.clone(),
            hasher: Some(Hasher::for_digest(&desc.digest)),
            received: 0,
            resp: None,
            url: None,
            resumes: 0,
            skip: 0,
            done: false,
        }
    }

    /// Whether the repository has the blob (`HEAD`).
    pub async fn blob_exists(&self, digest: &Digest) -> Result<bool, Error> {
        let url = self.url(&format!("blobs/{digest}")).await?;
        let resp = self.send(Req::new(Method::HEAD, url.clone()), None).await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(unauthorized(&self.endpoint, resp).await)
            }
            _ => Err(status_error(Method::HEAD, &url, resp).await),
        }
    }

    /// Ask the registry to mount `digest` from repository `from` (same
    /// registry); it may open an upload session instead.
    pub async fn mount(&self, digest: &Digest, from: &str) -> Result<MountOutcome, Error> {
        let mut url = self.url("blobs/uploads/").await?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from);
        let req = Req::new(Method::POST, url.clone())
            .header(CONTENT_LENGTH, "0")
            .body(Bytes::new());
        let resp = self.send(req, Some(from)).await?;
        match resp.status() {
            StatusCode::CREATED => Ok(MountOutcome::Mounted),
            StatusCode::ACCEPTED => Ok(MountOutcome::Upload(self.location(&url, &resp)?)),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(unauthorized(&self.endpoint, resp).await)
            }
            _ => Err(status_error(Method::POST, &url, resp).await),
        }
    }

    fn location(&self, base: &Url, resp: &reqwest::Response) -> Result<Url, Error> {
        let loc = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Url {
                url: base.to_string(),
                message: "upload answer without a Location".into(),
            })?;
        base.join(loc).map_err(|e| Error::Url {
            url: loc.to_string(),
            message: e.to_string(),
        })
    }

    async fn start_upload(&self) -> Result<Url, Error> {
        let url = self.url("blobs/uploads/").await?;
        let req = Req::new(Method::POST, url.clone())
            .header(CONTENT_LENGTH, "0")
            .body(Bytes::new());
        let resp = self.send(req, None).await?;
        match resp.status() {
            StatusCode::ACCEPTED => self.location(&url, &resp),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                Err(unauthorized(&self.endpoint, resp).await)
            }
            _ => Err(status_error(Method::POST, &url, resp).await),
        }
    }

    /// Upload `desc`'s bytes from `open()` (called again for a retry).
    /// Blobs up to the client's chunk size go in one `PUT`; larger ones in
    /// `PATCH` chunks, then a `PUT` with the digest. `session` is an
    /// upload a mount request opened, if any. `progress` gets the bytes
    /// sent so far.
    pub async fn upload(
        &self,
        desc: &Descriptor,
        session: Option<Url>,
        open: &(dyn Fn() -> std::io::Result<Box<dyn Read + Send>> + Send + Sync),
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<(), Error> {
        let what = format!("blob {}", desc.digest);
        let read_err = |source| Error::Read {
            what: what.clone(),
            source,
        };
        let mut location = match session {
            Some(u) => u,
            None => self.start_upload().await?,
        };
        let chunk = self.client.options().chunk_size.max(1);
        let mut reader = open().map_err(read_err)?;
        let mut hasher = Hasher::for_digest(&desc.digest);
        let mut sent = 0u64;
        if desc.size <= chunk {
            let buf = read_exact_vec(&mut reader, desc.size).map_err(read_err)?;
            hasher.update(&buf);
            self.check_local(desc, hasher, buf.len() as u64, &mut reader)?;
            let url = with_digest(&location, &desc.digest);
            let req = Req::new(Method::PUT, url.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, &buf.len().to_string())
                .body(Bytes::from(buf));
            let resp = self.send(req, None).await?;
            if resp.status() != StatusCode::CREATED {
                return Err(status_error(Method::PUT, &url, resp).await);
            }
            progress(desc.size);
            return Ok(());
        }
        while sent < desc.size {
            let n = chunk.min(desc.size - sent);
            let buf = read_exact_vec(&mut reader, n).map_err(read_err)?;
            hasher.update(&buf);
            let range = format!("{}-{}", sent, sent + n - 1);
            let req = Req::new(Method::PATCH, location.clone())
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_RANGE, &range)
                .header(CONTENT_LENGTH, &n.to_string())
                .body(Bytes::from(buf));
            let resp = self.send(req, None).await?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(status_error(Method::PATCH, &location, resp).await);
            }
            location = self.location(&location, &resp)?;
            sent += n;
            progress(sent);
        }
        self.check_local(desc, hasher, sent, &mut reader)?;
        let url = with_digest(&location, &desc.digest);
        let req = Req::new(Method::PUT, url.clone())
            .header(CONTENT_LENGTH, "0")
            .body(Bytes::new());
        let resp = self.send(req, None).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_error(Method::PUT, &url, resp).await);
        }
        Ok(())
    }

    /// The local bytes must be what the descriptor says, before the
    /// registry is asked to commit them.
    fn check_local(
        &self,
        desc: &Descriptor,
        hasher: Hasher,
        n: u64,
        reader: &mut dyn Read,
    ) -> Result<(), Error> {
        let mut extra = [0u8; 1];
        let more = reader.read(&mut extra).map_err(|source| Error::Read {
            what: format!("blob {}", desc.digest),
            source,
        })?;
        if n != desc.size || more != 0 {
            return Err(Error::Size {
                what: format!("local blob {}", desc.digest),
                expected: desc.size,
                actual: n + more as u64,
            });
        }
        let actual = hasher.finish();
        if actual != desc.digest {
            return Err(Error::Digest {
                what: "local blob".into(),
                expected: desc.digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Push a manifest under a tag or its digest; returns the digest.
    pub async fn put_manifest(
        &self,
        tag_or_digest: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, Error> {
        let digest = sha256(bytes);
        let url = self.url(&format!("manifests/{tag_or_digest}")).await?;
        let req = Req::new(Method::PUT, url.clone())
            .header(CONTENT_TYPE, media_type)
            .body(Bytes::copy_from_slice(bytes));
        let resp = self.send(req, None).await?;
        match resp.status() {
            StatusCode::CREATED | StatusCode::OK | StatusCode::ACCEPTED => {}
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(unauthorized(&self.endpoint, resp).await)
            }
            _ => return Err(status_error(Method::PUT, &url, resp).await),
        }
        if let Some(a) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if a != digest.to_string() {
                return Err(Error::Manifest {
                    reference: format!("{}:{tag_or_digest}", self.name()),
                    message: format!(
                        "the registry stored the manifest as {a}, but its digest is {digest}"
                    ),
                });
            }
        }
        Ok(digest)
    }

    /// Every tag (following `Link` pagination), sorted.
    pub async fn tags(&self) -> Result<Vec<String>, Error> {
        let mut url = self.url("tags/list").await?;
        let mut tags = Vec::new();
        for _ in 0..1000 {
            let resp = self.send(Req::new(Method::GET, url.clone()), None).await?;
            match resp.status() {
                s if s.is_success() => {}
                StatusCode::NOT_FOUND => {
                    return Err(Error::NotFound {
                        what: "repository".into(),
                        registry: self.name(),
                    })
                }
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                    return Err(unauthorized(&self.endpoint, resp).await)
                }
                _ => return Err(status_error(Method::GET, &url, resp).await),
            }
            let next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let body = read_limited(resp, 16 << 20, "tag list", &url).await?;
            let v: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| Error::Manifest {
                    reference: self.name(),
                    message: format!("invalid tag list: {e}"),
                })?;
            if let Some(a) = v.get("tags").and_then(|t| t.as_array()) {
                tags.extend(a.iter().filter_map(|t| t.as_str().map(str::to_string)));
            }
            match next {
                Some(n) => {
                    url = url.join(&n).map_err(|e| Error::Url {
                        url: n.clone(),
                        message: e.to_string(),
                    })?
                }
                None => break,
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }
}

/// `<url>; rel="next"` from a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

fn with_digest(location: &Url, digest: &Digest) -> Url {
    let mut u = location.clone();
    u.query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    u
}

fn read_exact_vec(r: &mut dyn Read, n: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    r.take(n).read_to_end(&mut buf)?;
    Ok(buf)
}

/// A document is a manifest or an index, never both (the OCI image spec
/// leaves a client free to refuse, and a registry could otherwise serve
/// one thing to one client and another to the next).
fn check_unambiguous(bytes: &[u8]) -> Result<(), String> {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_slice::<serde_json::Value>(bytes)
    else {
        return Ok(()); // parse_manifest reports it
    };
    let index = m.contains_key("manifests");
    let manifest = m.contains_key("config") || m.contains_key("layers");
    if index && manifest {
        return Err(
            "the document is both an image index (manifests) and an image manifest (config, layers): refusing it"
                .into(),
        );
    }
    Ok(())
}

/// A blob download: bytes verified as they come, resumed with `Range`
/// when the connection breaks.
#[derive(Debug)]
pub struct BlobDownload {
    repo: Repository,
    desc: Descriptor,
    hasher: Option<Hasher>,
    received: u64,
    resp: Option<reqwest::Response>,
    url: Option<Url>,
    resumes: u32,
    /// Bytes to drop from a resumed answer that ignored `Range`.
    skip: u64,
    done: bool,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hasher")
    }
}

impl BlobDownload {
    /// Bytes received and verified so far (they are part of the blob; the
    /// whole is checked at the end).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The descriptor.
    pub fn descriptor(&self) -> &Descriptor {
        &self.desc
    }

    fn what(&self) -> String {
        format!("blob {} from {}", self.desc.digest, self.repo.name())
    }

    async fn open(&mut self) -> Result<(), Error> {
        let url = match &self.url {
            Some(u) => u.clone(),
            None => {
                let u = self
                    .repo
                    .url(&format!("blobs/{}", self.desc.digest))
                    .await?;
                self.url = Some(u.clone());
                u
            }
        };
        let mut req = Req::new(Method::GET, url.clone());
        if self.received > 0 {
            req = req.header(RANGE, &format!("bytes={}-", self.received));
        }
        let resp = self.repo.send(req, None).await?;
        match resp.status() {
            StatusCode::OK => {
                // Range ignored (or a first request): skip what we have.
                self.skip = self.received;
            }
            StatusCode::PARTIAL_CONTENT if self.received > 0 => {
                let start = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .and_then(|s| s.strip_prefix("bytes "))
                    .and_then(|s| s.split('-').next())
                    .and_then(|s| s.parse::<u64>().ok());
                if start != Some(self.received) {
                    return Err(Error::Manifest {
                        reference: self.what(),
                        message: format!(
                            "asked to resume at byte {}, the registry answered with range {start:?}",
                            self.received
                        ),
                    });
                }
                self.skip = 0;
            }
            StatusCode::NOT_FOUND => {
                return Err(Error::NotFound {
                    what: format!("blob {}", self.desc.digest),
                    registry: self.repo.name(),
                })
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(unauthorized(&self.repo.endpoint, resp).await)
            }
            _ => return Err(status_error(Method::GET, &url, resp).await),
        }
        self.resp = Some(resp);
        Ok(())
    }

    /// The next piece of the blob; `None` at its verified end. An error
    /// means the blob is unusable (wrong size or digest, or the registry
    /// failed more often than the client retries).
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            if self.done {
                return Ok(None);
            }
            if self.resp.is_none() {
                self.open().await?;
            }
            let Some(resp) = self.resp.as_mut() else {
                continue;
            };
            match resp.chunk().await {
                Ok(Some(mut chunk)) => {
                    if self.skip > 0 {
                        let n = usize::try_from(self.skip.min(chunk.len() as u64))
                            .unwrap_or(chunk.len());
                        self.skip -= n as u64;
                        chunk = chunk.slice(n..);
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    let total = self.received + chunk.len() as u64;
                    if total > self.desc.size {
                        return Err(Error::Size {
                            what: self.what(),
                            expected: self.desc.size,
                            actual: total,
                        });
                    }
                    self.received = total;
                    if let Some(h) = self.hasher.as_mut() {
                        h.update(&chunk);
                    }
                    return Ok(Some(chunk));
                }
                Ok(None) => {
                    self.resp = None;
                    if self.received < self.desc.size {
                        // A clean end before the size: the connection was
                        // cut. Resume.
                        self.resume(None)?;
                        continue;
                    }
                    self.done = true;
                    let actual = self
                        .hasher
                        .take()
                        .map(Hasher::finish)
                        .expect("the hasher is taken only here, once, when done");
                    if actual != self.desc.digest {
                        return Err(Error::Digest {
                            what: self.what(),
                            expected: self.desc.digest.clone(),
                            actual,
                        });
                    }
                    return Ok(None);
                }
                Err(e) => {
                    self.resp = None;
                    self.resume(Some(e))?;
                }
            }
        }
    }

    fn resume(&mut self, cause: Option<reqwest::Error>) -> Result<(), Error> {
        self.resumes += 1;
        if self.resumes > self.repo.client.options().resumes {
            return Err(match cause {
                Some(source) => Error::Http {
                    method: Method::GET,
                    url: self.url.as_ref().map(Url::to_string).unwrap_or_default(),
                    source,
                },
                None => Error::Size {
                    what: self.what(),
                    expected: self.desc.size,
                    actual: self.received,
                },
            });
        }
        tracing::debug!(
            blob = %self.desc.digest,
            at = self.received,
            "connection broke; resuming with Range"
        );
        Ok(())
    }
}

/// A blocking [`Read`] over a [`BlobDownload`], for a thread outside the
/// runtime (the store's layer ingest). Its last `read` returns 0 only
/// after the digest and size were verified; a bad blob is an error from
/// `read`.
#[derive(Debug)]
pub struct BlockingBlobReader {
    handle: tokio::runtime::Handle,
    download: BlobDownload,
    buf: Bytes,
}

impl BlockingBlobReader {
    /// Read `download` through the runtime behind `handle` (call from a
    /// thread that is not one of the runtime's).
    pub fn new(handle: tokio::runtime::Handle, download: BlobDownload) -> Self {
        BlockingBlobReader {
            handle,
            download,
            buf: Bytes::new(),
        }
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.download.received()
    }
}

impl Read for BlockingBlobReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.buf.is_empty() {
            match self.handle.block_on(self.download.next_chunk()) {
                Ok(Some(b)) => self.buf = b,
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// Whether a media type is an index (or manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == mt::OCI_INDEX || media_type == mt::DOCKER_MANIFEST_LIST
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguity() {
        assert!(check_unambiguous(br#"{"manifests":[],"config":{}}"#).is_err());
        assert!(check_unambiguous(br#"{"manifests":[],"layers":[]}"#).is_err());
        assert!(check_unambiguous(br#"{"manifests":[]}"#).is_ok());
        assert!(check_unambiguous(br#"{"config":{},"layers":[]}"#).is_ok());
    }

    #[test]
    fn link_header() {
        assert_eq!(
            next_link(r#"</v2/x/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/x/tags/list?n=2&last=b")
        );
        assert_eq!(next_link(r#"</a>; rel="prev""#), None);
    }

    #[test]
    fn hasher_matches_sha256() {
        let d = sha256(b"abc");
        let mut h = Hasher::for_digest(&d);
        h.update(b"a");
        h.update(b"bc");
        assert_eq!(h.finish(), d);
    }
}
