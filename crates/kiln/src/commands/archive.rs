//! `save`, `load` and `import`.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use kiln_dockerfile::instructions::{parse_node, CommandLine, Instruction, Parsed};
use kiln_dockerfile::lint::{LintConfig, Linter};
use kiln_oci::config::{ContainerConfig, Empty};
use kiln_oci::media_types::ManifestFormat;
use kiln_oci::{Platform, Reference};
use kiln_store::archive::{ImportOptions, ImportSource, SaveFormat, Source};
use kiln_store::layer::NewLayerOptions;

use crate::cli::{ArchiveFormat, Cli, ImportArgs, LoadArgs, MediaTypes, SaveArgs};
use crate::commands::open_store;

/// `kiln save`.
pub(crate) fn save(cli: &Cli, args: &SaveArgs) -> Result<u8> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
    }
    let store = open_store(cli)?;
    let mut images = Vec::new();
    for name in &args.images {
        let image = store.resolve(name)?;
        let names = match Reference::parse(name) {
            Ok(r) if r.digest().is_none() => {
                let tagged = r.tag().is_some();
                let r = r.with_default_tag();
                image
                    .names
                    .iter()
                    .filter(|n| **n == r || (!tagged && n.repository() == r.repository()))
                    .cloned()
                    .collect()
            }
            _ => Vec::new(),
        };
        images.push((image, names));
    }
    let format = match args.format {
        ArchiveFormat::DockerArchive => SaveFormat::DockerArchive,
        ArchiveFormat::OciArchive => SaveFormat::OciArchive,
    };
    match &args.output {
        Some(path) => {
            // Written beside the target and renamed: a failed save leaves
            // no partial archive under the name.
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let (file, tmp) = kiln_fs::atomic::create_temp(dir)
                .with_context(|| format!("failed to create a file in {}", dir.display()))?;
            let result = (|| {
                let out = std::io::BufWriter::with_capacity(1 << 20, file);
                let mut out = store.save(&images, format, out)?;
                out.flush()?;
                let file = out.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("failed to write {}", path.display()))?;
                Ok::<_, anyhow::Error>(())
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result?;
        }
        None => {
            let out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
            let mut out = store.save(&images, format, out)?;
            out.flush()?;
        }
    }
    Ok(0)
}

/// `kiln load`.
pub(crate) fn load(cli: &Cli, args: &LoadArgs) -> Result<u8> {
    let source = match &args.input {
        Some(p) => Source::Path(p.clone()),
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            Source::Stdin
        }
    };
    let store = open_store(cli)?;
    let report = store
        .load(&source)
        .with_context(|| format!("failed to load {}", source_name(&source)))?;
    if !args.quiet {
        let mut out = std::io::stdout().lock();
        for image in &report.images {
            if image.names.is_empty() {
                writeln!(out, "Loaded image ID: {}", image.record.id())?;
            }
            for n in &image.names {
                writeln!(out, "Loaded image: {}", n.familiar())?;
            }
        }
    }
    Ok(0)
}

fn source_name(s: &Source) -> String {
    match s {
        Source::Path(p) => p.display().to_string(),
        Source::Stdin => "standard input".into(),
    }
}

/// `kiln import`.
pub(crate) fn import(cli: &Cli, args: &ImportArgs) -> Result<u8> {
    let names = match &args.name {
        Some(n) => {
            let r = Reference::parse(n).with_context(|| format!("invalid reference {n:?}"))?;
            if r.digest().is_some() {
                bail!("refusing to create a tag with a digest reference");
            }
            vec![r.with_default_tag()]
        }
        None => Vec::new(),
    };
    let mut config = ContainerConfig::default();
    apply_changes(&mut config, &args.changes)?;
    let platform = match &args.platform {
        Some(p) => p.parse::<Platform>()?,
        None => Platform::host(),
    };
    if args.source.starts_with("http://") || args.source.starts_with("https://") {
        bail!("importing from a URL is not supported: download it, then import the file");
    }
    let opts = ImportOptions {
        config,
        message: args.message.clone(),
        source_name: args.source.clone(),
        platform,
        layer: NewLayerOptions {
            format: match args.format {
                MediaTypes::Oci => ManifestFormat::Oci,
                MediaTypes::Docker => ManifestFormat::Docker,
            },
            ..NewLayerOptions::default()
        },
    };
    let store = open_store(cli)?;
    let record = if args.source == "-" {
        store.import(ImportSource::Tar(std::io::stdin().lock()), &opts, &names)?
    } else {
        let path = Path::new(&args.source);
        let meta = std::fs::metadata(path)
            .with_context(|| format!("failed to read {}", path.display()))?;
        if meta.is_dir() {
            store
                .import(ImportSource::<File>::Dir(path.to_path_buf()), &opts, &names)
                .with_context(|| format!("failed to import {}", path.display()))?
        } else {
            let f =
                File::open(path).with_context(|| format!("failed to open {}", path.display()))?;
            store
                .import(ImportSource::Tar(f), &opts, &names)
                .with_context(|| format!("failed to import {}", path.display()))?
        }
    };
    writeln!(std::io::stdout().lock(), "{}", record.id())?;
    Ok(0)
}

/// Apply `--change` instructions to a container config, as `docker import`
/// and `docker commit` do.
pub(crate) fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    for change in changes {
        let df = kiln_dockerfile::parser::parse(change)
            .map_err(|e| anyhow::anyhow!("invalid change {change:?}: {e}"))?;
        let mut lint = Linter::new(LintConfig::default());
        for node in &df.nodes {
            let parsed = parse_node(node, &mut lint, &LintConfig::default())
                .map_err(|e| anyhow::anyhow!("invalid change {change:?}: {e}"))?;
            let Parsed::Instruction(inst) = parsed else {
                bail!("{change:?}: FROM is not a change");
            };
            apply_one(config, inst, change)?;
        }
    }
    Ok(())
}

fn command(c: CommandLine) -> Vec<String> {
    if c.prepend_shell {
        let mut v = vec!["/bin/sh".to_string(), "-c".to_string()];
        v.extend(c.args);
        v
    } else {
        c.args
    }
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

fn apply_one(config: &mut ContainerConfig, inst: Instruction, change: &str) -> Result<()> {
    match inst {
        Instruction::Cmd(c) => config.cmd = Some(command(c)),
        Instruction::Entrypoint(c) => config.entrypoint = Some(command(c)),
        Instruction::Env(kvs) => {
            for kv in kvs {
                set_env(&mut config.env, &kv.key, &kv.value);
            }
        }
        Instruction::Expose(ports) => {
            for p in ports {
                let p = if p.contains('/') { p } else { format!("{p}/tcp") };
                config.exposed_ports.insert(p, Empty {});
            }
        }
        Instruction::Label(kvs) => {
            for kv in kvs {
                config.labels.insert(kv.key, kv.value);
            }
        }
        Instruction::Onbuild(t) => config.on_build.push(t),
        Instruction::StopSignal(s) => config.stop_signal = Some(s),
        Instruction::User(u) => config.user = Some(u),
        Instruction::Volume(vs) => {
            for v in vs {
                config.volumes.insert(v, Empty {});
            }
        }
        Instruction::Workdir(w) => {
            let base = config.working_dir.clone().unwrap_or_else(|| "/".into());
            let joined = if w.starts_with('/') {
                w
            } else {
                format!("{}/{w}", base.trim_end_matches('/'))
            };
            config.working_dir = Some(joined);
        }
        other => bail!(
            "{change:?}: {} cannot be applied to an image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR can)",
            other.name()
        ),
    }
    Ok(())
}
