//! What `pull`, `push` and `login` share: the registry client (registries
//! file, Docker's credentials), the async runtime it runs on, and the
//! per-layer progress display (indicatif bars when live, one line per
//! event when plain, nothing with `--progress quiet` or `-q`: see
//! [`super::progress`] for which).

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kiln_registry::{Client, ClientOptions, DockerConfig, RegistriesConf};

use super::progress::Mode;

/// The client, with the registries file and Docker's credentials.
pub(crate) fn client() -> Result<Client> {
    let conf = RegistriesConf::load().context("failed to read the registries configuration")?;
    let creds = DockerConfig::load_default().context("failed to read the Docker credentials")?;
    let mut opts = ClientOptions::default();
    // Tests shorten the retry backoff (a registry that always fails
    // should not take seconds to give up on).
    if let Some(ms) = std::env::var("KILN_REGISTRY_BACKOFF_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        opts.backoff = Duration::from_millis(ms);
    }
    // Blobs larger than this go up in chunks of this size (default 32 MiB;
    // tests set a small one to exercise chunked uploads).
    if let Some(n) = std::env::var("KILN_REGISTRY_CHUNK_SIZE")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&n| n > 0)
    {
        opts.chunk_size = n;
    }
    Ok(Client::new(conf, Box::new(creds), opts))
}

/// A runtime for the network side: two worker threads are plenty for
/// I/O-bound requests; the CPU work (hashing, decompressing, extracting)
/// happens on the caller's own threads.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("kiln-net")
        .build()
        .context("failed to start the network runtime")
}

/// Per-layer progress.
#[derive(Debug)]
pub(crate) struct LayerProgress {
    mode: Mode,
    ids: Vec<String>,
    bars: Vec<ProgressBar>,
    _multi: Option<MultiProgress>,
    // Plain lines from several threads stay whole.
    out: Mutex<()>,
}

impl LayerProgress {
    /// One row per layer, named by `ids` (short digests), shown as `mode`
    /// says (chosen before the command does anything:
    /// [`super::progress::mode`]).
    pub(crate) fn new(mode: Mode, ids: Vec<String>) -> LayerProgress {
        let (multi, bars) = if mode == Mode::Tty {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix}: {msg:<18} {bar:30} {bytes:>10}/{total_bytes:<10}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let bars = ids
                .iter()
                .map(|id| {
                    let b = multi.add(ProgressBar::new(0));
                    b.set_style(style.clone());
                    b.set_prefix(id.clone());
                    b
                })
                .collect();
            (Some(multi), bars)
        } else {
            (None, Vec::new())
        };
        LayerProgress {
            mode,
            ids,
            bars,
            _multi: multi,
            out: Mutex::new(()),
        }
    }

    /// A status for layer `i` (`Pulling fs layer`, `Pull complete`).
    pub(crate) fn status(&self, i: usize, msg: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                let _g = self.out.lock().unwrap_or_else(|e| e.into_inner());
                eprintln!("{}: {msg}", self.ids[i]);
            }
            Mode::Tty => {
                if let Some(b) = self.bars.get(i) {
                    b.set_message(msg.to_string());
                }
            }
        }
    }

    /// Bytes moved for layer `i` so far, of `total`.
    pub(crate) fn bytes(&self, i: usize, done: u64, total: u64) {
        if let Some(b) = self.bars.get(i) {
            b.set_length(total);
            b.set_position(done);
        }
    }

    /// Stop redrawing (the bars stay on screen).
    pub(crate) fn finish(&self) {
        for b in &self.bars {
            b.finish();
        }
    }

    /// Whether anything is shown.
    pub(crate) fn quiet(&self) -> bool {
        self.mode == Mode::Quiet
    }
}

/// Docker's short layer id: the first 12 hex digits.
pub(crate) fn short(d: &kiln_oci::Digest) -> String {
    d.hex().chars().take(12).collect()
}
