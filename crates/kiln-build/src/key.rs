//! Cache keys, format `cache-v1`.
//!
//! A key is the SHA-256 of a sequence of named fields, each written as
//! `len(name) name len(value) value` (lengths as 8-byte little-endian
//! integers, so no two different sequences hash alike), starting with the
//! format version and the step's kind, then its parent's key, then the
//! step's full definition in a fixed order (see `solve`): for RUN the
//! command, environment (proxy args excepted, as in BuildKit), user,
//! working directory, mounts (a bind's files by content: the bound stage's
//! key, the image's config digest, a content hash of the bound context
//! path), network, platform and the build args it sees; for COPY/ADD the
//! resolved
//! destination, flags and a content hash of exactly the files selected
//! (paths, modes, owners as the step sets them, bytes; never mtimes); for
//! WORKDIR the path and user; for a base image its config digest and
//! platform. `COPY --link` keys have no parent (the layer does not depend
//! on what is below it). Secret values never enter a key: a secret mount contributes
//! its id and target only. Changing what a key covers means a new
//! version string, so old records are never misread.

use std::collections::BTreeMap;

use sha2::{Digest as _, Sha256};

/// The key format version.
pub const VERSION: &str = "cache-v1";

/// Builds one cache key, and keeps readable notes of its inputs (for
/// `--explain-cache`: which input of a step that missed changed).
#[derive(Debug, Clone)]
pub struct KeyHasher {
    h: Sha256,
    notes: BTreeMap<String, String>,
}

impl KeyHasher {
    /// A key of `kind` (`from`, `copy`, `run`, …) on top of `parent`.
    pub fn new(kind: &str, parent: Option<&str>) -> KeyHasher {
        let mut k = KeyHasher {
            h: Sha256::new(),
            notes: BTreeMap::new(),
        };
        k.field("version", VERSION.as_bytes());
        k.field("kind", kind.as_bytes());
        k.field("parent", parent.unwrap_or("").as_bytes());
        k.note("parent", parent.unwrap_or(""));
        k
    }

    /// Note an input by name for explanations (not hashed: the same
    /// information goes in through [`KeyHasher::field`]).
    pub fn note(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.notes.insert(name.into(), value.into());
    }

    /// The notes taken so far.
    pub fn notes(&self) -> &BTreeMap<String, String> {
        &self.notes
    }

    /// Add a named field.
    pub fn field(&mut self, name: &str, value: &[u8]) {
        self.h.update((name.len() as u64).to_le_bytes());
        self.h.update(name.as_bytes());
        self.h.update((value.len() as u64).to_le_bytes());
        self.h.update(value);
    }

    /// Add a list of strings as one field per item, with a count first.
    pub fn list(&mut self, name: &str, items: &[String]) {
        self.field(name, items.len().to_string().as_bytes());
        for i in items {
            self.field(name, i.as_bytes());
        }
    }

    /// The key: `sha256:<hex>`.
    pub fn finish(self) -> String {
        format!("sha256:{}", crate::hashes::hex(&self.h.finalize()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fields_are_framed() {
        let key = |a: &str, b: &str| {
            let mut k = KeyHasher::new("x", None);
            k.field(a, b.as_bytes());
            k.finish()
        };
        assert_ne!(key("ab", "c"), key("a", "bc"));
        assert_eq!(key("a", "b"), key("a", "b"));
        let mut p = KeyHasher::new("x", Some("sha256:1"));
        p.field("a", b"b");
        assert_ne!(p.finish(), key("a", "b"));
    }
}
