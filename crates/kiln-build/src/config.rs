//! Config-only instructions: how each changes the image config, and the
//! history entry it leaves, as BuildKit's Dockerfile frontend does it
//! (`dockerfile2llb`, `dispatch*` and `commitToHistory`).
//!
//! The rules, as BuildKit applies them:
//! - ENV replaces a variable in place or appends it; LABEL sets keys;
//!   EXPOSE adds `port/proto` (default `tcp`, ranges expanded, an
//!   `ip:host:` mapping prefix dropped); VOLUME adds paths; USER, STOPSIGNAL,
//!   SHELL, MAINTAINER (the `author`) replace.
//! - CMD and ENTRYPOINT in shell form become `SHELL` (default
//!   `/bin/sh -c`) + the command line; CMD sets `ArgsEscaped` as BuildKit
//!   does; ENTRYPOINT resets an inherited CMD unless this stage set one.
//! - HEALTHCHECK replaces the check wholesale (`NONE` is `["NONE"]`).
//! - WORKDIR is joined to the current one and cleaned (its directory is
//!   made by the build as a layer, see `solve`).
//! - ONBUILD appends a trigger and, as in BuildKit, leaves no history.
//! - History `created_by` strings are BuildKit's, Go formatting included:
//!   `CMD ["sh" "-c" "x"]` (`%q` of a list), `VOLUME [/a /b]` (`%v`),
//!   `HEALTHCHECK {Test:[…] Interval:30s …}` (`%+v`), `ARG A=1 B`.

use std::collections::BTreeMap;
use std::time::Duration;

use kiln_dockerfile::instructions::{CommandLine, Healthcheck, InlineFile, Instruction};
use kiln_oci::config::{ContainerConfig, Empty, HealthConfig};
use kiln_oci::ImageConfig;
use thiserror::Error;

/// The history comment BuildKit's Dockerfile frontend writes.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";

/// Default `PATH` of a `FROM scratch` stage (BuildKit's, for Linux).
pub const DEFAULT_PATH: &str = kiln_dockerfile::lower::DEFAULT_PATH;

/// A config instruction that cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// EXPOSE with a port that is not one.
    #[error("invalid port {port:?} in EXPOSE: {reason}")]
    Port {
        /// As written.
        port: String,
        /// Why.
        reason: &'static str,
    },
    /// VOLUME with an empty path.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    /// STOPSIGNAL that names no signal.
    #[error("invalid STOPSIGNAL {signal:?}: not a signal name or number")]
    Signal {
        /// As written.
        signal: String,
    },
}

/// What a stage tracks while its config instructions are applied.
#[derive(Debug, Clone, Default)]
pub struct StageConfig {
    /// Whether this stage set CMD (so a later ENTRYPOINT keeps it).
    pub cmd_set: bool,
}

/// The container config of `image`, created if missing.
pub fn container(image: &mut ImageConfig) -> &mut ContainerConfig {
    image.config.get_or_insert_with(ContainerConfig::default)
}

/// Set `key=value` in a `KEY=value` list: in place, else appended.
pub fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(slot) => *slot = entry,
        None => env.push(entry),
    }
}

/// The value of `key` in a `KEY=value` list.
pub fn get_env<'a>(env: &'a [String], key: &str) -> Option<&'a str> {
    env.iter().find_map(|e| match e.split_once('=') {
        Some((k, v)) if k == key => Some(v),
        _ => None,
    })
}

/// The argv of a CMD/ENTRYPOINT/RUN: exec form as is, shell form through
/// the image's SHELL (default `/bin/sh -c`).
pub fn with_shell(shell: &[String], cl: &CommandLine) -> Vec<String> {
    if !cl.prepend_shell {
        return cl.args.clone();
    }
    let mut argv: Vec<String> = if shell.is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        shell.to_vec()
    };
    argv.push(cl.args.join(" "));
    argv
}

/// Where a RUN's heredoc script with a shebang is bound in the step's
/// container (BuildKit's directory for it; it is in `/dev`, a tmpfs, so it
/// never reaches a layer).
pub const SCRIPT_DIR: &str = "/dev/pipes";

/// The heredoc a shell-form RUN consists of, when it is one heredoc and
/// nothing else and its body starts with `#!`: BuildKit writes that body
/// to a file (mode 0755, in [`SCRIPT_DIR`]) and has the shell run the file,
/// so the kernel runs its interpreter (`#!/usr/bin/env python3`,
/// `#!/bin/sh -e`). A name that is no file name (`.`, `..`) is left to the
/// shell.
pub fn heredoc_script(cl: &CommandLine) -> Option<&InlineFile> {
    if !cl.prepend_shell || cl.files.len() != 1 {
        return None;
    }
    let f = &cl.files[0];
    let bare = is_heredoc_marker(cl.args.join(" ").trim());
    (bare && f.data.starts_with("#!") && f.name != "." && f.name != "..").then_some(f)
}

/// The argv of a RUN, with its heredocs as BuildKit's dispatcher passes
/// them: a shell-form RUN that is only one heredoc (`RUN <<EOF`) runs the
/// heredoc's body as the shell's script, or, when the body starts with
/// `#!`, the file it is written to (see [`heredoc_script`]); otherwise each
/// heredoc's body and terminator are appended to the command line, for the
/// shell to read.
pub fn run_argv(shell: &[String], cl: &CommandLine) -> Vec<String> {
    if cl.files.is_empty() || !cl.prepend_shell {
        return with_shell(shell, cl);
    }
    let line = cl.args.join(" ");
    let bare = cl.files.len() == 1 && is_heredoc_marker(line.trim());
    let script = if let Some(f) = heredoc_script(cl) {
        format!("{SCRIPT_DIR}/{}", f.name)
    } else if bare {
        cl.files[0].data.clone()
    } else {
        let mut full = line;
        for f in &cl.files {
            full.push('\n');
            full.push_str(&f.data);
            full.push_str(&f.name);
        }
        full
    };
    let mut argv: Vec<String> = if shell.is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        shell.to_vec()
    };
    argv.push(script);
    argv
}

/// `<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`: a heredoc and nothing else.
fn is_heredoc_marker(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let word = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
        .unwrap_or(rest);
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// WORKDIR `path` relative to `current`, cleaned.
pub fn workdir(current: Option<&str>, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", current.unwrap_or("/"))
    };
    crate::tree::clean_abs(&joined)
}

/// Apply a config-only instruction; returns the history `created_by`, or
/// `None` when the instruction leaves no history (ONBUILD), or when it is
/// not config-only (COPY, ADD, RUN, WORKDIR: the solver handles those).
/// `arg_values` gives the value each ARG name takes in this stage.
pub fn apply(
    image: &mut ImageConfig,
    st: &mut StageConfig,
    instruction: &Instruction,
    arg_value: &dyn Fn(&str, Option<&str>) -> Option<String>,
) -> Result<Option<String>, ConfigError> {
    let created_by = match instruction {
        Instruction::Env(pairs) => {
            let c = container(image);
            let mut msg = String::from("ENV");
            for kv in pairs {
                set_env(&mut c.env, &kv.key, &kv.value);
                msg.push_str(&format!(" {}={}", kv.key, kv.value));
            }
            msg
        }
        Instruction::Label(pairs) => {
            let c = container(image);
            let mut msg = String::from("LABEL");
            for kv in pairs {
                c.labels.insert(kv.key.clone(), kv.value.clone());
                msg.push_str(&format!(" {}={}", kv.key, kv.value));
            }
            msg
        }
        Instruction::Expose(ports) => {
            let mut specs = Vec::new();
            for p in ports {
                for word in p.split_whitespace() {
                    specs.extend(parse_port(word)?);
                }
            }
            let c = container(image);
            for s in &specs {
                c.exposed_ports.insert(s.clone(), Empty {});
            }
            format!("EXPOSE {}", go_list(&specs))
        }
        Instruction::User(u) => {
            container(image).user = Some(u.clone());
            format!("USER {u}")
        }
        Instruction::Volume(vols) => {
            let c = container(image);
            for v in vols {
                if v.is_empty() {
                    return Err(ConfigError::EmptyVolume);
                }
                c.volumes.insert(v.clone(), Empty {});
            }
            format!("VOLUME {}", go_list(vols))
        }
        Instruction::StopSignal(s) => {
            if !valid_signal(s) {
                return Err(ConfigError::Signal { signal: s.clone() });
            }
            container(image).stop_signal = Some(s.clone());
            format!("STOPSIGNAL {s}")
        }
        Instruction::Shell(sh) => {
            container(image).shell = sh.clone();
            format!("SHELL {}", go_list(sh))
        }
        Instruction::Maintainer(m) => {
            image.author = Some(m.clone());
            format!("MAINTAINER {m}")
        }
        Instruction::Cmd(cl) => {
            let c = container(image);
            let argv = with_shell(&c.shell, cl);
            // `CMD []` clears it: no Cmd at all, as Docker writes it.
            c.cmd = (!argv.is_empty()).then(|| argv.clone());
            c.args_escaped = Some(true);
            st.cmd_set = true;
            format!("CMD {}", go_quoted_list(&argv))
        }
        Instruction::Entrypoint(cl) => {
            let c = container(image);
            let argv = with_shell(&c.shell, cl);
            // `ENTRYPOINT []` clears it, as `CMD []` does.
            c.entrypoint = (!argv.is_empty()).then(|| argv.clone());
            if !st.cmd_set {
                c.cmd = None;
            }
            format!("ENTRYPOINT {}", go_quoted_list(&argv))
        }
        Instruction::Healthcheck(h) => {
            let hc = match h {
                Healthcheck::None => HealthConfig {
                    test: vec!["NONE".into()],
                    ..HealthConfig::default()
                },
                Healthcheck::Cmd {
                    test,
                    interval,
                    timeout,
                    start_period,
                    start_interval,
                    retries,
                } => HealthConfig {
                    test: test.clone(),
                    interval: nanos(*interval),
                    timeout: nanos(*timeout),
                    start_period: nanos(*start_period),
                    start_interval: nanos(*start_interval),
                    retries: retries.map_or(0, i64::from),
                },
            };
            let msg = format!(
                "HEALTHCHECK {{Test:{} Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
                go_list(&hc.test),
                go_duration(hc.interval),
                go_duration(hc.timeout),
                go_duration(hc.start_period),
                go_duration(hc.start_interval),
                hc.retries
            );
            container(image).healthcheck = Some(hc);
            msg
        }
        Instruction::Arg(defs) => {
            let parts: Vec<String> = defs
                .iter()
                .map(|d| match arg_value(&d.name, d.default.as_deref()) {
                    Some(v) => format!("{}={v}", d.name),
                    None => d.name.clone(),
                })
                .collect();
            format!("ARG {}", parts.join(" "))
        }
        Instruction::Onbuild(trigger) => {
            container(image).on_build.push(trigger.clone());
            return Ok(None);
        }
        Instruction::Copy(_)
        | Instruction::Add(_)
        | Instruction::Run(_)
        | Instruction::Workdir(_) => return Ok(None),
    };
    Ok(Some(created_by))
}

fn nanos(d: Option<Duration>) -> i64 {
    d.map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Go's `%v` of a `[]string`: `[a b c]`.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let v = c as u32;
                if v <= 0xffff {
                    out.push_str(&format!("\\u{v:04x}"));
                } else {
                    out.push_str(&format!("\\U{v:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `time.Duration.String()` of `nanos` nanoseconds.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: ns, µs or ms with a fraction.
        let (unit, div) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&fmt_frac(u, div));
        out.push_str(unit);
    } else {
        let secs_total = u / 1_000_000_000;
        let frac = u % 1_000_000_000;
        let h = secs_total / 3600;
        let m = (secs_total % 3600) / 60;
        let s = secs_total % 60;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&fmt_frac(s * 1_000_000_000 + frac, 1_000_000_000));
        out.push('s');
    }
    if neg {
        format!("-{out}")
    } else {
        out
    }
}

/// `v / div` with the fraction's trailing zeros dropped (`1.5`, `2`).
fn fmt_frac(v: u64, div: u64) -> String {
    let whole = v / div;
    let frac = v % div;
    if frac == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// One EXPOSE word → `port/proto` specs (Docker's `nat.ParsePortSpecs`,
/// container side only).
fn parse_port(word: &str) -> Result<Vec<String>, ConfigError> {
    let err = |reason| ConfigError::Port {
        port: word.to_string(),
        reason,
    };
    let (spec, proto) = match word.rsplit_once('/') {
        Some((s, p)) => (s, p.to_ascii_lowercase()),
        None => (word, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(err("the protocol must be tcp, udp or sctp"));
    }
    // `ip:host:container` or `host:container`: the container port is last.
    let port = spec.rsplit(':').next().unwrap_or(spec);
    let (start, end) = match port.split_once('-') {
        Some((a, b)) => (a, b),
        None => (port, port),
    };
    let start: u16 = start.parse().map_err(|_| err("not a port number"))?;
    let end: u16 = end.parse().map_err(|_| err("not a port number"))?;
    if end < start {
        return Err(err("the range ends before it starts"));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// A signal name (`SIGTERM`, `TERM`, `SIGRTMIN+3`) or number.
fn valid_signal(s: &str) -> bool {
    const NAMES: [&str; 31] = [
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "WINCH",
    ];
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES.contains(&name)
        || ["XCPU", "XFSZ", "VTALRM", "RTMIN", "RTMAX"].contains(&name)
        || name
            .strip_prefix("RTMIN+")
            .or_else(|| name.strip_prefix("RTMAX-"))
            .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n <= 30))
}

/// The config a `FROM scratch` stage starts from (BuildKit's
/// `emptyImage`).
pub fn scratch(platform: &kiln_oci::Platform) -> ImageConfig {
    ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        variant: (!platform.variant.is_empty()).then(|| platform.variant.clone()),
        config: Some(ContainerConfig {
            env: vec![format!("PATH={DEFAULT_PATH}")],
            working_dir: Some("/".into()),
            ..ContainerConfig::default()
        }),
        ..ImageConfig::default()
    }
}

/// Labels given on the command line (`--label`), applied last.
pub fn apply_labels(image: &mut ImageConfig, labels: &BTreeMap<String, String>) {
    if labels.is_empty() {
        return;
    }
    let c = container(image);
    for (k, v) in labels {
        c.labels.insert(k.clone(), v.clone());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kiln_dockerfile::instructions::KeyValue;

    fn cl(args: &[&str], shell: bool) -> CommandLine {
        CommandLine {
            args: args.iter().map(|s| s.to_string()).collect(),
            prepend_shell: shell,
            files: Vec::new(),
        }
    }

    fn no_args(_: &str, d: Option<&str>) -> Option<String> {
        d.map(str::to_string)
    }

    #[test]
    fn go_formats() {
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(
            go_quoted_list(&["sh".into(), "-c".into()]),
            r#"["sh" "-c"]"#
        );
    }

    #[test]
    fn entrypoint_resets_inherited_cmd_only() {
        let mut img = scratch(&"linux/amd64".parse().unwrap());
        container(&mut img).cmd = Some(vec!["inherited".into()]);
        let mut st = StageConfig::default();
        let by = apply(
            &mut img,
            &mut st,
            &Instruction::Entrypoint(cl(&["/app"], false)),
            &no_args,
        )
        .unwrap();
        assert_eq!(by.as_deref(), Some(r#"ENTRYPOINT ["/app"]"#));
        assert_eq!(img.config.as_ref().unwrap().cmd, None);
        // CMD then ENTRYPOINT in the same stage: CMD stays.
        apply(
            &mut img,
            &mut st,
            &Instruction::Cmd(cl(&["echo hi"], true)),
            &no_args,
        )
        .unwrap();
        apply(
            &mut img,
            &mut st,
            &Instruction::Entrypoint(cl(&["/app"], false)),
            &no_args,
        )
        .unwrap();
        let c = img.config.as_ref().unwrap();
        assert_eq!(
            c.cmd.as_deref(),
            Some(&["/bin/sh".to_string(), "-c".into(), "echo hi".into()][..])
        );
        assert_eq!(c.args_escaped, Some(true));
        // Empty exec forms clear both, as Docker writes them (no `[]`).
        for i in [
            Instruction::Entrypoint(cl(&[], false)),
            Instruction::Cmd(cl(&[], false)),
        ] {
            let by = apply(&mut img, &mut st, &i, &no_args).unwrap();
            assert!(by.unwrap().ends_with(" []"));
        }
        let c = img.config.as_ref().unwrap();
        assert_eq!((c.entrypoint.as_ref(), c.cmd.as_ref()), (None, None));
    }

    #[test]
    fn run_heredocs_go_to_the_shell() {
        use kiln_dockerfile::instructions::InlineFile;
        let file = |name: &str, data: &str| InlineFile {
            name: name.into(),
            data: data.into(),
            expand: true,
            chomp: false,
        };
        let mut c = cl(&["<<EOT"], true);
        c.files = vec![file("EOT", "echo a\necho b\n")];
        assert_eq!(run_argv(&[], &c), ["/bin/sh", "-c", "echo a\necho b\n"]);
        let mut c = cl(&["cat <<EOT > /f"], true);
        c.files = vec![file("EOT", "x\n")];
        assert_eq!(
            run_argv(&[], &c),
            ["/bin/sh", "-c", "cat <<EOT > /f\nx\nEOT"]
        );
        let c = cl(&["echo hi"], true);
        assert_eq!(run_argv(&[], &c), ["/bin/sh", "-c", "echo hi"]);
        // A shebang: the shell runs the file the body is written to.
        let mut c = cl(&["<<EOT"], true);
        c.files = vec![file("EOT", "#!/usr/bin/env python3\nprint(1)\n")];
        assert_eq!(heredoc_script(&c).unwrap().name, "EOT");
        assert_eq!(run_argv(&[], &c), ["/bin/sh", "-c", "/dev/pipes/EOT"]);
        let shell = ["/bin/bash".to_string(), "-ec".into()];
        assert_eq!(run_argv(&shell, &c), ["/bin/bash", "-ec", "/dev/pipes/EOT"]);
        // Not alone on the line, or not first in the body: the shell's.
        let mut c = cl(&["cat <<EOT"], true);
        c.files = vec![file("EOT", "#!/bin/sh\n")];
        assert!(heredoc_script(&c).is_none());
        let mut c = cl(&["<<EOT"], true);
        c.files = vec![file("EOT", " #!/bin/sh\necho\n")];
        assert!(heredoc_script(&c).is_none());
        assert_eq!(run_argv(&[], &c), ["/bin/sh", "-c", " #!/bin/sh\necho\n"]);
        // Exec form never.
        let mut c = cl(&["<<EOT"], false);
        c.files = vec![file("EOT", "#!/bin/sh\n")];
        assert!(heredoc_script(&c).is_none());
        assert!(is_heredoc_marker("<<-'EOF'"));
        assert!(!is_heredoc_marker("<<EOF cat"));
    }

    #[test]
    fn env_replaces_in_place_and_history_strings() {
        let mut img = scratch(&"linux/amd64".parse().unwrap());
        let mut st = StageConfig::default();
        let env = Instruction::Env(vec![
            KeyValue {
                key: "A".into(),
                value: "1".into(),
                legacy: false,
            },
            KeyValue {
                key: "PATH".into(),
                value: "/x".into(),
                legacy: false,
            },
        ]);
        let by = apply(&mut img, &mut st, &env, &no_args).unwrap();
        assert_eq!(by.as_deref(), Some("ENV A=1 PATH=/x"));
        assert_eq!(img.config.as_ref().unwrap().env, vec!["PATH=/x", "A=1"]);
        let by = apply(
            &mut img,
            &mut st,
            &Instruction::Expose(vec!["80".into(), "8000-8001/udp".into()]),
            &no_args,
        )
        .unwrap();
        assert_eq!(by.as_deref(), Some("EXPOSE [80/tcp 8000/udp 8001/udp]"));
        assert_eq!(img.config.as_ref().unwrap().exposed_ports.len(), 3);
        let by = apply(
            &mut img,
            &mut st,
            &Instruction::Healthcheck(Healthcheck::Cmd {
                test: vec!["CMD-SHELL".into(), "true".into()],
                interval: Some(Duration::from_secs(30)),
                timeout: None,
                start_period: None,
                start_interval: None,
                retries: Some(3),
            }),
            &no_args,
        )
        .unwrap();
        assert_eq!(
            by.as_deref(),
            Some("HEALTHCHECK {Test:[CMD-SHELL true] Interval:30s Timeout:0s StartPeriod:0s StartInterval:0s Retries:3}")
        );
        assert!(apply(
            &mut img,
            &mut st,
            &Instruction::StopSignal("SIGNOPE".into()),
            &no_args
        )
        .is_err());
        assert_eq!(
            apply(
                &mut img,
                &mut st,
                &Instruction::Onbuild("RUN x".into()),
                &no_args
            )
            .unwrap(),
            None
        );
        assert_eq!(img.config.as_ref().unwrap().on_build, vec!["RUN x"]);
    }

    #[test]
    fn workdir_joins_and_cleans() {
        assert_eq!(workdir(Some("/a"), "b/../c"), "/a/c");
        assert_eq!(workdir(Some("/a"), "/x/"), "/x");
        assert_eq!(workdir(None, "rel"), "/rel");
    }
}
