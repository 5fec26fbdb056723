//! dnode messages: writing them (scrubbing functions into callback ids) and reading them
//! (placing the peer's callbacks and links back into the arguments).

use super::json::{self, write_js_string, write_u64, Seg, Special};
use super::value::{Function, Path, Value};
use crate::config::MAX_DEPTH;
use crate::error::{LocalError, RemoteError};

/// The `method` field of a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// A method name of the receiver's exported object, or `"methods"` / `"cull"`.
    Name(String),
    /// A callback id in the receiver's own numbering.
    Id(u64),
}

/// A message as read from the wire, before callbacks are placed.
#[derive(Debug, Clone, PartialEq)]
pub struct RawMessage {
    /// Who is called.
    pub method: Method,
    /// The arguments with placeholders still in place.
    pub arguments: Vec<Value>,
    /// The peer's callback ids and where they sit in `arguments`, as sent (valid entries only).
    pub callbacks: Vec<(u64, Path)>,
    /// Links (cycles): `(from, to)`.
    pub links: Vec<(Path, Path)>,
}

/// Reads one line into a message. `Err` with a fatal error when the line is not JSON; a
/// non-fatal error when it is JSON but not a message.
pub fn parse_message(line: &[u8]) -> Result<RawMessage, RemoteError> {
    let v = json::parse_json(line).map_err(|e| RemoteError::BadJson {
        detail: if line.iter().all(u8::is_ascii_whitespace) {
            "empty line".to_owned()
        } else {
            e.0
        },
    })?;
    let Value::Object(mut m) = v else {
        return Err(RemoteError::NotAMessage {
            detail: format!("a line of {}", kind(&v)),
        });
    };
    let method = match m.remove("method") {
        Some(Value::String(s)) => Method::Name(s),
        Some(Value::Number(n)) if n >= 0.0 && n.fract() == 0.0 && n < 9_007_199_254_740_992.0 => {
            Method::Id(n as u64)
        }
        Some(other) => {
            return Err(RemoteError::NotAMessage {
                detail: format!("method is {}", kind(&other)),
            })
        }
        None => {
            return Err(RemoteError::NotAMessage {
                detail: "no method field".to_owned(),
            })
        }
    };
    let arguments = match m.remove("arguments") {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            return Err(RemoteError::NotAMessage {
                detail: format!("arguments is {}", kind(&other)),
            })
        }
    };
    let mut callbacks = Vec::new();
    if let Some(Value::Object(cbs)) = m.remove("callbacks") {
        for (k, v) in cbs.into_entries() {
            let Some(id) = parse_id(&k) else { continue };
            let Some(path) = to_path(v) else { continue };
            callbacks.push((id, path));
        }
    }
    let mut links = Vec::new();
    if let Some(Value::Array(ls)) = m.remove("links") {
        for l in ls {
            let Value::Object(mut l) = l else { continue };
            let (Some(from), Some(to)) = (
                l.remove("from").and_then(to_path),
                l.remove("to").and_then(to_path),
            ) else {
                continue;
            };
            links.push((from, to));
        }
    }
    Ok(RawMessage {
        method,
        arguments,
        callbacks,
        links,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Function(_) | Value::Link(_) => "a function",
    }
}

/// A callback id key: a canonical non-negative decimal below 2^53.
fn parse_id(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 16 || (s.len() > 1 && s.starts_with('0')) {
        return None;
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| *n < (1u64 << 53))
}

/// A path: an array of strings or numbers (numbers become their JavaScript string form).
fn to_path(v: Value) -> Option<Path> {
    let Value::Array(items) = v else { return None };
    items
        .into_iter()
        .map(|e| match e {
            Value::String(s) => Some(s),
            Value::Number(n) => {
                let mut out = Vec::new();
                json::write_js_number(&mut out, n);
                String::from_utf8(out).ok()
            }
            _ => None,
        })
        .collect()
}

/// Places the peer's callbacks (as [`Function::Remote`]) and then its links (as
/// [`Value::Link`]) into the arguments. Returns the ids actually placed, once per placement.
pub fn unscrub(msg: &mut RawMessage) -> Vec<u64> {
    let mut root = Value::Array(std::mem::take(&mut msg.arguments));
    let mut placed = Vec::with_capacity(msg.callbacks.len());
    for (id, path) in &msg.callbacks {
        if root.set_path(
            path,
            Value::Function(Function::Remote(super::RemoteFn(*id))),
        ) {
            placed.push(*id);
        }
    }
    for (from, to) in &msg.links {
        if to.is_empty() {
            continue;
        }
        let target = if root.pointer(from).is_some() {
            Value::Link(from.clone())
        } else {
            Value::Null
        };
        // Never overwrite a function placed above: that would lose a held reference.
        if matches!(root.pointer(to), Some(Value::Function(_))) {
            continue;
        }
        root.set_path(to, target);
    }
    let Value::Array(args) = root else {
        unreachable!("root stays an array")
    };
    msg.arguments = args;
    placed
}

/// Scrubs functions into callback ids and cycles into links while writing arguments.
struct Scrubber<'v, F: FnMut(Function) -> Result<u64, LocalError>> {
    ascii_only: bool,
    path: Vec<Seg<'v>>,
    callbacks: Vec<(u64, Vec<String>)>,
    links: Vec<(&'v [String], Vec<String>)>,
    assign: F,
    error: Option<LocalError>,
}

impl<'v, F: FnMut(Function) -> Result<u64, LocalError>> Scrubber<'v, F> {
    fn current_path(&self) -> Vec<String> {
        self.path
            .iter()
            .map(|s| match s {
                Seg::Key(k) => (*k).to_owned(),
                Seg::Index(i) => i.to_string(),
            })
            .collect()
    }
}

impl<'v, F: FnMut(Function) -> Result<u64, LocalError>> Special<'v> for Scrubber<'v, F> {
    fn ascii_only(&self) -> bool {
        self.ascii_only
    }
    fn enter(&mut self, seg: Seg<'v>) -> bool {
        // The message object and the arguments array are two levels already.
        if self.path.len() + 3 > MAX_DEPTH {
            if self.error.is_none() {
                self.error = Some(LocalError::TooDeep { limit: MAX_DEPTH });
            }
            return false;
        }
        self.path.push(seg);
        true
    }
    fn leave(&mut self) {
        self.path.pop();
    }
    fn function(&mut self, f: Function) {
        if self.error.is_some() {
            return;
        }
        match (self.assign)(f) {
            Ok(id) => {
                let p = self.current_path();
                self.callbacks.push((id, p));
            }
            Err(e) => self.error = Some(e),
        }
    }
    fn link(&mut self, from: &'v [String]) {
        let to = self.current_path();
        self.links.push((from, to));
    }
}

fn write_path(out: &mut Vec<u8>, path: &[String], ascii_only: bool) {
    out.push(b'[');
    for (i, seg) in path.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_js_string(out, seg, ascii_only);
    }
    out.push(b']');
}

/// Appends one message line (with its newline) to `out`: `method`, then `arguments` with
/// every function replaced by `"[Function]"` and every [`Value::Link`] by `"[Circular]"`,
/// then `callbacks` (ids ascending) and `links`, exactly as Node's dnode writes them.
///
/// `assign` gives the callback id for each function found, depth first in wire key order. On
/// error nothing is appended and the error of the first failure is returned; ids already
/// handed out by `assign` for this message are listed in the error path's caller.
pub fn write_message(
    out: &mut Vec<u8>,
    method: &Method,
    arguments: &[Value],
    ascii_only: bool,
    assign: impl FnMut(Function) -> Result<u64, LocalError>,
) -> Result<(), LocalError> {
    let start = out.len();
    out.extend_from_slice(b"{\"method\":");
    match method {
        Method::Name(n) => write_js_string(out, n, ascii_only),
        Method::Id(id) => write_u64(out, *id),
    }
    out.extend_from_slice(b",\"arguments\":[");
    let mut s = Scrubber {
        ascii_only,
        path: Vec::new(),
        callbacks: Vec::new(),
        links: Vec::new(),
        assign,
        error: None,
    };
    for (i, a) in arguments.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        s.enter(Seg::Index(i));
        json::write_value(out, a, &mut s);
        s.leave();
    }
    if let Some(e) = s.error {
        out.truncate(start);
        return Err(e);
    }
    out.extend_from_slice(b"],\"callbacks\":{");
    s.callbacks.sort_unstable_by_key(|(id, _)| *id);
    for (i, (id, path)) in s.callbacks.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        write_u64(out, *id);
        out.extend_from_slice(b"\":");
        write_path(out, path, ascii_only);
    }
    out.extend_from_slice(b"},\"links\":[");
    for (i, (from, to)) in s.links.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"from\":");
        write_path(out, from, ascii_only);
        out.extend_from_slice(b",\"to\":");
        write_path(out, to, ascii_only);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}\n");
    Ok(())
}

/// Appends a `cull` line for the given ids (two fields only, as Node writes it).
pub fn write_cull(out: &mut Vec<u8>, ids: &[u64]) {
    out.extend_from_slice(b"{\"method\":\"cull\",\"arguments\":[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_u64(out, *id);
    }
    out.extend_from_slice(b"]}\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{LocalFn, RemoteFn};

    fn line(method: Method, args: &[Value]) -> String {
        let mut out = Vec::new();
        let mut next = 0;
        write_message(&mut out, &method, args, false, |_| {
            next += 1;
            Ok(next - 1)
        })
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn functions_are_found_depth_first_in_key_order() {
        let f = Value::from(LocalFn(1));
        let args = [
            Value::object([(
                "a",
                Value::object([("b", Value::array([f.clone(), Value::from(2)]))]),
            )]),
            f,
        ];
        assert_eq!(
            line(Method::Name("x".into()), &args),
            "{\"method\":\"x\",\"arguments\":[{\"a\":{\"b\":[\"[Function]\",2]}},\"[Function]\"],\"callbacks\":{\"0\":[\"0\",\"a\",\"b\",\"0\"],\"1\":[\"1\"]},\"links\":[]}\n"
        );
    }

    #[test]
    fn callbacks_are_written_in_ascending_id_order() {
        // The second function reuses an older, smaller id.
        let args = [Value::from(LocalFn(1)), Value::from(LocalFn(2))];
        let mut out = Vec::new();
        let mut ids = [7u64, 3].into_iter();
        write_message(&mut out, &Method::Id(1), &args, false, |_| {
            Ok(ids.next().unwrap())
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"method\":1,\"arguments\":[\"[Function]\",\"[Function]\"],\"callbacks\":{\"3\":[\"1\"],\"7\":[\"0\"]},\"links\":[]}\n"
        );
    }

    #[test]
    fn integer_like_keys_come_first_when_scrubbing() {
        let args = [Value::object([
            ("b", Value::from(LocalFn(0))),
            ("1", Value::from(LocalFn(1))),
        ])];
        assert_eq!(
            line(Method::Name("m".into()), &args),
            "{\"method\":\"m\",\"arguments\":[{\"1\":\"[Function]\",\"b\":\"[Function]\"}],\"callbacks\":{\"0\":[\"0\",\"1\"],\"1\":[\"0\",\"b\"]},\"links\":[]}\n"
        );
    }

    #[test]
    fn link_is_written_as_circular_with_from_and_to() {
        let args = [Value::object([
            ("a", Value::from(1)),
            ("self", Value::Link(vec!["0".into()])),
        ])];
        assert_eq!(
            line(Method::Name("m".into()), &args),
            "{\"method\":\"m\",\"arguments\":[{\"a\":1,\"self\":\"[Circular]\"}],\"callbacks\":{},\"links\":[{\"from\":[\"0\"],\"to\":[\"0\",\"self\"]}]}\n"
        );
    }

    #[test]
    fn cull_has_two_fields_and_several_ids() {
        let mut out = Vec::new();
        write_cull(&mut out, &[3, 4]);
        assert_eq!(out, b"{\"method\":\"cull\",\"arguments\":[3,4]}\n");
    }

    #[test]
    fn too_deep_value_is_refused_and_nothing_is_written() {
        let mut v = Value::Null;
        for _ in 0..MAX_DEPTH {
            v = Value::array([v]);
        }
        let mut out = b"keep".to_vec();
        let r = write_message(&mut out, &Method::Id(0), &[v], false, |_| Ok(0));
        assert_eq!(r, Err(LocalError::TooDeep { limit: MAX_DEPTH }));
        assert_eq!(out, b"keep");
    }

    #[test]
    fn deepest_writable_value_can_be_read_back() {
        let mut v = Value::Null;
        for _ in 0..(MAX_DEPTH - 3) {
            v = Value::array([v]);
        }
        let mut out = Vec::new();
        write_message(&mut out, &Method::Id(0), &[v.clone()], false, |_| Ok(0)).unwrap();
        let m = parse_message(&out[..out.len() - 1]).unwrap();
        assert_eq!(m.arguments, vec![v]);
    }

    #[test]
    fn message_is_read_with_numeric_and_string_path_elements() {
        let mut m = parse_message(
            br#"{"method":1,"arguments":[null,{"beep":"[Function]"},["[Function]"]],"callbacks":{"2":["1","beep"],"3":[2,0]},"links":[]}"#,
        )
        .unwrap();
        assert_eq!(m.method, Method::Id(1));
        let placed = unscrub(&mut m);
        assert_eq!(placed, vec![2, 3]);
        assert_eq!(m.arguments[1].get("beep"), Some(&Value::from(RemoteFn(2))));
        assert_eq!(m.arguments[2], Value::array([Value::from(RemoteFn(3))]));
    }

    #[test]
    fn string_zero_is_a_method_name_not_a_callback() {
        let m = parse_message(br#"{"method":"0","arguments":[]}"#).unwrap();
        assert_eq!(m.method, Method::Name("0".into()));
    }

    #[test]
    fn message_without_callbacks_or_links_is_accepted() {
        let m = parse_message(br#"{"method":"time","arguments":[1]}"#).unwrap();
        assert!(m.callbacks.is_empty() && m.links.is_empty());
    }

    #[test]
    fn links_become_link_markers_and_unresolvable_ones_null() {
        let mut m = parse_message(
            br#"{"method":"m","arguments":[{"a":1,"self":"[Circular]","bad":"[Circular]"}],"callbacks":{},"links":[{"from":["0"],"to":["0","self"]},{"from":["9","x"],"to":["0","bad"]},{"from":[],"to":["0","root"]}]}"#,
        )
        .unwrap();
        unscrub(&mut m);
        let o = &m.arguments[0];
        assert_eq!(o.get("self"), Some(&Value::Link(vec!["0".into()])));
        assert_eq!(o.get("bad"), Some(&Value::Null));
        assert_eq!(o.get("root"), Some(&Value::Link(vec![])));
    }

    #[test]
    fn non_message_lines_are_errors_but_not_fatal() {
        for line in [
            &b"null"[..],
            b"5",
            b"[1]",
            b"\"s\"",
            b"{}",
            b"{\"method\":true}",
        ] {
            let e = parse_message(line).unwrap_err();
            assert!(!e.is_fatal(), "{e}");
        }
        for line in [&b""[..], b" ", b"{", b"nul"] {
            let e = parse_message(line).unwrap_err();
            assert!(e.is_fatal(), "{e}");
        }
    }
}
