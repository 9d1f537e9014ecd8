//! Content digests (`sha256:<64 hex>`), parsed strictly: a digest names
//! bytes in the store and on the wire, so a malformed one is refused, never
//! normalised (security rule 4 of DESIGN.md).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// A digest algorithm kiln accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, 64 hex digits (what kiln writes).
    Sha256,
    /// SHA-384, 96 hex digits.
    Sha384,
    /// SHA-512, 128 hex digits.
    Sha512,
}

impl Algorithm {
    /// The name used in digests.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Hex digits of an encoded digest.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

/// A string that is not a digest.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DigestError {
    /// No `algorithm:` prefix.
    #[error("invalid digest `{text}`: expected ALGORITHM:HEX")]
    Format {
        /// What was given.
        text: String,
    },
    /// An algorithm other than sha256/384/512.
    #[error("invalid digest `{text}`: unsupported algorithm `{algorithm}`")]
    Algorithm {
        /// What was given.
        text: String,
        /// The algorithm.
        algorithm: String,
    },
    /// Wrong length or not lowercase hex.
    #[error("invalid digest `{text}`: {algorithm} needs {expected} lowercase hex digits")]
    Encoded {
        /// What was given.
        text: String,
        /// The algorithm.
        algorithm: &'static str,
        /// Digits expected.
        expected: usize,
    },
}

impl Digest {
    /// A SHA-256 digest from its 32 bytes.
    pub fn sha256_from_bytes(bytes: [u8; 32]) -> Digest {
        let mut hex = String::with_capacity(64);
        for b in bytes {
            hex.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        Digest {
            algorithm: Algorithm::Sha256,
            hex,
        }
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded (hex) part.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as Docker shows image ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((alg, hex)) = text.split_once(':') else {
            return Err(DigestError::Format {
                text: text.to_string(),
            });
        };
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha384" => Algorithm::Sha384,
            "sha512" => Algorithm::Sha512,
            _ => {
                return Err(DigestError::Algorithm {
                    text: text.to_string(),
                    algorithm: alg.to_string(),
                })
            }
        };
        if hex.len() != algorithm.hex_len()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::Encoded {
                text: text.to_string(),
                algorithm: algorithm.name(),
                expected: algorithm.hex_len(),
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn strict_parsing() {
        let d: Digest = GOOD.parse().expect("valid");
        assert_eq!(d.to_string(), GOOD);
        assert_eq!(d.short(), "e3b0c44298fc");
        for bad in [
            "",
            "sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:../../etc/passwd",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }

    #[test]
    fn from_bytes_and_serde() {
        let d = Digest::sha256_from_bytes([0xab; 32]);
        assert_eq!(d.hex(), "ab".repeat(32));
        let json = serde_json::to_string(&d).expect("serialises");
        assert_eq!(serde_json::from_str::<Digest>(&json).expect("parses"), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:zz\"").is_err());
    }
}
