//! Framing, message parsing, callback placement and re-encoding of arbitrary bytes.
//!
//! Input: the first byte picks the read size (1..=256 bytes), the rest is the received stream.
//! Checked for every line:
//! - nothing panics;
//! - the lines equal those of splitting the whole stream at `\n`, whatever the read size;
//! - a line that parses as a message, once its callbacks are placed, is written again (each
//!   callback under its own id), and that output parses back to the same message, and writes
//!   to the same bytes again (decoding then encoding is idempotent), with and without
//!   `escape_non_ascii`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use upnode_core::protocol::{parse_message, unscrub, write_message, LineDecoder, RawMessage};
use upnode_core::{Function, LocalError, Value};

const MAX_LINE: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((&k, stream)) = data.split_first() else {
        return;
    };
    let read_size = usize::from(k) + 1;

    let mut dec = LineDecoder::new(MAX_LINE);
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut failed = false;
    'reads: for read in stream.chunks(read_size) {
        for line in dec.decode(read) {
            match line {
                Ok(line) => {
                    check_line(&line);
                    lines.push(line.to_vec());
                }
                Err(_) => {
                    assert!(dec.is_failed());
                    failed = true;
                    break 'reads;
                }
            }
        }
        assert!(dec.buffered() <= MAX_LINE);
    }

    // The same lines as splitting the whole stream, up to an over-long one.
    let mut want: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let tail = want.pop().unwrap_or_default();
    if failed {
        let n = lines.len();
        assert!(want.len() > n || tail.len() > MAX_LINE);
        assert!(want.len() == n || want[n].len() > MAX_LINE);
        want.truncate(n);
    } else {
        assert!(tail.len() <= MAX_LINE);
        assert_eq!(dec.buffered(), tail.len());
    }
    assert_eq!(lines, want);
});

fn check_line(line: &[u8]) {
    let Ok(mut msg) = parse_message(line) else {
        return;
    };
    let placed = unscrub(&mut msg);
    assert!(placed.len() <= msg.callbacks.len());
    // Node only ever sends links for cycles (`from` a proper prefix of `to`). Other links are
    // decoded to markers that a later link can leave dangling, so for those the decoded form
    // is canonical only after one more round (see the write-up in fuzz/README.md).
    let cycles_only = msg
        .links
        .iter()
        .all(|(from, to)| to.len() > from.len() && to.starts_with(from));
    for ascii in [false, true] {
        let Some((first, again)) = round_trip(line, &msg, ascii) else {
            return;
        };
        if cycles_only {
            assert_same(line, &first, &msg, &again);
            let second = encode(&again, ascii).expect("what we wrote once we can write again");
            assert_eq!(
                String::from_utf8_lossy(&first),
                String::from_utf8_lossy(&second)
            );
        } else {
            let (second, third) = round_trip(&first, &again, ascii).expect("writable again");
            assert_same(&first, &second, &again, &third);
            let again2 = encode(&third, ascii).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&second),
                String::from_utf8_lossy(&again2)
            );
        }
    }
}

/// Writes `msg` and reads the output back; `None` only when the peer nested deeper than we
/// write.
fn round_trip(line: &[u8], msg: &RawMessage, ascii: bool) -> Option<(Vec<u8>, RawMessage)> {
    let first = match encode(msg, ascii) {
        Ok(out) => out,
        Err(LocalError::TooDeep { .. }) => return None,
        Err(e) => panic!(
            "re-encoding failed: {e}\nline: {}",
            String::from_utf8_lossy(line)
        ),
    };
    assert_eq!(first.last(), Some(&b'\n'));
    let body = &first[..first.len() - 1];
    assert!(!body.contains(&b'\n'));
    if ascii {
        assert!(body.is_ascii());
    }
    let mut again = parse_message(body).expect("our own output parses");
    let placed_again = unscrub(&mut again);
    assert_eq!(
        placed_again.len(),
        again.callbacks.len(),
        "all our callbacks place"
    );
    assert!(
        placed_again.windows(2).all(|w| w[0] < w[1]),
        "callbacks ascending"
    );
    assert_eq!(again.method, msg.method);
    Some((first, again))
}

fn assert_same(line: &[u8], first: &[u8], msg: &RawMessage, again: &RawMessage) {
    assert!(
        same_args(again, msg),
        "re-parsed arguments differ\nline:  {}\nfirst: {}\nparsed:  {:?}\nreparsed: {:?}",
        String::from_utf8_lossy(line),
        String::from_utf8_lossy(first),
        msg.arguments,
        again.arguments,
    );
}

fn encode(msg: &RawMessage, ascii: bool) -> Result<Vec<u8>, LocalError> {
    let mut out = Vec::new();
    write_message(&mut out, &msg.method, &msg.arguments, ascii, |f| match f {
        Function::Remote(r) => Ok(r.0),
        Function::Local(_) => panic!("a local function in received arguments"),
    })?;
    Ok(out)
}

fn same_args(a: &RawMessage, b: &RawMessage) -> bool {
    a.arguments.len() == b.arguments.len()
        && a.arguments
            .iter()
            .zip(&b.arguments)
            .all(|(x, y)| same(x, y))
}

/// Equality as a JavaScript peer sees it: object keys compared in enumeration order.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter_wire()
                    .zip(y.iter_wire())
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        _ => a == b,
    }
}
