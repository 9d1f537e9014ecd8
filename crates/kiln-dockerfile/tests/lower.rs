//! Lowering: scoping, expansion, the stage graph, and one test per build
//! check, each with a Dockerfile that triggers it and one that does not.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use kiln_dockerfile::ignore::IgnoreRules;
use kiln_dockerfile::instructions::{Healthcheck, Instruction};
use kiln_dockerfile::lint::Rule;
use kiln_dockerfile::lower::{lower, Base, Build, ImageEnv, LowerErrorKind, LowerOptions, Source};
use kiln_oci::Platform;

struct Images(Vec<(&'static str, Vec<(String, String)>)>);

impl ImageEnv for Images {
    fn env(&self, image: &str, _: &Platform) -> Option<Vec<(String, String)>> {
        self.0
            .iter()
            .find(|(n, _)| *n == image)
            .map(|(_, e)| e.clone())
    }
}

/// Base images whose environment is known (so UndefinedVar runs).
fn images() -> Images {
    Images(vec![
        ("alpine", vec![("PATH".into(), "/usr/bin:/bin".into())]),
        (
            "debian:bookworm-slim",
            vec![("PATH".into(), "/usr/bin:/bin".into())],
        ),
        (
            "golang:1.22",
            vec![
                ("PATH".into(), "/go/bin".into()),
                ("GOPATH".into(), "/go".into()),
            ],
        ),
    ])
}

fn host() -> Platform {
    "linux/amd64".parse().unwrap()
}

fn build_with(
    src: &str,
    args: &[(&str, &str)],
    target: Option<&str>,
    ignore: Option<&IgnoreRules>,
) -> Result<Build, kiln_dockerfile::lower::LowerError> {
    let df = kiln_dockerfile::parse(src).unwrap();
    let args: BTreeMap<String, String> = args
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let platform = host();
    let imgs = images();
    let opts = LowerOptions {
        build_args: &args,
        target,
        target_platform: None,
        build_platform: &platform,
        images: &imgs,
        ignore,
    };
    lower(&df, &opts)
}

fn build(src: &str) -> Build {
    build_with(src, &[], None, None).unwrap()
}

fn rules(src: &str) -> Vec<Rule> {
    build(src).findings.iter().map(|f| f.rule).collect()
}

fn has(src: &str, rule: Rule) -> bool {
    rules(src).contains(&rule)
}

fn step(b: &Build, stage: usize, i: usize) -> &Instruction {
    &b.stages[stage].steps[i].instruction
}

// ---- scoping and expansion ----

#[test]
fn meta_args_are_visible_to_from_only() {
    let b = build("ARG TAG=bookworm-slim\nFROM debian:$TAG\nENV X=\"[$TAG]\"\n");
    assert_eq!(b.stages[0].base, Base::Image("debian:bookworm-slim".into()));
    let Instruction::Env(kv) = step(&b, 0, 0) else {
        panic!()
    };
    assert_eq!(kv[0].value, "[]");
}

#[test]
fn redeclared_meta_arg_takes_the_global_value() {
    let b = build("ARG V=1\nFROM alpine\nARG V\nENV X=$V\n");
    let Instruction::Env(kv) = step(&b, 0, 1) else {
        panic!()
    };
    assert_eq!(kv[0].value, "1");
}

#[test]
fn build_arg_overrides_default_and_global() {
    let b = build_with(
        "ARG V=1\nFROM alpine\nARG V\nARG W=2\nENV X=$V-$W\n",
        &[("V", "9"), ("W", "8")],
        None,
        None,
    )
    .unwrap();
    let Instruction::Env(kv) = step(&b, 0, 2) else {
        panic!()
    };
    assert_eq!(kv[0].value, "9-8");
    assert!(b.unused_build_args.is_empty());
    let b = build_with("FROM alpine\n", &[("NOPE", "1")], None, None).unwrap();
    assert_eq!(b.unused_build_args, vec!["NOPE".to_string()]);
}

#[test]
fn env_shadows_arg() {
    let b = build("FROM alpine\nARG V=from-arg\nENV V=from-env\nWORKDIR /$V\n");
    let Instruction::Workdir(w) = step(&b, 0, 2) else {
        panic!()
    };
    assert_eq!(w, "/from-env");
}

#[test]
fn args_do_not_leak_between_siblings_but_pass_to_children() {
    let src = "FROM alpine AS a\nARG X=1\nENV E=e\nFROM alpine AS b\nWORKDIR /x$X$E\nFROM a AS c\nWORKDIR /y$X$E\n";
    let b = build(src);
    let Instruction::Workdir(w) = step(&b, 1, 0) else {
        panic!()
    };
    assert_eq!(w, "/x");
    let Instruction::Workdir(w) = step(&b, 2, 0) else {
        panic!()
    };
    assert_eq!(w, "/y1e");
}

#[test]
fn predefined_platform_args() {
    let b = build("FROM --platform=$BUILDPLATFORM alpine AS b\nARG TARGETARCH\nARG BUILDOS\nENV A=$TARGETARCH/$BUILDOS N=$TARGETOS\n");
    let Instruction::Env(kv) = step(&b, 0, 2) else {
        panic!()
    };
    assert_eq!(kv[0].value, "amd64/linux");
    assert_eq!(kv[1].value, "", "TARGETOS is not declared in the stage");
    assert_eq!(b.stages[0].platform.to_string(), "linux/amd64");
}

#[test]
fn proxy_args_need_no_declaration_and_are_not_recorded() {
    let b = build_with(
        "FROM alpine\nRUN true\n",
        &[("http_proxy", "http://p:3128")],
        None,
        None,
    )
    .unwrap();
    assert!(b.unused_build_args.is_empty());
    assert_eq!(
        b.proxy_env,
        vec![("http_proxy".to_string(), "http://p:3128".to_string())]
    );
    let Instruction::Run(r) = step(&b, 0, 0) else {
        panic!()
    };
    assert!(r.build_args.is_empty());
}

#[test]
fn run_records_args_in_scope() {
    let b = build("FROM alpine\nARG A=1\nARG B\nRUN echo $A\n");
    let Instruction::Run(r) = step(&b, 0, 2) else {
        panic!()
    };
    assert_eq!(
        r.build_args,
        vec![("A".into(), "1".into()), ("B".into(), String::new())]
    );
    assert_eq!(r.command.args, vec!["echo $A"], "RUN is not expanded");
}

#[test]
fn what_is_expanded_and_what_is_not() {
    let src = "FROM alpine\nENV D=/dst U=app S=SIGTERM P=8080\n\
               COPY --chown=$U a${D}x $D/\nADD src $D\nEXPOSE $P\nUSER $U\nVOLUME $D\nSTOPSIGNAL $S\n\
               LABEL k=$U\nCMD echo $D\nENTRYPOINT [\"$D\"]\nHEALTHCHECK CMD echo $D\nONBUILD RUN echo $D\n\
               COPY <<EOF <<'RAW' /f\n$D \"q\"\nEOF\n$D\nRAW\n";
    let b = build(src);
    let Instruction::Copy(c) = step(&b, 0, 1) else {
        panic!()
    };
    assert_eq!(
        (c.chown.as_deref(), c.sources.clone(), c.dest.as_str()),
        (Some("app"), vec!["a/dstx".to_string()], "/dst/")
    );
    let Instruction::Add(a) = step(&b, 0, 2) else {
        panic!()
    };
    assert_eq!(a.dest, "/dst");
    assert_eq!(step(&b, 0, 3), &Instruction::Expose(vec!["8080".into()]));
    assert_eq!(step(&b, 0, 4), &Instruction::User("app".into()));
    assert_eq!(step(&b, 0, 5), &Instruction::Volume(vec!["/dst".into()]));
    assert_eq!(step(&b, 0, 6), &Instruction::StopSignal("SIGTERM".into()));
    let Instruction::Label(l) = step(&b, 0, 7) else {
        panic!()
    };
    assert_eq!(l[0].value, "app");
    let Instruction::Cmd(c) = step(&b, 0, 8) else {
        panic!()
    };
    assert_eq!(c.args, vec!["echo $D"]);
    let Instruction::Entrypoint(e) = step(&b, 0, 9) else {
        panic!()
    };
    assert_eq!(e.args, vec!["$D"]);
    let Instruction::Healthcheck(Healthcheck::Cmd { test, .. }) = step(&b, 0, 10) else {
        panic!()
    };
    assert_eq!(test[1], "echo $D");
    assert_eq!(step(&b, 0, 11), &Instruction::Onbuild("RUN echo $D".into()));
    let Instruction::Copy(c) = step(&b, 0, 12) else {
        panic!()
    };
    assert_eq!(
        c.contents[0].data, "/dst \"q\"\n",
        "heredoc bodies keep their quotes"
    );
    assert_eq!(
        c.contents[1].data, "$D\n",
        "a quoted terminator disables expansion"
    );
}

#[test]
fn run_mounts_are_expanded_and_parsed() {
    let b = build("FROM alpine\nARG C=/root/.cache\nRUN --mount=type=cache,target=$C --mount=type=secret,id=tok,required pip install\n");
    let Instruction::Run(r) = step(&b, 0, 1) else {
        panic!()
    };
    assert_eq!(r.mounts.len(), 2);
    assert_eq!(r.mounts[0].target.as_deref(), Some("/root/.cache"));
    assert_eq!(b.secrets().get("tok"), Some(&true));
    let e = build_with(
        "FROM alpine\nRUN --mount=type=bogus true\n",
        &[],
        None,
        None,
    )
    .unwrap_err();
    assert!(matches!(e.kind, LowerErrorKind::Mount { .. }), "{e}");
}

#[test]
fn expansion_errors_point_at_the_instruction() {
    let src = "FROM alpine\nENV X=${NOPE:?required}\n";
    let e = build_with(src, &[], None, None).unwrap_err();
    assert!(matches!(e.kind, LowerErrorKind::Expand { .. }));
    assert_eq!(&src[e.span.start..e.span.end], "ENV X=${NOPE:?required}");
}

// ---- the stage graph ----

#[test]
fn stage_references_and_target() {
    let src = "FROM alpine AS base\nFROM golang:1.22 AS build\nRUN --mount=from=base,target=/b true\n\
               FROM base AS test\nFROM scratch AS final\nCOPY --from=build /out /\nCOPY --from=0 /etc /etc\nCOPY --from=nginx:1 /x /x\n";
    let b = build(src);
    assert_eq!(b.stages[2].base, Base::Stage(0));
    assert_eq!(b.stages[3].base, Base::Scratch);
    assert_eq!(b.target, 3);
    assert_eq!(b.needed, vec![0, 1, 3]);
    assert!(b.stages[3].images.contains("nginx:1"));
    assert_eq!(b.resolve_source("BUILD"), Source::Stage(1));
    let b = build_with(src, &[], Some("test"), None).unwrap();
    assert_eq!(b.needed, vec![0, 2]);
}

#[test]
fn unknown_target_suggests() {
    let e = build_with(
        "FROM alpine AS build\nFROM alpine AS final\n",
        &[],
        Some("biuld"),
        None,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "target stage `biuld` could not be found (did you mean build?)"
    );
}

#[test]
fn cycles_are_errors_at_their_span() {
    let src = "FROM alpine AS a\nCOPY --from=b /x /x\nFROM alpine AS b\nCOPY --from=a /y /y\n";
    let e = build_with(src, &[], None, None).unwrap_err();
    assert!(matches!(e.kind, LowerErrorKind::Cycle { .. }), "{e}");
    let at = &src[e.span.start..e.span.end];
    assert!(at == "--from=b" || at == "--from=a", "{at}");
    let e = build_with("FROM alpine AS a\nCOPY --from=a /x /x\n", &[], None, None).unwrap_err();
    assert!(matches!(e.kind, LowerErrorKind::Cycle { .. }));
}

#[test]
fn copy_from_rejects_variables_and_bad_indexes() {
    let e = build_with(
        "ARG S=a\nFROM alpine AS a\nFROM alpine\nCOPY --from=$S /x /x\n",
        &[],
        None,
        None,
    )
    .unwrap_err();
    assert_eq!(e.kind, LowerErrorKind::FromExpansion);
    let e = build_with("FROM alpine\nCOPY --from=5 /x /x\n", &[], None, None).unwrap_err();
    assert_eq!(e.kind, LowerErrorKind::StageIndex { index: 5 });
}

#[test]
fn errors_in_stages_not_needed_are_ignored() {
    let src = "FROM alpine AS unused\nENV X=${NOPE:?boom}\nFROM alpine\nRUN true\n";
    assert!(build_with(src, &[], None, None).is_ok());
    assert!(build_with(src, &[], Some("unused"), None).is_err());
}

#[test]
fn instructions_before_from_other_than_arg() {
    let e = build_with("RUN true\nFROM alpine\n", &[], None, None).unwrap_err();
    assert!(e.to_string().contains("RUN must come after FROM"), "{e}");
}

// ---- build checks: one test each ----

#[test]
fn check_stage_name_casing() {
    assert!(has("FROM alpine AS Build\n", Rule::StageNameCasing));
    assert!(!has("FROM alpine AS build\n", Rule::StageNameCasing));
}

#[test]
fn check_from_as_casing() {
    assert!(has("FROM alpine as build\n", Rule::FromAsCasing));
    assert!(has("from alpine AS build\n", Rule::FromAsCasing));
    assert!(!has("FROM alpine AS build\n", Rule::FromAsCasing));
}

#[test]
fn check_no_empty_continuation() {
    assert!(has(
        "FROM alpine\nRUN echo a \\\n\n  b\n",
        Rule::NoEmptyContinuation
    ));
    assert!(!has(
        "FROM alpine\nRUN echo a \\\n  b\n",
        Rule::NoEmptyContinuation
    ));
}

#[test]
fn check_consistent_instruction_casing() {
    let b = build("FROM alpine\nRUN true\nrun true\nCOPY a b\n");
    let f: Vec<_> = b
        .findings
        .iter()
        .filter(|f| f.rule == Rule::ConsistentInstructionCasing)
        .collect();
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].line, 3);
    assert_eq!(
        f[0].message,
        "Command 'run' should match the case of the command majority (uppercase)"
    );
    assert!(!has(
        "from alpine\nrun true\n",
        Rule::ConsistentInstructionCasing
    ));
}

#[test]
fn check_duplicate_stage_name() {
    assert!(has(
        "FROM alpine AS a\nFROM alpine AS a\n",
        Rule::DuplicateStageName
    ));
    assert!(!has(
        "FROM alpine AS a\nFROM alpine AS b\n",
        Rule::DuplicateStageName
    ));
}

#[test]
fn check_reserved_stage_name() {
    assert!(has("FROM alpine AS scratch\n", Rule::ReservedStageName));
    assert!(has("FROM alpine AS context\n", Rule::ReservedStageName));
    assert!(!has("FROM alpine AS base\n", Rule::ReservedStageName));
}

#[test]
fn check_json_args_recommended() {
    assert!(has("FROM alpine\nCMD echo hi\n", Rule::JsonArgsRecommended));
    assert!(has(
        "FROM alpine\nENTRYPOINT echo hi\n",
        Rule::JsonArgsRecommended
    ));
    assert!(!has(
        "FROM alpine\nCMD [\"echo\", \"hi\"]\n",
        Rule::JsonArgsRecommended
    ));
    assert!(!has(
        "FROM alpine\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\n",
        Rule::JsonArgsRecommended
    ));
}

#[test]
fn check_maintainer_deprecated() {
    assert!(has(
        "FROM alpine\nMAINTAINER me\n",
        Rule::MaintainerDeprecated
    ));
    assert!(!has(
        "FROM alpine\nLABEL org.opencontainers.image.authors=me\n",
        Rule::MaintainerDeprecated
    ));
}

#[test]
fn check_undefined_arg_in_from() {
    let b = build("ARG VERSION=1\nFROM alpine:$VERSIN\n");
    let f = b
        .findings
        .iter()
        .find(|f| f.rule == Rule::UndefinedArgInFrom)
        .unwrap();
    assert_eq!(
        f.message,
        "FROM argument 'VERSIN' is not declared (did you mean VERSION?)"
    );
    assert!(!has(
        "ARG VERSION=1\nFROM alpine:$VERSION\n",
        Rule::UndefinedArgInFrom
    ));
    assert!(!has(
        "FROM --platform=$BUILDPLATFORM alpine\n",
        Rule::UndefinedArgInFrom
    ));
}

#[test]
fn check_workdir_relative_path() {
    assert!(!has(
        "FROM alpine\nWORKDIR C:\\\\go\n",
        Rule::WorkdirRelativePath
    ));
    assert!(has("FROM alpine\nWORKDIR app\n", Rule::WorkdirRelativePath));
    assert!(!has(
        "FROM alpine\nWORKDIR /app\nWORKDIR sub\n",
        Rule::WorkdirRelativePath
    ));
}

#[test]
fn check_undefined_var() {
    let b = build("FROM alpine\nENV APP_HOME=/srv\nCOPY $APP_HOEM /x\n");
    let f = b
        .findings
        .iter()
        .find(|f| f.rule == Rule::UndefinedVar)
        .unwrap();
    assert_eq!(
        f.message,
        "Usage of undefined variable '$APP_HOEM' (did you mean $APP_HOME?)"
    );
    assert_eq!(f.line, 3);
    assert!(
        !has("FROM alpine\nARG X\nCOPY $X /x\n", Rule::UndefinedVar),
        "declared ARG without value"
    );
    assert!(
        !has("FROM alpine\nENV P=$PATH\n", Rule::UndefinedVar),
        "from the base image"
    );
    // With an unknown base image environment the check cannot know.
    let df = kiln_dockerfile::parse("FROM unknown\nCOPY $X /x\n").unwrap();
    let args = BTreeMap::new();
    let p = host();
    let b = lower(&df, &LowerOptions::new(&args, &p)).unwrap();
    assert!(b.findings.iter().all(|f| f.rule != Rule::UndefinedVar));
}

#[test]
fn check_multiple_instructions_disallowed() {
    let b = build("FROM alpine\nCMD [\"a\"]\nCMD [\"b\"]\n");
    let f = b
        .findings
        .iter()
        .find(|f| f.rule == Rule::MultipleInstructionsDisallowed)
        .unwrap();
    assert_eq!(f.line, 2, "the ignored (earlier) one is reported");
    assert!(has(
        "FROM alpine\nHEALTHCHECK NONE\nHEALTHCHECK NONE\n",
        Rule::MultipleInstructionsDisallowed
    ));
    assert!(!has(
        "FROM alpine AS a\nCMD [\"a\"]\nFROM alpine\nCMD [\"b\"]\n",
        Rule::MultipleInstructionsDisallowed
    ));
}

#[test]
fn check_legacy_key_value_format() {
    assert!(has("FROM alpine\nENV A 1\n", Rule::LegacyKeyValueFormat));
    assert!(has("FROM alpine\nLABEL a b\n", Rule::LegacyKeyValueFormat));
    assert!(!has("FROM alpine\nENV A=1\n", Rule::LegacyKeyValueFormat));
}

#[test]
fn check_invalid_default_arg_in_from() {
    assert!(has(
        "ARG TAG\nFROM alpine:${TAG}\n",
        Rule::InvalidDefaultArgInFrom
    ));
    // Given on the command line the value is fine, but the default is not.
    let b = build_with("ARG IMG\nFROM $IMG\n", &[("IMG", "alpine")], None, None).unwrap();
    assert!(b
        .findings
        .iter()
        .any(|f| f.rule == Rule::InvalidDefaultArgInFrom));
    assert!(!has(
        "ARG TAG=3.20\nFROM alpine:${TAG}\n",
        Rule::InvalidDefaultArgInFrom
    ));
}

#[test]
fn check_from_platform_flag_const_disallowed() {
    assert!(has(
        "FROM --platform=linux/amd64 alpine\n",
        Rule::FromPlatformFlagConstDisallowed
    ));
    assert!(!has(
        "FROM --platform=linux/amd64 alpine AS build-amd64\n",
        Rule::FromPlatformFlagConstDisallowed
    ));
    assert!(!has(
        "FROM --platform=$BUILDPLATFORM alpine\n",
        Rule::FromPlatformFlagConstDisallowed
    ));
}

#[test]
fn check_copy_ignored_file() {
    let ignore = IgnoreRules::parse("secret.txt\n*.log\n").unwrap();
    let b = build_with(
        "FROM alpine\nCOPY secret.txt app.py /app/\n",
        &[],
        None,
        Some(&ignore),
    )
    .unwrap();
    let f = b
        .findings
        .iter()
        .find(|f| f.rule == Rule::CopyIgnoredFile)
        .unwrap();
    assert_eq!(
        f.message,
        "Attempting to Copy file \"secret.txt\" that is excluded by .dockerignore"
    );
    assert_eq!(
        b.findings
            .iter()
            .filter(|f| f.rule == Rule::CopyIgnoredFile)
            .count(),
        1
    );
    let b = build_with(
        "FROM alpine AS a\nFROM alpine\nCOPY --from=a secret.txt /\n",
        &[],
        None,
        Some(&ignore),
    )
    .unwrap();
    assert!(
        b.findings.iter().all(|f| f.rule != Rule::CopyIgnoredFile),
        "--from does not read the context"
    );
}

#[test]
fn check_secrets_used_in_arg_or_env() {
    assert!(has(
        "FROM alpine\nARG GITHUB_TOKEN\n",
        Rule::SecretsUsedInArgOrEnv
    ));
    assert!(has(
        "FROM alpine\nENV DB_PASSWORD=x\n",
        Rule::SecretsUsedInArgOrEnv
    ));
    assert!(!has(
        "FROM alpine\nENV PUBLIC_KEY=x\n",
        Rule::SecretsUsedInArgOrEnv
    ));
    assert!(!has(
        "FROM alpine\nENV KEYBOARD=x\n",
        Rule::SecretsUsedInArgOrEnv
    ));
}

#[test]
fn check_redundant_target_platform() {
    assert!(has(
        "FROM --platform=$TARGETPLATFORM alpine\n",
        Rule::RedundantTargetPlatform
    ));
    assert!(!has(
        "FROM --platform=$BUILDPLATFORM alpine\n",
        Rule::RedundantTargetPlatform
    ));
}

#[test]
fn check_invalid_definition_description() {
    let exp = "# check=experimental=InvalidDefinitionDescription\n";
    assert!(has(
        &format!("{exp}\n# the base stage\nFROM alpine AS base\n"),
        Rule::InvalidDefinitionDescription
    ));
    assert!(!has(
        &format!("{exp}\n# base the base stage\nFROM alpine AS base\n"),
        Rule::InvalidDefinitionDescription
    ));
    assert!(has(
        &format!("{exp}FROM alpine\n# version to use\nARG VERSION=1\n"),
        Rule::InvalidDefinitionDescription
    ));
    // Experimental: off unless asked for.
    assert!(!has(
        "# the base stage\nFROM alpine AS base\n",
        Rule::InvalidDefinitionDescription
    ));
}

#[test]
fn check_directive_skip_and_error() {
    let src = "# check=skip=JSONArgsRecommended,MaintainerDeprecated;error=true\nFROM alpine\nMAINTAINER me\nCMD echo\n";
    let b = build(src);
    assert!(b.findings.is_empty(), "{:?}", b.findings);
    assert!(b.check.error);
    let b = build("# check=skip=all\nFROM alpine AS Build\nCMD echo\n");
    assert!(b.findings.is_empty());
    // A check comment above one instruction applies to it alone.
    let b =
        build("FROM alpine\n# check=skip=JSONArgsRecommended\nCMD echo\nFROM alpine\nCMD echo\n");
    assert_eq!(
        b.findings
            .iter()
            .filter(|f| f.rule == Rule::JsonArgsRecommended)
            .count(),
        1
    );
}

#[test]
fn descriptions_for_targets_and_outline() {
    let b = build("# VERSION the version to build\nARG VERSION=1.0\n\n# build compiles the app\nFROM alpine AS build\n");
    assert_eq!(
        b.meta_args[0].description.as_deref(),
        Some("the version to build")
    );
    assert_eq!(b.stages[0].description.as_deref(), Some("compiles the app"));
}

#[test]
fn flag_values_are_checked_after_expansion() {
    let e = build_with(
        "FROM alpine\nARG MODE=888\nCOPY --chmod=$MODE a /b\n",
        &[],
        None,
        None,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("invalid value `888` for flag --chmod"),
        "{e}"
    );
    assert!(build_with(
        "FROM alpine\nARG MODE=0644\nCOPY --chmod=$MODE a /b\n",
        &[],
        None,
        None
    )
    .is_ok());
}

#[test]
fn check_expose_proto_casing() {
    assert!(has("FROM alpine\nEXPOSE 80/TCP\n", Rule::ExposeProtoCasing));
    assert!(!has(
        "FROM alpine\nEXPOSE 80/tcp 53/udp\n",
        Rule::ExposeProtoCasing
    ));
}

#[test]
fn check_expose_invalid_format() {
    assert!(has(
        "FROM alpine\nEXPOSE 127.0.0.1:8080:80\n",
        Rule::ExposeInvalidFormat
    ));
    assert!(has(
        "FROM alpine\nEXPOSE 8080:80\n",
        Rule::ExposeInvalidFormat
    ));
    assert!(!has(
        "FROM alpine\nEXPOSE 8080 9000-9010/tcp\n",
        Rule::ExposeInvalidFormat
    ));
}

/// `FROM scratch` has BuildKit's default PATH, so `$PATH` expands to it
/// (and UndefinedVar does not fire for it).
#[test]
fn scratch_has_the_default_path() {
    let b = build("FROM scratch\nENV PATH=/opt/bin:$PATH\n");
    let Instruction::Env(kv) = step(&b, 0, 0) else {
        panic!("not ENV")
    };
    assert_eq!(
        kv[0].value,
        format!("/opt/bin:{}", kiln_dockerfile::lower::DEFAULT_PATH)
    );
    assert!(!has("FROM scratch\nENV X=$PATH\n", Rule::UndefinedVar));
}
