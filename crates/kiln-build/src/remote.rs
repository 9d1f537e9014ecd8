//! ADD's remote sources: which sources are URLs or git repositories
//! ([`classify`]), the download of an http(s) file ([`fetch_http`]) and
//! the checkout of a git repository with the `git` CLI ([`fetch_git`]),
//! each into a host directory the caller owns and removes. It does not
//! decide where the files land in the image (that is [`crate::copy`]'s).
//!
//! BuildKit's rules, as its Dockerfile frontend and its `http` and `git`
//! sources apply them:
//! - a source is a git repository when it is `git@host:path` (scp form),
//!   `ssh://…`, `git://…`, or an `http(s)://…` URL whose path ends in
//!   `.git`; a fragment `#ref:subdir` (or the query form `?ref=`, `tag=`,
//!   `branch=`, `subdir=`, `keep-git-dir=`, `checksum=`) names the branch,
//!   tag or commit and the directory to copy; any other `http(s)://`
//!   source is a file;
//! - a downloaded file is named after the last element of the URL's path
//!   (`__unnamed__` when there is none), is written with mode 0600 and,
//!   when the server sends `Last-Modified`, gets that time (else the Unix
//!   epoch); it is not extracted; `--checksum=ALG:HEX` is verified before
//!   anything is used;
//! - a repository is checked out at the ref (the remote's HEAD without
//!   one); its files keep the time of the checkout; `.git` is removed
//!   unless `--keep-git-dir=true` (and never kept with a subdirectory);
//!   `--checksum` for a repository is a prefix of the commit; submodules
//!   are checked out too (unless `?submodules=false`), without their
//!   `.git` links unless `.git` is kept.
//!
//! Downloads honour `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` and trust the
//! system's CA roots; no credentials are sent, a redirect from https to
//! http is refused, and errors name the URL (without any user-info) and
//! the server's status.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest as _, Sha256, Sha384, Sha512};
use thiserror::Error;

/// A remote ADD source that cannot be fetched.
#[derive(Debug, Error)]
pub enum RemoteError {
    /// The request failed before an answer.
    #[error("failed to download {url}: {message}")]
    Request {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// The server answered with an error status.
    #[error("failed to download {url}: server answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status line.
        status: String,
    },
    /// The content is not what `--checksum` says.
    #[error("failed to verify {url}: checksum mismatch: expected {expected}, got {actual}")]
    Checksum {
        /// The URL.
        url: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what came.
        actual: String,
    },
    /// A `--checksum` this build cannot check.
    #[error("invalid checksum {checksum} for {url}")]
    BadChecksum {
        /// The URL.
        url: String,
        /// The value.
        checksum: String,
    },
    /// Writing the download failed.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A git command failed.
    #[error("failed to {action} {url}: {message}")]
    Git {
        /// What was being done.
        action: &'static str,
        /// The repository.
        url: String,
        /// git's own words.
        message: String,
    },
    /// A git URL or ref that cannot be used.
    #[error("invalid git source {url}: {message}")]
    GitSource {
        /// The source as written.
        url: String,
        /// Why.
        message: String,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> RemoteError + 'a {
    move |source| RemoteError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

/// A git source: the repository, the ref and the directory to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// The repository URL, without the fragment.
    pub remote: String,
    /// Branch, tag or commit (`None`: the remote's HEAD).
    pub reference: Option<String>,
    /// The directory of the repository to copy (`None`: all of it).
    pub subdir: Option<String>,
    /// `?keep-git-dir=`.
    pub keep_git_dir: Option<bool>,
    /// `?checksum=` or `?commit=`: a prefix of the commit.
    pub checksum: Option<String>,
    /// `?submodules=` (default: checked out).
    pub submodules: Option<bool>,
    /// Why the query cannot be used (reported when it is fetched).
    pub invalid: Option<String>,
}

/// Apply BuildKit's query form (`?ref=…&tag=…&branch=…&subdir=…&
/// keep-git-dir=…&checksum=…`) to `src`.
fn apply_query(src: &mut GitSource, query: &str) -> Result<(), String> {
    let (mut tag, mut branch) = (None, None);
    let mut seen = std::collections::BTreeSet::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v)
            .decode_utf8_lossy()
            .into_owned();
        if !seen.insert(k.to_string()) {
            return Err(format!("query {k:?} has multiple values"));
        }
        let flag = |v: &str| match v {
            "" | "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
            _ => Err(format!("invalid {k} value: {v:?}")),
        };
        if v.is_empty() && !matches!(k, "keep-git-dir" | "submodules") {
            return Err(format!("query {k:?} has no value"));
        }
        let set = |slot: &mut Option<String>, what: &str, v: String| match slot {
            Some(old) if *old != v => Err(format!("{what} conflicts: {old:?} vs {v:?}")),
            _ => {
                *slot = Some(v);
                Ok(())
            }
        };
        match k {
            "ref" => set(&mut src.reference, "ref", v)?,
            "tag" => tag = Some(v),
            "branch" => branch = Some(v),
            "subdir" => set(&mut src.subdir, "subdir", v)?,
            "checksum" | "commit" => src.checksum = Some(v),
            "keep-git-dir" => src.keep_git_dir = Some(flag(&v)?),
            "submodules" => src.submodules = Some(flag(&v)?),
            _ => return Err(format!("unexpected query {k:?}")),
        }
    }
    if tag.is_some() && branch.is_some() {
        return Err("branch conflicts with tag".into());
    }
    if let Some(t) = tag {
        let t = if t.starts_with("refs/tags/") {
            t
        } else {
            format!("refs/tags/{t}")
        };
        set_ref(src, t)?;
    }
    if let Some(b) = branch {
        let b = if b.starts_with("refs/heads/") {
            b
        } else {
            format!("refs/heads/{b}")
        };
        set_ref(src, b)?;
    }
    Ok(())
}

fn set_ref(src: &mut GitSource, r: String) -> Result<(), String> {
    match &src.reference {
        Some(old) if *old != r => Err(format!("ref conflicts: {old:?} vs {r:?}")),
        _ => {
            src.reference = Some(r);
            Ok(())
        }
    }
}

/// What kind of source an ADD source is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// An http(s) file.
    Http(String),
    /// A git repository.
    Git(GitSource),
}

/// `user@host:path`, git's scp-like syntax.
fn is_scp_like(s: &str) -> bool {
    let Some((user, rest)) = s.split_once('@') else {
        return false;
    };
    let Some((host, _)) = rest.split_once(':') else {
        return false;
    };
    !user.is_empty()
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// Whether `source` is remote, and which kind; `None` for a local path.
pub fn classify(source: &str) -> Option<Remote> {
    let lower = source.to_ascii_lowercase();
    let git = |s: &str| {
        let (remote, fragment) = match s.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (s, None),
        };
        let (reference, subdir) = match fragment {
            None => (None, None),
            Some(f) => {
                let (r, d) = match f.split_once(':') {
                    Some((r, d)) => (r, Some(d)),
                    None => (f, None),
                };
                (
                    Some(r.to_string()).filter(|r| !r.is_empty()),
                    d.map(str::to_string).filter(|d| !d.is_empty()),
                )
            }
        };
        let (remote, query) = match remote.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (remote, None),
        };
        let mut src = GitSource {
            remote: remote.to_string(),
            reference,
            subdir,
            keep_git_dir: None,
            checksum: None,
            submodules: None,
            invalid: None,
        };
        if let Some(q) = query {
            if let Err(e) = apply_query(&mut src, q) {
                src.invalid = Some(e);
            }
        }
        Remote::Git(src)
    };
    if lower.starts_with("git://") || lower.starts_with("ssh://") || is_scp_like(source) {
        return Some(git(source));
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        let path = source.split(['#', '?']).next().unwrap_or(source);
        if path.ends_with(".git") {
            return Some(git(source));
        }
        return Some(Remote::Http(source.to_string()));
    }
    None
}

/// A URL as it may appear in errors and logs: without user-info.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("");
                let _ = u.set_password(None);
            }
            u.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// A downloaded file.
#[derive(Debug, Clone)]
pub struct HttpFile {
    /// Where it is on the host.
    pub path: PathBuf,
    /// Its name in the image (the last element of the URL's path).
    pub name: String,
    /// Its modification time (seconds): `Last-Modified`, else 0.
    pub mtime: i64,
}

/// The file name BuildKit's frontend gives a URL's download.
pub fn url_file_name(url: &str) -> String {
    let name = url::Url::parse(url)
        .ok()
        .and_then(|u| {
            let path = percent_encoding::percent_decode_str(u.path())
                .decode_utf8_lossy()
                .into_owned();
            path.rsplit('/').find(|s| !s.is_empty()).map(str::to_string)
        })
        .unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." {
        "__unnamed__".to_string()
    } else {
        name
    }
}

/// An HTTP-date (`Last-Modified`): IMF-fixdate, RFC 850 or asctime, as
/// seconds since the epoch.
pub fn parse_http_date(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let words: Vec<&str> = s.split_whitespace().collect();
    let (day, month, year, time) = match words.as_slice() {
        // Sun, 06 Nov 1994 08:49:37 GMT
        [_, d, m, y, t, "GMT"] => (*d, *m, y.parse::<i64>().ok()?, *t),
        // Sunday, 06-Nov-94 08:49:37 GMT
        [_, dmy, t, "GMT"] => {
            let mut p = dmy.split('-');
            let (d, m, y) = (p.next()?, p.next()?, p.next()?.parse::<i64>().ok()?);
            (d, m, if y < 70 { 2000 + y } else { 1900 + y }, *t)
        }
        // Sun Nov  6 08:49:37 1994
        [_, m, d, t, y] => (*d, *m, y.parse::<i64>().ok()?, *t),
        _ => return None,
    };
    let day: i64 = day.parse().ok()?;
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let mut hms = time.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, se) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + se)
}

/// The hasher `--checksum` asks for.
enum Hasher {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

impl Hasher {
    fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> String {
        let bytes = match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        crate::hashes::hex(&bytes)
    }
}

fn client() -> Result<reqwest::Client, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A system certificate rustls cannot parse is skipped.
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Redirects are followed (at most 10), never from https to plain http
    // (DESIGN.md, security rule 5).
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        if downgrade {
            let to = redact(attempt.url().as_str());
            attempt.error(format!("refusing a redirect from https to {to}"))
        } else if attempt.previous().len() > 10 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    });
    // The proxy comes from the environment (reqwest's default).
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(redirects)
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// The error text of a reqwest failure with its causes.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Download `url` into the directory `dir` (which must exist), verifying
/// `checksum` (`ALG:HEX`). On a checksum mismatch the file is removed.
pub fn fetch_http(url: &str, checksum: Option<&str>, dir: &Path) -> Result<HttpFile, RemoteError> {
    let shown = redact(url);
    let mut hasher = match checksum.map(|c| c.split_once(':')) {
        None => None,
        Some(Some(("sha256", _))) => Some(Hasher::Sha256(Sha256::new())),
        Some(Some(("sha384", _))) => Some(Hasher::Sha384(Sha384::new())),
        Some(Some(("sha512", _))) => Some(Hasher::Sha512(Sha512::new())),
        Some(_) => {
            return Err(RemoteError::BadChecksum {
                url: shown,
                checksum: checksum.unwrap_or_default().to_string(),
            })
        }
    };
    let name = url_file_name(url);
    let path = dir.join(&name);
    let request = |message: String| RemoteError::Request {
        url: shown.clone(),
        message,
    };
    // A runtime of its own on a thread of its own: the caller may be on a
    // runtime's thread already, where `block_on` is not allowed.
    let mtime = std::thread::scope(|s| {
        s.spawn(|| -> Result<Option<i64>, RemoteError> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| request(e.to_string()))?;
            rt.block_on(async {
                let client = client().map_err(&request)?;
                let mut resp = client
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| request(chain(&e)))?;
                let status = resp.status();
                if !status.is_success() {
                    return Err(RemoteError::Status {
                        url: shown.clone(),
                        status: status.to_string(),
                    });
                }
                let mtime = resp
                    .headers()
                    .get(reqwest::header::LAST_MODIFIED)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_http_date);
                let expected_len = resp.content_length();
                let mut f = io::BufWriter::new(
                    fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                        .map_err(io_err("create", &path))?,
                );
                let mut len = 0u64;
                while let Some(chunk) = resp.chunk().await.map_err(|e| request(chain(&e)))? {
                    len += chunk.len() as u64;
                    if let Some(h) = &mut hasher {
                        h.update(&chunk);
                    }
                    f.write_all(&chunk).map_err(io_err("write", &path))?;
                }
                if expected_len.is_some_and(|n| n != len) {
                    return Err(request(format!(
                        "the body has {len} bytes, Content-Length said {}",
                        expected_len.unwrap_or_default()
                    )));
                }
                let f = f
                    .into_inner()
                    .map_err(|e| io_err("write", &path)(e.into_error()))?;
                f.sync_all().map_err(io_err("write", &path))?;
                Ok(mtime)
            })
        })
        .join()
        .unwrap_or_else(|_| Err(request("the download thread panicked".into())))
    });
    let result = mtime.and_then(|mtime| {
        if let (Some(h), Some(c)) = (hasher, checksum) {
            let (alg, expected) = c.split_once(':').unwrap_or(("", c));
            let actual = h.finish();
            if actual != expected {
                return Err(RemoteError::Checksum {
                    url: shown.clone(),
                    expected: c.to_string(),
                    actual: format!("{alg}:{actual}"),
                });
            }
        }
        let mtime = mtime.unwrap_or(0);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .map_err(io_err("chmod", &path))?;
        Ok(HttpFile {
            path: path.clone(),
            name,
            mtime,
        })
    });
    if result.is_err() {
        let _ = fs::remove_file(&path);
    }
    result
}

/// A checked-out repository.
#[derive(Debug, Clone)]
pub struct GitCheckout {
    /// The work tree on the host.
    pub root: PathBuf,
    /// The directory of it to copy (absolute in the work tree, `/` for
    /// all of it).
    pub subdir: String,
    /// The commit checked out.
    pub commit: String,
}

fn git(url: &str, action: &'static str, dir: &Path, args: &[&str]) -> Result<String, RemoteError> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| RemoteError::Git {
            action,
            url: redact(url),
            message: format!("cannot run git: {e}"),
        })?;
    if !out.status.success() {
        return Err(RemoteError::Git {
            action,
            url: redact(url),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// Clone `src` at its ref into `dir/checkout` (the directory `dir` must
/// exist), keeping `.git` only when `--keep-git-dir` or the URL's query
/// says so (and no subdirectory); the checksum (`--checksum` or the
/// query's) is a prefix the commit must have.
pub fn fetch_git(
    src: &GitSource,
    keep_git_dir: Option<bool>,
    checksum: Option<&str>,
    dir: &Path,
) -> Result<GitCheckout, RemoteError> {
    let url = src.remote.as_str();
    let bad = |message: String| RemoteError::GitSource {
        url: redact(url),
        message,
    };
    if let Some(e) = &src.invalid {
        return Err(bad(e.clone()));
    }
    let keep_git_dir = match (keep_git_dir, src.keep_git_dir) {
        (Some(a), Some(b)) if a != b => {
            return Err(bad("inconsistent keep-git-dir configuration".into()))
        }
        (a, b) => b.or(a).unwrap_or(false),
    };
    let checksum = match (checksum, src.checksum.as_deref()) {
        (Some(a), Some(b)) if a != b => {
            return Err(bad(format!("checksum mismatch {a:?} != {b:?}")))
        }
        (a, b) => b.or(a),
    };
    let subdir = match &src.subdir {
        None => "/".to_string(),
        Some(d) => {
            let clean = crate::tree::clean_abs(d);
            if d.split('/').any(|c| c == "..") {
                return Err(bad(format!("subdirectory {d} leaves the repository")));
            }
            clean
        }
    };
    // Which ref: resolved against the remote's refs (as `git ls-remote`
    // lists them); a hex string that is no ref name is a commit.
    let refs = git(url, "list the refs of", dir, &["ls-remote", "--", url])?;
    let refs: Vec<(&str, &str)> = refs
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(sha, name)| (sha.trim(), name.trim()))
        .collect();
    let find = |name: &str| -> Option<String> {
        // An annotated tag's commit is its peeled entry.
        let peeled = format!("{name}^{{}}");
        refs.iter()
            .find(|(_, n)| *n == peeled)
            .or_else(|| refs.iter().find(|(_, n)| *n == name))
            .map(|(s, _)| s.to_string())
    };
    let (fetch, want) = match src.reference.as_deref() {
        None => (
            "HEAD".to_string(),
            find("HEAD").ok_or_else(|| bad("the repository has no HEAD".into()))?,
        ),
        Some(r) => {
            let candidates = if r.starts_with("refs/") {
                vec![r.to_string()]
            } else {
                vec![
                    format!("refs/tags/{r}"),
                    format!("refs/heads/{r}"),
                    format!("refs/{r}"),
                ]
            };
            match candidates.iter().find_map(|c| find(c).map(|s| (c, s))) {
                Some((name, sha)) => (name.clone(), sha),
                None if is_hex(r) && r.len() >= 7 => (r.to_string(), r.to_string()),
                None => return Err(bad(format!("ref {r} not found"))),
            }
        }
    };
    let checkout = dir.join("checkout");
    fs::create_dir_all(&checkout).map_err(io_err("create", &checkout))?;
    git(url, "clone", &checkout, &["init", "-q", "--template=", "."])?;
    git(url, "clone", &checkout, &["remote", "add", "origin", url])?;
    let shallow = git(
        url,
        "fetch",
        &checkout,
        &["fetch", "-q", "--depth=1", "--no-tags", "origin", &fetch],
    );
    if let Err(e) = shallow {
        // A server that refuses to serve a commit by its hash: fetch
        // everything and look for it there.
        if fetch != want || !is_hex(&fetch) {
            return Err(e);
        }
        git(
            url,
            "fetch",
            &checkout,
            &["fetch", "-q", "--tags", "origin"],
        )?;
    }
    let target = if is_hex(&fetch) && fetch == want {
        format!("{want}^{{commit}}")
    } else {
        "FETCH_HEAD".to_string()
    };
    git(
        url,
        "check out",
        &checkout,
        &["-c", "advice.detachedHead=false", "checkout", "-q", &target],
    )?;
    let commit = git(url, "check out", &checkout, &["rev-parse", "HEAD"])?
        .trim()
        .to_string();
    if let Some(c) = checksum {
        if !commit.starts_with(c) {
            return Err(RemoteError::Checksum {
                url: redact(url),
                expected: c.to_string(),
                actual: commit,
            });
        }
    }
    if src.submodules != Some(false) && checkout.join(".gitmodules").exists() {
        let update = |depth: bool| {
            let mut args = vec![
                "-c",
                "protocol.file.allow=never",
                "submodule",
                "update",
                "--init",
                "--recursive",
                "-q",
            ];
            if depth {
                args.push("--depth=1");
            }
            git(url, "check out the submodules of", &checkout, &args)
        };
        // A server that refuses a commit by its hash gets a full fetch.
        if update(true).is_err() {
            update(false)?;
        }
    }
    if !keep_git_dir || subdir != "/" {
        let g = checkout.join(".git");
        fs::remove_dir_all(&g).map_err(io_err("remove", &g))?;
        remove_git_links(&checkout)?;
    }
    normalize_modes(&checkout)?;
    let host = checkout.join(subdir.trim_start_matches('/'));
    match fs::metadata(&host) {
        Ok(m) if m.is_dir() => {}
        _ => return Err(bad(format!("subdirectory {subdir} not found"))),
    }
    Ok(GitCheckout {
        root: checkout,
        subdir,
        commit,
    })
}

/// Remove the `.git` files (links to the parent's `.git/modules`) of the
/// submodules below `dir`.
fn remove_git_links(dir: &Path) -> Result<(), RemoteError> {
    for e in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let e = e.map_err(io_err("list", dir))?;
        let path = e.path();
        let t = e.file_type().map_err(io_err("read", &path))?;
        if t.is_dir() {
            remove_git_links(&path)?;
        } else if e.file_name() == ".git" {
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
        }
    }
    Ok(())
}

/// Modes as git records them, whatever the umask: 0755 for directories
/// and executables, 0644 for other files (symlinks untouched).
fn normalize_modes(dir: &Path) -> Result<(), RemoteError> {
    for e in fs::read_dir(dir).map_err(io_err("list", dir))? {
        let e = e.map_err(io_err("list", dir))?;
        let path = e.path();
        let m = fs::symlink_metadata(&path).map_err(io_err("read", &path))?;
        let mode = if m.is_dir() {
            normalize_modes(&path)?;
            0o755
        } else if m.is_file() {
            if m.permissions().mode() & 0o100 != 0 {
                0o755
            } else {
                0o644
            }
        } else {
            continue;
        };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(io_err("chmod", &path))?;
    }
    Ok(())
}

/// A fresh directory for one step's downloads, removed when dropped.
#[derive(Debug)]
pub struct FetchDir {
    path: PathBuf,
}

impl FetchDir {
    /// Make one under `parent`.
    pub fn new(parent: &Path) -> Result<FetchDir, RemoteError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = parent.join(format!(
            "kiln-add-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        fs::create_dir(&path).map_err(io_err("create", &path))?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o700))
            .map_err(io_err("chmod", &path))?;
        Ok(FetchDir { path })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FetchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_sources() {
        assert_eq!(classify("foo/bar"), None);
        assert_eq!(classify("/abs"), None);
        assert_eq!(
            classify("https://example.com/a/b.tar.gz"),
            Some(Remote::Http("https://example.com/a/b.tar.gz".into()))
        );
        assert_eq!(
            classify("https://example.com/r.git#v1:sub/dir"),
            Some(Remote::Git(GitSource {
                remote: "https://example.com/r.git".into(),
                reference: Some("v1".into()),
                subdir: Some("sub/dir".into()),
                keep_git_dir: None,
                checksum: None,
                submodules: None,
                invalid: None,
            }))
        );
        assert_eq!(
            classify("git@github.com:o/r"),
            Some(Remote::Git(GitSource {
                remote: "git@github.com:o/r".into(),
                reference: None,
                subdir: None,
                keep_git_dir: None,
                checksum: None,
                submodules: None,
                invalid: None,
            }))
        );
        assert_eq!(
            classify("git://127.0.0.1:9418/r.git#:d"),
            Some(Remote::Git(GitSource {
                remote: "git://127.0.0.1:9418/r.git".into(),
                reference: None,
                subdir: Some("d".into()),
                keep_git_dir: None,
                checksum: None,
                submodules: None,
                invalid: None,
            }))
        );
        assert!(matches!(
            classify("http://h/x.git?ref=main"),
            Some(Remote::Git(_))
        ));
    }

    #[test]
    fn git_query_form() {
        let Some(Remote::Git(g)) =
            classify("https://h/r.git?tag=v1&subdir=a%2Fb&keep-git-dir=true")
        else {
            panic!("not git");
        };
        assert_eq!(g.remote, "https://h/r.git");
        assert_eq!(g.reference.as_deref(), Some("refs/tags/v1"));
        assert_eq!(g.subdir.as_deref(), Some("a/b"));
        assert_eq!(g.keep_git_dir, Some(true));
        assert_eq!(g.invalid, None);
        let Some(Remote::Git(g)) = classify("https://h/r.git?branch=main&tag=v1") else {
            panic!("not git");
        };
        assert_eq!(g.invalid.as_deref(), Some("branch conflicts with tag"));
        let Some(Remote::Git(g)) = classify("https://h/r.git?ref=a#b") else {
            panic!("not git");
        };
        assert!(g.invalid.unwrap().contains("ref conflicts"));
        let Some(Remote::Git(g)) = classify("git://h/r?color=red") else {
            panic!("not git");
        };
        assert!(g.invalid.unwrap().contains("unexpected query"));
    }

    #[test]
    fn names_downloads() {
        assert_eq!(url_file_name("https://h/a/b.tar.gz"), "b.tar.gz");
        assert_eq!(url_file_name("https://h/a/b%20c?x=1#f"), "b c");
        assert_eq!(url_file_name("https://h/"), "__unnamed__");
        assert_eq!(url_file_name("https://h"), "__unnamed__");
        assert_eq!(url_file_name("https://h/dir/"), "dir");
    }

    #[test]
    fn parses_http_dates() {
        // `date -u -d 'Sun, 06 Nov 1994 08:49:37 GMT' +%s`
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(1_709_164_800)
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact("https://u:p@h/x"), "https://h/x");
    }
}
