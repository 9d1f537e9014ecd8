//! Giving back the pages of kiln's binary that a long-lived monitor no
//! longer uses. The monitor is the whole kiln binary: setting a container
//! up touches a few megabytes of its code (libcontainer, serde, the store),
//! which then stay mapped, and counted in its RSS, for as long as the
//! container runs. Once the container has run for a moment, the monitor
//! unmaps the clean read-only pages of its files (`MADV_DONTNEED`): they
//! stay in the page cache, and a later use maps them again.

use std::fs;

/// One mapping of `/proc/self/smaps` that can be given back.
#[derive(Debug, PartialEq)]
struct Clean {
    start: usize,
    len: usize,
}

/// The read-only, private, file-backed mappings of `smaps` that hold no
/// privately modified page (`Anonymous: 0 kB`): their content is the
/// file's, so unmapping their pages loses nothing. Relocated read-only
/// data (RELRO) was written before it was made read-only and so has
/// anonymous pages: it is left alone.
fn clean_mappings(smaps: &str) -> Vec<Clean> {
    let mut out = Vec::new();
    let mut current: Option<Clean> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(start), Ok(end)) =
                (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
            {
                // A mapping's header: range perms offset dev inode [path].
                let perms = fields.next().unwrap_or("");
                let inode = fields.nth(2).unwrap_or("0");
                let path = fields.next().unwrap_or("");
                let p = perms.as_bytes();
                let candidate = p.len() == 4
                    && p[0] == b'r'
                    && p[1] != b'w'
                    && p[3] == b'p'
                    && inode != "0"
                    && path.starts_with('/');
                current = candidate.then_some(Clean {
                    start,
                    len: end.saturating_sub(start),
                });
                continue;
            }
        }
        if first == "Anonymous:" {
            if let Some(c) = current.take() {
                if fields.next() == Some("0") {
                    out.push(c);
                }
            }
        }
    }
    out
}

/// Unmap the clean file pages of this process (see the module docs);
/// returns how many bytes of mappings were given back. Call it only from a
/// single-threaded process (the monitor): another thread could change a
/// mapping between the reading of `smaps` and the `madvise`.
pub fn release_clean_file_pages() -> usize {
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let mut released = 0;
    for c in clean_mappings(&smaps) {
        // SAFETY: the range is a whole mapping of this process, read-only,
        // private and backed by a file, with no privately modified page
        // (per smaps, read just before, and nothing in this single-threaded
        // process changed it since). MADV_DONTNEED on such a mapping only
        // drops the page-table entries: the next access faults the same
        // file content back in, so no data changes under any reference.
        let r = unsafe {
            rustix::mm::madvise(c.start as *mut _, c.len, rustix::mm::Advice::LinuxDontNeed)
        };
        if r.is_ok() {
            released += c.len;
        }
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_private_file_mappings_are_taken() {
        let smaps = "\
55d000000000-55d000100000 r--p 00000000 08:01 1234 /usr/bin/kiln
Size:               1024 kB
Anonymous:             0 kB
55d000100000-55d000900000 r-xp 00100000 08:01 1234 /usr/bin/kiln
Anonymous:             0 kB
55d000900000-55d000a00000 r--p 00900000 08:01 1234 /usr/bin/kiln
Anonymous:           512 kB
55d000a00000-55d000a10000 rw-p 00a00000 08:01 1234 /usr/bin/kiln
Anonymous:             8 kB
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
Anonymous:            64 kB
7f0000200000-7f0000300000 r--s 00000000 08:01 99 /dev/shm/x
Anonymous:             0 kB
7ffc00000000-7ffc00002000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";
        assert_eq!(
            clean_mappings(smaps),
            vec![
                Clean {
                    start: 0x55d0_0000_0000,
                    len: 0x10_0000
                },
                Clean {
                    start: 0x55d0_0010_0000,
                    len: 0x80_0000
                },
            ]
        );
    }

    #[test]
    fn releasing_keeps_this_process_working() {
        let before = fs::read_to_string("/proc/self/status").unwrap();
        assert!(release_clean_file_pages() > 0);
        // Code and read-only data fault back in: this test still runs,
        // formats, allocates and reads files.
        let after = fs::read_to_string("/proc/self/status").unwrap();
        assert!(before.contains("VmRSS") && after.contains("VmRSS"));
        assert_eq!(format!("{:?}", vec![1, 2, 3]), "[1, 2, 3]");
    }
}
