//! Process identity from `/proc`: a pid and its start time name one
//! process for as long as the machine runs (a recycled pid has another
//! start time). Used by the store's leases and containers and by the
//! runtime's address book.

/// The start time of process `pid` (clock ticks after boot, field 22 of
/// `/proc/PID/stat`), or `None` if there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything: the
    // fields after the last `)` are what we count.
    let rest = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after the name; the start time is 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_start_time_and_no_such_process() {
        assert!(super::start_time(std::process::id()).is_some());
        assert!(super::start_time(u32::MAX).is_none());
    }
}
