//! Build checks: the rules of BuildKit's Dockerfile linter, their
//! configuration (`# check=skip=…;error=true;experimental=…`) and the
//! findings they produce.
//!
//! The rules themselves fire where the information is: the parser warns of
//! empty continuation lines, [`crate::instructions`] checks what one
//! instruction shows, [`crate::lower`] checks what needs scoping and the
//! stage graph. This module only names the rules, formats their messages and
//! decides which are enabled. Messages and names are BuildKit's, so that
//! `# check=skip=RuleName` written for Docker works unchanged.

use std::collections::BTreeSet;
use std::fmt;

use thiserror::Error;

use crate::span::Span;

/// A build check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Stage names should be lowercase.
    StageNameCasing,
    /// The `as` keyword should match the case of `from`.
    FromAsCasing,
    /// Empty continuation lines.
    NoEmptyContinuation,
    /// All instructions in one casing.
    ConsistentInstructionCasing,
    /// Stage names should be unique.
    DuplicateStageName,
    /// `context` and `scratch` are not stage names.
    ReservedStageName,
    /// Shell-form CMD / ENTRYPOINT.
    JsonArgsRecommended,
    /// MAINTAINER is deprecated.
    MaintainerDeprecated,
    /// FROM uses an ARG that is not declared.
    UndefinedArgInFrom,
    /// Relative WORKDIR before any absolute one.
    WorkdirRelativePath,
    /// A variable used before it is defined.
    UndefinedVar,
    /// Several CMD / ENTRYPOINT / HEALTHCHECK in one stage.
    MultipleInstructionsDisallowed,
    /// `ENV key value` instead of `ENV key=value`.
    LegacyKeyValueFormat,
    /// A global ARG default that makes FROM empty or invalid.
    InvalidDefaultArgInFrom,
    /// `FROM --platform=linux/amd64` with a constant.
    FromPlatformFlagConstDisallowed,
    /// COPY of a file that `.dockerignore` excludes.
    CopyIgnoredFile,
    /// ARG or ENV named like a secret.
    SecretsUsedInArgOrEnv,
    /// `FROM --platform=$TARGETPLATFORM`.
    RedundantTargetPlatform,
    /// A comment above FROM/ARG that is not `# name description`.
    InvalidDefinitionDescription,
    /// `EXPOSE 80/TCP`.
    ExposeProtoCasing,
    /// `EXPOSE 127.0.0.1:80:80`.
    ExposeInvalidFormat,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 21] = [
        Rule::StageNameCasing,
        Rule::FromAsCasing,
        Rule::NoEmptyContinuation,
        Rule::ConsistentInstructionCasing,
        Rule::DuplicateStageName,
        Rule::ReservedStageName,
        Rule::JsonArgsRecommended,
        Rule::MaintainerDeprecated,
        Rule::UndefinedArgInFrom,
        Rule::WorkdirRelativePath,
        Rule::UndefinedVar,
        Rule::MultipleInstructionsDisallowed,
        Rule::LegacyKeyValueFormat,
        Rule::InvalidDefaultArgInFrom,
        Rule::FromPlatformFlagConstDisallowed,
        Rule::CopyIgnoredFile,
        Rule::SecretsUsedInArgOrEnv,
        Rule::RedundantTargetPlatform,
        Rule::InvalidDefinitionDescription,
        Rule::ExposeProtoCasing,
        Rule::ExposeInvalidFormat,
    ];

    /// The rule's name, as BuildKit spells it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::StageNameCasing => "StageNameCasing",
            Rule::FromAsCasing => "FromAsCasing",
            Rule::NoEmptyContinuation => "NoEmptyContinuation",
            Rule::ConsistentInstructionCasing => "ConsistentInstructionCasing",
            Rule::DuplicateStageName => "DuplicateStageName",
            Rule::ReservedStageName => "ReservedStageName",
            Rule::JsonArgsRecommended => "JSONArgsRecommended",
            Rule::MaintainerDeprecated => "MaintainerDeprecated",
            Rule::UndefinedArgInFrom => "UndefinedArgInFrom",
            Rule::WorkdirRelativePath => "WorkdirRelativePath",
            Rule::UndefinedVar => "UndefinedVar",
            Rule::MultipleInstructionsDisallowed => "MultipleInstructionsDisallowed",
            Rule::LegacyKeyValueFormat => "LegacyKeyValueFormat",
            Rule::InvalidDefaultArgInFrom => "InvalidDefaultArgInFrom",
            Rule::FromPlatformFlagConstDisallowed => "FromPlatformFlagConstDisallowed",
            Rule::CopyIgnoredFile => "CopyIgnoredFile",
            Rule::SecretsUsedInArgOrEnv => "SecretsUsedInArgOrEnv",
            Rule::RedundantTargetPlatform => "RedundantTargetPlatform",
            Rule::InvalidDefinitionDescription => "InvalidDefinitionDescription",
            Rule::ExposeProtoCasing => "ExposeProtoCasing",
            Rule::ExposeInvalidFormat => "ExposeInvalidFormat",
        }
    }

    /// Look a rule up by name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Rule> {
        Rule::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(name))
    }

    /// What the rule is about.
    pub fn description(self) -> &'static str {
        match self {
            Rule::StageNameCasing => "Stage names should be lowercase",
            Rule::FromAsCasing => "The 'as' keyword should match the case of the 'from' keyword",
            Rule::NoEmptyContinuation => {
                "Empty continuation lines will become errors in a future release"
            }
            Rule::ConsistentInstructionCasing => {
                "All commands within the Dockerfile should use the same casing (either upper or lower)"
            }
            Rule::DuplicateStageName => "Stage names should be unique",
            Rule::ReservedStageName => "Reserved words should not be used as stage names",
            Rule::JsonArgsRecommended => {
                "JSON arguments recommended for ENTRYPOINT/CMD to prevent unintended behavior related to OS signals"
            }
            Rule::MaintainerDeprecated => {
                "The MAINTAINER instruction is deprecated, use a label instead to define an image author"
            }
            Rule::UndefinedArgInFrom => "FROM command must use declared ARGs",
            Rule::WorkdirRelativePath => {
                "Relative workdir without an absolute workdir declared within the build can have unexpected results if the base image changes"
            }
            Rule::UndefinedVar => "Variables should be defined before their use",
            Rule::MultipleInstructionsDisallowed => {
                "Multiple instructions of the same type should not be used in the same stage"
            }
            Rule::LegacyKeyValueFormat => {
                "Legacy key/value format with whitespace separator should not be used"
            }
            Rule::InvalidDefaultArgInFrom => {
                "Default value for global ARG results in an empty or invalid base image name"
            }
            Rule::FromPlatformFlagConstDisallowed => {
                "FROM --platform flag should not use a constant value"
            }
            Rule::CopyIgnoredFile => "Attempting to Copy file that is excluded by .dockerignore",
            Rule::SecretsUsedInArgOrEnv => {
                "Sensitive data should not be used in the ARG or ENV commands"
            }
            Rule::RedundantTargetPlatform => {
                "Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior"
            }
            Rule::InvalidDefinitionDescription => {
                "Comment for build stage or argument should follow the format: `# <arg/stage name> <description>`. If this is not intended to be a description comment, add an empty line or comment between the instruction and the comment."
            }
            Rule::ExposeProtoCasing => "Protocol in EXPOSE instruction should be lowercase",
            Rule::ExposeInvalidFormat => {
                "IP address and host-port mapping should not be used in EXPOSE instruction. This will become an error in a future release"
            }
        }
    }

    /// A one-line hint on how to fix a finding of this rule.
    pub fn hint(self) -> &'static str {
        match self {
            Rule::StageNameCasing => "write the stage name in lowercase",
            Rule::FromAsCasing => "write `AS` in the same case as `FROM`",
            Rule::NoEmptyContinuation => "remove the empty line inside the continuation",
            Rule::ConsistentInstructionCasing => "write every instruction in the same case",
            Rule::DuplicateStageName => "give every stage its own name",
            Rule::ReservedStageName => "rename the stage: `context` and `scratch` are reserved",
            Rule::JsonArgsRecommended => "use the exec form: CMD [\"executable\", \"arg\"]",
            Rule::MaintainerDeprecated => {
                "use LABEL org.opencontainers.image.authors=\"name\" instead"
            }
            Rule::UndefinedArgInFrom => "declare the ARG before the first FROM",
            Rule::WorkdirRelativePath => "use an absolute path for the first WORKDIR",
            Rule::UndefinedVar => "define the variable with ARG or ENV before using it",
            Rule::MultipleInstructionsDisallowed => {
                "keep only the last one; the others are ignored"
            }
            Rule::LegacyKeyValueFormat => "write key=value",
            Rule::InvalidDefaultArgInFrom => "give the ARG a default that names an image",
            Rule::FromPlatformFlagConstDisallowed => {
                "use $BUILDPLATFORM or $TARGETPLATFORM, or name the stage after the platform"
            }
            Rule::CopyIgnoredFile => "remove the path from .dockerignore or from the instruction",
            Rule::SecretsUsedInArgOrEnv => "pass secrets with RUN --mount=type=secret",
            Rule::RedundantTargetPlatform => "remove the --platform flag",
            Rule::InvalidDefinitionDescription => {
                "start the comment with the name it describes, or separate it with an empty line"
            }
            Rule::ExposeProtoCasing => "write the protocol in lowercase",
            Rule::ExposeInvalidFormat => "publish ports with `run -p`, expose only the port",
        }
    }

    /// The documentation page Docker keeps for the rule.
    pub fn url(self) -> String {
        let mut slug = String::new();
        for (i, c) in self.name().chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 && !self.name().starts_with("JSON") {
                slug.push('-');
            }
            slug.push(c.to_ascii_lowercase());
        }
        if self == Rule::JsonArgsRecommended {
            slug = "json-args-recommended".into();
        }
        format!("https://docs.docker.com/go/dockerfile/rule/{slug}/")
    }

    /// Experimental rules run only when asked for.
    pub fn is_experimental(self) -> bool {
        self == Rule::InvalidDefinitionDescription
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One finding of a build check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// The message, BuildKit's wording.
    pub message: String,
    /// Where.
    pub span: Span,
    /// First line of the instruction, 1-based.
    pub line: usize,
}

/// A bad `# check=` directive.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LintConfigError {
    /// A part without `=`.
    #[error("invalid check option `{part}`: expected key=value")]
    MissingEquals {
        /// The part.
        part: String,
    },
    /// An unknown key.
    #[error("invalid check option `{key}`: expected skip, error or experimental")]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// `error=` with something else than a boolean.
    #[error("invalid boolean `{value}` for check option error")]
    BadBool {
        /// The value.
        value: String,
    },
}

/// Which rules run and whether findings fail the build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LintConfig {
    /// Skip every rule.
    pub skip_all: bool,
    /// Rules to skip.
    pub skip: BTreeSet<String>,
    /// Run every experimental rule.
    pub experimental_all: bool,
    /// Experimental rules to run.
    pub experimental: BTreeSet<String>,
    /// Findings are errors.
    pub error: bool,
}

impl LintConfig {
    /// Parse the value of a `# check=` directive:
    /// `skip=A,B;error=true;experimental=C` (`all` for every rule).
    pub fn parse(value: &str) -> Result<LintConfig, LintConfigError> {
        let mut cfg = LintConfig::default();
        let value = value.trim();
        if value.is_empty() {
            return Ok(cfg);
        }
        for part in value.splitn(3, ';') {
            let Some((k, v)) = part.split_once('=') else {
                return Err(LintConfigError::MissingEquals {
                    part: part.to_string(),
                });
            };
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "skip" => {
                    for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if name.eq_ignore_ascii_case("all") {
                            cfg.skip_all = true;
                        } else {
                            cfg.skip.insert(name.to_string());
                        }
                    }
                }
                "experimental" => {
                    for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        if name.eq_ignore_ascii_case("all") {
                            cfg.experimental_all = true;
                        } else {
                            cfg.experimental.insert(name.to_string());
                        }
                    }
                }
                "error" => {
                    cfg.error = match v.to_ascii_lowercase().as_str() {
                        "true" | "1" | "t" => true,
                        "false" | "0" | "f" => false,
                        _ => {
                            return Err(LintConfigError::BadBool {
                                value: v.to_string(),
                            })
                        }
                    }
                }
                _ => {
                    return Err(LintConfigError::UnknownKey {
                        key: k.trim().to_string(),
                    })
                }
            }
        }
        Ok(cfg)
    }

    /// Merge `other` into this configuration (skips and experiments add up).
    pub fn merged(&self, other: &LintConfig) -> LintConfig {
        let mut out = self.clone();
        out.skip_all |= other.skip_all;
        out.experimental_all |= other.experimental_all;
        out.skip.extend(other.skip.iter().cloned());
        out.experimental.extend(other.experimental.iter().cloned());
        out.error |= other.error;
        out
    }

    /// Whether `rule` runs under this configuration.
    pub fn enabled(&self, rule: Rule) -> bool {
        if rule.is_experimental() {
            self.experimental_all || self.experimental.contains(rule.name())
        } else {
            !(self.skip_all || self.skip.contains(rule.name()))
        }
    }

    /// The configuration a `# check=…` comment directly above an
    /// instruction adds, if there is one.
    pub fn from_comments(&self, comments: &[String]) -> LintConfig {
        for c in comments {
            let Some(rest) = c.trim_start().strip_prefix("check") else {
                continue;
            };
            let Some(v) = rest.trim_start().strip_prefix('=') else {
                continue;
            };
            let v = v.trim().split(' ').next().unwrap_or("");
            return match LintConfig::parse(v) {
                Ok(cfg) => self.merged(&cfg),
                Err(_) => self.clone(),
            };
        }
        self.clone()
    }
}

/// Collects findings, honouring the configuration.
#[derive(Debug, Clone, Default)]
pub struct Linter {
    config: LintConfig,
    findings: Vec<Finding>,
}

impl Linter {
    /// A linter with the file-wide configuration.
    pub fn new(config: LintConfig) -> Self {
        Linter {
            config,
            findings: Vec::new(),
        }
    }

    /// The file-wide configuration.
    pub fn config(&self) -> &LintConfig {
        &self.config
    }

    /// Record a finding if the rule is enabled (under `local`, the
    /// configuration in effect for the instruction).
    pub fn report(
        &mut self,
        local: Option<&LintConfig>,
        rule: Rule,
        span: Span,
        line: usize,
        message: String,
    ) {
        let cfg = local.unwrap_or(&self.config);
        if !cfg.enabled(rule) {
            return;
        }
        self.findings.push(Finding {
            rule,
            message,
            span,
            line,
        });
    }

    /// Take the findings, in source order, each once (the same finding can
    /// be reached twice, e.g. by an ONBUILD trigger and its instruction).
    pub fn into_findings(mut self) -> Vec<Finding> {
        self.findings.sort_by(|a, b| {
            (a.line, a.span.start, a.rule, &a.message).cmp(&(
                b.line,
                b.span.start,
                b.rule,
                &b.message,
            ))
        });
        self.findings.dedup();
        self.findings
    }
}

/// The closest candidate to `word` by edit distance, if it is close enough
/// to be a plausible typo.
pub fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    case_sensitive: bool,
) -> Option<&'a str> {
    let norm = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_ascii_lowercase()
        }
    };
    let w = norm(word);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(&w, &norm(c));
        if d == 0 && !case_sensitive {
            return Some(c);
        }
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let len = w.chars().count();
    (d > 0 && (d <= 2 && d < len || d * 3 <= len)).then_some(c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_directive_parses() {
        let c = LintConfig::parse("skip=JSONArgsRecommended,StageNameCasing;error=true")
            .expect("valid");
        assert!(c.error);
        assert!(!c.enabled(Rule::JsonArgsRecommended));
        assert!(!c.enabled(Rule::StageNameCasing));
        assert!(c.enabled(Rule::UndefinedVar));
        assert!(!c.enabled(Rule::InvalidDefinitionDescription));
        let c = LintConfig::parse("skip=all;experimental=all").expect("valid");
        assert!(!c.enabled(Rule::UndefinedVar));
        assert!(c.enabled(Rule::InvalidDefinitionDescription));
        assert!(LintConfig::parse("skip").is_err());
        assert!(LintConfig::parse("bogus=1").is_err());
        assert!(LintConfig::parse("error=maybe").is_err());
    }

    #[test]
    fn urls_follow_docker_docs() {
        assert_eq!(
            Rule::JsonArgsRecommended.url(),
            "https://docs.docker.com/go/dockerfile/rule/json-args-recommended/"
        );
        assert_eq!(
            Rule::FromPlatformFlagConstDisallowed.url(),
            "https://docs.docker.com/go/dockerfile/rule/from-platform-flag-const-disallowed/"
        );
    }

    #[test]
    fn suggestions() {
        let names = ["COPY", "CMD", "FROM", "RUN", "WORKDIR"];
        assert_eq!(suggest("COPPY", names, false), Some("COPY"));
        assert_eq!(suggest("workdri", names, false), Some("WORKDIR"));
        assert_eq!(suggest("XYZZY", names, false), None);
        assert_eq!(
            suggest("BASE_IMG", ["BASE_IMAGE", "VERSION"], true),
            Some("BASE_IMAGE")
        );
    }
}
