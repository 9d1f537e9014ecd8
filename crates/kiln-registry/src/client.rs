//! The HTTP side of the distribution API: one [`Client`] per process, with
//! a connection pool per registry host, the scheme chosen per host, auth,
//! retries and redirects; a [`Repository`] is one repository on one
//! endpoint.
//!
//! Rules kept here (DESIGN.md, security rules 4 and 5):
//! - TLS is rustls with the system roots plus the CA files in
//!   `certs.d/<host[:port]>/*.crt` (`/etc/kiln/certs.d`, `/etc/docker/certs.d`
//!   and `KILN_CERTS_D`), trusted for that host only.
//! - Plain HTTP only for hosts the registries file marks insecure and for
//!   loopback, and only after HTTPS failed for another reason than a
//!   certificate: a certificate error is an error, never a downgrade.
//! - Redirects are followed by hand: the `Authorization` header goes only
//!   to the host it was made for, and an HTTPS URL never redirects to HTTP
//!   unless that host may be plain.
//! - 5xx, 429 and connection failures are retried with exponential backoff;
//!   other answers are not.
//! - Nothing secret in errors or logs: URLs carry no credentials, tokens
//!   and passwords live in [`Secret`]s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use kiln_oci::Digest;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, LOCATION};
use reqwest::{Method, StatusCode, Url};
use thiserror::Error;

use crate::auth::{parse_challenges, AuthError, Challenge, Token};
use crate::config::{ConfigError, Endpoint, RegistriesConf};
use crate::credentials::{CredentialError, CredentialSource, Credentials, Secret};

/// What can go wrong talking to a registry.
#[derive(Debug, Error)]
pub enum Error {
    /// The request could not be made or its answer not read. The cause
    /// is the error's source, printed after it by an error chain (not
    /// repeated in this text).
    #[error("{method} {url}")]
    Http {
        /// The method.
        method: Method,
        /// The URL (never with credentials).
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// An answer other than the one expected.
    #[error("{method} {url}: registry answered {status}{detail}")]
    Status {
        /// The method.
        method: Method,
        /// The URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The registry's error message, if it gave one (`: …`).
        detail: String,
    },
    /// The registry refused the credentials (or wants some).
    #[error("{registry}: authentication required or refused{detail}")]
    Unauthorized {
        /// The registry.
        registry: String,
        /// What it said.
        detail: String,
    },
    /// Not there.
    #[error("{what} not found in {registry}")]
    NotFound {
        /// A manifest or blob, named.
        what: String,
        /// The registry and repository.
        registry: String,
    },
    /// A redirect or realm that would leave TLS.
    #[error("refusing to follow {from} to plain HTTP {to}")]
    Downgrade {
        /// Where from.
        from: String,
        /// Where to.
        to: String,
    },
    /// Too many redirects.
    #[error("too many redirects from {url}")]
    Redirects {
        /// The first URL.
        url: String,
    },
    /// A TLS configuration problem.
    #[error("failed to set up TLS for {host}: {message}")]
    Tls {
        /// The host.
        host: String,
        /// What went wrong.
        message: String,
    },
    /// Content that is not what its digest says.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    Digest {
        /// What it is.
        what: String,
        /// Requested or declared.
        expected: Digest,
        /// Computed.
        actual: Digest,
    },
    /// Content of the wrong size.
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    Size {
        /// What it is.
        what: String,
        /// Declared.
        expected: u64,
        /// Received (so far).
        actual: u64,
    },
    /// A document too large to hold in memory.
    #[error("{what} is larger than {limit} bytes: refusing it")]
    TooLarge {
        /// What.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A bad auth challenge or token answer.
    #[error("{registry}: {source}")]
    Auth {
        /// The registry.
        registry: String,
        /// Why.
        #[source]
        source: AuthError,
    },
    /// The registries file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Credentials could not be read.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// A manifest that cannot be used.
    #[error("{reference}: {message}")]
    Manifest {
        /// The reference or digest.
        reference: String,
        /// What is wrong.
        message: String,
    },
    /// Reading a local blob to upload failed.
    #[error("failed to read {what}: {source}")]
    Read {
        /// What.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A URL the registry sent that cannot be used.
    #[error("{url}: invalid URL from the registry: {message}")]
    Url {
        /// What it sent.
        url: String,
        /// Why.
        message: String,
    },
}

/// Knobs for the client (defaults suit the real world; tests shorten the
/// backoff).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Attempts for a retried request (first one included).
    pub attempts: u32,
    /// Backoff before the second attempt; doubled each time.
    pub backoff: Duration,
    /// Times a blob download is resumed with `Range` after the connection
    /// broke.
    pub resumes: u32,
    /// Blobs up to this size are uploaded in one request; larger ones in
    /// chunks of this size.
    pub chunk_size: u64,
    /// Directories of `<host>/*.crt` CA files.
    pub certs_dirs: Vec<std::path::PathBuf>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Timeout between two reads of an answer.
    pub read_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        let mut certs_dirs = Vec::new();
        if let Some(d) = std::env::var_os("KILN_CERTS_D").filter(|v| !v.is_empty()) {
            certs_dirs.push(d.into());
        }
        certs_dirs.push("/etc/kiln/certs.d".into());
        certs_dirs.push("/etc/docker/certs.d".into());
        ClientOptions {
            attempts: 4,
            backoff: Duration::from_millis(250),
            resumes: 5,
            chunk_size: 32 << 20,
            certs_dirs,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Https,
    Http,
}

/// What a host wants for authentication, learnt from its first 401.
#[derive(Debug, Clone)]
enum HostAuth {
    Basic,
    Bearer { realm: String, service: String },
}

#[derive(Debug)]
struct Inner {
    conf: RegistriesConf,
    creds: Box<dyn CredentialSource>,
    opts: ClientOptions,
    http: Mutex<HashMap<String, reqwest::Client>>,
    schemes: Mutex<HashMap<String, Scheme>>,
    host_auth: Mutex<HashMap<String, HostAuth>>,
    tokens: Mutex<HashMap<(String, String), Token>>,
    cred_cache: Mutex<HashMap<String, Option<Credentials>>>,
    override_creds: Mutex<HashMap<String, Credentials>>,
}

/// A registry client; cheap to clone (shared pools and caches).
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// A request, kept so it can be sent again.
#[derive(Debug, Clone)]
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Option<Bytes>,
}

impl Req {
    pub(crate) fn new(method: Method, url: Url) -> Req {
        Req {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
        }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Req {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    pub(crate) fn body(mut self, body: Bytes) -> Req {
        self.body = Some(body);
        self
    }
}

/// The locking helper: a poisoned lock only means another thread panicked
/// mid-update of a cache, whose entries are each complete.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    /// A client using `conf` for mirrors and insecure hosts and `creds`
    /// for credentials.
    pub fn new(
        conf: RegistriesConf,
        creds: Box<dyn CredentialSource>,
        opts: ClientOptions,
    ) -> Client {
        Client {
            inner: Arc::new(Inner {
                conf,
                creds,
                opts,
                http: Mutex::new(HashMap::new()),
                schemes: Mutex::new(HashMap::new()),
                host_auth: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
                cred_cache: Mutex::new(HashMap::new()),
                override_creds: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The registries configuration.
    pub fn conf(&self) -> &RegistriesConf {
        &self.inner.conf
    }

    /// The options.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// Use these credentials for `registry` instead of the stored ones
    /// (`login` checks them before storing).
    pub fn set_credentials(&self, registry: &str, creds: Credentials) {
        lock(&self.inner.override_creds).insert(registry.to_string(), creds);
    }

    fn credentials(&self, registry: &str) -> Result<Option<Credentials>, Error> {
        if let Some(c) = lock(&self.inner.override_creds).get(registry) {
            return Ok(Some(c.clone()));
        }
        if let Some(c) = lock(&self.inner.cred_cache).get(registry) {
            return Ok(c.clone());
        }
        let c = self.inner.creds.get(registry)?;
        lock(&self.inner.cred_cache).insert(registry.to_string(), c.clone());
        Ok(c)
    }

    /// The HTTP client for a host (its own CA files trusted).
    fn http(&self, host: &str) -> Result<reqwest::Client, Error> {
        if let Some(c) = lock(&self.inner.http).get(host) {
            return Ok(c.clone());
        }
        let tls = |message: String| Error::Tls {
            host: host.to_string(),
            message,
        };
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            // A system certificate rustls cannot parse is skipped, as
            // browsers do.
            let _ = roots.add(cert);
        }
        for dir in &self.inner.opts.certs_dirs {
            let hostdir = dir.join(host);
            let Ok(rd) = std::fs::read_dir(&hostdir) else {
                continue;
            };
            let mut files: Vec<_> = rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "crt"))
                .collect();
            files.sort();
            for f in files {
                use rustls_pki_types::pem::PemObject as _;
                let certs = rustls_pki_types::CertificateDer::pem_file_iter(&f)
                    .map_err(|e| tls(format!("{}: {e}", f.display())))?;
                for c in certs {
                    let c = c.map_err(|e| tls(format!("{}: {e}", f.display())))?;
                    roots
                        .add(c)
                        .map_err(|e| tls(format!("{}: {e}", f.display())))?;
                }
                tracing::debug!(host, file = %f.display(), "trusting CA file");
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.inner.opts.connect_timeout)
            .read_timeout(self.inner.opts.read_timeout)
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| tls(e.to_string()))?;
        lock(&self.inner.http).insert(host.to_string(), client.clone());
        Ok(client)
    }

    fn plain_allowed(&self, host: &str, endpoint_insecure: bool) -> bool {
        endpoint_insecure || self.inner.conf.host_insecure(host)
    }

    /// The base URL of a host's API (`https://host/`), HTTPS unless the
    /// host may be plain and does not speak TLS.
    pub(crate) async fn base(&self, host: &str, insecure: bool) -> Result<Url, Error> {
        let scheme = lock(&self.inner.schemes).get(host).copied();
        let scheme = match scheme {
            Some(s) => s,
            None => {
                let s = self.probe(host, insecure).await?;
                lock(&self.inner.schemes).insert(host.to_string(), s);
                s
            }
        };
        let text = match scheme {
            Scheme::Https => format!("https://{host}/"),
            Scheme::Http => format!("http://{host}/"),
        };
        Url::parse(&text).map_err(|e| Error::Url {
            url: text,
            message: e.to_string(),
        })
    }

    /// `GET /v2/` over HTTPS; over HTTP when that fails without a
    /// certificate error and the host may be plain.
    async fn probe(&self, host: &str, insecure: bool) -> Result<Scheme, Error> {
        let http = self.http(host)?;
        let url = format!("https://{host}/v2/");
        let err = match http.get(&url).send().await {
            Ok(_) => return Ok(Scheme::Https),
            Err(e) => e,
        };
        tracing::debug!(host, error = ?err, "HTTPS probe failed");
        if !self.plain_allowed(host, insecure) || is_certificate_error(&err) {
            return Err(Error::Http {
                method: Method::GET,
                url,
                source: err,
            });
        }
        let plain = format!("http://{host}/v2/");
        match http.get(&plain).send().await {
            Ok(_) => {
                tracing::debug!(host, "no TLS; using plain HTTP (insecure or loopback host)");
                Ok(Scheme::Http)
            }
            // Report the HTTPS failure: that was the first choice.
            Err(_) => Err(Error::Http {
                method: Method::GET,
                url,
                source: err,
            }),
        }
    }

    /// Check that `endpoint`'s registry answers and accepts the
    /// credentials: `GET /v2/`, then a token without a scope when it asks
    /// for one (what `docker login` does).
    pub async fn ping(&self, endpoint: &Endpoint) -> Result<(), Error> {
        let base = self.base(&endpoint.host, endpoint.insecure).await?;
        let url = join(&base, "v2/")?;
        let resp = self
            .send(endpoint, Req::new(Method::GET, url.clone()), &[])
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => Err(unauthorized(endpoint, resp).await),
            _ => Err(status_error(Method::GET, &url, resp).await),
        }
    }

    /// Send `req` to `endpoint`'s host with the auth the host asks for
    /// (for `scopes`), retrying and following redirects. Returns the final
    /// answer whatever its status (a 401 after one auth attempt included).
    pub(crate) async fn send(
        &self,
        endpoint: &Endpoint,
        req: Req,
        scopes: &[String],
    ) -> Result<reqwest::Response, Error> {
        let mut authed_after_challenge = false;
        loop {
            let auth = self.auth_header(endpoint, scopes, false).await?;
            let resp = self.send_retrying(endpoint, &req, auth.as_ref()).await?;
            if resp.status() != StatusCode::UNAUTHORIZED || authed_after_challenge {
                return Ok(resp);
            }
            let Some(header) = resp
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
            else {
                return Ok(resp);
            };
            let challenges = parse_challenges(header).map_err(|source| Error::Auth {
                registry: endpoint.registry.clone(),
                source,
            })?;
            let Some(host_auth) = pick_challenge(&challenges) else {
                return Ok(resp);
            };
            tracing::debug!(host = endpoint.host, ?host_auth, "auth challenge");
            lock(&self.inner.host_auth).insert(endpoint.host.clone(), host_auth);
            // The token we had (if any) was not good enough: drop it.
            let key = (endpoint.host.clone(), scopes.join(" "));
            lock(&self.inner.tokens).remove(&key);
            authed_after_challenge = true;
            // Fetch anew (the next loop turn), with the challenge learnt.
            let _ = self.auth_header(endpoint, scopes, true).await?;
        }
    }

    /// The `Authorization` value for a request to `endpoint` with
    /// `scopes`, from what the host asked for before.
    async fn auth_header(
        &self,
        endpoint: &Endpoint,
        scopes: &[String],
        refresh: bool,
    ) -> Result<Option<Secret>, Error> {
        let host_auth = lock(&self.inner.host_auth).get(&endpoint.host).cloned();
        match host_auth {
            None => Ok(None),
            Some(HostAuth::Basic) => Ok(self
                .credentials(&endpoint.registry)?
                .map(|c| basic_value(&c))),
            Some(HostAuth::Bearer { realm, service }) => {
                let key = (endpoint.host.clone(), scopes.join(" "));
                if !refresh {
                    if let Some(t) = lock(&self.inner.tokens).get(&key) {
                        if t.fresh() {
                            return Ok(Some(Secret::new(format!("Bearer {}", t.value.expose()))));
                        }
                    }
                }
                let token = self.fetch_token(endpoint, &realm, &service, scopes).await?;
                let value = Secret::new(format!("Bearer {}", token.value.expose()));
                lock(&self.inner.tokens).insert(key, token);
                Ok(Some(value))
            }
        }
    }

    async fn fetch_token(
        &self,
        endpoint: &Endpoint,
        realm: &str,
        service: &str,
        scopes: &[String],
    ) -> Result<Token, Error> {
        let mut url = Url::parse(realm).map_err(|e| Error::Url {
            url: realm.to_string(),
            message: e.to_string(),
        })?;
        let realm_host = host_port(&url);
        if url.scheme() != "https"
            && (url.scheme() != "http" || !self.plain_allowed(&realm_host, false))
        {
            return Err(Error::Downgrade {
                from: format!("the token realm of {}", endpoint.registry),
                to: realm.to_string(),
            });
        }
        {
            let mut q = url.query_pairs_mut();
            if !service.is_empty() {
                q.append_pair("service", service);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        let creds = self.credentials(&endpoint.registry)?;
        let mut req = Req::new(Method::GET, url.clone());
        if let Some(c) = &creds {
            if let Ok(v) = HeaderValue::from_str(basic_value(c).expose()) {
                let mut v = v;
                v.set_sensitive(true);
                req.headers.insert(AUTHORIZATION, v);
            }
        }
        // The realm is its own host: credentials go there because the
        // registry named it (as every Docker client does), not to where it
        // may redirect.
        let realm_endpoint = Endpoint {
            registry: endpoint.registry.clone(),
            host: realm_host.clone(),
            path: String::new(),
            insecure: false,
            mirror: false,
        };
        let resp = self.send_retrying(&realm_endpoint, &req, None).await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(unauthorized(endpoint, resp).await);
        }
        if !status.is_success() {
            return Err(status_error(Method::GET, &url, resp).await);
        }
        let body = read_limited(resp, 1 << 20, "token answer", &url).await?;
        Token::from_answer(&body, realm).map_err(|source| Error::Auth {
            registry: endpoint.registry.clone(),
            source,
        })
    }

    /// Send with retries on 5xx, 429 and connection failures.
    async fn send_retrying(
        &self,
        endpoint: &Endpoint,
        req: &Req,
        auth: Option<&Secret>,
    ) -> Result<reqwest::Response, Error> {
        let attempts = self.inner.opts.attempts.max(1);
        let mut delay = self.inner.opts.backoff;
        let mut attempt = 1;
        loop {
            let result = self.send_following(endpoint, req, auth).await;
            let retry = match &result {
                Ok(r) => {
                    r.status().is_server_error() || r.status() == StatusCode::TOO_MANY_REQUESTS
                }
                Err(Error::Http { source, .. }) => {
                    source.is_connect() || source.is_request() || source.is_timeout()
                }
                Err(_) => false,
            };
            if !retry || attempt >= attempts {
                return result;
            }
            match &result {
                Ok(r) => tracing::debug!(url = %req.url, status = %r.status(), attempt, "retrying"),
                Err(e) => tracing::debug!(url = %req.url, error = %e, attempt, "retrying"),
            }
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
            attempt += 1;
        }
    }

    /// Send once, following redirects by hand.
    async fn send_following(
        &self,
        endpoint: &Endpoint,
        req: &Req,
        auth: Option<&Secret>,
    ) -> Result<reqwest::Response, Error> {
        let origin = host_port(&req.url);
        let origin_scheme = req.url.scheme().to_string();
        let mut url = req.url.clone();
        let mut method = req.method.clone();
        let mut body = req.body.clone();
        for _ in 0..10 {
            let host = host_port(&url);
            let http = self.http(&host)?;
            let mut b = http.request(method.clone(), url.clone());
            for (k, v) in &req.headers {
                b = b.header(k, v);
            }
            // Only to the host (and scheme) the credentials were made for.
            if host == origin && url.scheme() == origin_scheme {
                if let Some(a) = auth {
                    if let Ok(mut v) = HeaderValue::from_str(a.expose()) {
                        v.set_sensitive(true);
                        b = b.header(AUTHORIZATION, v);
                    }
                }
            }
            if let Some(body) = &body {
                b = b.body(body.clone());
            }
            let resp = b.send().await.map_err(|source| Error::Http {
                method: method.clone(),
                url: url.to_string(),
                source,
            })?;
            if !resp.status().is_redirection() || resp.status() == StatusCode::NOT_MODIFIED {
                return Ok(resp);
            }
            let Some(loc) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) else {
                return Ok(resp);
            };
            let next = url.join(loc).map_err(|e| Error::Url {
                url: loc.to_string(),
                message: e.to_string(),
            })?;
            match next.scheme() {
                "https" => {}
                "http" => {
                    let h = host_port(&next);
                    if url.scheme() == "https"
                        && !self.plain_allowed(&h, h == endpoint.host && endpoint.insecure)
                    {
                        return Err(Error::Downgrade {
                            from: url.to_string(),
                            to: next.to_string(),
                        });
                    }
                }
                _ => {
                    return Err(Error::Url {
                        url: next.to_string(),
                        message: "redirect to a scheme other than http(s)".into(),
                    })
                }
            }
            tracing::debug!(from = %url, to = %next, "redirect");
            if resp.status() == StatusCode::SEE_OTHER {
                method = Method::GET;
                body = None;
            }
            url = next;
        }
        Err(Error::Redirects {
            url: req.url.to_string(),
        })
    }
}

fn pick_challenge(challenges: &[Challenge]) -> Option<HostAuth> {
    if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
        if let Some(realm) = c.param("realm") {
            return Some(HostAuth::Bearer {
                realm: realm.to_string(),
                service: c.param("service").unwrap_or("").to_string(),
            });
        }
    }
    challenges
        .iter()
        .any(|c| c.scheme == "basic")
        .then_some(HostAuth::Basic)
}

fn basic_value(c: &Credentials) -> Secret {
    let raw = format!("{}:{}", c.username, c.password.expose());
    Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ))
}

/// Whether a request failed because a certificate was refused.
fn is_certificate_error(err: &reqwest::Error) -> bool {
    refused_certificate(err)
}

/// Walks sources and the errors wrapped inside `io::Error`s (whose
/// `source()` skips the wrapped error itself; hyper-util nests two).
fn refused_certificate(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(r) = e.downcast_ref::<rustls::Error>() {
        if matches!(
            r,
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
        ) {
            return true;
        }
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        if refused_certificate(inner) {
            return true;
        }
    }
    e.source().is_some_and(refused_certificate)
}

/// `host[:port]` of a URL, the way references write it.
pub(crate) fn host_port(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

pub(crate) fn join(base: &Url, path: &str) -> Result<Url, Error> {
    base.join(path).map_err(|e| Error::Url {
        url: format!("{base}{path}"),
        message: e.to_string(),
    })
}

/// An error for an unexpected answer, with the registry's own message
/// (`{"errors":[{"code":…,"message":…}]}`) when it gave one.
pub(crate) async fn status_error(method: Method, url: &Url, resp: reqwest::Response) -> Error {
    let status = resp.status();
    let detail = error_detail(resp).await;
    Error::Status {
        method,
        url: url.to_string(),
        status,
        detail,
    }
}

pub(crate) async fn unauthorized(endpoint: &Endpoint, resp: reqwest::Response) -> Error {
    Error::Unauthorized {
        registry: endpoint.registry.clone(),
        detail: error_detail(resp).await,
    }
}

async fn error_detail(resp: reqwest::Response) -> String {
    let Ok(body) = read_limited_raw(resp, 64 << 10).await else {
        return String::new();
    };
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return String::new(),
    };
    let msgs: Vec<String> = v
        .get("errors")
        .and_then(|e| e.as_array())
        .map(|a| {
            a.iter()
                .map(|e| {
                    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
                    format!("{code} {msg}").trim().to_string()
                })
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if msgs.is_empty() {
        String::new()
    } else {
        format!(": {}", msgs.join("; "))
    }
}

async fn read_limited_raw(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, ()> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|_| ())? {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The whole body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: u64,
    what: &str,
    url: &Url,
) -> Result<Vec<u8>, Error> {
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(Error::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    let mut out = Vec::new();
    loop {
        let chunk = resp.chunk().await.map_err(|source| Error::Http {
            method: Method::GET,
            url: url.to_string(),
            source,
        })?;
        let Some(chunk) = chunk else { break };
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(Error::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
