//! Platforms: `os/architecture[/variant]`, normalised the way containerd's
//! `platforms.Parse` and `Normalize` do, so that `linux/x86_64`,
//! `linux/amd64` and `amd64` name the same thing.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// An OS, architecture and optional variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// `linux`, `windows`, …
    pub os: String,
    /// `amd64`, `arm64`, `arm`, `386`, …
    pub architecture: String,
    /// `v7`, `v8`, … (empty when none).
    pub variant: String,
}

/// A platform string that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlatformError {
    /// Empty, too many parts or a part with characters outside `[a-z0-9_-]`.
    #[error("invalid platform `{text}`: expected os[/arch[/variant]]")]
    Invalid {
        /// What was given.
        text: String,
    },
    /// An OS this kiln does not know.
    #[error("invalid platform `{text}`: unknown operating system or architecture `{part}`")]
    Unknown {
        /// What was given.
        text: String,
        /// The part not understood.
        part: String,
    },
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
];

const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    let (a, v) = match (arch, variant) {
        ("i386", _) => ("386", ""),
        ("x86_64" | "x86-64" | "amd64", "") => ("amd64", ""),
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64", v),
        ("aarch64" | "arm64", "8" | "v8" | "") => ("arm64", ""),
        ("aarch64" | "arm64", v) => ("arm64", v),
        ("armhf", _) => ("arm", "v7"),
        ("armel", _) => ("arm", "v6"),
        ("arm", "" | "7") => ("arm", "v7"),
        ("arm", "5" | "6" | "8") => ("arm", ""),
        (a, v) => (a, v),
    };
    let v = match (a, variant) {
        ("arm", "5") => "v5",
        ("arm", "6") => "v6",
        ("arm", "8") => "v8",
        _ => v,
    };
    (a.to_string(), v.to_string())
}

impl Platform {
    /// The platform kiln itself runs on.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = if architecture == "arm" { "v7" } else { "" };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: architecture.to_string(),
            variant: variant.to_string(),
        }
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || PlatformError::Invalid {
            text: text.to_string(),
        };
        let lower = text.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.len() > 3
            || parts.iter().any(|p| {
                p.is_empty()
                    || !p
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
        {
            return Err(invalid());
        }
        let unknown = |part: &str| PlatformError::Unknown {
            text: text.to_string(),
            part: part.to_string(),
        };
        let known_arch = |a: &str| {
            let (n, _) = normalize_arch(a, "");
            KNOWN_ARCH.contains(&n.as_str())
        };
        let host = Platform::host();
        let (os, arch, variant) = match parts.as_slice() {
            [one] if KNOWN_OS.contains(one) => (
                one.to_string(),
                host.architecture.clone(),
                host.variant.clone(),
            ),
            [one] if known_arch(one) => (host.os.clone(), one.to_string(), String::new()),
            [one] => return Err(unknown(one)),
            [os, arch] => (os.to_string(), arch.to_string(), String::new()),
            [os, arch, variant] => (os.to_string(), arch.to_string(), variant.to_string()),
            _ => return Err(invalid()),
        };
        let os = if os == "macos" {
            "darwin".to_string()
        } else {
            os
        };
        if !KNOWN_OS.contains(&os.as_str()) {
            return Err(unknown(&os));
        }
        let (architecture, variant) = normalize_arch(&arch, &variant);
        if !KNOWN_ARCH.contains(&architecture.as_str()) {
            return Err(unknown(&arch));
        }
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        s.parse::<Platform>()
            .map(|p| p.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn normalisation() {
        assert_eq!(p("linux/amd64"), "linux/amd64");
        assert_eq!(p("linux/x86_64"), "linux/amd64");
        assert_eq!(p("Linux/AMD64"), "linux/amd64");
        assert_eq!(p("linux/aarch64"), "linux/arm64");
        assert_eq!(p("linux/arm64/v8"), "linux/arm64");
        assert_eq!(p("linux/arm"), "linux/arm/v7");
        assert_eq!(p("linux/armhf"), "linux/arm/v7");
        assert_eq!(p("linux/arm/v6"), "linux/arm/v6");
        assert_eq!(p("linux/386"), "linux/386");
        assert_eq!(p("windows/amd64"), "windows/amd64");
        assert_eq!(p("linux"), Platform::host().to_string());
    }

    #[test]
    fn rejects_nonsense() {
        assert!(p("").starts_with("error"));
        assert!(p("linux/amd64/v1/x").starts_with("error"));
        assert!(p("linux/banana").starts_with("error"));
        assert!(p("plan10/amd64").starts_with("error"));
        assert!(p("linux//amd64").starts_with("error"));
        assert!(p("$TARGETPLATFORM").starts_with("error"));
    }
}
