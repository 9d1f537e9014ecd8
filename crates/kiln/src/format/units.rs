//! Sizes and ages the way Docker prints them (`github.com/docker/go-units`
//! `size.go` and `duration.go`, and docker/cli's `… ago` columns).

use std::time::{Duration, SystemTime};

use super::gofmt::format_g;

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

/// Divide by `base` while the size is at least `base` and a bigger unit
/// is left.
fn scale(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// `units.HumanSizeWithPrecision`: decimal units and `precision`
/// significant digits, as Go's `%.*g` (so 999.5 kB at 3 digits is
/// `1e+03kB`, exactly as Docker shows it).
pub(crate) fn human_size_with_precision(size: f64, precision: usize) -> String {
    let (size, unit) = scale(size, 1000.0, &DECIMAL_UNITS);
    format!("{}{unit}", format_g(size, Some(precision)))
}

/// The SIZE column of `docker images`, `ps -s` and `history`:
/// `units.HumanSizeWithPrecision(size, 3)` — `77.8MB`, `1kB`, `0B`.
/// (go-units' own `HumanSize`, which `system df` uses, is 4 digits:
/// `human_size_with_precision(size, 4)`.)
pub(crate) fn human_size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    human_size_with_precision(bytes as f64, 3)
}

/// `units.BytesSize`: binary units, 4 significant digits (`44KiB`,
/// `1.5GiB`), as `docker stats` shows memory.
pub(crate) fn bytes_size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let (size, unit) = scale(bytes as f64, 1024.0, &BINARY_UNITS);
    format!("{}{unit}", format_g(size, Some(4)))
}

/// `units.HumanDuration`: a rough, human reading of a duration ("Less than
/// a second", "About a minute", "3 days", "2 years").
pub(crate) fn human_duration(d: Duration) -> String {
    // Go's time.Duration is an int64 of nanoseconds.
    let nanos = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    human_duration_nanos(nanos)
}

/// The thresholds of go-units' `HumanDuration`, on Go's nanosecond count
/// (negative durations, such as a clock skewed creation time, read as
/// "Less than a second").
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
fn human_duration_nanos(d: i64) -> String {
    const SECOND: i64 = 1_000_000_000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;
    // As time.Duration's Seconds/Minutes/Hours: whole units plus the
    // fraction, in float64; `int(…)` truncates.
    let in_units = |unit: i64| (d / unit) as f64 + (d % unit) as f64 / unit as f64;
    let seconds = in_units(SECOND) as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = in_units(MINUTE) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (in_units(HOUR) + 0.5) as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", in_units(HOUR) as i64 / 24 / 365)
}

/// Docker's CREATED column: `HumanDuration(now - then) + " ago"`
/// ("2 weeks ago"). A time in the future reads "Less than a second ago",
/// as Go's negative duration does.
pub(crate) fn human_duration_since(then: SystemTime, now: SystemTime) -> String {
    let nanos = match now.duration_since(then) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(_) => -1,
    };
    format!("{} ago", human_duration_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_size_three_digits() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(1), "1B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1024), "1.02kB");
        assert_eq!(human_size(1125), "1.12kB");
        assert_eq!(human_size(77_800_000), "77.8MB");
        assert_eq!(human_size(7_801_542), "7.8MB");
        assert_eq!(human_size(155_123_456), "155MB");
        assert_eq!(human_size(999_499), "999kB");
        assert_eq!(human_size(999_500), "1e+03kB");
        assert_eq!(human_size(1_000_000), "1MB");
        assert_eq!(human_size(5_368_709_120), "5.37GB");
        assert_eq!(human_size(u64::MAX), "18.4EB");
    }

    #[test]
    fn human_size_other_precisions() {
        assert_eq!(human_size_with_precision(2_746_000.0, 4), "2.746MB");
        assert_eq!(human_size_with_precision(796_000.0, 4), "796kB");
        assert_eq!(human_size_with_precision(1e30, 3), "1e+06YB");
        assert_eq!(human_size_with_precision(-5.0, 3), "-5B");
    }

    #[test]
    fn bytes_size_binary_units() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1023), "1023B");
        assert_eq!(bytes_size(1024), "1KiB");
        assert_eq!(bytes_size(44 * 1024), "44KiB");
        assert_eq!(bytes_size(1024 * 1024), "1MiB");
        assert_eq!(bytes_size(1536 * 1024 * 1024), "1.5GiB");
        assert_eq!(bytes_size(1_048_575), "1024KiB");
        assert_eq!(bytes_size(123_456_789), "117.7MiB");
    }

    fn secs(s: u64) -> String {
        human_duration(Duration::from_secs(s))
    }

    #[test]
    fn human_duration_thresholds() {
        assert_eq!(
            human_duration(Duration::from_millis(999)),
            "Less than a second"
        );
        assert_eq!(secs(0), "Less than a second");
        assert_eq!(secs(1), "1 second");
        assert_eq!(human_duration(Duration::from_millis(1999)), "1 second");
        assert_eq!(secs(2), "2 seconds");
        assert_eq!(secs(59), "59 seconds");
        assert_eq!(secs(60), "About a minute");
        assert_eq!(secs(119), "About a minute");
        assert_eq!(secs(120), "2 minutes");
        assert_eq!(secs(59 * 60 + 59), "59 minutes");
        assert_eq!(secs(60 * 60), "About an hour");
        assert_eq!(secs(89 * 60 + 59), "About an hour");
        assert_eq!(secs(90 * 60), "2 hours");
        assert_eq!(secs(47 * 3600 + 29 * 60), "47 hours");
        assert_eq!(secs(47 * 3600 + 30 * 60), "2 days");
        assert_eq!(secs(13 * 86400), "13 days");
        assert_eq!(secs(14 * 86400), "2 weeks");
        assert_eq!(secs(59 * 86400), "8 weeks");
        assert_eq!(secs(60 * 86400), "2 months");
        assert_eq!(secs(729 * 86400), "24 months");
        assert_eq!(secs(730 * 86400), "2 years");
        assert_eq!(secs(3650 * 86400), "10 years");
    }

    #[test]
    fn ago() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let then = now - Duration::from_secs(3 * 86400);
        assert_eq!(human_duration_since(then, now), "3 days ago");
        assert_eq!(
            human_duration_since(now + Duration::from_secs(10), now),
            "Less than a second ago"
        );
        assert_eq!(
            human_duration_since(SystemTime::UNIX_EPOCH, now),
            "53 years ago"
        );
    }

    #[test]
    fn huge_durations_saturate() {
        assert_eq!(human_duration(Duration::MAX), "292 years");
    }
}
