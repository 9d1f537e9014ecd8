//! Syntax tree → typed instructions, one node at a time.
//!
//! This is BuildKit's `instructions.Parse`: each node's `--flags` are checked
//! against the flags its instruction accepts (unknown, duplicate, valueless
//! and non-boolean flags are errors at the flag's span), its arguments are
//! counted and shaped (`ENV` pairs, `COPY` sources and destination, heredoc
//! sources, `HEALTHCHECK` durations) and the checks that one instruction can
//! show on its own are run. Words stay unexpanded here: expansion needs the
//! scope, which is [`crate::lower`]'s business, and it expands the fields of
//! these same types in place.

use std::time::Duration;

use thiserror::Error;

use crate::ast::{Arg, Heredoc, Node};
use crate::diagnostic::Located;
use crate::lint::{LintConfig, Linter, Rule};
use crate::mounts::{self, Mount, MountError, NetworkMode, SecurityMode};
use crate::span::Span;

/// Every instruction name, uppercase.
pub const INSTRUCTIONS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// An instruction that cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind}")]
pub struct InstructionError {
    /// What is wrong.
    pub kind: InstructionErrorKind,
    /// Where.
    pub span: Span,
}

impl Located for InstructionError {
    fn span(&self) -> Span {
        self.span
    }
}

/// The ways an instruction can be wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InstructionErrorKind {
    /// Not a Dockerfile instruction.
    #[error("unknown instruction: {name}{}", fmt_suggestion(.suggestion))]
    Unknown {
        /// As written.
        name: String,
        /// The closest instruction name.
        suggestion: Option<String>,
    },
    /// A flag the instruction does not take.
    #[error("unknown flag: --{flag} for {instruction}")]
    UnknownFlag {
        /// The flag name.
        flag: String,
        /// The instruction.
        instruction: String,
    },
    /// A flag given twice.
    #[error("duplicate flag specified: --{flag}")]
    DuplicateFlag {
        /// The flag name.
        flag: String,
    },
    /// `--from` without `=value`.
    #[error("missing a value on flag: --{flag}")]
    MissingFlagValue {
        /// The flag name.
        flag: String,
    },
    /// `--link=maybe`.
    #[error("expecting boolean value for flag --{flag}, not: {value}")]
    NotBoolean {
        /// The flag name.
        flag: String,
        /// What was given.
        value: String,
    },
    /// A flag whose value is not understood.
    #[error("invalid value `{value}` for flag --{flag}: {reason}")]
    BadFlagValue {
        /// The flag name.
        flag: String,
        /// What was given.
        value: String,
        /// Why it is wrong.
        reason: String,
    },
    /// A `--mount`, `--network` or `--security` value that does not parse.
    #[error("invalid --{flag}: {source}")]
    Mount {
        /// The flag name.
        flag: &'static str,
        /// The parse error.
        #[source]
        source: MountError,
    },
    /// Too few arguments.
    #[error("{instruction} requires at least one argument")]
    AtLeastOne {
        /// The instruction.
        instruction: &'static str,
    },
    /// Not exactly one argument.
    #[error("{instruction} requires exactly one argument")]
    ExactlyOne {
        /// The instruction.
        instruction: &'static str,
    },
    /// COPY/ADD with one argument.
    #[error("{instruction} requires at least two arguments, but only one was provided. Destination could not be determined")]
    NoDestination {
        /// The instruction.
        instruction: &'static str,
    },
    /// A heredoc as the destination.
    #[error("{instruction} cannot accept a heredoc as a destination")]
    HeredocDestination {
        /// The instruction.
        instruction: &'static str,
    },
    /// `ENV =x`.
    #[error("{instruction} names can not be blank")]
    BlankName {
        /// The instruction.
        instruction: &'static str,
    },
    /// FROM with a wrong number of words.
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    /// `FROM a AS 1bad`.
    #[error(
        "invalid name for build stage: `{name}`, name can't start with a number or contain symbols"
    )]
    StageName {
        /// The name.
        name: String,
    },
    /// `ONBUILD ONBUILD …`, `ONBUILD FROM …`.
    #[error("{trigger} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger {
        /// The trigger instruction.
        trigger: String,
    },
    /// `HEALTHCHECK NONE something`.
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArgs,
    /// `HEALTHCHECK CMD` with nothing.
    #[error("missing command after HEALTHCHECK CMD")]
    HealthcheckMissingCommand,
    /// `HEALTHCHECK FOO`.
    #[error("unknown type `{kind}` in HEALTHCHECK (try CMD)")]
    HealthcheckType {
        /// The type given.
        kind: String,
    },
    /// `SHELL sh -c`.
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    /// `VOLUME ""`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    /// An instruction before the first FROM (other than ARG).
    #[error("no build stage in current context: {instruction} must come after FROM")]
    NoStage {
        /// The instruction.
        instruction: String,
    },
}

fn fmt_suggestion(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
}

/// A value with the span it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

/// A `key=value` of ENV or LABEL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
    /// Written in the legacy `KEY value` form.
    pub legacy: bool,
}

/// One name of an ARG instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    /// Name.
    pub name: String,
    /// Default value, if one is written.
    pub default: Option<String>,
    /// The description from a `# NAME description` comment above.
    pub description: Option<String>,
}

/// A file given inline by a heredoc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// The heredoc name (for COPY/ADD: the file name).
    pub name: String,
    /// The content (tabs stripped for `<<-`).
    pub data: String,
    /// Variables in the content are expanded.
    pub expand: bool,
    /// `<<-` was used.
    pub chomp: bool,
}

/// The command of RUN, CMD, ENTRYPOINT or HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// Exec-form arguments, or the single shell-form string.
    pub args: Vec<String>,
    /// Shell form: run through the image's SHELL.
    pub prepend_shell: bool,
    /// Heredoc files (RUN).
    pub files: Vec<InlineFile>,
}

/// RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The command.
    pub command: CommandLine,
    /// `--mount` values as written (expanded by the lowering).
    pub mount_specs: Vec<Spanned<String>>,
    /// The parsed mounts (filled by the lowering, after expansion).
    pub mounts: Vec<Mount>,
    /// `--network`.
    pub network: Option<NetworkMode>,
    /// `--security`.
    pub security: Option<SecurityMode>,
    /// `--device` values.
    pub devices: Vec<String>,
    /// Build args in scope at this RUN with their values (filled by the
    /// lowering), as BuildKit records them in history.
    pub build_args: Vec<(String, String)>,
}

/// COPY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// `--from`: a stage name, a stage index or an image.
    pub from: Option<Spanned<String>>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// Source paths.
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub contents: Vec<InlineFile>,
    /// Destination.
    pub dest: String,
}

/// ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--keep-git-dir`.
    pub keep_git_dir: Option<bool>,
    /// `--checksum`.
    pub checksum: Option<String>,
    /// `--unpack`.
    pub unpack: Option<bool>,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// Source paths or URLs.
    pub sources: Vec<String>,
    /// Heredoc sources.
    pub contents: Vec<InlineFile>,
    /// Destination.
    pub dest: String,
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's.
    None,
    /// `HEALTHCHECK [flags] CMD …`.
    Cmd {
        /// `["CMD", …]` (exec form) or `["CMD-SHELL", "…"]`.
        test: Vec<String>,
        /// `--interval`.
        interval: Option<Duration>,
        /// `--timeout`.
        timeout: Option<Duration>,
        /// `--start-period`.
        start_period: Option<Duration>,
        /// `--start-interval`.
        start_interval: Option<Duration>,
        /// `--retries`.
        retries: Option<u32>,
    },
}

/// A typed instruction (everything but FROM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// ADD.
    Add(Add),
    /// ARG.
    Arg(Vec<ArgDef>),
    /// CMD.
    Cmd(CommandLine),
    /// COPY.
    Copy(Copy),
    /// ENTRYPOINT.
    Entrypoint(CommandLine),
    /// ENV.
    Env(Vec<KeyValue>),
    /// EXPOSE.
    Expose(Vec<String>),
    /// HEALTHCHECK.
    Healthcheck(Healthcheck),
    /// LABEL.
    Label(Vec<KeyValue>),
    /// MAINTAINER.
    Maintainer(String),
    /// ONBUILD: the trigger text, stored in the image for children.
    Onbuild(String),
    /// RUN.
    Run(Run),
    /// SHELL.
    Shell(Vec<String>),
    /// STOPSIGNAL.
    StopSignal(String),
    /// USER.
    User(String),
    /// VOLUME.
    Volume(Vec<String>),
    /// WORKDIR.
    Workdir(String),
}

impl Instruction {
    /// The instruction name, uppercase.
    pub fn name(&self) -> &'static str {
        match self {
            Instruction::Add(_) => "ADD",
            Instruction::Arg(_) => "ARG",
            Instruction::Cmd(_) => "CMD",
            Instruction::Copy(_) => "COPY",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Env(_) => "ENV",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Run(_) => "RUN",
            Instruction::Shell(_) => "SHELL",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::User(_) => "USER",
            Instruction::Volume(_) => "VOLUME",
            Instruction::Workdir(_) => "WORKDIR",
        }
    }
}

/// FROM, the start of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    /// The base as written (unexpanded).
    pub base: Spanned<String>,
    /// `AS name`, lowercased.
    pub name: Option<Spanned<String>>,
    /// `--platform` as written.
    pub platform: Option<Spanned<String>>,
    /// The description from a `# name description` comment.
    pub description: Option<String>,
}

/// What one node turned into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// FROM.
    From(From),
    /// Anything else.
    Instruction(Instruction),
}

/// The flags an instruction accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagKind {
    Bool,
    String,
    Strings,
}

/// The result of checking an instruction's flags.
struct Flags {
    values: Vec<(&'static str, String, Span)>,
}

impl Flags {
    fn parse(
        node: &Node,
        instruction: &str,
        accepted: &[(&'static str, FlagKind)],
    ) -> Result<Flags, InstructionError> {
        let mut values: Vec<(&'static str, String, Span)> = Vec::new();
        for flag in &node.flags {
            let err = |kind| InstructionError {
                kind,
                span: flag.span,
            };
            let body = flag.text.strip_prefix("--").unwrap_or(&flag.text);
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(canon, kind)) = accepted.iter().find(|(n, _)| *n == name) else {
                return Err(err(InstructionErrorKind::UnknownFlag {
                    flag: name.to_string(),
                    instruction: instruction.to_string(),
                }));
            };
            if kind != FlagKind::Strings && values.iter().any(|(n, _, _)| *n == canon) {
                return Err(err(InstructionErrorKind::DuplicateFlag {
                    flag: name.to_string(),
                }));
            }
            let value = match (kind, value) {
                (FlagKind::Bool, None) => "true".to_string(),
                (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                    "true" => "true".to_string(),
                    "false" => "false".to_string(),
                    _ => {
                        return Err(err(InstructionErrorKind::NotBoolean {
                            flag: name.to_string(),
                            value: v.to_string(),
                        }))
                    }
                },
                (_, None) => {
                    return Err(err(InstructionErrorKind::MissingFlagValue {
                        flag: name.to_string(),
                    }))
                }
                (_, Some(v)) => v.to_string(),
            };
            values.push((canon, value, flag.span));
        }
        Ok(Flags { values })
    }

    fn string(&self, name: &str) -> Option<Spanned<String>> {
        self.values
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, v, s)| Spanned {
                value: v.clone(),
                span: *s,
            })
    }

    fn strings(&self, name: &str) -> Vec<Spanned<String>> {
        self.values
            .iter()
            .filter(|(n, _, _)| *n == name)
            .map(|(_, v, s)| Spanned {
                value: v.clone(),
                span: *s,
            })
            .collect()
    }

    /// A string flag whose value is validated now when it has no variable
    /// in it (the lowering validates it again after expansion).
    fn checked(&self, name: &str) -> Result<Option<String>, InstructionError> {
        let Some(v) = self.string(name) else {
            return Ok(None);
        };
        if !v.value.contains('$') {
            if let Err(reason) = validate_flag_value(name, &v.value) {
                return Err(InstructionError {
                    kind: InstructionErrorKind::BadFlagValue {
                        flag: name.to_string(),
                        value: v.value,
                        reason: reason.to_string(),
                    },
                    span: v.span,
                });
            }
        }
        Ok(Some(v.value))
    }

    fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|s| s.value == "true")
    }
}

/// Parse one node into a typed instruction, reporting single-instruction
/// checks to `lint` under `cfg` (the configuration in effect here).
pub fn parse_node(
    node: &Node,
    lint: &mut Linter,
    cfg: &LintConfig,
) -> Result<Parsed, InstructionError> {
    let name = node.name();
    let upper = name.to_ascii_uppercase();
    let span = node.span;
    let args_err = |kind| InstructionError {
        kind,
        span: node.args_span(),
    };
    let args: Vec<String> = node_args(node);
    use FlagKind::{Bool, String as Str, Strings};
    let no_flags = |inst: &str| Flags::parse(node, inst, &[]);

    let instruction =
        match name.as_str() {
            "from" => {
                let flags = Flags::parse(node, "FROM", &[("platform", Str)])?;
                let words: Vec<_> = node.words().collect();
                let stage = match words.as_slice() {
                    [_] => None,
                    [_, as_kw, n] if as_kw.value.eq_ignore_ascii_case("as") => {
                        if n.value != n.value.to_lowercase() {
                            lint.report(
                                Some(cfg),
                                Rule::StageNameCasing,
                                span,
                                node.start_line,
                                format!("Stage name '{}' should be lowercase", n.value),
                            );
                        }
                        let kw_lower = node.keyword == node.keyword.to_lowercase();
                        let kw_upper = node.keyword == node.keyword.to_uppercase();
                        if (kw_lower && as_kw.value != as_kw.value.to_lowercase())
                            || (kw_upper && as_kw.value != as_kw.value.to_uppercase())
                        {
                            lint.report(
                                Some(cfg),
                                Rule::FromAsCasing,
                                span,
                                node.start_line,
                                format!(
                                    "'{}' and '{}' keywords' casing do not match",
                                    as_kw.value, node.keyword
                                ),
                            );
                        }
                        let lower = n.value.to_lowercase();
                        if !valid_stage_name(&lower) {
                            return Err(InstructionError {
                                kind: InstructionErrorKind::StageName {
                                    name: n.value.clone(),
                                },
                                span: n.span,
                            });
                        }
                        Some(Spanned {
                            value: lower,
                            span: n.span,
                        })
                    }
                    _ => return Err(args_err(InstructionErrorKind::FromArguments)),
                };
                let base = words.first().map(|w| Spanned {
                    value: w.value.clone(),
                    span: w.span,
                });
                let Some(base) = base else {
                    return Err(args_err(InstructionErrorKind::FromArguments));
                };
                let description = stage.as_ref().and_then(|s| {
                    check_description(node, "FROM", &[s.value.as_str()], lint, cfg);
                    doc_comment(&node.comments, &s.value)
                });
                return Ok(Parsed::From(From {
                    base,
                    name: stage,
                    platform: flags.string("platform"),
                    description,
                }));
            }
            "env" | "label" => {
                let inst = if name == "env" { "ENV" } else { "LABEL" };
                no_flags(inst)?;
                let pairs = key_values(args, inst).map_err(args_err)?;
                if name == "env" {
                    Instruction::Env(pairs)
                } else {
                    Instruction::Label(pairs)
                }
            }
            "maintainer" => {
                no_flags("MAINTAINER")?;
                lint.report(
                    Some(cfg),
                    Rule::MaintainerDeprecated,
                    span,
                    node.start_line,
                    "Maintainer instruction is deprecated in favor of using label".into(),
                );
                Instruction::Maintainer(exactly_one(node, args, "MAINTAINER")?)
            }
            "add" => {
                let flags = Flags::parse(
                    node,
                    "ADD",
                    &[
                        ("chown", Str),
                        ("chmod", Str),
                        ("link", Bool),
                        ("keep-git-dir", Bool),
                        ("checksum", Str),
                        ("unpack", Bool),
                        ("exclude", Strings),
                    ],
                )?;
                let (sources, contents, dest) = sources_and_dest(node, args, "ADD")?;
                Instruction::Add(Add {
                    chown: flags.checked("chown")?,
                    chmod: flags.checked("chmod")?,
                    link: flags.bool("link").unwrap_or(false),
                    keep_git_dir: flags.bool("keep-git-dir"),
                    checksum: flags.checked("checksum")?,
                    unpack: flags.bool("unpack"),
                    exclude: flags
                        .strings("exclude")
                        .into_iter()
                        .map(|s| s.value)
                        .collect(),
                    sources,
                    contents,
                    dest,
                })
            }
            "copy" => {
                let flags = Flags::parse(
                    node,
                    "COPY",
                    &[
                        ("chown", Str),
                        ("from", Str),
                        ("chmod", Str),
                        ("link", Bool),
                        ("exclude", Strings),
                        ("parents", Bool),
                    ],
                )?;
                let (sources, contents, dest) = sources_and_dest(node, args, "COPY")?;
                Instruction::Copy(Copy {
                    from: flags.string("from"),
                    chown: flags.checked("chown")?,
                    chmod: flags.checked("chmod")?,
                    link: flags.bool("link").unwrap_or(false),
                    parents: flags.bool("parents").unwrap_or(false),
                    exclude: flags
                        .strings("exclude")
                        .into_iter()
                        .map(|s| s.value)
                        .collect(),
                    sources,
                    contents,
                    dest,
                })
            }
            "onbuild" => {
                no_flags("ONBUILD")?;
                let Some(Arg::Node(child)) = node.args.first() else {
                    return Err(args_err(InstructionErrorKind::AtLeastOne {
                        instruction: "ONBUILD",
                    }));
                };
                let trigger = child.keyword.to_ascii_uppercase();
                if matches!(trigger.as_str(), "ONBUILD" | "MAINTAINER" | "FROM") {
                    return Err(InstructionError {
                        kind: InstructionErrorKind::OnbuildTrigger { trigger },
                        span: child.keyword_span,
                    });
                }
                // The trigger must itself be a valid instruction.
                let mut scratch = Linter::new(LintConfig {
                    skip_all: true,
                    ..LintConfig::default()
                });
                parse_node(child, &mut scratch, cfg)?;
                let mut expression = child.original.trim().to_string();
                for h in &node.heredocs {
                    expression.push('\n');
                    expression.push_str(&h.content);
                    expression.push_str(&h.name);
                }
                Instruction::Onbuild(expression)
            }
            "workdir" => {
                no_flags("WORKDIR")?;
                Instruction::Workdir(exactly_one(node, args, "WORKDIR")?)
            }
            "run" => {
                let flags = Flags::parse(
                    node,
                    "RUN",
                    &[
                        ("mount", Strings),
                        ("network", Str),
                        ("security", Str),
                        ("device", Strings),
                    ],
                )?;
                let network = match flags.string("network") {
                    Some(v) => Some(mounts::parse_network(&v.value).map_err(|source| {
                        InstructionError {
                            kind: InstructionErrorKind::Mount {
                                flag: "network",
                                source,
                            },
                            span: v.span,
                        }
                    })?),
                    None => None,
                };
                let security = match flags.string("security") {
                    Some(v) => Some(mounts::parse_security(&v.value).map_err(|source| {
                        InstructionError {
                            kind: InstructionErrorKind::Mount {
                                flag: "security",
                                source,
                            },
                            span: v.span,
                        }
                    })?),
                    None => None,
                };
                Instruction::Run(Run {
                    command: command_line(node, args),
                    mount_specs: flags.strings("mount"),
                    mounts: Vec::new(),
                    network,
                    security,
                    devices: flags
                        .strings("device")
                        .into_iter()
                        .map(|s| s.value)
                        .collect(),
                    build_args: Vec::new(),
                })
            }
            "cmd" => {
                no_flags("CMD")?;
                Instruction::Cmd(command_line(node, args))
            }
            "entrypoint" => {
                no_flags("ENTRYPOINT")?;
                Instruction::Entrypoint(command_line(node, args))
            }
            "healthcheck" => Instruction::Healthcheck(healthcheck(node, &args)?),
            "expose" => {
                no_flags("EXPOSE")?;
                at_least_one(node, &args, "EXPOSE")?;
                let mut ports = args;
                ports.sort();
                Instruction::Expose(ports)
            }
            "user" => {
                no_flags("USER")?;
                Instruction::User(exactly_one(node, args, "USER")?)
            }
            "volume" => {
                no_flags("VOLUME")?;
                at_least_one(node, &args, "VOLUME")?;
                let mut vols = Vec::with_capacity(args.len());
                for v in &args {
                    let v = v.trim();
                    if v.is_empty() {
                        return Err(args_err(InstructionErrorKind::EmptyVolume));
                    }
                    vols.push(v.to_string());
                }
                Instruction::Volume(vols)
            }
            "stopsignal" => {
                no_flags("STOPSIGNAL")?;
                Instruction::StopSignal(exactly_one(node, args, "STOPSIGNAL")?)
            }
            "arg" => {
                no_flags("ARG")?;
                at_least_one(node, &args, "ARG")?;
                let mut defs = Vec::with_capacity(args.len());
                for a in &args {
                    let (name, default) = match a.split_once('=') {
                        Some((n, v)) => (n.to_string(), Some(v.to_string())),
                        None => (a.clone(), None),
                    };
                    if name.is_empty() {
                        return Err(args_err(InstructionErrorKind::BlankName {
                            instruction: "ARG",
                        }));
                    }
                    let description = doc_comment(&node.comments, &name);
                    defs.push(ArgDef {
                        name,
                        default,
                        description,
                    });
                }
                let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
                check_description(node, "ARG", &names, lint, cfg);
                Instruction::Arg(defs)
            }
            "shell" => {
                no_flags("SHELL")?;
                at_least_one(node, &args, "SHELL")?;
                if !node.json {
                    return Err(args_err(InstructionErrorKind::ShellNotJson));
                }
                Instruction::Shell(args)
            }
            _ => {
                let suggestion =
                    crate::lint::suggest(&node.keyword, INSTRUCTIONS, false).map(str::to_string);
                return Err(InstructionError {
                    kind: InstructionErrorKind::Unknown {
                        name: node.keyword.clone(),
                        suggestion,
                    },
                    span: node.keyword_span,
                });
            }
        };
    debug_assert_eq!(instruction.name(), upper);
    Ok(Parsed::Instruction(instruction))
}

/// Check the value of `--chown`, `--chmod` or `--checksum`.
pub fn validate_flag_value(flag: &str, value: &str) -> Result<(), &'static str> {
    match flag {
        "chown" => {
            // An empty user or group (`:staff`, `app:`) is id 0, as in
            // BuildKit; only an empty value, or `:` alone, says nothing.
            let (user, group) = value.split_once(':').unwrap_or((value, ""));
            if user.is_empty() && group.is_empty() {
                return Err("expected USER[:GROUP], names or numeric ids");
            }
            Ok(())
        }
        "chmod" => {
            if !value.is_empty() && value.chars().all(|c| c.is_digit(8)) {
                return match u32::from_str_radix(value, 8) {
                    Ok(m) if m <= 0o7777 => Ok(()),
                    _ => Err("an octal mode is at most 7777"),
                };
            }
            // Symbolic modes, as chmod(1): `u+x`, `go=rx`, `a-w,u+s`.
            let ok = !value.is_empty()
                && value.split(',').all(|clause| {
                    let ops = clause.trim_start_matches(['u', 'g', 'o', 'a']);
                    let mut rest = ops;
                    if rest.is_empty() {
                        return false;
                    }
                    while let Some(op) = rest.chars().next().filter(|c| "+-=".contains(*c)) {
                        rest = rest[op.len_utf8()..]
                            .trim_start_matches(['r', 'w', 'x', 'X', 's', 't']);
                    }
                    rest.is_empty()
                });
            if ok {
                Ok(())
            } else {
                Err("expected an octal mode (0755) or a symbolic one (u+x,go=rx)")
            }
        }
        "checksum" => {
            let Some((alg, hex)) = value.split_once(':') else {
                return Err("expected ALGORITHM:HEX, e.g. sha256:…");
            };
            let len = match alg {
                "sha256" => 64,
                "sha384" => 96,
                "sha512" => 128,
                _ => return Err("the algorithm must be sha256, sha384 or sha512"),
            };
            if hex.len() != len
                || !hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            {
                return Err("the digest must be lowercase hex of the algorithm's length");
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn exactly_one(
    node: &Node,
    args: Vec<String>,
    instruction: &'static str,
) -> Result<String, InstructionError> {
    match <[String; 1]>::try_from(args) {
        Ok([one]) => Ok(one),
        Err(_) => Err(InstructionError {
            kind: InstructionErrorKind::ExactlyOne { instruction },
            span: node.args_span(),
        }),
    }
}

fn at_least_one(
    node: &Node,
    args: &[String],
    instruction: &'static str,
) -> Result<(), InstructionError> {
    if args.is_empty() {
        return Err(InstructionError {
            kind: InstructionErrorKind::AtLeastOne { instruction },
            span: node.args_span(),
        });
    }
    Ok(())
}

/// BuildKit's `nodeArgs`: the words, and for a nested node its keyword and
/// words.
fn node_args(node: &Node) -> Vec<String> {
    let mut out = Vec::new();
    for a in &node.args {
        match a {
            Arg::Word(w) => out.push(w.value.clone()),
            Arg::Node(n) => {
                out.push(n.keyword.clone());
                out.extend(node_args(n));
            }
        }
    }
    out
}

fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// The description for `name` among the comments above: a comment line
/// `name description…`.
fn doc_comment(comments: &[String], name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let prefix = format!("{name} ");
    comments
        .iter()
        .find_map(|c| c.strip_prefix(&prefix).map(str::to_string))
}

fn check_description(
    node: &Node,
    instruction: &str,
    names: &[&str],
    lint: &mut Linter,
    cfg: &LintConfig,
) {
    let (Some(last), Some(first)) = (node.comments.last(), names.first()) else {
        return;
    };
    let word = last.split(' ').next().unwrap_or("");
    if names.contains(&word) {
        return;
    }
    let example = if names.len() > 1 { "<arg_key>" } else { first };
    lint.report(
        Some(cfg),
        Rule::InvalidDefinitionDescription,
        node.span,
        node.start_line,
        format!("Comment for {instruction} should follow the format: `# {example} <description>`"),
    );
}

fn key_values(
    args: Vec<String>,
    inst: &'static str,
) -> Result<Vec<KeyValue>, InstructionErrorKind> {
    if args.is_empty() || args.len() % 3 != 0 {
        return Err(InstructionErrorKind::AtLeastOne { instruction: inst });
    }
    let mut out = Vec::with_capacity(args.len() / 3);
    let mut it = args.into_iter();
    while let (Some(key), Some(value), Some(delim)) = (it.next(), it.next(), it.next()) {
        if key.is_empty() {
            return Err(InstructionErrorKind::BlankName { instruction: inst });
        }
        out.push(KeyValue {
            key,
            value,
            legacy: delim.is_empty(),
        });
    }
    Ok(out)
}

fn command_line(node: &Node, args: Vec<String>) -> CommandLine {
    let files = node
        .heredocs
        .iter()
        .map(|h| InlineFile {
            name: h.name.clone(),
            data: h.content.clone(),
            expand: h.expand,
            chomp: h.chomp,
        })
        .collect();
    CommandLine {
        args,
        prepend_shell: !node.json,
        files,
    }
}

type SourcesAndDest = (Vec<String>, Vec<InlineFile>, String);

fn sources_and_dest(
    node: &Node,
    mut args: Vec<String>,
    inst: &'static str,
) -> Result<SourcesAndDest, InstructionError> {
    let err = |kind| InstructionError {
        kind,
        span: node.args_span(),
    };
    let dest = match args.pop() {
        Some(dest) if !args.is_empty() => dest,
        _ => {
            return Err(err(InstructionErrorKind::NoDestination {
                instruction: inst,
            }))
        }
    };
    if heredoc_word(&dest).is_some() {
        return Err(err(InstructionErrorKind::HeredocDestination {
            instruction: inst,
        }));
    }
    let mut sources = Vec::new();
    let mut contents = Vec::new();
    for src in args {
        match heredoc_word(&src) {
            Some(h) => {
                let body = node.heredocs.iter().find(|d| d.name == h.name);
                let data = body.map(|b| {
                    Heredoc {
                        chomp: h.chomp,
                        ..b.clone()
                    }
                    .body()
                });
                contents.push(InlineFile {
                    name: h.name,
                    data: data.unwrap_or_default(),
                    expand: h.expand,
                    chomp: h.chomp,
                });
            }
            None => sources.push(src),
        }
    }
    Ok((sources, contents, dest))
}

fn heredoc_word(word: &str) -> Option<Heredoc> {
    crate::parser::parse_heredoc_word(word).ok().flatten()
}

fn healthcheck(node: &Node, args: &[String]) -> Result<Healthcheck, InstructionError> {
    let args_err = |kind| InstructionError {
        kind,
        span: node.args_span(),
    };
    let Some((kind, rest)) = args.split_first() else {
        return Err(args_err(InstructionErrorKind::AtLeastOne {
            instruction: "HEALTHCHECK",
        }));
    };
    let kind = kind.to_ascii_uppercase();
    if kind == "NONE" {
        if !rest.is_empty() {
            return Err(args_err(InstructionErrorKind::HealthcheckNoneArgs));
        }
        Flags::parse(node, "HEALTHCHECK NONE", &[])?;
        return Ok(Healthcheck::None);
    }
    use FlagKind::String as Str;
    let flags = Flags::parse(
        node,
        "HEALTHCHECK",
        &[
            ("interval", Str),
            ("timeout", Str),
            ("start-period", Str),
            ("start-interval", Str),
            ("retries", Str),
        ],
    )?;
    if kind != "CMD" {
        return Err(args_err(InstructionErrorKind::HealthcheckType { kind }));
    }
    if rest.is_empty() || rest.iter().all(String::is_empty) && !node.json {
        return Err(args_err(InstructionErrorKind::HealthcheckMissingCommand));
    }
    let mut test = vec![if node.json {
        "CMD".to_string()
    } else {
        "CMD-SHELL".to_string()
    }];
    test.extend(rest.iter().cloned());
    let duration = |name: &str| -> Result<Option<Duration>, InstructionError> {
        let Some(v) = flags.string(name) else {
            return Ok(None);
        };
        let bad = |reason: &str| InstructionError {
            kind: InstructionErrorKind::BadFlagValue {
                flag: name.to_string(),
                value: v.value.clone(),
                reason: reason.to_string(),
            },
            span: v.span,
        };
        if v.value.is_empty() {
            return Ok(None);
        }
        let d = parse_go_duration(&v.value)
            .ok_or_else(|| bad("not a duration such as 30s or 1m30s"))?;
        if d.is_zero() {
            return Ok(None);
        }
        if d < Duration::from_millis(1) {
            return Err(bad("cannot be less than 1ms"));
        }
        Ok(Some(d))
    };
    let retries = match flags.string("retries") {
        Some(v) if !v.value.is_empty() => {
            Some(v.value.parse::<u32>().map_err(|_| InstructionError {
                kind: InstructionErrorKind::BadFlagValue {
                    flag: "retries".into(),
                    value: v.value.clone(),
                    reason: "expected a non-negative integer".into(),
                },
                span: v.span,
            })?)
        }
        _ => None,
    };
    Ok(Healthcheck::Cmd {
        test,
        interval: duration("interval")?,
        timeout: duration("timeout")?,
        start_period: duration("start-period")?,
        start_interval: duration("start-interval")?,
        retries,
    })
}

/// Go's `time.ParseDuration` for non-negative durations: a sequence of
/// decimal numbers with units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`; `0` alone.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = num.parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * nanos_per;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return None;
    }
    Some(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(src: &str) -> Result<Parsed, InstructionError> {
        let df = crate::parse(&format!("FROM a\n{src}\n")).expect("parses");
        let mut lint = Linter::new(LintConfig::default());
        parse_node(&df.nodes[1], &mut lint, &LintConfig::default())
    }

    fn kind(src: &str) -> InstructionErrorKind {
        one(src).expect_err("should fail").kind
    }

    #[test]
    fn flags_are_checked() {
        assert!(matches!(
            kind("COPY --form=a x y"),
            InstructionErrorKind::UnknownFlag { .. }
        ));
        assert!(matches!(
            kind("COPY --from=a --from=b x y"),
            InstructionErrorKind::DuplicateFlag { .. }
        ));
        assert!(matches!(
            kind("COPY --from x y"),
            InstructionErrorKind::MissingFlagValue { .. }
        ));
        assert!(matches!(
            kind("COPY --link=maybe x y"),
            InstructionErrorKind::NotBoolean { .. }
        ));
        assert!(matches!(
            kind("ADD --from=a x y"),
            InstructionErrorKind::UnknownFlag { .. }
        ));
        assert!(matches!(
            kind("ENV --x=1 a=b"),
            InstructionErrorKind::UnknownFlag { .. }
        ));
        assert!(matches!(
            kind("RUN --network=bogus true"),
            InstructionErrorKind::Mount { .. }
        ));
        assert!(matches!(
            kind("HEALTHCHECK --interval=5 CMD true"),
            InstructionErrorKind::BadFlagValue { .. }
        ));
        assert!(matches!(
            kind("HEALTHCHECK --retries=-1 CMD true"),
            InstructionErrorKind::BadFlagValue { .. }
        ));
        for bad in [
            "COPY --chmod=999 a b",
            "COPY --chmod=u+q a b",
            "COPY --chown=: a b",
            "ADD --checksum=md5:abc http://x/y /y",
        ] {
            assert!(
                matches!(kind(bad), InstructionErrorKind::BadFlagValue { .. }),
                "{bad}"
            );
        }
        assert!(one("COPY --chmod=0755 --chown=app:app a b").is_ok());
        assert!(one("COPY --chmod=u+rwx,go=rx --chown=1000 a b").is_ok());
        assert!(one("COPY --chown=:staff a b").is_ok(), "user 0");
        assert!(one("COPY --chown=app: a b").is_ok(), "group 0");
        assert!(
            one("COPY --chmod=$MODE a b").is_ok(),
            "validated after expansion"
        );
        assert!(one(&format!(
            "ADD --checksum=sha256:{} http://x/y /y",
            "a".repeat(64)
        ))
        .is_ok());
        let Ok(Parsed::Instruction(Instruction::Copy(c))) =
            one("COPY --exclude=*.md --exclude=*.txt --link --chmod=755 a b /d/")
        else {
            panic!("copy")
        };
        assert_eq!(c.exclude, vec!["*.md", "*.txt"]);
        assert!(c.link);
        assert_eq!(c.sources, vec!["a", "b"]);
        assert_eq!(c.dest, "/d/");
    }

    #[test]
    fn flag_error_points_at_the_flag() {
        let src = "FROM a\nCOPY --form=a x y\n";
        let df = crate::parse(src).expect("parses");
        let mut lint = Linter::new(LintConfig::default());
        let e = parse_node(&df.nodes[1], &mut lint, &LintConfig::default()).expect_err("bad flag");
        assert_eq!(&src[e.span.start..e.span.end], "--form=a");
    }

    #[test]
    fn argument_counts() {
        assert!(matches!(
            kind("COPY onlyone"),
            InstructionErrorKind::NoDestination { .. }
        ));
        assert!(matches!(
            kind("WORKDIR"),
            InstructionErrorKind::ExactlyOne { .. }
        ));
        assert!(matches!(
            kind("STOPSIGNAL"),
            InstructionErrorKind::ExactlyOne { .. }
        ));
        assert!(matches!(
            kind("USER"),
            InstructionErrorKind::ExactlyOne { .. }
        ));
        assert!(matches!(
            kind("SHELL sh -c"),
            InstructionErrorKind::ShellNotJson
        ));
        assert!(matches!(
            kind("ONBUILD FROM x"),
            InstructionErrorKind::OnbuildTrigger { .. }
        ));
        assert!(matches!(
            kind("ONBUILD ONBUILD RUN x"),
            InstructionErrorKind::OnbuildTrigger { .. }
        ));
        assert!(matches!(
            kind("HEALTHCHECK NONE x"),
            InstructionErrorKind::HealthcheckNoneArgs
        ));
        assert!(matches!(
            kind("HEALTHCHECK FOO x"),
            InstructionErrorKind::HealthcheckType { .. }
        ));
        assert!(matches!(
            kind("COPY <<EOF <<EOF\nx\nEOF\ny\nEOF"),
            InstructionErrorKind::HeredocDestination { .. }
        ));
        assert!(matches!(
            kind("ARG =x"),
            InstructionErrorKind::BlankName { .. }
        ));
        assert!(matches!(
            kind("VOLUME [\"\"]"),
            InstructionErrorKind::EmptyVolume
        ));
        match kind("COPPY a b") {
            InstructionErrorKind::Unknown { suggestion, .. } => {
                assert_eq!(suggestion.as_deref(), Some("COPY"))
            }
            k => panic!("{k:?}"),
        }
    }

    #[test]
    fn healthcheck_forms() {
        let Ok(Parsed::Instruction(Instruction::Healthcheck(h))) =
            one("HEALTHCHECK --interval=1m30s --timeout=5s --start-period=2s --start-interval=500ms --retries=3 CMD curl -f http://x/")
        else {
            panic!("healthcheck")
        };
        assert_eq!(
            h,
            Healthcheck::Cmd {
                test: vec!["CMD-SHELL".into(), "curl -f http://x/".into()],
                interval: Some(Duration::from_secs(90)),
                timeout: Some(Duration::from_secs(5)),
                start_period: Some(Duration::from_secs(2)),
                start_interval: Some(Duration::from_millis(500)),
                retries: Some(3),
            }
        );
        let Ok(Parsed::Instruction(Instruction::Healthcheck(h))) =
            one("HEALTHCHECK CMD [\"true\"]")
        else {
            panic!("healthcheck")
        };
        assert!(matches!(h, Healthcheck::Cmd { ref test, .. } if test == &["CMD", "true"]));
        assert_eq!(
            one("HEALTHCHECK NONE"),
            Ok(Parsed::Instruction(Instruction::Healthcheck(
                Healthcheck::None
            )))
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("1h2m3.5s"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("1d"), None);
        assert_eq!(parse_go_duration("-1s"), None);
        assert_eq!(parse_go_duration("300us"), Some(Duration::from_micros(300)));
    }

    #[test]
    fn copy_heredoc_sources() {
        let Ok(Parsed::Instruction(Instruction::Copy(c))) =
            one("COPY <<-one <<'two' /dest/\n\tfirst $X\n\tone\nsecond $X\ntwo")
        else {
            panic!("copy")
        };
        assert_eq!(c.sources, Vec::<String>::new());
        assert_eq!(
            c.contents[0],
            InlineFile {
                name: "one".into(),
                data: "first $X\n".into(),
                expand: true,
                chomp: true
            }
        );
        assert_eq!(
            c.contents[1],
            InlineFile {
                name: "two".into(),
                data: "second $X\n".into(),
                expand: false,
                chomp: false
            }
        );
    }

    #[test]
    fn from_forms() {
        let Ok(Parsed::From(f)) = one("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build") else {
            panic!("from")
        };
        assert_eq!(f.base.value, "golang:1.22");
        assert_eq!(f.name.map(|n| n.value).as_deref(), Some("build"));
        assert_eq!(
            f.platform.map(|p| p.value).as_deref(),
            Some("$BUILDPLATFORM")
        );
        assert!(matches!(
            kind("FROM a AS"),
            InstructionErrorKind::FromArguments
        ));
        assert!(matches!(
            kind("FROM a AS 9x"),
            InstructionErrorKind::StageName { .. }
        ));
        assert!(matches!(
            kind("FROM a FOR b"),
            InstructionErrorKind::FromArguments
        ));
    }
}
