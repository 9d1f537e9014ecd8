//! Syntax tree → typed stages: scoping, expansion and the stage graph.
//!
//! This is the part of BuildKit's `dockerfile2llb` that does not build
//! anything: it walks the stages the way BuildKit dispatches them and
//! decides, for every word, what it expands to.
//!
//! Scoping, as the Dockerfile reference defines it and BuildKit does it:
//! - ARGs before the first FROM ("meta args") and the predefined platform
//!   args (`TARGETPLATFORM`, `BUILDARCH`, …) form the global scope. It is
//!   visible to FROM (image and `--platform`) only; a stage sees a global
//!   value when it redeclares the name with a bare `ARG NAME`.
//! - `--build-arg` overrides a declared default; an undeclared build arg is
//!   unused (reported in [`Build::unused_build_args`]).
//! - Inside a stage, ARG and ENV values form one ordered environment (the
//!   base image's ENV first); a later definition replaces an earlier one, so
//!   an ENV after an ARG of the same name shadows it. ARG values are
//!   environment for RUN only; ENV values also go into the image.
//! - A stage built FROM another stage inherits its environment and its
//!   declared ARGs; sibling stages share nothing.
//! - Proxy args (`HTTP_PROXY`, …, any case) given with `--build-arg` are
//!   available to every RUN without a declaration and are never recorded
//!   ([`Build::proxy_env`]).
//! - Expanded: ADD, COPY (not `--from`), ENV, EXPOSE, FROM, LABEL,
//!   STOPSIGNAL, USER, VOLUME, WORKDIR, ARG defaults, `RUN --mount` values
//!   and the bodies of unquoted COPY/ADD heredocs. Not expanded: RUN, CMD,
//!   ENTRYPOINT, HEALTHCHECK, SHELL, ONBUILD (the shell or the child build
//!   does it).
//!
//! The environment of a base image is only known once the image is
//! resolved; the caller supplies it through [`ImageEnv`]. Where it is not
//! known, variables it might define are expanded to nothing and the
//! `UndefinedVar` check is not run for that stage.

use std::collections::{BTreeMap, BTreeSet};

use kiln_oci::{Platform, PlatformError};
use thiserror::Error;

use crate::ast::{Dockerfile, Node, ParseWarningKind};
use crate::diagnostic::Located;
use crate::ignore::IgnoreRules;
use crate::instructions::{
    self, Instruction, InstructionError, InstructionErrorKind, Parsed, Spanned,
};
use crate::lint::{Finding, LintConfig, LintConfigError, Linter, Rule};
use crate::mounts::{self, MountError, MountType};
use crate::shell::{Env, Lexer, ShellError};
use crate::span::Span;

/// The `PATH` of a `FROM scratch` stage on Linux (BuildKit's
/// `system.DefaultPathEnv`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Names of the proxy build args that need no declaration.
pub const PROXY_ARGS: [&str; 5] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
];

/// The environment of base images, as far as the caller knows it.
pub trait ImageEnv {
    /// The `Env` of the image config of `image` for `platform`, or `None`
    /// when it is not known.
    fn env(&self, image: &str, platform: &Platform) -> Option<Vec<(String, String)>>;
}

/// An [`ImageEnv`] that knows no image.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnknownImages;

impl ImageEnv for UnknownImages {
    fn env(&self, _image: &str, _platform: &Platform) -> Option<Vec<(String, String)>> {
        None
    }
}

/// What the lowering needs besides the syntax tree.
#[derive(Clone, Copy)]
pub struct LowerOptions<'a> {
    /// `--build-arg` values.
    pub build_args: &'a BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<&'a str>,
    /// The platform to build for (`--platform`), default the build platform.
    pub target_platform: Option<&'a Platform>,
    /// The platform building (the host).
    pub build_platform: &'a Platform,
    /// Base image environments.
    pub images: &'a dyn ImageEnv,
    /// `.dockerignore` of the context, for the `CopyIgnoredFile` check.
    pub ignore: Option<&'a IgnoreRules>,
}

impl<'a> LowerOptions<'a> {
    /// Options for building with `build_args` on `build_platform`, for that
    /// platform, the last stage, no known base images and no ignore file;
    /// set the other fields as needed.
    pub fn new(build_args: &'a BTreeMap<String, String>, build_platform: &'a Platform) -> Self {
        LowerOptions {
            build_args,
            target: None,
            target_platform: None,
            build_platform,
            images: &UnknownImages,
            ignore: None,
        }
    }
}

impl std::fmt::Debug for LowerOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LowerOptions")
            .field("build_args", &self.build_args.keys().collect::<Vec<_>>())
            .field("target", &self.target)
            .field("target_platform", &self.target_platform)
            .field("build_platform", &self.build_platform)
            .finish_non_exhaustive()
    }
}

/// A Dockerfile that parses but cannot be lowered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind}")]
pub struct LowerError {
    /// What is wrong.
    pub kind: LowerErrorKind,
    /// Where.
    pub span: Span,
}

impl Located for LowerError {
    fn span(&self) -> Span {
        self.span
    }
}

/// The ways lowering fails.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LowerErrorKind {
    /// An instruction is malformed.
    #[error(transparent)]
    Instruction(InstructionErrorKind),
    /// No FROM at all.
    #[error("the Dockerfile has no FROM instruction: nothing to build")]
    NoStages,
    /// A word could not be expanded.
    #[error("failed to expand `{word}`: {source}")]
    Expand {
        /// The word.
        word: String,
        /// Why.
        #[source]
        source: ShellError,
    },
    /// FROM expanded to nothing.
    #[error("base name ({word}) should not be blank")]
    BlankBase {
        /// The word as written.
        word: String,
    },
    /// `--platform` expanded to nothing.
    #[error("empty platform value from expression {word}")]
    BlankPlatform {
        /// The word as written.
        word: String,
    },
    /// `--platform` is not a platform.
    #[error("failed to parse platform {word}: {source}")]
    Platform {
        /// The word as written.
        word: String,
        /// Why.
        #[source]
        source: PlatformError,
    },
    /// `COPY --from=$X`.
    #[error("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")]
    FromExpansion,
    /// `COPY --from=7` with fewer stages.
    #[error("invalid stage index {index}")]
    StageIndex {
        /// The index given.
        index: usize,
    },
    /// `--target` names no stage.
    #[error("target stage `{target}` could not be found{}", did_you_mean(.suggestion))]
    UnknownTarget {
        /// The target.
        target: String,
        /// The closest stage name.
        suggestion: Option<String>,
    },
    /// A stage that depends on itself.
    #[error("circular dependency detected on stage: {stage}")]
    Cycle {
        /// The stage name.
        stage: String,
    },
    /// A RUN --mount that does not parse after expansion.
    #[error("invalid --mount: {source}")]
    Mount {
        /// Why.
        #[source]
        source: MountError,
    },
    /// `# check=` that does not parse.
    #[error("invalid check directive: {source}")]
    CheckDirective {
        /// Why.
        #[source]
        source: LintConfigError,
    },
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}

impl From<InstructionError> for LowerError {
    fn from(e: InstructionError) -> Self {
        LowerError {
            kind: LowerErrorKind::Instruction(e.kind),
            span: e.span,
        }
    }
}

/// The lowered Dockerfile.
#[derive(Debug, Clone)]
pub struct Build {
    /// The escape character.
    pub escape: char,
    /// ARGs declared before the first FROM.
    pub meta_args: Vec<MetaArg>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// Index of the target stage.
    pub target: usize,
    /// The stages the target needs (itself included), in an order where a
    /// stage comes after every stage it needs.
    pub needed: Vec<usize>,
    /// Build check findings, by line.
    pub findings: Vec<Finding>,
    /// The file-wide check configuration (`# check=`).
    pub check: LintConfig,
    /// `--build-arg` names nothing consumed.
    pub unused_build_args: Vec<String>,
    /// Proxy build args given, for every RUN's environment.
    pub proxy_env: Vec<(String, String)>,
}

/// A build arg as `build --call outline` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlineArg {
    /// Name.
    pub name: String,
    /// The value in effect (empty when none).
    pub value: String,
    /// `# NAME description` above its declaration.
    pub description: Option<String>,
    /// Where it is declared.
    pub line: usize,
}

/// A global ARG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaArg {
    /// Name.
    pub name: String,
    /// The default, expanded, if one is written.
    pub default: Option<String>,
    /// The value in effect (build arg, else default).
    pub value: Option<String>,
    /// `# NAME description` above it.
    pub description: Option<String>,
    /// Where it is declared.
    pub span: Span,
    /// 1-based line.
    pub line: usize,
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// An earlier stage.
    Stage(usize),
    /// An image reference (as written after expansion; not normalised).
    Image(String),
}

/// Where `COPY --from` / `RUN --mount=from=` takes files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A stage of this Dockerfile.
    Stage(usize),
    /// An image.
    Image(String),
}

/// A build stage.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Position in the Dockerfile, from 0.
    pub index: usize,
    /// `AS name` (lowercase).
    pub name: Option<String>,
    /// `# name description` above FROM.
    pub description: Option<String>,
    /// What it starts from.
    pub base: Base,
    /// The FROM word after expansion.
    pub base_name: String,
    /// The platform it builds for.
    pub platform: Platform,
    /// FROM's span.
    pub span: Span,
    /// FROM's line.
    pub line: usize,
    /// The instructions, expanded where Docker expands.
    pub steps: Vec<Step>,
    /// Stages this one needs (base, `COPY --from`, `--mount=from`).
    pub deps: BTreeSet<usize>,
    /// Images this one needs besides its base (`COPY --from=image`).
    pub images: BTreeSet<String>,
    /// Global args the FROM line (image and `--platform`) used.
    pub from_args: BTreeSet<String>,
    /// ARGs declared in this stage (or inherited from its base stage), with
    /// the value they have at the end of it.
    pub args: Vec<(String, Option<String>)>,
    /// The environment (ENV and ARG values) at the end of the stage, as far
    /// as known.
    pub env: Vec<(String, String)>,
}

impl Stage {
    /// The name to show: `name` or `stage-N`.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }
}

/// One instruction of a stage.
#[derive(Debug, Clone)]
pub struct Step {
    /// The instruction with its words expanded.
    pub instruction: Instruction,
    /// Where it is.
    pub span: Span,
    /// First line.
    pub line: usize,
}

impl Build {
    /// The stages, by name.
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }

    /// What a `--from` value refers to: a stage index, a stage name, else an
    /// image.
    pub fn resolve_source(&self, from: &str) -> Source {
        resolve_source(&self.stages, from).unwrap_or_else(|_| Source::Image(from.to_string()))
    }

    /// The build args the target uses, in the order they are declared:
    /// global args used by a needed stage's FROM, and the args declared in
    /// needed stages (a bare redeclaration of a global arg shows the global
    /// one's value and description).
    pub fn outline_args(&self) -> Vec<OutlineArg> {
        let mut out: BTreeMap<&str, OutlineArg> = BTreeMap::new();
        for &i in &self.needed {
            let stage = &self.stages[i];
            for step in &stage.steps {
                let Instruction::Arg(defs) = &step.instruction else {
                    continue;
                };
                for d in defs {
                    let meta = self.meta_args.iter().find(|m| m.name == d.name);
                    let arg = match (&d.default, meta) {
                        (None, Some(m)) => OutlineArg {
                            name: d.name.clone(),
                            value: m.value.clone().unwrap_or_default(),
                            description: d.description.clone().or_else(|| m.description.clone()),
                            line: m.line,
                        },
                        _ => OutlineArg {
                            name: d.name.clone(),
                            value: stage
                                .args
                                .iter()
                                .find(|(n, _)| n == &d.name)
                                .and_then(|(_, v)| v.clone())
                                .unwrap_or_default(),
                            description: d.description.clone(),
                            line: step.line,
                        },
                    };
                    out.entry(d.name.as_str()).or_insert(arg);
                }
            }
        }
        for m in &self.meta_args {
            if self
                .needed
                .iter()
                .any(|&i| self.stages[i].from_args.contains(&m.name))
            {
                out.entry(m.name.as_str()).or_insert_with(|| OutlineArg {
                    name: m.name.clone(),
                    value: m.value.clone().unwrap_or_default(),
                    description: m.description.clone(),
                    line: m.line,
                });
            }
        }
        let mut args: Vec<OutlineArg> = out.into_values().collect();
        args.sort_by_key(|a| a.line);
        args
    }

    /// Secret ids used by `RUN --mount=type=secret` in the needed stages,
    /// with whether they are required.
    pub fn secrets(&self) -> BTreeMap<String, bool> {
        self.mount_ids(MountType::Secret)
    }

    /// SSH ids used by `RUN --mount=type=ssh` in the needed stages.
    pub fn ssh(&self) -> BTreeMap<String, bool> {
        self.mount_ids(MountType::Ssh)
    }

    fn mount_ids(&self, kind: MountType) -> BTreeMap<String, bool> {
        let mut out = BTreeMap::new();
        for &i in &self.needed {
            for step in &self.stages[i].steps {
                if let Instruction::Run(run) = &step.instruction {
                    for m in run.mounts.iter().filter(|m| m.kind == kind) {
                        let id = m.cache_id.clone().unwrap_or_else(|| "default".into());
                        *out.entry(id).or_insert(false) |= m.required;
                    }
                }
            }
        }
        out
    }
}

/// An ordered environment: later definitions replace earlier ones in place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvList(Vec<(String, String)>);

impl EnvList {
    /// Set `key` to `value`.
    pub fn set(&mut self, key: &str, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.to_string(),
            None => self.0.push((key.to_string(), value.to_string())),
        }
    }

    /// Remove `key`.
    pub fn remove(&mut self, key: &str) {
        self.0.retain(|(k, _)| k != key);
    }

    /// The keys.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// The pairs.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

impl Env for EnvList {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The predefined platform args of the global scope.
pub fn platform_args(target: &Platform, build: &Platform) -> EnvList {
    let mut env = EnvList::default();
    for (prefix, p) in [("TARGET", target), ("BUILD", build)] {
        env.set(&format!("{prefix}PLATFORM"), &p.to_string());
        env.set(&format!("{prefix}OS"), &p.os);
        env.set(&format!("{prefix}ARCH"), &p.architecture);
        env.set(&format!("{prefix}VARIANT"), &p.variant);
    }
    env
}

fn resolve_source(stages: &[Stage], from: &str) -> Result<Source, LowerErrorKind> {
    if let Ok(index) = from.parse::<usize>() {
        return if index < stages.len() {
            Ok(Source::Stage(index))
        } else {
            Err(LowerErrorKind::StageIndex { index })
        };
    }
    let lower = from.to_lowercase();
    Ok(stages
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
        .map_or_else(
            || Source::Image(from.to_string()),
            |s| Source::Stage(s.index),
        ))
}

/// A parsed node waiting to be dispatched.
struct Pending<'a> {
    node: &'a Node,
    instruction: Instruction,
    cfg: LintConfig,
}

/// Lower a parsed Dockerfile.
pub fn lower(df: &Dockerfile, opts: &LowerOptions<'_>) -> Result<Build, LowerError> {
    let check = match df.directive("check") {
        Some(d) => {
            LintConfig::parse(d.value.split(' ').next().unwrap_or("")).map_err(|source| {
                LowerError {
                    kind: LowerErrorKind::CheckDirective { source },
                    span: d.span,
                }
            })?
        }
        None => LintConfig::default(),
    };
    let mut lint = Linter::new(check.clone());
    for w in &df.warnings {
        let ParseWarningKind::EmptyContinuationLine { .. } = &w.kind;
        let line = df
            .nodes
            .iter()
            .find(|n| n.span.start == w.span.start)
            .map_or(0, |n| n.start_line);
        lint.report(
            None,
            Rule::NoEmptyContinuation,
            w.span,
            line,
            "Empty continuation line".into(),
        );
    }

    // Pass 1: typed instructions, grouped into stages.
    let mut meta: Vec<(&Node, Vec<instructions::ArgDef>)> = Vec::new();
    let mut froms: Vec<(&Node, instructions::From, LintConfig, Vec<Pending<'_>>)> = Vec::new();
    for node in &df.nodes {
        let cfg = check.from_comments(&node.comments);
        match instructions::parse_node(node, &mut lint, &cfg)? {
            Parsed::From(f) => froms.push((node, f, cfg, Vec::new())),
            Parsed::Instruction(instruction) => match froms.last_mut() {
                Some((_, _, _, pending)) => pending.push(Pending {
                    node,
                    instruction,
                    cfg,
                }),
                None => match instruction {
                    Instruction::Arg(defs) => meta.push((node, defs)),
                    other => {
                        return Err(LowerError {
                            kind: LowerErrorKind::Instruction(InstructionErrorKind::NoStage {
                                instruction: other.name().to_string(),
                            }),
                            span: node.span,
                        })
                    }
                },
            },
        }
    }
    if froms.is_empty() {
        let span = df.nodes.first().map_or_else(Span::default, |n| n.span);
        return Err(LowerError {
            kind: LowerErrorKind::NoStages,
            span,
        });
    }
    check_casing(&froms, &mut lint);

    let lexer = Lexer::new(df.escape);
    let expand_err = |word: &str, span: Span| {
        let word = word.to_string();
        move |source| LowerError {
            kind: LowerErrorKind::Expand { word, source },
            span,
        }
    };

    // The global scope.
    let target_platform = opts.target_platform.unwrap_or(opts.build_platform).clone();
    let mut global = platform_args(&target_platform, opts.build_platform);
    let predefined: BTreeSet<String> = global.keys().map(str::to_string).collect();
    let mut defaults_only = global.clone();
    let mut used_build_args: BTreeSet<String> = BTreeSet::new();
    let mut meta_args = Vec::new();
    for (node, defs) in &meta {
        for def in defs {
            let default = match &def.default {
                Some(d) => Some(
                    lexer
                        .process_word(d, &global)
                        .map_err(expand_err(d, node.span))?,
                ),
                None => None,
            };
            if let Some(d) = &def.default {
                if let Ok(v) = lexer.process_word(d, &defaults_only) {
                    defaults_only.set(&def.name, &v);
                }
            }
            let value = match opts.build_args.get(&def.name) {
                Some(v) => {
                    used_build_args.insert(def.name.clone());
                    Some(v.clone())
                }
                None => default.clone(),
            };
            if let Some(v) = &value {
                global.set(&def.name, v);
            }
            meta_args.push(MetaArg {
                name: def.name.clone(),
                default,
                value,
                description: def.description.clone(),
                span: node.span,
                line: node.start_line,
            });
        }
    }
    let declared_meta: BTreeSet<&str> = meta_args.iter().map(|m| m.name.as_str()).collect();

    // Pass 2: stage headers (FROM), in order; FROM may name earlier stages.
    let mut stages: Vec<Stage> = Vec::with_capacity(froms.len());
    let mut seen_names: BTreeSet<String> = BTreeSet::new();
    for (i, (node, from, cfg, _)) in froms.iter().enumerate() {
        let word = &from.base.value;
        let m = lexer
            .process_word_with_matches(word, &global)
            .map_err(expand_err(word, node.span))?;
        for var in &m.unmatched {
            if !declared_meta.contains(var.as_str()) && !predefined.contains(var) {
                let keys: Vec<&str> = declared_meta.iter().copied().collect();
                let hint = crate::lint::suggest(var, keys, true);
                let mut msg = format!("FROM argument '{var}' is not declared");
                if let Some(h) = hint {
                    msg.push_str(&format!(" (did you mean {h}?)"));
                }
                lint.report(
                    Some(cfg),
                    Rule::UndefinedArgInFrom,
                    node.span,
                    node.start_line,
                    msg,
                );
            }
        }
        if m.value.is_empty() {
            return Err(LowerError {
                kind: LowerErrorKind::BlankBase { word: word.clone() },
                span: from.base.span,
            });
        }
        if let Ok(d) = lexer.process_word(word, &defaults_only) {
            if !is_valid_reference(&d)
                && !stages.iter().any(|s| s.name.as_deref() == Some(d.as_str()))
            {
                lint.report(
                    Some(cfg),
                    Rule::InvalidDefaultArgInFrom,
                    node.span,
                    node.start_line,
                    format!(
                        "Default value for ARG {word} results in empty or invalid base image name"
                    ),
                );
            }
        }
        let stage_name = from.name.as_ref().map(|n| n.value.clone());
        let mut from_args = m.matched.clone();
        let platform = match &from.platform {
            Some(p) => {
                let (platform, used) = stage_platform(
                    &lexer,
                    p,
                    stage_name.as_deref(),
                    &global,
                    &mut lint,
                    cfg,
                    node,
                )?;
                from_args.extend(used);
                Some(platform)
            }
            None => None,
        };
        if let Some(n) = &stage_name {
            if n == "context" || n == "scratch" {
                lint.report(
                    Some(cfg),
                    Rule::ReservedStageName,
                    node.span,
                    node.start_line,
                    format!(
                        "Stage name should not use the same name as reserved stage {:?}",
                        n
                    ),
                );
            }
            if !seen_names.insert(n.clone()) {
                lint.report(
                    Some(cfg),
                    Rule::DuplicateStageName,
                    node.span,
                    node.start_line,
                    format!("Duplicate stage name {:?}, stage names should be unique", n),
                );
            }
        }
        let base_name = m.value;
        let base = if base_name.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else if let Some(s) = stages.iter().find(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(&base_name))
        }) {
            Base::Stage(s.index)
        } else {
            Base::Image(base_name.clone())
        };
        let platform = match (&platform, &base) {
            (Some(p), _) => p.clone(),
            (None, Base::Stage(j)) => stages[*j].platform.clone(),
            (None, _) => target_platform.clone(),
        };
        let mut deps = BTreeSet::new();
        if let Base::Stage(j) = base {
            deps.insert(j);
        }
        stages.push(Stage {
            index: i,
            name: stage_name,
            description: from.description.clone(),
            base,
            base_name,
            platform,
            span: node.span,
            line: node.start_line,
            steps: Vec::new(),
            deps,
            images: BTreeSet::new(),
            from_args,
            args: Vec::new(),
            env: Vec::new(),
        });
    }

    // Pass 3: the stage graph from COPY --from and RUN --mount=from.
    let mut dep_spans: BTreeMap<(usize, usize), Span> = BTreeMap::new();
    for (i, (_, _, _, pending)) in froms.iter().enumerate() {
        for p in pending {
            let mut froms_used: Vec<(String, Span)> = Vec::new();
            match &p.instruction {
                Instruction::Copy(c) => {
                    if let Some(f) = &c.from {
                        let literal = lexer
                            .process_word(&f.value, &EnvList::default())
                            .map_err(expand_err(&f.value, f.span))?;
                        if literal != f.value {
                            return Err(LowerError {
                                kind: LowerErrorKind::FromExpansion,
                                span: f.span,
                            });
                        }
                        froms_used.push((f.value.clone(), f.span));
                    }
                }
                Instruction::Run(r) => {
                    for spec in r.mount_specs.iter().filter(|s| s.value.contains("from")) {
                        if let Ok(m) = mounts::parse_mount(&spec.value) {
                            if let Some(f) = m.from {
                                froms_used.push((f, spec.span));
                            }
                        }
                    }
                }
                _ => {}
            }
            for (f, span) in froms_used {
                match resolve_source(&stages, &f).map_err(|kind| LowerError { kind, span })? {
                    Source::Stage(j) => {
                        stages[i].deps.insert(j);
                        dep_spans.entry((i, j)).or_insert(span);
                    }
                    Source::Image(img) => {
                        stages[i].images.insert(img);
                    }
                }
            }
        }
    }
    check_cycles(&stages, &dep_spans)?;

    let target = match opts.target {
        Some(t) => stages
            .iter()
            .find(|s| s.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(t)))
            .map(|s| s.index)
            .ok_or_else(|| {
                let names: Vec<&str> = stages.iter().filter_map(|s| s.name.as_deref()).collect();
                LowerError {
                    kind: LowerErrorKind::UnknownTarget {
                        target: t.to_string(),
                        suggestion: crate::lint::suggest(t, names, true).map(str::to_string),
                    },
                    span: Span::default(),
                }
            })?,
        None => stages.len() - 1,
    };
    let needed = needed_stages(&stages, target);

    // Pass 4: dispatch every stage in order (bases come first). Errors in
    // stages the target does not need are not the build's errors.
    let ctx = Dispatch {
        lexer: &lexer,
        opts,
        global: &global,
    };
    let mut finished: Vec<StageState> = Vec::with_capacity(stages.len());
    for (i, (_, _, _, pending)) in froms.into_iter().enumerate() {
        let mut state = match &stages[i].base {
            // A child stage carries on from where its base stage ended; only
            // the per-stage instruction trackers start afresh.
            Base::Stage(j) => StageState {
                cmd: None,
                entrypoint: None,
                healthcheck: None,
                ..finished[*j].clone()
            },
            // BuildKit's empty image has a default PATH (not on Windows),
            // which `$PATH` in the stage expands to.
            Base::Scratch => {
                let mut env = EnvList::default();
                if stages[i].platform.os != "windows" {
                    env.set("PATH", DEFAULT_PATH);
                }
                StageState {
                    env,
                    env_known: true,
                    ..StageState::default()
                }
            }
            Base::Image(img) => match opts.images.env(img, &stages[i].platform) {
                Some(pairs) => {
                    let mut env = EnvList::default();
                    for (k, v) in pairs {
                        env.set(&k, &v);
                    }
                    StageState {
                        env,
                        env_known: true,
                        ..StageState::default()
                    }
                }
                None => StageState::default(),
            },
        };
        let result = ctx.dispatch_stage(
            &mut stages[i],
            pending,
            &mut state,
            &mut lint,
            &mut used_build_args,
        );
        if let Err(e) = result {
            if needed.contains(&i) {
                return Err(e);
            }
        }
        stages[i].args = state.args.clone();
        stages[i].env = state.env.pairs().to_vec();
        finished.push(state);
    }

    let unused_build_args = opts
        .build_args
        .keys()
        .filter(|k| !used_build_args.contains(*k) && !is_proxy_arg(k))
        .cloned()
        .collect();
    let proxy_env = opts
        .build_args
        .iter()
        .filter(|(k, _)| is_proxy_arg(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();

    Ok(Build {
        escape: df.escape,
        meta_args,
        stages,
        target,
        needed,
        findings: lint.into_findings(),
        check,
        unused_build_args,
        proxy_env,
    })
}

/// Whether `name` is one of the proxy args, in any case.
pub fn is_proxy_arg(name: &str) -> bool {
    PROXY_ARGS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

fn stage_platform(
    lexer: &Lexer,
    p: &Spanned<String>,
    stage_name: Option<&str>,
    global: &EnvList,
    lint: &mut Linter,
    cfg: &LintConfig,
    node: &Node,
) -> Result<(Platform, BTreeSet<String>), LowerError> {
    let m = lexer
        .process_word_with_matches(&p.value, global)
        .map_err(|source| LowerError {
            kind: LowerErrorKind::Expand {
                word: p.value.clone(),
                source,
            },
            span: p.span,
        })?;
    if m.matched.len() == 1
        && m.unmatched.is_empty()
        && m.matched.contains("TARGETPLATFORM")
        && global.get("TARGETPLATFORM") == Some(m.value.as_str())
    {
        lint.report(
            Some(cfg),
            Rule::RedundantTargetPlatform,
            node.span,
            node.start_line,
            format!(
                "Setting platform to predefined {} in FROM is redundant as this is the default behavior",
                p.value
            ),
        );
    }
    if m.matched.is_empty() && m.unmatched.is_empty() {
        if let Ok(parsed) = m.value.parse::<Platform>() {
            let name = stage_name.unwrap_or("");
            if !name.contains(&parsed.os) && !name.contains(&parsed.architecture) {
                lint.report(
                    Some(cfg),
                    Rule::FromPlatformFlagConstDisallowed,
                    node.span,
                    node.start_line,
                    format!(
                        "FROM --platform flag should not use constant value {:?}",
                        m.value
                    ),
                );
            }
        }
    }
    if m.value.is_empty() {
        return Err(LowerError {
            kind: LowerErrorKind::BlankPlatform {
                word: p.value.clone(),
            },
            span: p.span,
        });
    }
    let platform = m.value.parse::<Platform>().map_err(|source| LowerError {
        kind: LowerErrorKind::Platform {
            word: p.value.clone(),
            source,
        },
        span: p.span,
    })?;
    Ok((platform, m.matched))
}

/// BuildKit's ConsistentInstructionCasing over FROM and stage instructions.
fn check_casing(
    froms: &[(&Node, instructions::From, LintConfig, Vec<Pending<'_>>)],
    lint: &mut Linter,
) {
    // Keywords are ASCII (anything else failed as an unknown instruction).
    let is_lower = |s: &str| !s.bytes().any(|b| b.is_ascii_uppercase());
    let is_upper = |s: &str| !s.bytes().any(|b| b.is_ascii_lowercase());
    let consistent = |s: &str| is_lower(s) || is_upper(s);
    let mut lower = 0;
    let mut upper = 0;
    let all = || {
        froms.iter().flat_map(|(n, _, cfg, pending)| {
            std::iter::once((*n, cfg)).chain(pending.iter().map(|p| (p.node, &p.cfg)))
        })
    };
    for (n, _) in all() {
        if consistent(&n.keyword) {
            if is_lower(&n.keyword) {
                lower += 1;
            } else {
                upper += 1;
            }
        }
    }
    let majority_lower = lower > upper;
    for (n, cfg) in all() {
        let casing = if majority_lower && !is_lower(&n.keyword) {
            "lowercase"
        } else if !majority_lower && !is_upper(&n.keyword) {
            "uppercase"
        } else {
            continue;
        };
        lint.report(
            Some(cfg),
            Rule::ConsistentInstructionCasing,
            n.span,
            n.start_line,
            format!(
                "Command '{}' should match the case of the command majority ({casing})",
                n.keyword
            ),
        );
    }
}

fn check_cycles(
    stages: &[Stage],
    spans: &BTreeMap<(usize, usize), Span>,
) -> Result<(), LowerError> {
    // 0 = unvisited, 1 = on the path, 2 = done.
    fn visit(
        i: usize,
        stages: &[Stage],
        state: &mut [u8],
        spans: &BTreeMap<(usize, usize), Span>,
    ) -> Option<(usize, Span)> {
        state[i] = 1;
        for &j in &stages[i].deps {
            let span = spans.get(&(i, j)).copied().unwrap_or(stages[i].span);
            match state[j] {
                1 => return Some((j, span)),
                0 => {
                    if let Some(found) = visit(j, stages, state, spans) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        state[i] = 2;
        None
    }
    let mut state = vec![0u8; stages.len()];
    for i in 0..stages.len() {
        if state[i] == 0 {
            if let Some((j, span)) = visit(i, stages, &mut state, spans) {
                return Err(LowerError {
                    kind: LowerErrorKind::Cycle {
                        stage: stages[j].display_name(),
                    },
                    span,
                });
            }
        }
    }
    Ok(())
}

/// The stages `target` needs, dependencies first.
fn needed_stages(stages: &[Stage], target: usize) -> Vec<usize> {
    fn walk(i: usize, stages: &[Stage], seen: &mut BTreeSet<usize>, out: &mut Vec<usize>) {
        if !seen.insert(i) {
            return;
        }
        for &j in &stages[i].deps {
            walk(j, stages, seen, out);
        }
        out.push(i);
    }
    let mut out = Vec::new();
    walk(target, stages, &mut BTreeSet::new(), &mut out);
    out
}

/// A loose check of Docker's reference grammar, enough for the
/// InvalidDefaultArgInFrom check: lowercase path components of
/// `[a-z0-9._-]`, an optional `host[:port]/`, `:tag` and `@digest`.
pub fn is_valid_reference(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    let (name, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        let Some((alg, hex)) = d.split_once(':') else {
            return false;
        };
        if alg.is_empty() || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
    }
    let (path, tag) = match name.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, Some(t)),
        _ => (name, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return false;
        }
    }
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        let host = parts.remove(0);
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        {
            return false;
        }
    }
    !parts.is_empty()
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && p.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && p.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
        })
}

#[derive(Debug, Clone, Default)]
struct StageState {
    env: EnvList,
    args: Vec<(String, Option<String>)>,
    workdir_set: bool,
    env_known: bool,
    shell_set: bool,
    cmd: Option<(Span, usize)>,
    entrypoint: Option<(Span, usize)>,
    healthcheck: Option<(Span, usize)>,
}

struct Dispatch<'a> {
    lexer: &'a Lexer,
    opts: &'a LowerOptions<'a>,
    global: &'a EnvList,
}

impl Dispatch<'_> {
    fn dispatch_stage(
        &self,
        stage: &mut Stage,
        pending: Vec<Pending<'_>>,
        st: &mut StageState,
        lint: &mut Linter,
        used_build_args: &mut BTreeSet<String>,
    ) -> Result<(), LowerError> {
        stage.steps.reserve(pending.len());
        for p in pending {
            let node = p.node;
            let cfg = &p.cfg;
            let mut instruction = p.instruction;
            let name = instruction.name();
            let span = node.span;
            let line = node.start_line;
            // Expand a field in place (words without `$`, quotes or escapes
            // are left as they are, without a copy).
            let expand =
                |word: &mut String, lint: &mut Linter, st: &StageState| -> Result<(), LowerError> {
                    if let Some(v) = self.expand(word, span, line, cfg, lint, st, false)? {
                        *word = v;
                    }
                    Ok(())
                };
            match &mut instruction {
                Instruction::Env(pairs) => {
                    for kv in pairs.iter_mut() {
                        expand(&mut kv.key, lint, st)?;
                        expand(&mut kv.value, lint, st)?;
                        if kv.legacy {
                            lint.report(
                                Some(cfg),
                                Rule::LegacyKeyValueFormat,
                                span,
                                line,
                                legacy_msg("ENV"),
                            );
                        }
                        secret_check("ENV", &kv.key, span, line, cfg, lint);
                        st.env.set(&kv.key, &kv.value);
                    }
                }
                Instruction::Label(pairs) => {
                    for kv in pairs.iter_mut() {
                        expand(&mut kv.key, lint, st)?;
                        expand(&mut kv.value, lint, st)?;
                        if kv.legacy {
                            lint.report(
                                Some(cfg),
                                Rule::LegacyKeyValueFormat,
                                span,
                                line,
                                legacy_msg("LABEL"),
                            );
                        }
                    }
                }
                Instruction::Arg(defs) => {
                    for def in defs.iter_mut() {
                        secret_check("ARG", &def.name, span, line, cfg, lint);
                        let build_arg = self.opts.build_args.get(&def.name);
                        let mut value = None;
                        if let Some(v) = build_arg {
                            used_build_args.insert(def.name.clone());
                            value = Some(v.clone());
                        } else if let Some(d) = &mut def.default {
                            expand(d, lint, st)?;
                            value = Some(d.clone());
                        } else if let Some(v) = self.global.get(&def.name) {
                            value = Some(v.to_string());
                        }
                        if let Some(v) = &value {
                            st.env.set(&def.name, v);
                        }
                        st.args.retain(|(n, _)| n != &def.name);
                        st.args.push((def.name.clone(), value));
                    }
                }
                Instruction::Expose(ports) => {
                    for port in ports.iter_mut() {
                        expand(port, lint, st)?;
                        expose_checks(port, span, line, cfg, lint);
                    }
                }
                Instruction::Copy(c) => {
                    for s in c.sources.iter_mut() {
                        expand(s, lint, st)?;
                    }
                    expand(&mut c.dest, lint, st)?;
                    if let Some(w) = &mut c.chown {
                        expand(w, lint, st)?;
                    }
                    if let Some(w) = &mut c.chmod {
                        expand(w, lint, st)?;
                    }
                    check_flag_values(&[("chown", &c.chown), ("chmod", &c.chmod)], span)?;
                    for e in c.exclude.iter_mut() {
                        expand(e, lint, st)?;
                    }
                    for f in c.contents.iter_mut().filter(|f| f.expand) {
                        if let Some(v) = self.expand(&f.data, span, line, cfg, lint, st, true)? {
                            f.data = v;
                        }
                    }
                    if c.from.is_none() {
                        self.ignored_check("Copy", &c.sources, span, line, cfg, lint);
                    }
                }
                Instruction::Add(a) => {
                    for s in a.sources.iter_mut() {
                        expand(s, lint, st)?;
                    }
                    expand(&mut a.dest, lint, st)?;
                    if let Some(w) = &mut a.chown {
                        expand(w, lint, st)?;
                    }
                    if let Some(w) = &mut a.chmod {
                        expand(w, lint, st)?;
                    }
                    if let Some(w) = &mut a.checksum {
                        expand(w, lint, st)?;
                    }
                    check_flag_values(
                        &[
                            ("chown", &a.chown),
                            ("chmod", &a.chmod),
                            ("checksum", &a.checksum),
                        ],
                        span,
                    )?;
                    for e in a.exclude.iter_mut() {
                        expand(e, lint, st)?;
                    }
                    for f in a.contents.iter_mut().filter(|f| f.expand) {
                        if let Some(v) = self.expand(&f.data, span, line, cfg, lint, st, true)? {
                            f.data = v;
                        }
                    }
                    self.ignored_check("Add", &a.sources, span, line, cfg, lint);
                }
                Instruction::Volume(vols) => {
                    for v in vols.iter_mut() {
                        expand(v, lint, st)?;
                    }
                }
                Instruction::User(u) => expand(u, lint, st)?,
                Instruction::StopSignal(s) => expand(s, lint, st)?,
                Instruction::Workdir(w) => {
                    expand(w, lint, st)?;
                    if !st.workdir_set && !is_absolute_workdir(w) {
                        lint.report(
                            Some(cfg),
                            Rule::WorkdirRelativePath,
                            span,
                            line,
                            format!("Relative workdir {w:?} can have unexpected results if the base image changes"),
                        );
                    }
                    st.workdir_set = true;
                }
                Instruction::Run(run) => {
                    let mut parsed = Vec::with_capacity(run.mount_specs.len());
                    for spec in &run.mount_specs {
                        let value = self
                            .expand(&spec.value, spec.span, line, cfg, lint, st, false)?
                            .unwrap_or_else(|| spec.value.clone());
                        let m = mounts::parse_mount(&value).map_err(|source| LowerError {
                            kind: LowerErrorKind::Mount { source },
                            span: spec.span,
                        })?;
                        parsed.push(m);
                    }
                    run.mounts = parsed;
                    run.build_args = st
                        .args
                        .iter()
                        .map(|(k, v)| {
                            let value = st.env.get(k).map(str::to_string).or_else(|| v.clone());
                            (k.clone(), value.unwrap_or_default())
                        })
                        .collect();
                }
                Instruction::Cmd(cl) | Instruction::Entrypoint(cl) => {
                    let which = if name == "CMD" {
                        &mut st.cmd
                    } else {
                        &mut st.entrypoint
                    };
                    if let Some((prev, prev_line)) = which.replace((span, line)) {
                        lint.report(
                            Some(cfg),
                            Rule::MultipleInstructionsDisallowed,
                            prev,
                            prev_line,
                            format!(
                                "Multiple {name} instructions should not be used in the same stage because only the last one will be used"
                            ),
                        );
                    }
                    if cl.prepend_shell && !st.shell_set {
                        lint.report(
                            Some(cfg),
                            Rule::JsonArgsRecommended,
                            span,
                            line,
                            format!(
                                "JSON arguments recommended for {name} to prevent unintended behavior related to OS signals"
                            ),
                        );
                    }
                }
                Instruction::Healthcheck(_) => {
                    if let Some((prev, prev_line)) = st.healthcheck.replace((span, line)) {
                        lint.report(
                            Some(cfg),
                            Rule::MultipleInstructionsDisallowed,
                            prev,
                            prev_line,
                            "Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used".into(),
                        );
                    }
                }
                Instruction::Shell(_) => st.shell_set = true,
                Instruction::Maintainer(_) | Instruction::Onbuild(_) => {}
            }
            stage.steps.push(Step {
                instruction,
                span,
                line,
            });
        }
        Ok(())
    }

    /// Expand one word in the stage environment, reporting undefined
    /// variables; `None` when the word expands to itself. `raw` keeps
    /// quotes (heredoc bodies).
    #[allow(clippy::too_many_arguments)]
    fn expand(
        &self,
        word: &str,
        span: Span,
        line: usize,
        cfg: &LintConfig,
        lint: &mut Linter,
        st: &StageState,
        raw: bool,
    ) -> Result<Option<String>, LowerError> {
        let lexer;
        let lexer = if raw {
            lexer = Lexer::new('\\').skip_process_quotes(true);
            &lexer
        } else {
            self.lexer
        };
        if lexer.is_literal(word) {
            return Ok(None);
        }
        let m = lexer
            .process_word_with_matches(word, &st.env)
            .map_err(|source| LowerError {
                kind: LowerErrorKind::Expand {
                    word: word.to_string(),
                    source,
                },
                span,
            })?;
        if st.env_known {
            for var in &m.unmatched {
                if st.args.iter().any(|(n, _)| n == var) {
                    continue;
                }
                let hint = crate::lint::suggest(var, st.env.keys(), true);
                let mut msg = format!("Usage of undefined variable '${var}'");
                if let Some(h) = hint {
                    msg.push_str(&format!(" (did you mean ${h}?)"));
                }
                lint.report(Some(cfg), Rule::UndefinedVar, span, line, msg);
            }
        }
        Ok(Some(m.value))
    }

    fn ignored_check(
        &self,
        cmd: &str,
        sources: &[String],
        span: Span,
        line: usize,
        cfg: &LintConfig,
        lint: &mut Linter,
    ) {
        let Some(rules) = self.opts.ignore else {
            return;
        };
        if rules.patterns().iter().any(|p| p.exclusion) {
            return;
        }
        for src in sources {
            if src.contains("://") || src.starts_with("git@") {
                continue;
            }
            let cleaned = crate::paths::clean(src);
            if cleaned == "." || cleaned == "/" {
                let all = rules
                    .patterns()
                    .iter()
                    .any(|p| matches!(p.text.as_str(), "*" | "**" | "**/*"));
                if !all {
                    continue;
                }
            }
            if rules.is_excluded(&cleaned) {
                lint.report(
                    Some(cfg),
                    Rule::CopyIgnoredFile,
                    span,
                    line,
                    format!(
                        "Attempting to {cmd} file {cleaned:?} that is excluded by .dockerignore"
                    ),
                );
            }
        }
    }
}

/// Validate expanded `--chown`/`--chmod`/`--checksum` values.
fn check_flag_values(values: &[(&str, &Option<String>)], span: Span) -> Result<(), LowerError> {
    for (flag, value) in values {
        if let Some(v) = value {
            instructions::validate_flag_value(flag, v).map_err(|reason| LowerError {
                kind: LowerErrorKind::Instruction(InstructionErrorKind::BadFlagValue {
                    flag: flag.to_string(),
                    value: v.clone(),
                    reason: reason.to_string(),
                }),
                span,
            })?;
        }
    }
    Ok(())
}

fn legacy_msg(cmd: &str) -> String {
    format!("\"{cmd} key=value\" should be used instead of legacy \"{cmd} key value\" format")
}

/// BuildKit's secret-name heuristics: a word (split on `_`) that is a
/// secret-ish token, unless another word says it is public.
fn secret_check(
    inst: &str,
    key: &str,
    span: Span,
    line: usize,
    cfg: &LintConfig,
    lint: &mut Linter,
) {
    const DENY: [&str; 10] = [
        "apikey",
        "auth",
        "credential",
        "credentials",
        "key",
        "password",
        "pword",
        "passwd",
        "secret",
        "token",
    ];
    const ALLOW: [&str; 3] = ["public", "file", "version"];
    let lower = key.to_ascii_lowercase();
    let words: Vec<&str> = lower.split('_').collect();
    let has = |list: &[&str]| {
        // `(?:_|^)token(?:_|$)`: a whole `_`-separated word.
        words.iter().any(|w| list.contains(w))
    };
    if has(&DENY) && !has(&ALLOW) {
        lint.report(
            Some(cfg),
            Rule::SecretsUsedInArgOrEnv,
            span,
            line,
            format!("Do not use ARG or ENV instructions for sensitive data ({inst} {key:?})"),
        );
    }
}

fn expose_checks(port: &str, span: Span, line: usize, cfg: &LintConfig, lint: &mut Linter) {
    if port.matches(':').count() >= 1 {
        lint.report(
            Some(cfg),
            Rule::ExposeInvalidFormat,
            span,
            line,
            format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{port}'"),
        );
    }
    if let Some((_, proto)) = port.rsplit_once('/') {
        if proto != proto.to_lowercase() {
            lint.report(
                Some(cfg),
                Rule::ExposeProtoCasing,
                span,
                line,
                format!("Defined protocol '{port}' in EXPOSE instruction should be lowercase"),
            );
        }
    }
}

/// An absolute WORKDIR: `/…`, or a Windows drive path (`C:\\go`, `C:/go`)
/// for Windows images, whose platform this frontend cannot see.
fn is_absolute_workdir(w: &str) -> bool {
    let b = w.as_bytes();
    w.starts_with('/')
        || (b.len() >= 3
            && b[0].is_ascii_alphabetic()
            && b[1] == b':'
            && matches!(b[2], b'\\' | b'/'))
}
