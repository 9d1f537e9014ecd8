//! `kiln login` and `kiln logout`: credentials checked against the
//! registry, then kept where Docker keeps them (its `config.json` or the
//! credential helper it names), so Docker and kiln share them.
//!
//! The password comes from `-p`, from standard input (`--password-stdin`),
//! or from a prompt without echo on a terminal; it is never printed or
//! logged.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context, Result};
use kiln_oci::reference::DOCKER_HUB;
use kiln_registry::config::DOCKER_HUB_API;
use kiln_registry::{Credentials, DockerConfig, Endpoint, Secret};

use crate::cli::{Cli, LoginArgs, LogoutArgs};
use crate::commands::registry::{client, runtime};

/// `docker.io`, `index.docker.io` and Docker's URL forms are Docker Hub;
/// anything else is `host[:port]` (a scheme and a path are dropped).
fn registry_name(server: Option<&str>) -> String {
    let s = server.unwrap_or(DOCKER_HUB);
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "" => DOCKER_HUB.to_string(),
        h => h.to_string(),
    }
}

/// `kiln login`.
pub(crate) fn login(_cli: &Cli, args: &LoginArgs) -> Result<u8> {
    let registry = registry_name(args.server.as_deref());
    let mut err = std::io::stderr();
    let username = match &args.username {
        Some(u) => u.clone(),
        None if std::io::stdin().is_terminal() && !args.password_stdin => {
            write!(err, "Username: ")?;
            err.flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim().to_string()
        }
        None => bail!("a user name is required: use -u/--username"),
    };
    if username.is_empty() {
        bail!("a user name is required");
    }
    let password = if let Some(p) = &args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p.clone()
    } else if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_to_string_trimmed(&mut line)
            .context("failed to read the password from standard input")?;
        line
    } else if std::io::stdin().is_terminal() {
        prompt_password()?
    } else {
        bail!("a password is required: use --password-stdin (standard input is not a terminal)");
    };
    if password.is_empty() {
        bail!("a password is required");
    }
    let creds = Credentials {
        username,
        password: Secret::new(password),
    };
    let client = client()?;
    let endpoint = Endpoint {
        registry: registry.clone(),
        host: if registry == DOCKER_HUB {
            DOCKER_HUB_API.to_string()
        } else {
            registry.clone()
        },
        path: String::new(),
        insecure: client.conf().host_insecure(&registry),
        mirror: false,
    };
    client.set_credentials(&registry, creds.clone());
    let rt = runtime()?;
    rt.block_on(client.ping(&endpoint))
        .with_context(|| format!("login to {registry} failed"))?;
    let mut config = DockerConfig::load_default()?;
    config.store(&registry, &creds)?;
    if config.helper(&registry).is_none() {
        eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.",
            config.path().display()
        );
    }
    println!("Login Succeeded");
    Ok(0)
}

/// `kiln logout`.
pub(crate) fn logout(_cli: &Cli, args: &LogoutArgs) -> Result<u8> {
    let registry = registry_name(args.server.as_deref());
    let mut config = DockerConfig::load_default()?;
    if config.erase(&registry)? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(0)
}

trait ReadTrimmed {
    fn read_to_string_trimmed(&mut self, out: &mut String) -> std::io::Result<()>;
}

impl<R: BufRead> ReadTrimmed for R {
    /// All of the input, without the trailing newline (as Docker does).
    fn read_to_string_trimmed(&mut self, out: &mut String) -> std::io::Result<()> {
        self.read_to_string(out)?;
        while out.ends_with('\n') || out.ends_with('\r') {
            out.pop();
        }
        Ok(())
    }
}

/// Read a password from the terminal with echo off.
fn prompt_password() -> Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    let mut err = std::io::stderr();
    write!(err, "Password: ")?;
    err.flush()?;
    let old = tcgetattr(&stdin).context("failed to read the terminal settings")?;
    let mut quiet = old.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).context("failed to turn echo off")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, OptionalActions::Now, &old);
    writeln!(err)?;
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names() {
        assert_eq!(registry_name(None), "docker.io");
        assert_eq!(
            registry_name(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(registry_name(Some("host:5000")), "host:5000");
        assert_eq!(registry_name(Some("https://host:5000/v2/")), "host:5000");
    }
}
