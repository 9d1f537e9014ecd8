//! Registry authentication: the `WWW-Authenticate` challenge (RFC 7235
//! syntax, as Distribution's token spec uses it), the token endpoint's
//! answer, and the per-scope token cache.
//!
//! A registry answers 401 with `Bearer realm="…",service="…",scope="…"`
//! (get a token from the realm, with basic credentials when there are any,
//! anonymously otherwise) or `Basic realm="…"` (send the credentials on
//! every request). Tokens are cached per host and scope until shortly
//! before they expire. This module parses and caches; the client does the
//! HTTP.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Deserialize;
use thiserror::Error;

use crate::credentials::Secret;

/// A challenge or token answer that cannot be understood.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    /// The header does not parse.
    #[error("invalid WWW-Authenticate header: {reason}")]
    Challenge {
        /// Why.
        reason: &'static str,
    },
    /// The token endpoint's answer has no token.
    #[error("the token service at {realm} answered without a token")]
    NoToken {
        /// The realm.
        realm: String,
    },
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `bearer` or `basic` (lowercased).
    pub scheme: String,
    /// Parameters, names lowercased.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    /// A parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parse a `WWW-Authenticate` value into its challenges.
pub fn parse_challenges(header: &str) -> Result<Vec<Challenge>, AuthError> {
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        p.skip_ws_commas();
        if p.done() {
            break;
        }
        let scheme = p.token().ok_or(AuthError::Challenge {
            reason: "expected an auth scheme",
        })?;
        let mut params = BTreeMap::new();
        loop {
            p.skip_ws();
            // A parameter is `name=value`; a bare token starts the next
            // challenge.
            let save = p.i;
            p.skip_ws_commas();
            if p.done() {
                break;
            }
            let Some(name) = p.token() else {
                return Err(AuthError::Challenge {
                    reason: "expected a parameter name",
                });
            };
            p.skip_ws();
            if !p.eat(b'=') {
                p.i = save;
                break;
            }
            p.skip_ws();
            let value = if p.peek() == Some(b'"') {
                p.quoted().ok_or(AuthError::Challenge {
                    reason: "unterminated quoted string",
                })?
            } else {
                p.token().ok_or(AuthError::Challenge {
                    reason: "expected a parameter value",
                })?
            };
            params.insert(name.to_ascii_lowercase(), value);
            p.skip_ws();
            if !p.done() && p.peek() != Some(b',') {
                return Err(AuthError::Challenge {
                    reason: "expected `,` between parameters",
                });
            }
        }
        out.push(Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params,
        });
    }
    if out.is_empty() {
        return Err(AuthError::Challenge {
            reason: "no challenge",
        });
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_ws_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    /// RFC 7230 `token` (plus `/` and `=`-free token68 characters).
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn quoted(&mut self) -> Option<String> {
        if !self.eat(b'"') {
            return None;
        }
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(String::from_utf8_lossy(&out).into_owned());
                }
                b'\\' => {
                    self.i += 1;
                    out.push(self.peek()?);
                    self.i += 1;
                }
                c => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

/// The token endpoint's JSON answer.
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token.
    pub value: Secret,
    /// When it is considered expired (a little before the server says).
    pub expires: Instant,
}

impl Token {
    /// Parse the token endpoint's answer.
    pub fn from_answer(body: &[u8], realm: &str) -> Result<Token, AuthError> {
        let no_token = || AuthError::NoToken {
            realm: realm.to_string(),
        };
        let a: TokenAnswer = serde_json::from_slice(body).map_err(|_| no_token())?;
        let value = a
            .token
            .filter(|t| !t.is_empty())
            .or(a.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(no_token)?;
        // The spec's default lifetime is 60 s; keep a margin for the time
        // a request takes.
        let secs = a.expires_in.unwrap_or(60).max(60);
        Ok(Token {
            value: Secret::new(value),
            expires: Instant::now() + Duration::from_secs(secs.saturating_sub(10)),
        })
    }

    /// Whether it may still be used.
    pub fn fresh(&self) -> bool {
        Instant::now() < self.expires
    }
}

/// The scope for pulling from a repository.
pub fn pull_scope(path: &str) -> String {
    format!("repository:{path}:pull")
}

/// The scope for pushing to a repository.
pub fn push_scope(path: &str) -> String {
    format!("repository:{path}:pull,push")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_challenge() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn several_challenges_and_odd_spacing() {
        let c = parse_challenges(
            r#"Basic realm="Registry Realm" , Bearer realm = "https://a/t", error="invalid_token", Negotiate"#,
        )
        .unwrap();
        let schemes: Vec<&str> = c.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["basic", "bearer", "negotiate"]);
        assert_eq!(c[0].param("realm"), Some("Registry Realm"));
        assert_eq!(c[1].param("realm"), Some("https://a/t"));
        assert_eq!(c[1].param("error"), Some("invalid_token"));
        let c = parse_challenges(r#"Bearer realm="a\"b",service=svc"#).unwrap();
        assert_eq!(c[0].param("realm"), Some("a\"b"));
        assert_eq!(c[0].param("service"), Some("svc"));
    }

    #[test]
    fn bad_challenges() {
        for bad in [
            "",
            "   ",
            r#"Bearer realm="open"#,
            "Bearer realm=\"a\" junk",
        ] {
            assert!(parse_challenges(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn token_answers() {
        let t = Token::from_answer(br#"{"token":"abc","expires_in":300}"#, "r").unwrap();
        assert_eq!(t.value.expose(), "abc");
        assert!(t.fresh());
        let t = Token::from_answer(br#"{"access_token":"xyz"}"#, "r").unwrap();
        assert_eq!(t.value.expose(), "xyz");
        assert!(Token::from_answer(br#"{"token":""}"#, "r").is_err());
        assert!(Token::from_answer(b"<html>", "r").is_err());
    }
}
