//! How Go prints a JSON value: `fmt.Sprint` (`%v`), `fmt.Sprintf` for the
//! verbs templates use, `strconv.Quote`, `%g` floats and `encoding/json`
//! with HTML escaping off (what Docker's `json` template function does).
//!
//! The values are `serde_json::Value`s standing in for Go's `interface{}`
//! data, with one deliberate difference: a number that is integral prints
//! as an integer (`5`, not `5` as a float64 would anyway, but also never
//! `1e+06`), because the fields Docker prints are Go integers.
//!
//! References: <https://pkg.go.dev/fmt>, <https://pkg.go.dev/strconv>,
//! <https://pkg.go.dev/encoding/json#Marshal>.

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// Go's name for the dynamic type of a value, as `%T` and the error
/// messages print it (`float64` for fractional numbers, `int` otherwise).
pub(super) fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if as_int(n).is_some() => "int",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// The number as an integer when it is one (a float with no fraction
/// counts), so it prints like Go's `int64`.
pub(super) fn as_int(n: &Number) -> Option<i128> {
    if let Some(i) = n.as_i64() {
        return Some(i128::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(i128::from(u));
    }
    let f = n.as_f64()?;
    // 2^63: beyond it an f64 is not an int64 in Go's data either.
    if f.fract() == 0.0 && f.abs() < 9_223_372_036_854_775_808.0 {
        #[allow(clippy::cast_possible_truncation)]
        return Some(f as i128);
    }
    None
}

fn number_v(n: &Number) -> String {
    match as_int(n) {
        Some(i) => i.to_string(),
        None => format_g(n.as_f64().unwrap_or(f64::NAN), None),
    }
}

/// `fmt.Sprint(v)` for one value: `%v`.
pub(super) fn sprint_value(v: &Value) -> String {
    let mut out = String::new();
    write_v(&mut out, v);
    out
}

fn write_v(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_v(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            for (i, (k, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_v(out, item);
            }
            out.push(']');
        }
    }
}

/// Map entries in Go's order (sorted keys), whatever order the map keeps.
pub(super) fn sorted(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// `fmt.Sprint(args...)`: a space between two operands when neither is a
/// string.
pub(super) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        write_v(&mut out, a);
    }
    out
}

/// `fmt.Sprintln(args...)`: always spaces, and a newline.
pub(super) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_v(&mut out, a);
    }
    out.push('\n');
    out
}

// ---------------------------------------------------------------------------
// Floats, as strconv.FormatFloat

/// The decimal digits of |x| (no trailing zeros, empty for zero) and the
/// decimal point position: |x| = 0.d1d2d3… × 10^dp. `sig` rounds to that
/// many significant digits (half to even on exact ties, as Go does);
/// `None` is the shortest string that reads back as the same float.
fn digits(x: f64, sig: Option<usize>) -> (Vec<u8>, i32) {
    if x == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match sig {
        Some(p) => format!("{:.*e}", p.saturating_sub(1), x.abs()),
        None => format!("{:e}", x.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return (Vec::new(), 0);
    }
    (d, exp + 1)
}

/// strconv's `%e` body from digits: `d.ddde±XX`.
fn fmt_e(d: &[u8], dp: i32, prec: usize, upper: bool) -> String {
    let mut out = String::new();
    out.push(d.first().map_or('0', |c| char::from(*c)));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(d.get(i).map_or('0', |c| char::from(*c)));
        }
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if d.is_empty() { 0 } else { dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let _ = write!(out, "{:02}", exp.unsigned_abs());
    out
}

/// strconv's `%f` body from digits.
fn fmt_f(d: &[u8], dp: i32, prec: usize) -> String {
    let mut out = String::new();
    if dp > 0 {
        for i in 0..usize::try_from(dp).unwrap_or(0) {
            out.push(d.get(i).map_or('0', |c| char::from(*c)));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            let j = i64::from(dp) + i64::try_from(i).unwrap_or(i64::MAX) - 1;
            let c = usize::try_from(j)
                .ok()
                .and_then(|j| d.get(j))
                .map_or('0', |c| char::from(*c));
            out.push(c);
        }
    }
    out
}

fn sign(x: f64) -> &'static str {
    if x.is_sign_negative() {
        "-"
    } else {
        ""
    }
}

fn non_finite(x: f64) -> Option<String> {
    if x.is_nan() {
        Some("NaN".into())
    } else if x.is_infinite() {
        Some(if x > 0.0 { "+Inf" } else { "-Inf" }.into())
    } else {
        None
    }
}

/// `strconv.FormatFloat(x, 'g', prec, 64)`; `None` is the shortest form
/// (`%v`), where the exponent form starts at 1e+06 or below 1e-04.
pub(super) fn format_g(x: f64, prec: Option<usize>) -> String {
    if let Some(s) = non_finite(x) {
        return s;
    }
    let (d, dp) = digits(x, prec.map(|p| p.max(1)));
    let nd = i32::try_from(d.len()).unwrap_or(i32::MAX);
    let shortest = prec.is_none();
    let mut prec = prec.map_or(nd, |p| i32::try_from(p.max(1)).unwrap_or(i32::MAX));
    let mut eprec = prec;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    let exp = dp - 1;
    let body = if exp < -4 || exp >= eprec {
        if prec > nd {
            prec = nd;
        }
        fmt_e(&d, dp, usize::try_from(prec - 1).unwrap_or(0), false)
    } else {
        if prec > dp {
            prec = nd;
        }
        fmt_f(&d, dp, usize::try_from(prec - dp).unwrap_or(0))
    };
    format!("{}{body}", sign(x))
}

/// `strconv.FormatFloat(x, 'e', prec, 64)`.
pub(super) fn format_e(x: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = non_finite(x) {
        return s;
    }
    let (d, dp) = digits(x, Some(prec + 1));
    format!("{}{}", sign(x), fmt_e(&d, dp, prec, upper))
}

/// `strconv.FormatFloat(x, 'f', prec, 64)`.
pub(super) fn format_f(x: f64, prec: usize) -> String {
    if let Some(s) = non_finite(x) {
        return s;
    }
    // Rust's fixed formatting rounds the exact binary value half to even,
    // as Go's does.
    format!("{x:.prec$}")
}

// ---------------------------------------------------------------------------
// Quoting

/// An approximation of Go's `unicode.IsPrint`: letters, marks, numbers,
/// punctuation, symbols and the ASCII space. Without Unicode tables we
/// refuse controls, non-ASCII spaces, the common format characters and
/// private use; unassigned code points count as printable.
pub(super) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F
        | 0xD800..=0xF8FF | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE0000..=0xE007F | 0xF0000..=0x10FFFF)
}

/// `strconv.Quote`.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        escape_rune(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// `strconv.QuoteRune`.
fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    escape_rune(&mut out, c, '\'');
    out.push('\'');
    out
}

fn escape_rune(out: &mut String, c: char, quote: char) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\x7f' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if (c as u32) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\U{:08x}", c as u32);
        }
    }
}

// ---------------------------------------------------------------------------
// JSON, as encoding/json with SetEscapeHTML(false)

/// `json.Marshal` of the value, compact, map keys sorted, `<>&` left alone
/// (Docker's `json` function turns HTML escaping off).
pub(super) fn json(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v);
    out
}

fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&json_number(n)),
        Value::String(s) => json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, k);
                out.push(':');
                write_json(out, item);
            }
            out.push('}');
        }
    }
}

fn json_number(n: &Number) -> String {
    if let Some(i) = as_int(n) {
        return i.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go: 'e' format with a two-digit exponent cut back to one
        // (1e-07 -> 1e-7), and an explicit + sign (1e+21).
        let s = format!("{f:e}");
        match s.split_once('e') {
            Some((m, e)) if e.starts_with('-') => format!("{m}e{e}"),
            Some((m, e)) => format!("{m}e+{e}"),
            None => s,
        }
    } else {
        // Shortest round-trip digits, never an exponent: Go's 'f', -1.
        format!("{f}")
    }
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            // JavaScript line terminators, escaped even without HTML
            // escaping.
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------
// Printf

/// Flags, width and precision of one `%` directive.
#[derive(Debug, Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

impl Spec {
    /// Pad to the width with spaces (or zeros on the left when `0` was
    /// given, as Go 1.19 also does for strings).
    fn pad(&self, out: &mut String, s: &str) {
        let len = s.chars().count();
        let fill = self.width.unwrap_or(0).saturating_sub(len);
        if self.minus {
            out.push_str(s);
            out.extend(std::iter::repeat_n(' ', fill));
        } else {
            let c = if self.zero { '0' } else { ' ' };
            out.extend(std::iter::repeat_n(c, fill));
            out.push_str(s);
        }
    }

    /// Pad a number whose sign (or base prefix) goes before zero padding.
    fn pad_number(&self, out: &mut String, sign: &str, digits: &str) {
        if self.zero && !self.minus {
            if let Some(w) = self.width {
                let len = sign.chars().count() + digits.chars().count();
                out.push_str(sign);
                out.extend(std::iter::repeat_n('0', w.saturating_sub(len)));
                out.push_str(digits);
                return;
            }
        }
        self.pad(out, &format!("{sign}{digits}"));
    }

    fn sign_for(&self, negative: bool) -> &'static str {
        if negative {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        }
    }
}

/// `fmt.Sprintf` for the verbs b c d e E f F g G o O q s t U v x X and
/// `%%` and `%T`, with flags `+- #0`, width and precision (`*` too). Wrong verbs,
/// missing and extra arguments print as Go prints them (`%!d(string=a)`,
/// `%!s(MISSING)`, `%!(EXTRA int=1)`). Not supported: `%p`,
/// argument indexes (`%[1]d`).
pub(super) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                _ => break,
            }
            chars.next();
        }
        match star_or_number(&mut chars, args, &mut next) {
            Ok(Some(w)) if w < 0 => {
                spec.minus = true;
                spec.width = usize::try_from(-w).ok();
            }
            Ok(w) => spec.width = w.and_then(|w| usize::try_from(w).ok()),
            Err(()) => out.push_str("%!(BADWIDTH)"),
        }
        if chars.peek() == Some(&'.') {
            chars.next();
            match star_or_number(&mut chars, args, &mut next) {
                Ok(Some(p)) if p < 0 => out.push_str("%!(BADPREC)"),
                Ok(p) => spec.prec = Some(p.and_then(|p| usize::try_from(p).ok()).unwrap_or(0)),
                Err(()) => out.push_str("%!(BADPREC)"),
            }
        }
        if spec.minus {
            spec.zero = false;
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        if verb == 'T' {
            if let Some(arg) = args.get(next) {
                next += 1;
                spec.pad(&mut out, go_type(arg));
                continue;
            }
        }
        let Some(arg) = args.get(next) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next += 1;
        format_arg(&mut out, &spec, verb, arg, true);
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[next..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if a.is_null() {
                out.push_str("<nil>");
            } else {
                let _ = write!(out, "{}=", go_type(a));
                write_v(&mut out, a);
            }
        }
        out.push(')');
    }
    out
}

/// Go ignores widths and precisions beyond a million (`fmt.tooLarge`).
const MAX_WIDTH: i128 = 1_000_000;

/// A width or precision: digits, or `*` taking an int argument (which may
/// be negative). `Err` for a `*` without a usable int.
fn star_or_number(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    args: &[Value],
    next: &mut usize,
) -> Result<Option<i128>, ()> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let n = args.get(*next).and_then(|a| match a {
            Value::Number(n) => as_int(n),
            _ => None,
        });
        *next += 1;
        return match n {
            Some(n) if n.abs() <= MAX_WIDTH => Ok(Some(n)),
            _ => Err(()),
        };
    }
    let mut n: Option<i128> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        if n.is_some_and(|n| n > MAX_WIDTH) {
            // Go's parsenum gives up and skips to the end of the format,
            // which then has no verb.
            chars.for_each(drop);
            return Ok(None);
        }
        chars.next();
        n = Some(n.unwrap_or(0) * 10 + i128::from(d));
    }
    Ok(n)
}

fn bad_verb(out: &mut String, verb: char, arg: &Value) {
    if arg.is_null() {
        let _ = write!(out, "%!{verb}(<nil>)");
    } else {
        let _ = write!(out, "%!{verb}({}=", go_type(arg));
        write_v(out, arg);
        out.push(')');
    }
}

fn format_arg(out: &mut String, spec: &Spec, verb: char, arg: &Value, top: bool) {
    match arg {
        Value::Null if top && verb != 'v' => bad_verb(out, verb, arg),
        Value::Null => spec.pad(out, "<nil>"),
        Value::Bool(b) => match verb {
            't' | 'v' => spec.pad(out, if *b { "true" } else { "false" }),
            _ => bad_verb(out, verb, arg),
        },
        Value::Number(n) => match as_int(n) {
            Some(i) => format_int(out, spec, verb, i, arg),
            None => format_float(out, spec, verb, n.as_f64().unwrap_or(f64::NAN), arg),
        },
        Value::String(s) => format_str(out, spec, verb, s, arg),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_arg(out, spec, verb, item, false);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            for (i, (k, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_str(out, spec, verb, k, &Value::String(k.clone()));
                out.push(':');
                format_arg(out, spec, verb, item, false);
            }
            out.push(']');
        }
    }
}

fn format_int(out: &mut String, spec: &Spec, verb: char, i: i128, arg: &Value) {
    let neg = i < 0;
    let abs = i.unsigned_abs();
    let (prefix, mut digits) = match verb {
        'd' | 'v' => ("", abs.to_string()),
        'b' => (if spec.sharp { "0b" } else { "" }, format!("{abs:b}")),
        'o' => (if spec.sharp { "0" } else { "" }, format!("{abs:o}")),
        'O' => ("0o", format!("{abs:o}")),
        'x' => (if spec.sharp { "0x" } else { "" }, format!("{abs:x}")),
        'X' => (if spec.sharp { "0X" } else { "" }, format!("{abs:X}")),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            spec.pad(out, &c.to_string());
            return;
        }
        'q' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            spec.pad(out, &quote_rune(c));
            return;
        }
        'U' => {
            let mut s = format!("U+{abs:04X}");
            if spec.sharp {
                if let Some(c) = u32::try_from(i).ok().and_then(char::from_u32) {
                    if is_print(c) {
                        let _ = write!(s, " '{c}'");
                    }
                }
            }
            spec.pad(out, &s);
            return;
        }
        // Lenient where Go would refuse an int: the value may have been a
        // float64 that happened to be integral.
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' => {
            #[allow(clippy::cast_precision_loss)]
            let f = i as f64;
            format_float(out, spec, verb, f, arg);
            return;
        }
        _ => {
            bad_verb(out, verb, arg);
            return;
        }
    };
    if let Some(p) = spec.prec {
        if digits.len() < p {
            digits = format!("{}{digits}", "0".repeat(p - digits.len()));
        } else if p == 0 && abs == 0 {
            digits.clear();
        }
        // An explicit precision turns off zero padding.
        let spec = Spec {
            zero: false,
            ..*spec
        };
        spec.pad_number(out, &format!("{}{prefix}", spec.sign_for(neg)), &digits);
        return;
    }
    spec.pad_number(out, &format!("{}{prefix}", spec.sign_for(neg)), &digits);
}

fn format_float(out: &mut String, spec: &Spec, verb: char, f: f64, arg: &Value) {
    let body = match verb {
        'v' => format_g(f, spec.prec),
        'g' => format_g(f, spec.prec),
        'G' => format_g(f, spec.prec).replace('e', "E"),
        'e' => format_e(f, spec.prec.unwrap_or(6), false),
        'E' => format_e(f, spec.prec.unwrap_or(6), true),
        'f' | 'F' => format_f(f, spec.prec.unwrap_or(6)),
        _ => {
            bad_verb(out, verb, arg);
            return;
        }
    };
    if f.is_nan() || f.is_infinite() {
        // No zero padding, and no sign but an asked-for one or a minus.
        let spec = Spec {
            zero: false,
            ..*spec
        };
        let s = if f.is_infinite() && f < 0.0 {
            body
        } else {
            let sign = if spec.plus {
                "+"
            } else if spec.space {
                " "
            } else {
                ""
            };
            format!("{sign}{}", body.trim_start_matches('+'))
        };
        spec.pad(out, &s);
        return;
    }
    let (neg, digits) = match body.strip_prefix('-') {
        Some(rest) => (true, rest.to_string()),
        None => (false, body),
    };
    spec.pad_number(out, spec.sign_for(neg), &digits);
}

fn format_str(out: &mut String, spec: &Spec, verb: char, s: &str, arg: &Value) {
    match verb {
        's' | 'v' => {
            let s: String = match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            };
            spec.pad(out, &s);
        }
        'q' => {
            let s: String = match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            };
            if spec.sharp && !s.contains('`') && s.chars().all(|c| c == '\t' || is_print(c)) {
                spec.pad(out, &format!("`{s}`"));
            } else {
                spec.pad(out, &quote(&s));
            }
        }
        'x' | 'X' => {
            let bytes = match spec.prec {
                Some(p) => &s.as_bytes()[..p.min(s.len())],
                None => s.as_bytes(),
            };
            let mut h = String::new();
            for (i, b) in bytes.iter().enumerate() {
                if spec.space && i > 0 {
                    h.push(' ');
                }
                if spec.sharp && (spec.space || i == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    let _ = write!(h, "{b:02x}");
                } else {
                    let _ = write!(h, "{b:02X}");
                }
            }
            spec.pad(out, &h);
        }
        _ => bad_verb(out, verb, arg),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn g_shortest_matches_go_v() {
        assert_eq!(format_g(1.5, None), "1.5");
        assert_eq!(format_g(100000.0, None), "100000");
        assert_eq!(format_g(1000000.0, None), "1e+06");
        assert_eq!(format_g(1234567.0, None), "1.234567e+06");
        assert_eq!(format_g(0.0001, None), "0.0001");
        assert_eq!(format_g(0.00001, None), "1e-05");
        assert_eq!(format_g(-2.5, None), "-2.5");
        assert_eq!(format_g(0.0, None), "0");
        assert_eq!(format_g(0.1 + 0.2, None), "0.30000000000000004");
    }

    #[test]
    fn g_with_precision_matches_go() {
        assert_eq!(format_g(77.8, Some(3)), "77.8");
        assert_eq!(format_g(1.0, Some(3)), "1");
        assert_eq!(format_g(999.5, Some(3)), "1e+03");
        assert_eq!(format_g(1.125, Some(3)), "1.12");
        assert_eq!(format_g(123.456, Some(4)), "123.5");
        assert_eq!(format_g(0.000012345, Some(3)), "1.23e-05");
        assert_eq!(format_g(0.0, Some(3)), "0");
        assert_eq!(format_g(100.0, Some(3)), "100");
        assert_eq!(format_g(1000.0, Some(3)), "1e+03");
    }

    #[test]
    fn e_and_f() {
        assert_eq!(format_e(1234.5678, 2, false), "1.23e+03");
        assert_eq!(format_e(0.0, 6, false), "0.000000e+00");
        assert_eq!(format_e(1e-100, 1, true), "1.0E-100");
        assert_eq!(format_f(2.5, 0), "2");
        assert_eq!(format_f(1.23456, 2), "1.23");
    }

    #[test]
    fn sprint_values_like_go() {
        assert_eq!(sprint_value(&json!("a b")), "a b");
        assert_eq!(sprint_value(&json!(5)), "5");
        assert_eq!(sprint_value(&json!(5.0)), "5");
        assert_eq!(sprint_value(&json!(2.5)), "2.5");
        assert_eq!(sprint_value(&json!(true)), "true");
        assert_eq!(sprint_value(&json!(null)), "<nil>");
        assert_eq!(sprint_value(&json!(["a", 1, null])), "[a 1 <nil>]");
        assert_eq!(
            sprint_value(&json!({"b": [1, 2], "a": {"x": "y"}})),
            "map[a:map[x:y] b:[1 2]]"
        );
        assert_eq!(sprint_value(&json!([])), "[]");
        assert_eq!(sprint_value(&json!({})), "map[]");
    }

    #[test]
    fn sprint_spaces_between_non_strings() {
        assert_eq!(sprint(&[json!(1), json!(2)]), "1 2");
        assert_eq!(sprint(&[json!("a"), json!(1), json!("b")]), "a1b");
        assert_eq!(sprint(&[json!("a"), json!("b")]), "ab");
        assert_eq!(sprint(&[json!(true), json!(null)]), "true <nil>");
        assert_eq!(sprintln(&[json!("a"), json!("b")]), "a b\n");
        assert_eq!(sprintln(&[]), "\n");
    }

    #[test]
    fn quote_like_strconv() {
        assert_eq!(quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quote("tab\there\n"), r#""tab\there\n""#);
        assert_eq!(quote("\x01\x7f"), r#""\x01\x7f""#);
        assert_eq!(quote("héllo 世界"), "\"héllo 世界\"");
        assert_eq!(quote("\u{200b}\u{a0}"), r#""\u200b\u00a0""#);
        assert_eq!(quote("\u{f0000}"), r#""\U000f0000""#);
    }

    #[test]
    fn json_like_go_without_html_escaping() {
        assert_eq!(
            json(&json!({"b": 1, "a": "<x&y>"})),
            r#"{"a":"<x&y>","b":1}"#
        );
        assert_eq!(json(&json!([1, 2.5, null, true])), "[1,2.5,null,true]");
        assert_eq!(
            json(&json!("a\u{1}\u{8}\u{c}\n\"\\")),
            r#""a\u0001\b\f\n\"\\""#
        );
        assert_eq!(json(&json!("\u{2028}\u{2029}é")), "\"\\u2028\\u2029é\"");
        assert_eq!(json(&json!(1.0)), "1");
        assert_eq!(json(&json!(1e-7)), "1e-7");
        assert_eq!(json(&json!(1.5e300)), "1.5e+300");
        assert_eq!(json(&json!(0.000001)), "0.000001");
        assert_eq!(json(&json!(u64::MAX)), "18446744073709551615");
        assert_eq!(json(&json!(-3)), "-3");
        assert_eq!(json(&json!({})), "{}");
        assert_eq!(json(&json!([])), "[]");
    }

    #[test]
    fn printf_basic_verbs() {
        assert_eq!(
            sprintf("%s-%d-%v", &[json!("a"), json!(5), json!(true)]),
            "a-5-true"
        );
        assert_eq!(sprintf("%q", &[json!("hi\n")]), "\"hi\\n\"");
        assert_eq!(
            sprintf("%5s|%-5s|", &[json!("ab"), json!("cd")]),
            "   ab|cd   |"
        );
        assert_eq!(
            sprintf("%05d|%+d|% d", &[json!(42), json!(3), json!(4)]),
            "00042|+3| 4"
        );
        assert_eq!(
            sprintf("%x %X %o %b", &[json!(255), json!(255), json!(8), json!(5)]),
            "ff FF 10 101"
        );
        assert_eq!(sprintf("%#x", &[json!(255)]), "0xff");
        assert_eq!(
            sprintf(
                "%.2f|%8.3f|%e",
                &[json!(1.23456), json!(2.5), json!(1234.5)]
            ),
            "1.23|   2.500|1.234500e+03"
        );
        assert_eq!(sprintf("%g|%v", &[json!(0.5), json!(1.25)]), "0.5|1.25");
        assert_eq!(sprintf("%.3s", &[json!("abcdef")]), "abc");
        assert_eq!(sprintf("100%%", &[]), "100%");
        assert_eq!(sprintf("%c%c", &[json!(72), json!(105)]), "Hi");
        assert_eq!(sprintf("%q", &[json!(97)]), "'a'");
        assert_eq!(sprintf("%x", &[json!("hi")]), "6869");
        assert_eq!(sprintf("%U", &[json!(0x1F600)]), "U+1F600");
        assert_eq!(sprintf("%t", &[json!(false)]), "false");
        assert_eq!(sprintf("%*d", &[json!(4), json!(7)]), "   7");
        assert_eq!(sprintf("%.3d", &[json!(7)]), "007");
        assert_eq!(sprintf("%-05d|", &[json!(7)]), "7    |");
        assert_eq!(sprintf("%08.3f", &[json!(-1.23456)]), "-001.235");
    }

    #[test]
    fn printf_mismatches_like_go() {
        assert_eq!(sprintf("%d", &[json!("a")]), "%!d(string=a)");
        assert_eq!(sprintf("%s", &[json!(5)]), "%!s(int=5)");
        assert_eq!(sprintf("%d", &[json!(1.5)]), "%!d(float64=1.5)");
        assert_eq!(sprintf("%s", &[json!(null)]), "%!s(<nil>)");
        assert_eq!(sprintf("%v", &[json!(null)]), "<nil>");
        assert_eq!(sprintf("%s %s", &[json!("a")]), "a %!s(MISSING)");
        assert_eq!(
            sprintf("%s", &[json!("a"), json!(1), json!(null)]),
            "a%!(EXTRA int=1, <nil>)"
        );
        assert_eq!(sprintf("%", &[]), "%!(NOVERB)");
        assert_eq!(sprintf("%z", &[json!(1)]), "%!z(int=1)");
    }

    #[test]
    fn printf_composites_apply_the_verb_to_elements() {
        assert_eq!(sprintf("%s", &[json!(["a", "b"])]), "[a b]");
        assert_eq!(sprintf("%q", &[json!(["a", "b"])]), r#"["a" "b"]"#);
        assert_eq!(sprintf("%d", &[json!(["a", 1])]), "[%!d(string=a) 1]");
        assert_eq!(
            sprintf("%v", &[json!({"k": "v", "n": null})]),
            "map[k:v n:<nil>]"
        );
        assert_eq!(sprintf("%s", &[json!([null])]), "[<nil>]");
    }

    #[test]
    fn types_named_like_go() {
        assert_eq!(go_type(&json!(1)), "int");
        assert_eq!(go_type(&json!(1.5)), "float64");
        assert_eq!(go_type(&json!("")), "string");
        assert_eq!(go_type(&json!([])), "[]interface {}");
        assert_eq!(go_type(&json!({})), "map[string]interface {}");
        assert_eq!(go_type(&json!(null)), "<nil>");
    }

    #[test]
    fn printf_star_and_oversized_widths_like_go() {
        assert_eq!(sprintf("%*d|", &[json!(-4), json!(7)]), "7   |");
        assert_eq!(
            sprintf("%.*f", &[json!(-1), json!(2.5)]),
            "%!(BADPREC)2.500000"
        );
        assert_eq!(sprintf("%.*f", &[json!(1), json!(2.25)]), "2.2");
        assert_eq!(sprintf("%*d", &[json!("x"), json!(7)]), "%!(BADWIDTH)7");
        assert_eq!(
            sprintf("%.*d", &[json!(2_000_000), json!(7)]),
            "%!(BADPREC)7"
        );
        assert_eq!(
            sprintf("%*d", &[json!(2_000_000), json!(7)]),
            "%!(BADWIDTH)7"
        );
        assert_eq!(
            sprintf("%99999999999d|", &[json!(7)]),
            "%!(NOVERB)%!(EXTRA int=7)"
        );
        assert_eq!(
            sprintf("%.99999999999d|", &[json!(7)]),
            "%!(NOVERB)%!(EXTRA int=7)"
        );
        assert_eq!(
            sprintf(
                "%05s|%-05d|%+.2e|% x|%#q",
                &[
                    json!("ab"),
                    json!(3),
                    json!(1234.5),
                    json!("hi"),
                    json!("a`b")
                ]
            ),
            "000ab|3    |+1.23e+03|68 69|\"a`b\""
        );
        assert_eq!(
            sprintf(
                "%6.2v|%G|%+g|%08.3e|%x",
                &[
                    json!(3.24159),
                    json!(1e-10),
                    json!(2.0),
                    json!(-1.5),
                    json!(-255)
                ]
            ),
            "   3.2|1E-10|+2|-1.500e+00|-ff"
        );
        assert_eq!(
            sprintf(
                "%#o %#b %O %c %U %#U",
                &[
                    json!(8),
                    json!(5),
                    json!(8),
                    json!(0x1F433),
                    json!(0x1F433),
                    json!(0x1F433)
                ]
            ),
            "010 0b101 0o10 🐳 U+1F433 U+1F433 '🐳'"
        );
        assert_eq!(
            sprintf(
                "%5t|%-7v|%3c|%q",
                &[json!(true), json!(null), json!(120), json!(127)]
            ),
            " true|<nil>  |  x|'\\x7f'"
        );
    }
}
