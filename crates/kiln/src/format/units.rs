//! Sizes and ages the way Docker prints them (`github.com/docker/go-units`
//! `size.go` and `duration.go`, and docker/cli's `… ago` columns).

use std::time::{Duration, SystemTime};

use super::gofmt::format_g;

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
// Binary sizes are what `run --memory` and `stats` show (issue 4).
#[cfg_attr(not(test), allow(dead_code))]
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
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) fn bytes_size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let (size, unit) = scale(bytes as f64, 1024.0, &BINARY_UNITS);
    format!("{}{unit}", format_g(size, Some(4)))
}

/// `units.HumanDuration`: a rough, human reading of a duration ("Less than
/// a second", "About a minute", "3 days", "2 years").
#[cfg_attr(not(test), allow(dead_code))]
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

    /// go-units' own output (Go 1.19) for the same inputs: size,
    /// HumanSizeWithPrecision(size, 3), (size, 4), BytesSize(size).
    #[rustfmt::skip]
    const GO_SIZES: &[(f64, &str, &str, &str)] = &[
        (0.0, "0B", "0B", "0B"),
        (1.0, "1B", "1B", "1B"),
        (999.0, "999B", "999B", "999B"),
        (1000.0, "1kB", "1kB", "1000B"),
        (1001.0, "1kB", "1.001kB", "1001B"),
        (1024.0, "1.02kB", "1.024kB", "1KiB"),
        (1125.0, "1.12kB", "1.125kB", "1.099KiB"),
        (1135.0, "1.14kB", "1.135kB", "1.108KiB"),
        (1500.0, "1.5kB", "1.5kB", "1.465KiB"),
        (9999.0, "10kB", "9.999kB", "9.765KiB"),
        (99949.0, "99.9kB", "99.95kB", "97.61KiB"),
        (99950.0, "100kB", "99.95kB", "97.61KiB"),
        (999499.0, "999kB", "999.5kB", "976.1KiB"),
        (999500.0, "1e+03kB", "999.5kB", "976.1KiB"),
        (999999.0, "1e+03kB", "1000kB", "976.6KiB"),
        (1000000.0, "1MB", "1MB", "976.6KiB"),
        (1048576.0, "1.05MB", "1.049MB", "1MiB"),
        (7801542.0, "7.8MB", "7.802MB", "7.44MiB"),
        (77800000.0, "77.8MB", "77.8MB", "74.2MiB"),
        (155123456.0, "155MB", "155.1MB", "147.9MiB"),
        (5368709120.0, "5.37GB", "5.369GB", "5GiB"),
        (1000000000000.0, "1TB", "1TB", "931.3GiB"),
        (1500000000000000.0, "1.5PB", "1.5PB", "1.332PiB"),
        (2500000000000000000.0, "2.5EB", "2.5EB", "2.168EiB"),
        (18446744073709551616.0, "18.4EB", "18.45EB", "16EiB"),
        (123456789.0, "123MB", "123.5MB", "117.7MiB"),
        (45056.0, "45.1kB", "45.06kB", "44KiB"),
        (1610612736.0, "1.61GB", "1.611GB", "1.5GiB"),
        (1048575.0, "1.05MB", "1.049MB", "1024KiB"),
        (1023.0, "1.02kB", "1.023kB", "1023B"),
        (10737418240.0, "10.7GB", "10.74GB", "10GiB"),
    ];

    /// go-units' HumanDuration for the same nanosecond counts.
    #[rustfmt::skip]
    const GO_DURATIONS: &[(u64, &str)] = &[
        (0, "Less than a second"),
        (500000000, "Less than a second"),
        (999000000, "Less than a second"),
        (1000000000, "1 second"),
        (1500000000, "1 second"),
        (1999000000, "1 second"),
        (2000000000, "2 seconds"),
        (59000000000, "59 seconds"),
        (59999000000, "59 seconds"),
        (60000000000, "About a minute"),
        (61000000000, "About a minute"),
        (119000000000, "About a minute"),
        (120000000000, "2 minutes"),
        (3599000000000, "59 minutes"),
        (3600000000000, "About an hour"),
        (5399000000000, "About an hour"),
        (5400000000000, "2 hours"),
        (86399000000000, "24 hours"),
        (86400000000000, "24 hours"),
        (171000000000000, "2 days"),
        (171899000000000, "2 days"),
        (171900000000000, "2 days"),
        (172799000000000, "2 days"),
        (172800000000000, "2 days"),
        (1209599000000000, "2 weeks"),
        (1209600000000000, "2 weeks"),
        (5183999000000000, "2 months"),
        (5184000000000000, "2 months"),
        (63071999000000000, "1 years"),
        (63072000000000000, "2 years"),
        (315360000000000000, "10 years"),
        (1000000000000000000, "31 years"),
    ];

    #[test]
    fn sizes_match_go_units() {
        for &(size, three, four, binary) in GO_SIZES {
            assert_eq!(human_size_with_precision(size, 3), three, "{size}");
            assert_eq!(human_size_with_precision(size, 4), four, "{size}");
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let bytes = size as u64;
            assert_eq!(bytes_size(bytes), binary, "{size}");
            if size < 1e19 {
                assert_eq!(human_size(bytes), three, "{size}");
            }
        }
    }

    #[test]
    fn durations_match_go_units() {
        for &(nanos, want) in GO_DURATIONS {
            assert_eq!(
                human_duration(Duration::from_nanos(nanos)),
                want,
                "{nanos}ns"
            );
        }
    }
}
