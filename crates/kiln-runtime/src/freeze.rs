//! Pausing a container's processes through its cgroup's freezer, for
//! `kiln commit --pause` (Docker's default: the upper directory is read
//! while nothing in the container writes to it). Cgroup v1's `freezer`
//! controller (`freezer.state`), else cgroup v2's `cgroup.freeze` (in the
//! unified hierarchy, or `/sys/fs/cgroup/unified` on a hybrid host).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::monitor::cgroup_path;

/// How long the kernel may take to freeze every task.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// A frozen container; thawed when dropped.
#[derive(Debug)]
pub struct Frozen {
    how: Freezer,
}

#[derive(Debug, Clone)]
enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

impl Freezer {
    fn find(id: &str) -> Option<Freezer> {
        let rel = cgroup_path(id);
        let rel = rel.trim_start_matches('/');
        let base = Path::new("/sys/fs/cgroup");
        let v1 = base.join("freezer").join(rel);
        if v1.join("freezer.state").exists() {
            return Some(Freezer::V1(v1));
        }
        [base.join(rel), base.join("unified").join(rel)]
            .into_iter()
            .find(|d| d.join("cgroup.freeze").exists())
            .map(Freezer::V2)
    }

    fn set(&self, frozen: bool) -> io::Result<()> {
        match self {
            Freezer::V1(d) => fs::write(
                d.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            ),
            Freezer::V2(d) => fs::write(d.join("cgroup.freeze"), if frozen { "1" } else { "0" }),
        }
    }

    fn is_frozen(&self) -> io::Result<bool> {
        Ok(match self {
            Freezer::V1(d) => fs::read_to_string(d.join("freezer.state"))?.trim() == "FROZEN",
            Freezer::V2(d) => fs::read_to_string(d.join("cgroup.events"))?
                .lines()
                .any(|l| l.trim() == "frozen 1"),
        })
    }
}

/// Freezes every process of container `id` and waits until the kernel
/// says they all are; an error names the cgroup. Thaws on drop.
pub fn freeze(id: &str) -> io::Result<Frozen> {
    let how = Freezer::find(id).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no freezer cgroup for container {id} (is it running?)"),
        )
    })?;
    let frozen = Frozen { how };
    frozen.how.set(true)?;
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    while !frozen.how.is_frozen()? {
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("container {id} did not freeze within {FREEZE_TIMEOUT:?}"),
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(frozen)
}

impl Frozen {
    /// Whether the container's processes are frozen right now.
    pub fn is_frozen(&self) -> bool {
        self.how.is_frozen().unwrap_or(false)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Err(e) = self.how.set(false) {
            tracing::warn!(error = %e, "failed to thaw a container");
        }
    }
}
