//! JSON as Node writes and reads it: `JSON.stringify` output byte for byte, and a reader that
//! accepts everything `JSON.parse` accepts from a dnode peer.

use super::value::{Map, Value};
use serde::de;
use std::borrow::Cow;
use std::fmt;

/// Appends `n` as JavaScript's `Number.prototype.toString` (and so `JSON.stringify`) prints
/// it; non-finite numbers become `null` as in `JSON.stringify`.
///
/// ```
/// let mut out = Vec::new();
/// upnode_core::protocol::write_js_number(&mut out, 1e21);
/// assert_eq!(out, b"1e+21");
/// ```
pub fn write_js_number(out: &mut Vec<u8>, n: f64) {
    if !n.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    if n == 0.0 {
        out.push(b'0'); // also -0
        return;
    }
    // Integers below 2^53 print exactly; their shortest round-trip form is the integer itself.
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        write_i64(out, n as i64);
        return;
    }
    // Shortest round-trip digits and exponent, then JavaScript's layout rules.
    let sci = format!("{:e}", n.abs());
    let (mantissa, exp) = sci.split_once('e').expect("LowerExp has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let digits: Vec<u8> = mantissa.bytes().filter(|b| *b != b'.').collect();
    let k = digits.len() as i32;
    let pos = exp + 1; // JavaScript's n: the decimal point sits after `pos` digits
    if n < 0.0 {
        out.push(b'-');
    }
    if k <= pos && pos <= 21 {
        out.extend_from_slice(&digits);
        out.extend(std::iter::repeat_n(b'0', (pos - k) as usize));
    } else if 0 < pos && pos <= 21 {
        out.extend_from_slice(&digits[..pos as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[pos as usize..]);
    } else if -6 < pos && pos <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-pos) as usize));
        out.extend_from_slice(&digits);
    } else {
        out.push(digits[0]);
        if k > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        let e = pos - 1;
        out.push(if e < 0 { b'-' } else { b'+' });
        write_i64(out, i64::from(e.abs()));
    }
}

/// Appends `n` as a decimal, with a `-` when negative.
fn write_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(out, n.unsigned_abs());
}

/// Appends `n` as a decimal (for callback ids and array indices).
pub(crate) fn write_u64(out: &mut Vec<u8>, n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut u = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn needs_escape(b: u8, ascii_only: bool) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || (ascii_only && b >= 0x80)
}

/// Whether any of the eight bytes in `chunk` [needs escaping](needs_escape). Each test is
/// exact about whether some byte matches (the usual "has a byte less than" word trick, with
/// limits of at most 0x80), so a chunk it passes needs nothing.
fn chunk_needs_escape(chunk: u64, ascii_only: bool) -> bool {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let control = chunk.wrapping_sub(ONES * 0x20) & !chunk;
    let quote = has_zero(chunk ^ (ONES * u64::from(b'"')));
    let backslash = has_zero(chunk ^ (ONES * u64::from(b'\\')));
    let non_ascii = if ascii_only { chunk } else { 0 };
    (control | quote | backslash | non_ascii) & HIGH != 0
}

/// Appends `s` as a JSON string literal, escaped as `JSON.stringify` does; with `ascii_only`
/// every non-ASCII character becomes `\uXXXX` (UTF-16 units, lower-case hex).
pub fn write_js_string(out: &mut Vec<u8>, s: &str, ascii_only: bool) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    loop {
        // Skip what needs no escaping: eight bytes at a time (a chunk that fails holds a
        // byte that needs it), then byte by byte.
        while let Some(chunk) = bytes.get(i..i + 8) {
            let chunk = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
            if chunk_needs_escape(chunk, ascii_only) {
                break;
            }
            i += 8;
        }
        while i < bytes.len() && !needs_escape(bytes[i], ascii_only) {
            i += 1;
        }
        let Some(&b) = bytes.get(i) else {
            break;
        };
        out.extend_from_slice(&bytes[start..i]);
        if b >= 0x80 {
            // A whole non-ASCII character, as UTF-16 escapes.
            let ch = s[i..].chars().next().expect("valid UTF-8");
            let mut units = [0u16; 2];
            for u in ch.encode_utf16(&mut units) {
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((*u >> shift) & 0xf) as usize]);
                }
            }
            i += ch.len_utf8();
        } else {
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                _ => {
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(b >> 4) as usize]);
                    out.push(HEX[(b & 0xf) as usize]);
                }
            }
            i += 1;
        }
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

// Writing a `Value` as JSON lives here, next to the writer, so that `value` needs nothing
// from `json`.
impl Value {
    /// Compact JSON as `JSON.stringify` writes it; functions as `"[Function]"`, links as
    /// `"[Circular]"`.
    pub fn to_json_string(&self) -> String {
        let mut out = Vec::new();
        write_plain(&mut out, self, false);
        String::from_utf8(out).expect("writer emits UTF-8")
    }
}

/// Writes a value with no scrubbing context: functions and links as their placeholders.
pub(crate) fn write_plain(out: &mut Vec<u8>, v: &Value, ascii_only: bool) {
    let mut w = PlainWriter { ascii_only };
    write_value(out, v, &mut w);
}

/// What to do with the two non-JSON kinds of value (functions and links) while writing.
pub(crate) trait WriteHooks<'v> {
    /// Whether non-ASCII is escaped.
    fn ascii_only(&self) -> bool;
    /// Called before descending into `seg` (a key or an index); returns `false` to stop
    /// (depth limit).
    fn enter(&mut self, seg: Seg<'v>) -> bool;
    /// Called after the child.
    fn leave(&mut self);
    /// A function was found at the current path.
    fn function(&mut self, f: super::value::Function);
    /// A link was found at the current path.
    fn link(&mut self, from: &'v [String]);
}

/// One path step while writing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct PlainWriter {
    ascii_only: bool,
}

impl<'v> WriteHooks<'v> for PlainWriter {
    fn ascii_only(&self) -> bool {
        self.ascii_only
    }
    fn enter(&mut self, _: Seg<'v>) -> bool {
        true
    }
    fn leave(&mut self) {}
    fn function(&mut self, _: super::value::Function) {}
    fn link(&mut self, _: &'v [String]) {}
}

pub(crate) const FUNCTION_PLACEHOLDER: &[u8] = b"\"[Function]\"";
pub(crate) const CIRCULAR_PLACEHOLDER: &[u8] = b"\"[Circular]\"";

pub(crate) fn write_value<'v, S: WriteHooks<'v>>(out: &mut Vec<u8>, v: &'v Value, s: &mut S) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_js_number(out, *n),
        Value::String(st) => write_js_string(out, st, s.ascii_only()),
        Value::Function(f) => {
            s.function(*f);
            out.extend_from_slice(FUNCTION_PLACEHOLDER);
        }
        Value::Link(path) => {
            s.link(path);
            out.extend_from_slice(CIRCULAR_PLACEHOLDER);
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_child(out, Seg::Index(i), item, s);
            }
            out.push(b']');
        }
        Value::Object(m) => write_object(out, m, s),
    }
}

/// Writes the child at `seg`, or `null` where the hooks stop the descent (depth limit).
fn write_child<'v, S: WriteHooks<'v>>(out: &mut Vec<u8>, seg: Seg<'v>, v: &'v Value, s: &mut S) {
    if s.enter(seg) {
        write_value(out, v, s);
        s.leave();
    } else {
        out.extend_from_slice(b"null");
    }
}

fn write_object<'v, S: WriteHooks<'v>>(out: &mut Vec<u8>, m: &'v Map, s: &mut S) {
    out.push(b'{');
    let mut first = true;
    let mut one = |out: &mut Vec<u8>, k: &'v str, v: &'v Value, s: &mut S| {
        if !first {
            out.push(b',');
        }
        first = false;
        write_js_string(out, k, s.ascii_only());
        out.push(b':');
        write_child(out, Seg::Key(k), v, s);
    };
    let entries = m.entries();
    if entries
        .iter()
        .any(|(k, _)| k.as_bytes().first().is_some_and(u8::is_ascii_digit))
    {
        for i in m.wire_order() {
            let (k, v) = &entries[i];
            one(out, k, v, s);
        }
    } else {
        for (k, v) in entries {
            one(out, k, v, s);
        }
    }
    out.push(b'}');
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Why a line is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError(pub(crate) String);

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses one line of JSON as `JSON.parse` would. Lone UTF-16 surrogate escapes (which Node
/// can write) become U+FFFD instead of failing. Nesting is limited to 128 levels.
pub fn parse_json(line: &[u8]) -> Result<Value, JsonError> {
    let line = fix_lone_surrogates(line);
    from_line::<Value>(&line).map_err(|e| {
        // Keep the category and column, not the (possibly huge) input.
        JsonError(e.to_string())
    })
}

/// Reads a `T` from one line of JSON. A line that is valid UTF-8 as a whole (any line a peer
/// that works writes) is checked once, not string by string; any other is read from its bytes
/// to get serde_json's own error for it.
pub(crate) fn from_line<'a, T: serde::Deserialize<'a>>(line: &'a [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(line) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(line),
    }
}

/// Rewrites `\uD800`–`\uDFFF` escapes that are not part of a valid pair into `\ufffd`.
/// Borrowed (no copy) when the line has none, which is the common case.
pub(crate) fn fix_lone_surrogates(line: &[u8]) -> Cow<'_, [u8]> {
    let has_candidate = memchr::memchr_iter(b'\\', line)
        .any(|i| line.get(i + 1) == Some(&b'u') && matches!(line.get(i + 2), Some(b'd' | b'D')));
    if !has_candidate {
        return Cow::Borrowed(line);
    }
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    let mut in_string = false;
    while i < line.len() {
        let b = line[i];
        if !in_string {
            if b == b'"' {
                in_string = true;
            }
            out.push(b);
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = false;
                out.push(b);
                i += 1;
            }
            b'\\' => {
                if line.get(i + 1) == Some(&b'u') {
                    if let Some(u) = hex4(line, i + 2) {
                        if (0xD800..0xDC00).contains(&u) {
                            let low = if line.get(i + 6) == Some(&b'\\')
                                && line.get(i + 7) == Some(&b'u')
                            {
                                hex4(line, i + 8)
                            } else {
                                None
                            };
                            if low.is_some_and(|l| (0xDC00..0xE000).contains(&l)) {
                                out.extend_from_slice(&line[i..i + 12]);
                                i += 12;
                            } else {
                                out.extend_from_slice(b"\\ufffd");
                                i += 6;
                            }
                            continue;
                        }
                        if (0xDC00..0xE000).contains(&u) {
                            out.extend_from_slice(b"\\ufffd");
                            i += 6;
                            continue;
                        }
                    }
                }
                // Any other escape: copy the backslash and the escaped byte together.
                out.push(b);
                if let Some(&n) = line.get(i + 1) {
                    out.push(n);
                }
                i += 2;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

fn hex4(line: &[u8], at: usize) -> Option<u16> {
    let s = line.get(at..at + 4)?;
    let s = std::str::from_utf8(s).ok()?;
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(s, 16).ok()
}

impl de::Error for JsonError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        JsonError(msg.to_string())
    }
}

impl std::error::Error for JsonError {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Readings of `line` by `from_line` and by serde_json from its bytes, errors as text.
    fn both_readings(line: &[u8]) -> (Result<Value, String>, Result<Value, String>) {
        (
            from_line::<Value>(line).map_err(|e| e.to_string()),
            serde_json::from_slice::<Value>(line).map_err(|e| e.to_string()),
        )
    }

    #[test]
    fn a_line_that_is_not_utf8_fails_as_serde_json_reports_it_from_the_bytes() {
        for line in [
            &b"{\"a\":\"\xff\"}"[..],
            b"[\"\xc3\"]",
            b"\xef\xbb\xbf{}",
            b"{\"\xe2\x82\":1}",
            b"[1,\xfe]",
        ] {
            let (ours, theirs) = both_readings(line);
            assert!(ours.is_err(), "{line:?}");
            assert_eq!(ours, theirs, "{line:?}");
        }
        let (ours, theirs) = both_readings("[\"é€😀\"]".as_bytes());
        assert_eq!(ours, Ok(Value::array([Value::from("é€😀")])));
        assert_eq!(ours, theirs);
    }

    proptest! {
        #[test]
        fn any_bytes_read_as_serde_json_reads_them(
            line in prop::collection::vec(
                prop_oneof![
                    Just(b'"'), Just(b'['), Just(b']'), Just(b'{'), Just(b'}'), Just(b':'),
                    Just(b','), Just(b'1'), Just(b'a'), Just(b'\\'), Just(0xc3u8), Just(0xa9u8),
                    Just(0xffu8), Just(0xe2u8), Just(0x82u8), Just(b' '), any::<u8>(),
                ],
                0..40,
            )
        ) {
            let (ours, theirs) = both_readings(&line);
            prop_assert_eq!(ours, theirs);
        }
    }

    fn num(n: f64) -> String {
        let mut out = Vec::new();
        write_js_number(&mut out, n);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        let cases: &[(f64, &str)] = &[
            (5.0, "5"),
            (-5.0, "-5"),
            (0.0, "0"),
            (-0.0, "0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (123456789012345680000.0, "123456789012345680000"),
            (2f64.powi(60), "1152921504606847000"),
            (9007199254740993.0, "9007199254740992"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (-1.5e300, "-1.5e+300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "null"),
            (f64::INFINITY, "null"),
            (f64::NEG_INFINITY, "null"),
            (123.456, "123.456"),
            (0.000123, "0.000123"),
            (100.0, "100"),
            (1e15 + 0.5, "1000000000000000.5"),
        ];
        for (n, want) in cases {
            assert_eq!(num(*n), *want, "for {n:?}");
        }
    }

    /// `JSON.stringify`'s escaping (with `ascii_only`, every non-ASCII character as UTF-16
    /// escapes), one character at a time: what the word-at-a-time writer must match.
    fn js_string_per_char(s: &str, ascii_only: bool) -> Vec<u8> {
        let mut out = vec![b'"'];
        for ch in s.chars() {
            match ch {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{8}' => out.extend_from_slice(b"\\b"),
                '\u{c}' => out.extend_from_slice(b"\\f"),
                c if (c as u32) < 0x20 || (ascii_only && !c.is_ascii()) => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        out.extend_from_slice(format!("\\u{u:04x}").as_bytes());
                    }
                }
                c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        out.push(b'"');
        out
    }

    proptest! {
        #[test]
        fn any_string_is_written_as_one_character_at_a_time(
            s in prop::collection::vec(
                prop_oneof![
                    Just('"'), Just('\\'), Just('\n'), Just('\u{0}'), Just('\u{1f}'),
                    Just('\u{7f}'), Just('\u{80}'), Just('é'), Just('😀'), Just('\u{2028}'),
                    Just(' '), Just('a'), Just('~'), Just('!'), Just('#'), Just('['),
                    Just('\u{a0}'), Just('\u{ff}'), any::<char>(),
                ],
                0..70,
            ).prop_map(|v| v.into_iter().collect::<String>()),
            ascii_only in any::<bool>(),
        ) {
            let mut out = Vec::new();
            write_js_string(&mut out, &s, ascii_only);
            prop_assert_eq!(out, js_string_per_char(&s, ascii_only));
        }
    }

    #[test]
    fn each_byte_that_needs_escaping_is_found_wherever_it_sits_in_a_long_string() {
        for b in 0u8..=0x7f {
            for at in 0..24 {
                let mut s = vec![b'a'; 24];
                s[at] = b;
                let s = String::from_utf8(s).unwrap();
                let mut out = Vec::new();
                write_js_string(&mut out, &s, false);
                assert_eq!(out, js_string_per_char(&s, false), "byte {b:#x} at {at}");
            }
        }
        let mut out = Vec::new();
        write_js_string(&mut out, "aaaaaaaaaaé", true);
        assert_eq!(out, b"\"aaaaaaaaaa\\u00e9\"");
    }

    #[test]
    fn strings_escape_as_json_stringify() {
        let mut out = Vec::new();
        write_js_string(
            &mut out,
            "a\"b\\c\n\r\t\u{8}\u{c}\u{1}\u{1f}/\u{7f}é\u{2028}😀",
            false,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f/\u{7f}é\u{2028}😀\""
        );
    }

    #[test]
    fn ascii_option_escapes_every_non_ascii_character_as_utf16() {
        let mut out = Vec::new();
        write_js_string(&mut out, "é😀x", true);
        assert_eq!(String::from_utf8(out).unwrap(), r#""\u00e9\ud83d\ude00x""#);
    }

    #[test]
    fn lone_surrogates_decode_to_replacement_character() {
        let v =
            parse_json(br#"["\ud800","\udc00x","\ud83d\ude00","\\ud800","\uD800\u0041"]"#).unwrap();
        assert_eq!(
            v,
            Value::array([
                Value::from("\u{fffd}"),
                Value::from("\u{fffd}x"),
                Value::from("😀"),
                Value::from("\\ud800"),
                Value::from("\u{fffd}A"),
            ])
        );
    }

    #[test]
    fn integer_like_keys_are_written_first_ascending() {
        let v = Value::object([
            ("b", Value::from(1)),
            ("10", Value::from(2)),
            ("a", Value::from(3)),
            ("2", Value::from(4)),
            ("01", Value::from(5)),
        ]);
        assert_eq!(v.to_json_string(), r#"{"2":4,"10":2,"b":1,"a":3,"01":5}"#);
    }

    #[test]
    fn big_integers_parse_as_doubles() {
        let v = parse_json(b"[18446744073709551615, -9223372036854775809]").unwrap();
        assert_eq!(
            v.to_json_string(),
            "[18446744073709552000,-9223372036854776000]"
        );
    }
}
