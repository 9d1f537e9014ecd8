//! Registry credentials in Docker's own places, so `docker login` and
//! `kiln login` share them: `config.json` in `$DOCKER_CONFIG` (default
//! `~/.docker`) with its `auths` map (base64 `user:password`), and the
//! credential helpers it names (`credsStore` for all registries,
//! `credHelpers` per registry), run as `docker-credential-NAME get|store|erase`
//! with the server name or a JSON document on standard input.
//!
//! Docker Hub is filed under `https://index.docker.io/v1/`, every other
//! registry under its `host[:port]`. Secrets never reach a log line, an
//! error message or a `Debug` rendering ([`Secret`] redacts itself); the
//! config file is rewritten atomically with mode 0600, keeping every key
//! kiln does not know.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use kiln_oci::reference::DOCKER_HUB;
use serde_json::{Map, Value};
use thiserror::Error;

/// The key Docker files Docker Hub's credentials under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// A password or token: shown as `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A user name and password (or identity token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user.
    pub username: String,
    /// The password.
    pub password: Secret,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// Credentials that cannot be read or written.
#[derive(Debug, Error)]
pub enum CredentialError {
    /// config.json cannot be read or written.
    #[error("failed to {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// config.json is not what Docker writes.
    #[error("invalid Docker config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong (never the secret).
        message: String,
    },
    /// A helper could not be run or failed.
    #[error("credential helper docker-credential-{helper} {verb} failed: {message}")]
    Helper {
        /// Its name.
        helper: String,
        /// get, store or erase.
        verb: &'static str,
        /// What went wrong (its standard error, first line).
        message: String,
    },
}

/// Where credentials are looked up.
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// The credentials for `registry` (`docker.io`, `host:5000`), if any.
    fn get(&self, registry: &str) -> Result<Option<Credentials>, CredentialError>;
}

/// No credentials at all (anonymous access).
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

impl CredentialSource for Anonymous {
    fn get(&self, _: &str) -> Result<Option<Credentials>, CredentialError> {
        Ok(None)
    }
}

/// Docker's `config.json`, as found.
#[derive(Clone)]
pub struct DockerConfig {
    path: PathBuf,
    doc: Map<String, Value>,
}

/// Only the path and the registries named: the document holds secrets.
impl fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registries: Vec<&String> = match self.doc.get("auths") {
            Some(Value::Object(a)) => a.keys().collect(),
            _ => Vec::new(),
        };
        f.debug_struct("DockerConfig")
            .field("path", &self.path)
            .field("registries", &registries)
            .finish_non_exhaustive()
    }
}

/// The key a registry's credentials are filed under.
pub fn config_key(registry: &str) -> String {
    if registry == DOCKER_HUB || registry == "index.docker.io" || registry == DOCKER_HUB_KEY {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// `https://host/`, `http://host/v1/` and the like, as older Docker
/// versions filed them, reduced to `host[:port]`.
fn normalise_key(key: &str) -> String {
    if key == DOCKER_HUB_KEY {
        return key.to_string();
    }
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k);
    config_key(host)
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`.
    pub fn default_path() -> PathBuf {
        let dir = std::env::var_os("DOCKER_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        dir.join("config.json")
    }

    /// Read the file at the default path (empty when missing).
    pub fn load_default() -> Result<DockerConfig, CredentialError> {
        Self::load(&Self::default_path())
    }

    /// Read `path` (empty when missing).
    pub fn load(path: &Path) -> Result<DockerConfig, CredentialError> {
        let doc = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(CredentialError::Invalid {
                        path: path.to_path_buf(),
                        message: "not a JSON object".into(),
                    })
                }
                Err(e) => {
                    return Err(CredentialError::Invalid {
                        path: path.to_path_buf(),
                        // Line and column only: serde's message may quote
                        // the text around the error.
                        message: format!("not JSON (line {}, column {})", e.line(), e.column()),
                    });
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(source) => {
                return Err(CredentialError::Io {
                    action: "read",
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(DockerConfig {
            path: path.to_path_buf(),
            doc,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The helper for `registry`: `credHelpers` first, then `credsStore`.
    pub fn helper(&self, registry: &str) -> Option<String> {
        let key = config_key(registry);
        let host = registry.to_string();
        if let Some(Value::Object(h)) = self.doc.get("credHelpers") {
            for k in [&key, &host] {
                if let Some(Value::String(name)) = h.get(k.as_str()) {
                    if !name.is_empty() {
                        return Some(name.clone());
                    }
                }
            }
        }
        match self.doc.get("credsStore") {
            Some(Value::String(name)) if !name.is_empty() => Some(name.clone()),
            _ => None,
        }
    }

    /// The stored credentials for `registry`.
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>, CredentialError> {
        let key = config_key(registry);
        if let Some(helper) = self.helper(registry) {
            return helper_get(&helper, &key);
        }
        let Some(Value::Object(auths)) = self.doc.get("auths") else {
            return Ok(None);
        };
        let entry = auths
            .get(&key)
            .or_else(|| {
                auths
                    .iter()
                    .find(|(k, _)| normalise_key(k) == key)
                    .map(|(_, v)| v)
            })
            .and_then(Value::as_object);
        let Some(entry) = entry else {
            return Ok(None);
        };
        if let Some(Value::String(auth)) = entry.get("auth") {
            if !auth.is_empty() {
                return decode_auth(auth)
                    .map(Some)
                    .ok_or_else(|| CredentialError::Invalid {
                        path: self.path.clone(),
                        message: format!("auths.{key:?}.auth is not base64 of user:password"),
                    });
            }
        }
        match (entry.get("username"), entry.get("password")) {
            (Some(Value::String(u)), Some(Value::String(p))) => Ok(Some(Credentials {
                username: u.clone(),
                password: Secret::new(p.clone()),
            })),
            _ => Ok(None),
        }
    }

    /// Store credentials for `registry` (in its helper, or in `auths`) and
    /// save the file.
    pub fn store(&mut self, registry: &str, creds: &Credentials) -> Result<(), CredentialError> {
        let key = config_key(registry);
        if let Some(helper) = self.helper(registry) {
            let input = serde_json::json!({
                "ServerURL": key,
                "Username": creds.username,
                "Secret": creds.password.expose(),
            });
            run_helper(&helper, "store", input.to_string().as_bytes())?;
            // Docker leaves an empty entry so `auths` lists the registry.
            self.auths_mut().insert(key, Value::Object(Map::new()));
        } else {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                creds.username,
                creds.password.expose()
            ));
            let mut entry = Map::new();
            entry.insert("auth".into(), Value::String(auth));
            self.auths_mut().insert(key, Value::Object(entry));
        }
        self.save()
    }

    /// Remove the credentials for `registry`; whether there were any.
    pub fn erase(&mut self, registry: &str) -> Result<bool, CredentialError> {
        let key = config_key(registry);
        let mut found = false;
        if let Some(helper) = self.helper(registry) {
            found = helper_get(&helper, &key)?.is_some();
            if found {
                run_helper(&helper, "erase", key.as_bytes())?;
            }
        }
        let auths = self.auths_mut();
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| normalise_key(k) == key)
            .cloned()
            .collect();
        for k in keys {
            auths.remove(&k);
            found = true;
        }
        self.save()?;
        Ok(found)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let v = self
            .doc
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !v.is_object() {
            *v = Value::Object(Map::new());
        }
        match v {
            Value::Object(m) => m,
            _ => unreachable!("replaced by an object just above"),
        }
    }

    /// Write the file atomically, mode 0600.
    fn save(&self) -> Result<(), CredentialError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let io = |action| {
            let path = self.path.clone();
            move |source| CredentialError::Io {
                action,
                path,
                source,
            }
        };
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("create the directory of"))?;
        let tmp = dir.join(format!(".config.json.tmp-{}", std::process::id()));
        let mut text =
            serde_json::to_vec_pretty(&self.doc).map_err(|e| CredentialError::Invalid {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
        text.push(b'\n');
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io("write"))
    }
}

impl CredentialSource for DockerConfig {
    fn get(&self, registry: &str) -> Result<Option<Credentials>, CredentialError> {
        DockerConfig::get(self, registry)
    }
}

fn decode_auth(auth: &str) -> Option<Credentials> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (u, p) = text.split_once(':')?;
    Some(Credentials {
        username: u.to_string(),
        password: Secret::new(p),
    })
}

fn helper_get(helper: &str, key: &str) -> Result<Option<Credentials>, CredentialError> {
    let out = match run_helper(helper, "get", key.as_bytes()) {
        Ok(out) => out,
        // The protocol's way of saying "nothing stored".
        Err(CredentialError::Helper { message, .. })
            if message.contains("credentials not found") =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_slice(&out).map_err(|_| CredentialError::Helper {
        helper: helper.to_string(),
        verb: "get",
        message: "its output is not JSON".into(),
    })?;
    let user = v.get("Username").and_then(Value::as_str).unwrap_or("");
    let secret = v.get("Secret").and_then(Value::as_str).unwrap_or("");
    if secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: user.to_string(),
        password: Secret::new(secret),
    }))
}

fn run_helper(helper: &str, verb: &'static str, input: &[u8]) -> Result<Vec<u8>, CredentialError> {
    let fail = |message: String| CredentialError::Helper {
        helper: helper.to_string(),
        verb,
        message,
    };
    if helper.contains('/') || helper.is_empty() {
        return Err(fail("invalid helper name".into()));
    }
    let mut child = Command::new(format!("docker-credential-{helper}"))
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).map_err(|e| fail(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        // Helpers print their error on stdout (the protocol) or stderr.
        let text = if out.stdout.is_empty() {
            out.stderr
        } else {
            out.stdout
        };
        let text = String::from_utf8_lossy(&text);
        let first = text.lines().next().unwrap_or("").trim();
        return Err(fail(format!("{} ({})", first, out.status)));
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_round_trip_and_keep_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d/config.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"auths":{"https://old.example:5000/v1/":{"auth":"dTpw"}},"psFormat":"x"}"#,
        )
        .unwrap();
        let mut c = DockerConfig::load(&path).unwrap();
        let got = c.get("old.example:5000").unwrap().unwrap();
        assert_eq!(got.username, "u");
        assert_eq!(got.password.expose(), "p");
        let creds = Credentials {
            username: "alice".into(),
            password: Secret::new("s3cret:with:colons"),
        };
        c.store("docker.io", &creds).unwrap();
        let c = DockerConfig::load(&path).unwrap();
        assert_eq!(c.get("docker.io").unwrap(), Some(creds.clone()));
        assert_eq!(c.get("index.docker.io").unwrap(), Some(creds));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("https://index.docker.io/v1/"));
        assert!(text.contains("psFormat"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let mut c = DockerConfig::load(&path).unwrap();
        assert!(c.erase("old.example:5000").unwrap());
        assert!(!c.erase("old.example:5000").unwrap());
        assert_eq!(c.get("old.example:5000").unwrap(), None);
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Credentials {
            username: "bob".into(),
            password: Secret::new("hunter2"),
        };
        let s = format!("{c:?}");
        assert!(s.contains("bob") && !s.contains("hunter2"), "{s}");
        // The whole config file, and a client holding it, neither.
        let dir = tempfile::tempdir().unwrap();
        let mut config = DockerConfig::load(&dir.path().join("config.json")).unwrap();
        config.store("h:1", &c).unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode("bob:hunter2");
        let client = crate::Client::new(
            crate::RegistriesConf::default(),
            Box::new(config),
            crate::ClientOptions::default(),
        );
        client.set_credentials("h:2", c.clone());
        let s = format!("{client:?}");
        assert!(s.contains("h:1"), "{s}");
        assert!(!s.contains("hunter2") && !s.contains(&encoded), "{s}");
    }

    #[test]
    fn bad_files_name_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"auths":{"h:1":{"auth":"not base64 hunter2"}}}"#).unwrap();
        let c = DockerConfig::load(&path).unwrap();
        let e = c.get("h:1").unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        std::fs::write(&path, "{\"auths\": hunter2").unwrap();
        let e = DockerConfig::load(&path).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn helper_protocol() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let store = dir.path().join("store");
        // A helper that keeps one credential in a file.
        let script = format!(
            r#"#!/bin/sh
case "$1" in
  get) read -r server; if [ -f {s} ]; then cat {s}; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store) cat > {s} ;;
  erase) rm -f {s} ;;
esac
"#,
            s = store.display()
        );
        let helper = bin.join("docker-credential-kilntest");
        std::fs::write(&helper, script).unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, r#"{"credHelpers":{"reg:1":"kilntest"}}"#).unwrap();
        // PATH is process-wide: the helper is found through an absolute
        // directory prepended once, which no other test depends on.
        let old = std::env::var("PATH").unwrap_or_default();
        std::env::set_var("PATH", format!("{}:{old}", bin.display()));
        let mut c = DockerConfig::load(&path).unwrap();
        assert_eq!(c.get("reg:1").unwrap(), None);
        let creds = Credentials {
            username: "u".into(),
            password: Secret::new("p"),
        };
        c.store("reg:1", &creds).unwrap();
        assert_eq!(c.get("reg:1").unwrap(), Some(creds));
        // Not in the file itself.
        assert!(!std::fs::read_to_string(&path).unwrap().contains("\"auth\""));
        assert!(c.erase("reg:1").unwrap());
        assert_eq!(c.get("reg:1").unwrap(), None);
        // Other registries are not sent to the helper.
        assert_eq!(c.get("other:1").unwrap(), None);
    }
}
