//! Atomic file replacement: write a temporary file beside the target,
//! fsync it, rename it over the target, fsync the directory. A reader sees
//! the old content or the new, never a mix, and a crash leaves at worst a
//! temporary file behind (named `.tmp-*`, for the store's cleanup to find).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name for a temporary file in `dir` that no other writer (in this or
/// another process) picks.
pub fn temp_path(dir: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!(".tmp-{}-{n}-{nanos}", std::process::id()))
}

/// Create a new temporary file in `dir` (mode 0600, never an existing one).
pub fn create_temp(dir: &Path) -> io::Result<(File, PathBuf)> {
    loop {
        let p = temp_path(dir);
        match OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
        {
            Ok(f) => return Ok((f, p)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// fsync a directory, so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Move the finished temporary file `tmp` (already synced) to `target`
/// and make the rename durable.
pub fn commit(tmp: &Path, target: &Path) -> io::Result<()> {
    fs::rename(tmp, target)?;
    sync_dir(target.parent().unwrap_or(Path::new(".")))
}

/// Replace `target` with `bytes`, atomically and durably.
pub fn write_file(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let (mut f, tmp) = create_temp(dir)?;
    let result = f
        .write_all(bytes)
        .and_then(|()| f.sync_all())
        .and_then(|()| commit(&tmp, target));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().expect("tempdir");
        let t = d.path().join("f");
        write_file(&t, b"one").expect("write");
        write_file(&t, b"two").expect("write");
        assert_eq!(fs::read(&t).expect("read"), b"two");
        let names: Vec<_> = fs::read_dir(d.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f")]);
    }
}
