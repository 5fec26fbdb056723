//! Property tests of the wire protocol and the session: what is written reads back as
//! JavaScript would see it, arbitrary input never panics nor grows memory past the configured
//! limits, and how the byte stream is split into reads never changes what the session does.

use proptest::prelude::*;
use proptest::sample::Index;
use upnode_core::protocol::{
    parse_json, parse_message, unscrub, write_message, FramingError, LineDecoder,
};
use upnode_core::{
    Function, LocalFn, Map, Method, RemoteError, RemoteFn, Session, SessionConfig, SessionEvent,
    Target, Value,
};

// ---------------------------------------------------------------------------------------------
// Strategies

/// Doubles of every class: the special values JavaScript prints in a particular way, plain
/// integers and fractions, and raw bit patterns (subnormals, NaN payloads, infinities).
fn arb_number() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::sample::select(vec![
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            1e21,
            1e20,
            1e-6,
            1e-7,
            9_007_199_254_740_992.0,
            9_007_199_254_740_993.0,
            -9_007_199_254_740_992.0,
            2f64.powi(60),
            0.1,
        ]),
        any::<i32>().prop_map(f64::from),
        any::<i64>().prop_map(|n| n as f64),
        -1e6..1e6f64,
        any::<u64>().prop_map(f64::from_bits),
    ]
}

/// Strings with JSON's awkward characters: controls, quotes, backslashes, DEL, the JavaScript
/// line separators, non-BMP characters, the placeholders themselves, and anything at all.
fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[\\x00-\\x1f\"\\\\/\u{7f}\u{80}-\u{ff}\u{2028}\u{2029}\u{fffd}\u{feff}a-z0-9 ]{0,12}",
        "[\u{10000}-\u{10ffff}\u{d7ff}\u{e000}é]{0,4}",
        prop::sample::select(vec![
            "[Function]".to_owned(),
            "[Circular]".to_owned(),
            "\\ud800".to_owned(),
            String::new(),
        ]),
        any::<String>(),
    ]
}

/// Object keys: integer-like ones (which JavaScript enumerates first), near misses (`01`,
/// `4294967295`, `-1`), reserved-looking names and arbitrary strings.
fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..20).prop_map(|n| n.to_string()),
        "[0-9]{1,11}",
        prop::sample::select(vec![
            "-1".to_owned(),
            "4294967294".to_owned(),
            "4294967295".to_owned(),
            "methods".to_owned(),
            "__proto__".to_owned(),
            String::new(),
        ]),
        "[a-z]{1,3}",
        arb_string(),
    ]
}

/// A path for a `Value::Link`: sometimes pointing at something that exists, often not.
fn arb_link_path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::sample::select(vec!["0", "1", "2", "a", "b", "00", "0"]).prop_map(str::to_owned),
        0..4,
    )
}

#[derive(Clone, Copy)]
struct Kinds {
    functions: bool,
    links: bool,
}

/// Arbitrary value trees, bounded in depth and size.
fn arb_value(kinds: Kinds) -> impl Strategy<Value = Value> {
    let mut leaves: Vec<BoxedStrategy<Value>> = vec![
        Just(Value::Null).boxed(),
        any::<bool>().prop_map(Value::Bool).boxed(),
        arb_number().prop_map(Value::Number).boxed(),
        arb_string().prop_map(Value::String).boxed(),
    ];
    if kinds.functions {
        leaves.push(
            (0u64..4)
                .prop_map(|k| Value::Function(Function::Local(LocalFn(k))))
                .boxed(),
        );
    }
    if kinds.links {
        leaves.push(arb_link_path().prop_map(Value::Link).boxed());
    }
    let leaf = prop::strategy::Union::new(leaves);
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((arb_key(), inner), 0..6).prop_map(Value::object),
        ]
    })
}

fn arb_args(kinds: Kinds) -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(arb_value(kinds), 0..5)
}

fn arb_method() -> impl Strategy<Value = Method> {
    prop_oneof![
        arb_string().prop_map(Method::Name),
        prop::sample::select(vec!["methods", "cull", "0", "time"])
            .prop_map(|s| Method::Name(s.to_owned())),
        (0u64..(1 << 53)).prop_map(Method::Id),
        (0u64..20).prop_map(Method::Id),
    ]
}

/// Cut points for splitting `len` bytes into chunks (sorted, deduplicated, inside the input).
fn cuts(len: usize, idx: &[Index]) -> Vec<usize> {
    let mut c: Vec<usize> = idx.iter().map(|i| i.index(len + 1)).collect();
    c.sort_unstable();
    c.dedup();
    c
}

fn chunks<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for &c in cuts {
        out.push(&data[start..c]);
        start = c;
    }
    out.push(&data[start..]);
    out
}

// ---------------------------------------------------------------------------------------------
// Oracles

/// What a JavaScript peer holds after `JSON.parse` of what we wrote: -0 is 0, non-finite
/// numbers are null, object keys in JavaScript's enumeration order, and each function replaced
/// by the callback id it was given (`ids` in depth-first wire order). Links are kept here and
/// resolved by [`resolve_links`].
fn as_js_sees_it(v: &Value, ids: &mut impl Iterator<Item = u64>) -> Value {
    match v {
        Value::Number(n) if !n.is_finite() => Value::Null,
        Value::Number(n) if *n == 0.0 => Value::Number(0.0),
        Value::Function(_) => Value::Function(Function::Remote(RemoteFn(
            ids.next().expect("an id per function"),
        ))),
        Value::Array(items) => Value::Array(items.iter().map(|i| as_js_sees_it(i, ids)).collect()),
        Value::Object(m) => Value::Object(
            m.iter_wire()
                .map(|(k, v)| (k.clone(), as_js_sees_it(v, ids)))
                .collect::<Map>(),
        ),
        other => other.clone(),
    }
}

/// A link whose `from` does not resolve in the received arguments becomes null; others stay.
fn resolve_links(root: &Value, v: &mut Value, unresolved: &mut usize) {
    match v {
        Value::Link(from) if root.pointer(from).is_none() => {
            *v = Value::Null;
            *unresolved += 1;
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| resolve_links(root, i, unresolved)),
        Value::Object(m) => {
            let entries: Vec<(String, Value)> = std::mem::take(m)
                .into_entries()
                .into_iter()
                .map(|(k, mut v)| {
                    resolve_links(root, &mut v, unresolved);
                    (k, v)
                })
                .collect();
            *m = Map::from_entries(entries);
        }
        _ => {}
    }
}

/// Equality that tells -0 from 0 and compares object keys in order (stricter than `==`).
fn identical(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| identical(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((ka, va), (kb, vb))| ka == kb && identical(va, vb))
        }
        _ => a == b,
    }
}

/// Distinct callback ids below 2^53 in a scrambled (non-monotone) order: the low 53 bits of
/// `n * odd` are a bijection on n modulo 2^53, and so is xor with a seed.
fn scrambled_ids(seed: u64) -> impl FnMut() -> u64 {
    let mut n = 0u64;
    move || {
        let id = (seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) & ((1 << 53) - 1);
        n += 1;
        id
    }
}

struct RoundTrip {
    line: Vec<u8>,
    ids: Vec<u64>,
}

fn encode(method: &Method, args: &[Value], ascii: bool, seed: u64) -> RoundTrip {
    let mut next = scrambled_ids(seed);
    let mut ids = Vec::new();
    let mut line = Vec::new();
    write_message(&mut line, method, args, ascii, |_| {
        let id = next();
        ids.push(id);
        Ok(id)
    })
    .expect("bounded values always encode");
    RoundTrip { line, ids }
}

fn check_round_trip(
    method: Method,
    args: Vec<Value>,
    ascii: bool,
    seed: u64,
) -> Result<(), TestCaseError> {
    let RoundTrip { line, ids } = encode(&method, &args, ascii, seed);

    // One line: exactly one newline, at the end.
    prop_assert_eq!(line.last(), Some(&b'\n'));
    let body = &line[..line.len() - 1];
    prop_assert!(!body.contains(&b'\n'), "raw newline inside a line");
    prop_assert!(std::str::from_utf8(body).is_ok(), "line is not UTF-8");
    if ascii {
        prop_assert!(body.is_ascii(), "escape_non_ascii left non-ASCII bytes");
    }

    // All four fields, in Node's order.
    let Value::Object(top) = parse_json(body).expect("our line is JSON") else {
        panic!("our line is not an object")
    };
    let keys: Vec<&str> = top.iter().map(|(k, _)| k.as_str()).collect();
    prop_assert_eq!(keys, ["method", "arguments", "callbacks", "links"]);

    let mut msg = parse_message(body).expect("our line is a message");
    prop_assert_eq!(&msg.method, &method);

    // Callbacks are written with ids ascending, one per function occurrence.
    let wire_ids: Vec<u64> = msg.callbacks.iter().map(|(id, _)| *id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    prop_assert_eq!(
        &wire_ids,
        &sorted,
        "callbacks not ascending or not one per function"
    );

    let placed = unscrub(&mut msg);
    prop_assert_eq!(&placed, &sorted);

    let mut id_iter = ids.iter().copied();
    let mut expected = Value::Array(
        args.iter()
            .map(|a| as_js_sees_it(a, &mut id_iter))
            .collect(),
    );
    prop_assert!(id_iter.next().is_none(), "more ids than functions");
    let root = expected.clone();
    let mut unresolved = 0;
    resolve_links(&root, &mut expected, &mut unresolved);
    let got = Value::Array(msg.arguments.clone());
    prop_assert!(
        identical(&got, &expected),
        "decoded {:?}\nexpected {:?}\nline {}",
        got,
        expected,
        String::from_utf8_lossy(&line)
    );

    // What we read back is in canonical form: written again (each callback under its own id)
    // it gives the same bytes, unless a dangling link was dropped on the way.
    if unresolved == 0 {
        let mut again = Vec::new();
        write_message(
            &mut again,
            &msg.method,
            &msg.arguments,
            ascii,
            |f| match f {
                Function::Remote(r) => Ok(r.0),
                Function::Local(_) => unreachable!("only remote functions after unscrub"),
            },
        )
        .unwrap();
        prop_assert_eq!(
            String::from_utf8_lossy(&again),
            String::from_utf8_lossy(&line)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Encode → decode

const DATA_ONLY: Kinds = Kinds {
    functions: false,
    links: false,
};
const WITH_FUNCTIONS: Kinds = Kinds {
    functions: true,
    links: false,
};
const EVERYTHING: Kinds = Kinds {
    functions: true,
    links: true,
};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn plain_json_arguments_read_back_as_javascript_would_see_them(
        method in arb_method(), args in arb_args(DATA_ONLY),
    ) {
        check_round_trip(method, args, false, 0)?;
    }

    #[test]
    fn functions_read_back_as_remote_callbacks_under_their_assigned_ids(
        method in arb_method(), args in arb_args(WITH_FUNCTIONS), seed in any::<u64>(),
    ) {
        check_round_trip(method, args, false, seed)?;
    }

    #[test]
    fn links_read_back_as_markers_or_null_when_dangling(
        method in arb_method(), args in arb_args(EVERYTHING), seed in any::<u64>(),
    ) {
        check_round_trip(method, args, false, seed)?;
    }

    #[test]
    fn escape_non_ascii_lines_are_pure_ascii_and_read_back_the_same(
        method in arb_method(), args in arb_args(EVERYTHING), seed in any::<u64>(),
    ) {
        check_round_trip(method.clone(), args.clone(), true, seed)?;
        // And the escaped line decodes to exactly what the raw UTF-8 line decodes to.
        let raw = encode(&method, &args, false, seed).line;
        let esc = encode(&method, &args, true, seed).line;
        let mut a = parse_message(&raw[..raw.len() - 1]).unwrap();
        let mut b = parse_message(&esc[..esc.len() - 1]).unwrap();
        unscrub(&mut a);
        unscrub(&mut b);
        prop_assert!(identical(&Value::Array(a.arguments), &Value::Array(b.arguments)));
        prop_assert_eq!(a.callbacks, b.callbacks);
        prop_assert_eq!(a.links, b.links);
        prop_assert_eq!(a.method, b.method);
    }

    #[test]
    fn numbers_read_back_as_the_same_double_except_negative_zero_and_non_finite(
        n in arb_number(),
    ) {
        let RoundTrip { line, .. } = encode(&Method::Id(0), &[Value::Number(n)], false, 0);
        let msg = parse_message(&line[..line.len() - 1]).unwrap();
        let want = if !n.is_finite() { Value::Null } else { Value::Number(n + 0.0) };
        prop_assert!(identical(&msg.arguments[0], &want), "{n:?} read back as {:?}", msg.arguments[0]);
    }
}

// ---------------------------------------------------------------------------------------------
// Framing

proptest! {
    #[test]
    fn line_decoder_yields_the_same_lines_however_the_input_is_chunked(
        data in prop::collection::vec(
            prop_oneof![3 => any::<u8>(), 1 => Just(b'\n')], 0..400),
        idx in prop::collection::vec(any::<Index>(), 0..30),
        max in 0usize..40,
    ) {
        // The oracle: split the whole input at newlines; lines up to the first over-long one
        // (complete or not) come out, then one error and nothing more.
        let mut want: Vec<Result<Vec<u8>, FramingError>> = Vec::new();
        let mut rest = &data[..];
        loop {
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) if i <= max => {
                    want.push(Ok(rest[..i].to_vec()));
                    rest = &rest[i + 1..];
                }
                Some(_) => {
                    want.push(Err(FramingError::LineTooLong { limit: max }));
                    break;
                }
                None => {
                    if rest.len() > max {
                        want.push(Err(FramingError::LineTooLong { limit: max }));
                    }
                    break;
                }
            }
        }
        let mut d = LineDecoder::new(max);
        let mut got = Vec::new();
        for chunk in chunks(&data, &cuts(data.len(), &idx)) {
            got.extend(d.decode(chunk).map(|r| r.map(|l| l.to_vec())));
            prop_assert!(d.buffered() <= max, "buffered {} > max {}", d.buffered(), max);
        }
        prop_assert_eq!(got, want);
    }
}

// ---------------------------------------------------------------------------------------------
// Session: hostile input

/// Pieces that make random input look enough like dnode to get past the JSON reader.
fn arb_fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..16),
        prop::sample::select(vec![
            &b"\n"[..],
            b"\r\n",
            b"{\"method\":",
            b"\"methods\"",
            b"\"cull\"",
            b"\"time\"",
            b"\"beep\"",
            b"\"nope\"",
            b",\"arguments\":[",
            b"\"[Function]\"",
            b"],\"callbacks\":{",
            b"\"0\":[\"0\"]",
            b"\"1\":[0]",
            b"\"7\":[\"0\",\"ping\"]",
            b"},\"links\":[{\"from\":[],\"to\":[\"0\"]}]}",
            b"}",
            b"]",
            b",",
            b"0",
            b"1",
            b"2",
            b"99",
            b"null",
            b"\"\\ud800\"",
            b"{\"ping\":\"[Function]\"}",
        ])
        .prop_map(<[u8]>::to_vec),
        (0u64..12, 0u64..12).prop_map(|(m, cb)| format!(
            "{{\"method\":{m},\"arguments\":[\"[Function]\"],\"callbacks\":{{\"{cb}\":[\"0\"]}},\"links\":[]}}\n"
        )
        .into_bytes()),
        (0u64..12).prop_map(|id| format!("{{\"method\":\"cull\",\"arguments\":[{id}]}}\n").into_bytes()),
    ]
}

fn arb_hostile_input() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(arb_fragment(), 0..40).prop_map(|v| v.concat())
}

fn small_config(max_line_len: usize, max_callbacks: usize) -> SessionConfig {
    let mut c = SessionConfig::default();
    c.max_line_len = max_line_len;
    c.max_callbacks = max_callbacks;
    c.max_local_callbacks = max_callbacks;
    c
}

fn server_exports() -> Value {
    Value::object([
        ("time", Value::from(LocalFn(0))),
        ("ping", Value::from(LocalFn(1))),
        ("beep", Value::from(5)),
    ])
}

/// What the driver does between reads.
#[derive(Debug, Clone)]
enum Op {
    /// Feed these bytes.
    Feed(Vec<u8>),
    /// Call the peer (by name, or one of its callbacks we hold) passing `fns` of our functions
    /// and possibly one of the peer's callbacks back.
    Call {
        target: Option<Index>,
        fns: Vec<u64>,
        pass_back: Option<Index>,
    },
    /// Give back one held reference.
    Release(Index),
}

fn arb_ops(feed: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => feed.prop_map(Op::Feed),
            1 => (
                prop::option::of(any::<Index>()),
                prop::collection::vec(2u64..9, 0..4),
                prop::option::of(any::<Index>()),
            )
                .prop_map(|(target, fns, pass_back)| Op::Call { target, fns, pass_back }),
            1 => any::<Index>().prop_map(Op::Release),
        ],
        0..40,
    )
}

/// Runs `ops` against a server session with small limits and checks after every step that
/// nothing panicked, memory and tables stay within the configured limits, errors are
/// classified right, a failed call sends nothing, and a failed session stays failed.
fn run_hostile(ops: Vec<Op>, max_line: usize, max_cbs: usize) -> Result<(), TestCaseError> {
    let mut s = Session::new(server_exports(), small_config(max_line, max_cbs)).unwrap();
    prop_assert!(s.poll_transmit().is_some(), "methods is queued at once");
    let mut fatal: Option<RemoteError> = None;
    // References we hold on the peer's callbacks, one entry per reference.
    let mut held: Vec<RemoteFn> = Vec::new();
    for op in ops {
        match op {
            Op::Feed(chunk) => {
                let r = s.handle_input(&chunk);
                match (&fatal, r) {
                    (None, Ok(())) => {}
                    (None, Err(e)) => {
                        prop_assert!(e.is_fatal(), "non-fatal error returned: {}", e);
                        prop_assert!(s.is_closed());
                        fatal = Some(e);
                        held.clear();
                    }
                    (Some(first), r) => {
                        prop_assert_eq!(r, Err(first.clone()), "a failed session stays failed")
                    }
                }
            }
            Op::Call {
                target,
                fns,
                pass_back,
            } => {
                let target = match target {
                    Some(i) if !held.is_empty() => Target::Callback(*i.get(&held)),
                    _ => Target::Name("cb".into()),
                };
                let mut args: Vec<Value> = fns.iter().map(|&k| Value::from(LocalFn(k))).collect();
                if let Some(i) = pass_back.filter(|_| !held.is_empty()) {
                    args.push(Value::from(*i.get(&held)));
                }
                let before = s.exported_callbacks();
                let r = s.call(target, args);
                let sent = s.poll_transmit();
                match r {
                    Ok(()) => prop_assert!(sent.is_some_and(|b| b.ends_with(b"\n"))),
                    Err(e) => {
                        prop_assert!(
                            fatal.is_some()
                                || matches!(e, upnode_core::LocalError::TooManyCallbacks { .. }),
                            "unexpected {:?}",
                            e
                        );
                        prop_assert!(sent.is_none(), "a failed call sent {:?}", sent);
                        prop_assert_eq!(s.exported_callbacks(), before, "a failed call kept ids");
                    }
                }
            }
            Op::Release(i) => {
                if !held.is_empty() {
                    let f = held.swap_remove(i.index(held.len()));
                    s.release(f);
                }
            }
        }
        prop_assert!(
            s.buffered_input() <= max_line,
            "buffered {} > max_line_len {}",
            s.buffered_input(),
            max_line
        );
        prop_assert!(
            s.held_callbacks() <= max_cbs,
            "held {} > {}",
            s.held_callbacks(),
            max_cbs
        );
        prop_assert!(
            s.exported_callbacks() <= max_cbs,
            "exported {} > {}",
            s.exported_callbacks(),
            max_cbs
        );
        while let Some(ev) = s.poll_event() {
            match ev {
                SessionEvent::Error(e) => {
                    prop_assert!(!e.is_fatal(), "fatal error as event: {}", e)
                }
                SessionEvent::Call { function, args } => {
                    prop_assert!(
                        function == LocalFn(0)
                            || function == LocalFn(1)
                            || (2..9).contains(&function.0)
                    );
                    for a in &args {
                        a.for_each_function(&mut |f| match f {
                            Function::Remote(r) => held.push(r),
                            Function::Local(_) => panic!("a local function in received arguments"),
                        });
                    }
                }
                _ => {}
            }
        }
        while let Some(out) = s.poll_transmit() {
            prop_assert!(fatal.is_none(), "sent {:?} after a fatal error", out);
            prop_assert_eq!(out.last(), Some(&b'\n'));
        }
    }
    if let Some(e) = fatal {
        prop_assert_eq!(s.held_callbacks(), 0, "tables are emptied after {}", e);
        prop_assert_eq!(s.exported_callbacks(), 0);
        prop_assert_eq!(s.buffered_input(), 0);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_in_any_chunking_never_panic_and_buffer_at_most_max_line_len(
        data in prop::collection::vec(any::<u8>(), 0..600),
        idx in prop::collection::vec(any::<Index>(), 0..40),
        max_line in 1usize..160,
    ) {
        let ops = chunks(&data, &cuts(data.len(), &idx)).into_iter().map(|c| Op::Feed(c.to_vec())).collect();
        run_hostile(ops, max_line, 4)?;
    }

    #[test]
    fn dnode_like_input_interleaved_with_local_calls_and_releases_stays_within_limits(
        ops in arb_ops(arb_hostile_input().boxed()),
        max_line in prop_oneof![1usize..40, Just(4096)],
        max_cbs in 2usize..6,
    ) {
        run_hostile(ops, max_line, max_cbs)?;
    }

    #[test]
    fn valid_calls_interleaved_with_local_calls_and_releases_stay_within_limits(
        ops in arb_ops(prop::collection::vec(
            (prop_oneof![Just("time".to_owned()), Just("0".to_owned()), (0u64..12).prop_map(|n| n.to_string())],
             prop::collection::vec(0u64..12, 0..4)).prop_map(|(m, cbs)| {
                let method = if m == "time" { "\"time\"".to_owned() } else { m };
                let args = vec!["\"[Function]\""; cbs.len()].join(",");
                let cbs: Vec<String> = cbs.iter().enumerate().map(|(i, id)| format!("\"{id}\":[\"{i}\"]")).collect();
                format!("{{\"method\":{method},\"arguments\":[{args}],\"callbacks\":{{{}}}}}\n", cbs.join(",")).into_bytes()
            }), 1..4).prop_map(|v| v.concat()).boxed()),
        max_cbs in 2usize..8,
    ) {
        run_hostile(ops, 4096, max_cbs)?;
    }

    #[test]
    fn holding_more_peer_callbacks_than_the_cap_is_fatal_exactly_when_the_model_says(
        steps in prop::collection::vec(
            (prop::collection::btree_set(0u64..16, 0..4), any::<bool>()), 1..30),
        max in 2usize..8,
    ) {
        use std::collections::BTreeMap;
        let mut s = Session::new(server_exports(), small_config(4096, max)).unwrap();
        s.poll_transmit();
        let mut model: BTreeMap<u64, u32> = BTreeMap::new();
        for (ids, release) in steps {
            let args = vec!["\"[Function]\""; ids.len()].join(",");
            let cbs: Vec<String> = ids.iter().enumerate().map(|(i, id)| format!("\"{id}\":[\"{i}\"]")).collect();
            let line = format!("{{\"method\":\"time\",\"arguments\":[{args}],\"callbacks\":{{{}}},\"links\":[]}}\n", cbs.join(","));
            let fresh = ids.iter().filter(|id| !model.contains_key(id)).count();
            let r = s.handle_input(line.as_bytes());
            if model.len() + fresh > max {
                prop_assert_eq!(r, Err(RemoteError::TooManyCallbacks { limit: max }));
                prop_assert_eq!(s.held_callbacks(), 0);
                return Ok(());
            }
            prop_assert_eq!(r, Ok(()));
            let Some(SessionEvent::Call { args, .. }) = s.poll_event() else {
                panic!("a call was expected")
            };
            let got: Vec<u64> = args.iter().map(|a| match a.as_function() {
                Some(Function::Remote(r)) => r.0,
                other => panic!("{other:?}"),
            }).collect();
            prop_assert_eq!(&got, &ids.iter().copied().collect::<Vec<_>>());
            for id in &ids {
                *model.entry(*id).or_insert(0) += 1;
            }
            let mut culled = Vec::new();
            if release {
                for id in &ids {
                    s.release(RemoteFn(*id));
                    let c = model.get_mut(id).unwrap();
                    *c -= 1;
                    if *c == 0 {
                        model.remove(id);
                        culled.push(*id);
                    }
                }
            }
            prop_assert_eq!(s.held_callbacks(), model.len());
            let out = s.poll_transmit();
            if culled.is_empty() {
                prop_assert!(out.is_none());
            } else {
                let ids: Vec<String> = culled.iter().map(u64::to_string).collect();
                prop_assert_eq!(String::from_utf8_lossy(&out.unwrap()).into_owned(),
                    format!("{{\"method\":\"cull\",\"arguments\":[{}]}}\n", ids.join(",")));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Session: chunking does not matter

const CLIENT_METHODS: &[u8] = br#"{"method":"methods","arguments":[{"ping":"[Function]"}],"callbacks":{"0":["0","ping"]},"links":[]}"#;
const SERVER_METHODS: &[u8] = br#"{"method":"methods","arguments":[{"time":"[Function]","ping":"[Function]","beep":5}],"callbacks":{"0":["0","time"],"1":["0","ping"]},"links":[]}"#;

/// §11 lines a Node client sends to the server (after its `methods`), and from the
/// authenticated example, in the server's numbering.
const TRANSCRIPT_C2S: &[&[u8]] = &[
    br#"{"method":0,"arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}"#,
    br#"{"method":1,"arguments":["[Function]"],"callbacks":{"14":["0"]},"links":[]}"#,
    br#"{"method":2,"arguments":[],"callbacks":{},"links":[]}"#,
    br#"{"method":0,"arguments":["moo","hax","[Function]"],"callbacks":{"1":["2"]},"links":[]}"#,
    br#"{"method":"time","arguments":["[Function]"],"callbacks":{"1":["0"]},"links":[]}"#,
    // The client re-announces with a new id: the old interface's callback is culled.
    br#"{"method":"methods","arguments":[{"ping":"[Function]"}],"callbacks":{"20":["0","ping"]},"links":[]}"#,
];

/// A server session as §11 leaves it after the handshake: it has the client's interface, has
/// called the client's `ping` (our callback 2, as in the transcript), and has passed one of
/// the client's callbacks back to it (our id 3 forwards to the client's 50).
fn handshaken_server(max_callbacks: usize) -> Session {
    let mut s = Session::new(server_exports(), small_config(1 << 20, max_callbacks)).unwrap();
    assert_eq!(s.poll_transmit().unwrap(), [SERVER_METHODS, b"\n"].concat());
    s.handle_input(&[CLIENT_METHODS, b"\n"].concat()).unwrap();
    assert_eq!(s.poll_event(), Some(SessionEvent::Remote));
    s.call(Target::Method("ping".into()), vec![Value::from(LocalFn(7))])
        .unwrap();
    assert_eq!(
        s.poll_transmit().unwrap(),
        &br#"{"method":0,"arguments":["[Function]"],"callbacks":{"2":["0"]},"links":[]}
"#[..]
    );
    s.handle_input(
        b"{\"method\":\"time\",\"arguments\":[\"[Function]\"],\"callbacks\":{\"50\":[\"0\"]}}\n",
    )
    .unwrap();
    let Some(SessionEvent::Call { args, .. }) = s.poll_event() else {
        panic!("expected a call")
    };
    assert_eq!(args, vec![Value::from(RemoteFn(50))]);
    s.call(Target::Name("relay".into()), args.clone()).unwrap();
    s.release_value(&args[0]);
    assert_eq!(
        s.poll_transmit().unwrap(),
        &br#"{"method":"relay","arguments":["[Function]"],"callbacks":{"3":["0"]},"links":[]}
"#[..]
    );
    assert_eq!(s.poll_event(), None);
    s
}

/// One line a client might send: a call by name or id with generated arguments whose
/// functions become client callbacks, a cull, or JSON that is not a message.
fn arb_client_line() -> impl Strategy<Value = Vec<u8>> {
    let call = (
        prop_oneof![
            prop::sample::select(vec!["time", "ping", "beep", "nope", "0"])
                .prop_map(|n| Method::Name(n.to_owned())),
            (0u64..6).prop_map(Method::Id),
        ],
        arb_args(WITH_FUNCTIONS),
        100u64..104,
    )
        .prop_map(|(method, args, base)| {
            // Ids from a small range, so the same client callback arrives more than once.
            let mut next = base;
            let mut line = Vec::new();
            write_message(&mut line, &method, &args, false, |_| {
                next += 1;
                Ok(next % 8 + 100)
            })
            .unwrap();
            line.pop();
            line
        });
    prop_oneof![
        4 => call,
        1 => prop::collection::vec(0u64..6, 1..3).prop_map(|ids| {
            let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
            format!("{{\"method\":\"cull\",\"arguments\":[{}]}}", ids.join(",")).into_bytes()
        }),
        1 => prop::sample::select(vec![
            &b"null"[..], b"[1,2]", b"5", b"\"s\"", b"{}", b"{\"method\":true}",
            b"{\"method\":-1,\"arguments\":[]}",
        ]).prop_map(<[u8]>::to_vec),
    ]
}

fn arb_stream() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(
            prop_oneof![
                prop::sample::select(TRANSCRIPT_C2S.to_vec()).prop_map(<[u8]>::to_vec),
                arb_client_line(),
            ],
            0..12,
        ),
        prop::collection::vec(any::<bool>(), 12),
        prop::option::of(prop::sample::select(vec![
            &b""[..],
            b"{",
            b"{\"method\":\"time\",\"arguments\":[",
            b"\x00\xff",
        ])),
    )
        .prop_map(|(lines, crlf, fatal_tail)| {
            let mut out = Vec::new();
            for (line, crlf) in lines.iter().zip(crlf) {
                out.extend_from_slice(line);
                out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            if let Some(tail) = fatal_tail {
                out.extend_from_slice(tail);
                out.push(b'\n');
            }
            out
        })
}

#[derive(Debug, PartialEq)]
struct Observed {
    first_error: Option<RemoteError>,
    events: Vec<SessionEvent>,
    transmit: Vec<u8>,
    held: usize,
    exported: usize,
}

/// Feeds `chunks` in order, draining events after each and transmit only at the end.
fn feed<'a>(
    mut s: Session,
    chunks: impl IntoIterator<Item = &'a [u8]>,
    drain_transmit_each_time: bool,
) -> Observed {
    let mut first_error = None;
    let mut events = Vec::new();
    let mut transmit = Vec::new();
    for chunk in chunks {
        if let Err(e) = s.handle_input(chunk) {
            assert!(first_error.is_none() || first_error.as_ref() == Some(&e));
            first_error.get_or_insert(e);
        }
        events.extend(std::iter::from_fn(|| s.poll_event()));
        if drain_transmit_each_time {
            while let Some(b) = s.poll_transmit() {
                transmit.extend_from_slice(&b);
            }
        }
    }
    while let Some(b) = s.poll_transmit() {
        transmit.extend_from_slice(&b);
    }
    Observed {
        first_error,
        events,
        transmit,
        held: s.held_callbacks(),
        exported: s.exported_callbacks(),
    }
}

/// The transmitted lines with the ids of all `cull` lines gathered into one list: culls are
/// batched until the next transmit, so polling more often splits them differently.
fn with_culls_gathered(transmit: &[u8]) -> (Vec<Vec<u8>>, Vec<u64>) {
    let mut lines = Vec::new();
    let mut culled = Vec::new();
    for line in transmit.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let msg = parse_message(line).expect("we write messages");
        if msg.method == Method::Name("cull".into()) {
            culled.extend(msg.arguments.iter().map(|a| a.as_f64().unwrap() as u64));
        } else {
            lines.push(line.to_vec());
        }
    }
    (lines, culled)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn any_split_of_a_stream_gives_the_same_events_and_transmit_as_feeding_it_whole(
        stream in arb_stream(),
        idx in prop::collection::vec(any::<Index>(), 0..24),
        max_cbs in prop_oneof![Just(6usize), Just(1000)],
    ) {
        let whole = feed(handshaken_server(max_cbs), [&stream[..]], false);
        let split = feed(handshaken_server(max_cbs), chunks(&stream, &cuts(stream.len(), &idx)), false);
        prop_assert_eq!(&split, &whole);
        let bytewise = feed(handshaken_server(max_cbs), stream.chunks(1), false);
        prop_assert_eq!(&bytewise, &whole);
    }

    #[test]
    fn polling_transmit_after_every_read_changes_only_how_culls_are_batched(
        stream in arb_stream(),
        idx in prop::collection::vec(any::<Index>(), 0..24),
    ) {
        let whole = feed(handshaken_server(1000), [&stream[..]], false);
        let split = feed(handshaken_server(1000), chunks(&stream, &cuts(stream.len(), &idx)), true);
        prop_assert_eq!(&split.events, &whole.events);
        prop_assert_eq!(&split.first_error, &whole.first_error);
        if whole.first_error.is_none() {
            // (After a fatal error the whole-feed session dropped its unsent output, while the
            // split one had already handed part of it out.)
            prop_assert_eq!(with_culls_gathered(&split.transmit), with_culls_gathered(&whole.transmit));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed cases the properties rely on

#[test]
fn transcript_stream_produces_the_documented_calls_forwards_and_culls() {
    let stream: Vec<u8> = TRANSCRIPT_C2S
        .iter()
        .flat_map(|l| [*l, b"\n"].concat())
        .chain(
            b"{\"method\":3,\"arguments\":[\"via relay\"]}\n"
                .iter()
                .copied(),
        )
        .chain(
            b"{\"method\":\"cull\",\"arguments\":[2,3]}\n"
                .iter()
                .copied(),
        )
        .collect();
    let got = feed(handshaken_server(1000), [&stream[..]], false);
    assert_eq!(got.first_error, None);
    let calls: Vec<(LocalFn, Vec<Value>)> = got
        .events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Call { function, args } => Some((*function, args.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            (LocalFn(0), vec![Value::from(RemoteFn(1))]),
            (LocalFn(1), vec![Value::from(RemoteFn(14))]),
            (LocalFn(7), vec![]),
            (
                LocalFn(0),
                vec![
                    Value::from("moo"),
                    Value::from("hax"),
                    Value::from(RemoteFn(1))
                ]
            ),
            (LocalFn(0), vec![Value::from(RemoteFn(1))]),
        ]
    );
    assert!(got.events.contains(&SessionEvent::Remote));
    assert!(got.events.contains(&SessionEvent::Released {
        function: LocalFn(7)
    }));
    // The call to our id 3 is forwarded to the client's 50; the replaced interface culls the
    // client's 0, and the peer culling our 3 releases its 50.
    assert_eq!(
        String::from_utf8(got.transmit).unwrap(),
        "{\"method\":50,\"arguments\":[\"via relay\"],\"callbacks\":{},\"links\":[]}\n\
         {\"method\":\"cull\",\"arguments\":[0,50]}\n"
    );
}

/// Found while writing the `decode` fuzz target: a link whose `from` runs through a position
/// that a *later* link overwrites is decoded to a marker that no longer resolves, so the
/// decoded message is not in canonical form until it is written and read once more. Node
/// never sends such links (its links are cycles: `from` is a proper prefix of `to`), and
/// Node itself would copy the value (`c` = 1 here); the core keeps markers so that no link
/// can copy (and so multiply) a subtree.
#[test]
fn link_through_a_position_a_later_link_replaces_is_canonical_after_one_more_round() {
    let line = br#"{"method":"m","arguments":[{"a":{"b":1}}],"links":[{"from":["0","a","b"],"to":["0","c"]},{"from":[],"to":["0","a"]}]}"#;
    let mut msg = parse_message(line).unwrap();
    unscrub(&mut msg);
    let o = &msg.arguments[0];
    assert_eq!(o.get("a"), Some(&Value::Link(vec![])));
    assert_eq!(
        o.get("c"),
        Some(&Value::Link(vec!["0".into(), "a".into(), "b".into()]))
    );
    let write = |m: &upnode_core::protocol::RawMessage| {
        let mut out = Vec::new();
        write_message(&mut out, &m.method, &m.arguments, false, |_| {
            unreachable!("no functions")
        })
        .unwrap();
        out
    };
    let read = |l: &[u8]| {
        let mut m = parse_message(&l[..l.len() - 1]).unwrap();
        unscrub(&mut m);
        m
    };
    let first = write(&msg);
    let again = read(&first);
    // The marker dangles (it points through `a`, now itself a link) and reads back as null.
    assert_eq!(again.arguments[0].get("c"), Some(&Value::Null));
    let second = write(&again);
    assert_ne!(first, second);
    assert_eq!(
        write(&read(&second)),
        second,
        "stable from the second round on"
    );

    // The same shape with cycles only, as Node writes it, is canonical at once.
    let cyclic = br#"{"method":"m","arguments":[{"a":{"b":"[Circular]"},"c":"[Circular]"}],"callbacks":{},"links":[{"from":["0"],"to":["0","a","b"]},{"from":[],"to":["0","c"]}]}"#;
    let mut msg = parse_message(cyclic).unwrap();
    unscrub(&mut msg);
    assert_eq!(write(&msg), [&cyclic[..], b"\n"].concat());
}
