//! dnode messages: writing them (scrubbing functions into callback ids) and reading them
//! (placing the peer's callbacks and links back into the arguments).

use super::json::{self, write_js_string, write_u64, Seg, WriteHooks};
use super::value::serde_impls::ValueVisitor;
use super::value::{Function, Path, Value};
use crate::config::MAX_DEPTH;
use crate::error::{LocalError, RemoteError};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

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
    let fixed = json::fix_lone_surrogates(line);
    let env: Envelope = json::from_line(&fixed).map_err(|e| RemoteError::BadJson {
        detail: if line.iter().all(u8::is_ascii_whitespace) {
            "empty line".to_owned()
        } else {
            e.to_string()
        },
    })?;
    let (method, arguments, callbacks, links_field) = match env {
        Envelope::Message {
            method,
            arguments,
            callbacks,
            links,
        } => (method, arguments, callbacks, links),
        Envelope::Other(kind) => {
            return Err(RemoteError::NotAMessage {
                detail: format!("a line of {kind}"),
            })
        }
    };
    let method = match method {
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
    let arguments = match arguments {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => Vec::new(),
        Some(other) => {
            return Err(RemoteError::NotAMessage {
                detail: format!("arguments is {}", kind(&other)),
            })
        }
    };
    let callbacks = match callbacks {
        Some(Callbacks::Object(entries)) => entries
            .into_iter()
            .filter_map(|(id, path)| Some((id, path?)))
            .collect(),
        Some(Callbacks::Other) | None => Vec::new(),
    };
    let mut links = Vec::new();
    if let Some(Value::Array(ls)) = links_field {
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

/// A line as read by [`parse_message`]: the four fields of a message object picked out while
/// parsing, without building the object itself, or the kind of a line that is not an object.
///
/// It reads exactly what `JSON.parse` into a [`Value`] would (the same syntax, nesting limit
/// and error messages; a repeated key keeps its last value) and keeps what `parse_message`
/// would take from that value.
enum Envelope {
    Message {
        method: Option<Value>,
        arguments: Option<Value>,
        callbacks: Option<Callbacks>,
        links: Option<Value>,
    },
    Other(&'static str),
}

/// The `callbacks` field: for an object, each valid id key in first-seen order with the path
/// of its last occurrence (`None` when that is not a valid path).
enum Callbacks {
    Object(Vec<(u64, Option<Path>)>),
    Other,
}

/// Above this many entries, repeated `callbacks` keys are found through an index instead of a
/// scan, so a hostile line costs linear time.
const SCAN_LIMIT: usize = 16;

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Envelope, D::Error> {
        d.deserialize_any(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

enum Field {
    Method,
    Arguments,
    Callbacks,
    Links,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Field, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, k: &str) -> Result<Field, E> {
                Ok(match k {
                    "method" => Field::Method,
                    "arguments" => Field::Arguments,
                    "callbacks" => Field::Callbacks,
                    "links" => Field::Links,
                    _ => Field::Other,
                })
            }
        }
        d.deserialize_str(FieldVisitor)
    }
}

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = Envelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Envelope, E> {
        Ok(Envelope::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Envelope, E> {
        Ok(Envelope::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Envelope, E> {
        Ok(Envelope::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Envelope, E> {
        Ok(Envelope::Other("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Envelope, E> {
        Ok(Envelope::Other("a string"))
    }
    fn visit_unit<E>(self) -> Result<Envelope, E> {
        Ok(Envelope::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Envelope, A::Error> {
        ValueVisitor.visit_seq(seq)?;
        Ok(Envelope::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
        let (mut method, mut arguments, mut callbacks, mut links) = (None, None, None, None);
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Method => method = Some(map.next_value::<Value>()?),
                Field::Arguments => arguments = Some(map.next_value::<Value>()?),
                Field::Callbacks => callbacks = Some(map.next_value::<Callbacks>()?),
                Field::Links => links = Some(map.next_value::<Value>()?),
                Field::Other => {
                    map.next_value::<Value>()?;
                }
            }
        }
        Ok(Envelope::Message {
            method,
            arguments,
            callbacks,
            links,
        })
    }
}

impl<'de> Deserialize<'de> for Callbacks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Callbacks, D::Error> {
        d.deserialize_any(CallbacksVisitor)
    }
}

struct CallbacksVisitor;

impl<'de> Visitor<'de> for CallbacksVisitor {
    type Value = Callbacks;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Callbacks, E> {
        Ok(Callbacks::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Callbacks, E> {
        Ok(Callbacks::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Callbacks, E> {
        Ok(Callbacks::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Callbacks, E> {
        Ok(Callbacks::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<Callbacks, E> {
        Ok(Callbacks::Other)
    }
    fn visit_unit<E>(self) -> Result<Callbacks, E> {
        Ok(Callbacks::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Callbacks, A::Error> {
        ValueVisitor.visit_seq(seq)?;
        Ok(Callbacks::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Callbacks, A::Error> {
        let mut entries: Vec<(u64, Option<Path>)> = Vec::new();
        let mut index: Option<HashMap<u64, usize>> = None;
        while let Some(key) = map.next_key::<IdKey>()? {
            let PathField(path) = map.next_value()?;
            let IdKey(Some(id)) = key else { continue };
            let slot = match &mut index {
                Some(index) => index.get(&id).copied(),
                None => entries.iter().position(|(k, _)| *k == id),
            };
            match slot {
                Some(i) => entries[i].1 = path,
                None => {
                    if let Some(index) = &mut index {
                        index.insert(id, entries.len());
                    }
                    entries.push((id, path));
                    if index.is_none() && entries.len() > SCAN_LIMIT {
                        index = Some(
                            entries
                                .iter()
                                .enumerate()
                                .map(|(i, (k, _))| (*k, i))
                                .collect(),
                        );
                    }
                }
            }
        }
        Ok(Callbacks::Object(entries))
    }
}

/// A key of the `callbacks` object: its id when it is a valid one.
struct IdKey(Option<u64>);

impl<'de> Deserialize<'de> for IdKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<IdKey, D::Error> {
        struct IdKeyVisitor;
        impl Visitor<'_> for IdKeyVisitor {
            type Value = IdKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_str<E>(self, k: &str) -> Result<IdKey, E> {
                Ok(IdKey(parse_id(k)))
            }
        }
        d.deserialize_str(IdKeyVisitor)
    }
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
    items.into_iter().map(path_element).collect()
}

/// One element of a path: a string as it is, a number in its JavaScript string form.
fn path_element(e: Value) -> Option<String> {
    match e {
        Value::String(s) => Some(s),
        Value::Number(n) => {
            let mut out = Vec::new();
            json::write_js_number(&mut out, n);
            String::from_utf8(out).ok()
        }
        _ => None,
    }
}

/// A value read where a path is expected: what [`to_path`] of it would give, read without
/// first building the array.
struct PathField(Option<Path>);

impl<'de> Deserialize<'de> for PathField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PathField, D::Error> {
        d.deserialize_any(PathVisitor)
    }
}

struct PathVisitor;

impl<'de> Visitor<'de> for PathVisitor {
    type Value = PathField;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<PathField, E> {
        Ok(PathField(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<PathField, E> {
        Ok(PathField(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<PathField, E> {
        Ok(PathField(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<PathField, E> {
        Ok(PathField(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<PathField, E> {
        Ok(PathField(None))
    }
    fn visit_unit<E>(self) -> Result<PathField, E> {
        Ok(PathField(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PathField, A::Error> {
        ValueVisitor.visit_map(map)?;
        Ok(PathField(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PathField, A::Error> {
        let mut path = Some(Vec::new());
        // Read every element even after a bad one: the line must be checked whole.
        while let Some(e) = seq.next_element::<Value>()? {
            if let Some(p) = &mut path {
                match path_element(e) {
                    Some(seg) => p.push(seg),
                    None => path = None,
                }
            }
        }
        Ok(PathField(path))
    }
}

/// Places the peer's callbacks (as [`Function::Remote`]) and then its links (as
/// [`Value::Link`]) into the arguments. Returns the ids actually placed, once per placement.
pub fn unscrub(msg: &mut RawMessage) -> Vec<u64> {
    let mut placed = Vec::with_capacity(msg.callbacks.len());
    unscrub_into(msg, &mut placed);
    placed
}

/// [`unscrub`], appending the ids placed to `placed`.
pub(crate) fn unscrub_into(msg: &mut RawMessage, placed: &mut Vec<u64>) {
    let mut root = Value::Array(std::mem::take(&mut msg.arguments));
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
}

/// Buffers [`write_message_with`] reuses from one message to the next.
#[derive(Debug, Default)]
pub(crate) struct WriteScratch {
    /// The paths of a message's callbacks and links, written as JSON arrays, end to end.
    paths: Vec<u8>,
    /// Each callback id with where its path is in `paths`.
    callbacks: Vec<(u64, Range<usize>)>,
    /// The room of the path stack, empty between messages (its entries borrow from the
    /// message being written).
    path: Vec<Seg<'static>>,
}

/// An empty vector for other elements of the same size and alignment, in the same room: the
/// standard library collects a vector's own iterator in place, so nothing is allocated.
fn reuse_room<'a, 'b>(mut v: Vec<Seg<'a>>) -> Vec<Seg<'b>> {
    v.clear();
    v.into_iter()
        .map(|_| unreachable!("the vector is empty"))
        .collect()
}

impl WriteScratch {
    /// What a scratch keeps between messages at most; a message with more callbacks gets
    /// buffers of its own size, given back after it.
    const KEEP: usize = 4096;

    fn clear(&mut self) {
        self.paths.clear();
        self.callbacks.clear();
        self.paths.shrink_to(Self::KEEP);
        self.callbacks.shrink_to(Self::KEEP / 16);
        self.path.shrink_to(Self::KEEP / 16);
    }
}

/// Scrubs functions into callback ids and cycles into links while writing arguments.
struct Scrubber<'v, 's, F: FnMut(Function) -> Result<u64, LocalError>> {
    ascii_only: bool,
    path: Vec<Seg<'v>>,
    /// The paths of `callbacks` and `links`, already written as JSON arrays, end to end.
    paths: &'s mut Vec<u8>,
    /// Each callback id with where its path is in `paths`.
    callbacks: &'s mut Vec<(u64, Range<usize>)>,
    links: Vec<(&'v [String], Range<usize>)>,
    assign: F,
    error: Option<LocalError>,
}

impl<'v, F: FnMut(Function) -> Result<u64, LocalError>> Scrubber<'v, '_, F> {
    /// Writes the current path to `paths` as a JSON array of strings; where it is.
    fn write_current_path(&mut self) -> Range<usize> {
        let start = self.paths.len();
        let out = &mut *self.paths;
        out.push(b'[');
        for (i, seg) in self.path.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match seg {
                Seg::Key(k) => write_js_string(out, k, self.ascii_only),
                Seg::Index(i) => {
                    out.push(b'"');
                    write_u64(out, *i as u64);
                    out.push(b'"');
                }
            }
        }
        out.push(b']');
        start..self.paths.len()
    }
}

impl<'v, F: FnMut(Function) -> Result<u64, LocalError>> WriteHooks<'v> for Scrubber<'v, '_, F> {
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
                let p = self.write_current_path();
                self.callbacks.push((id, p));
            }
            Err(e) => self.error = Some(e),
        }
    }
    fn link(&mut self, from: &'v [String]) {
        let to = self.write_current_path();
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
    let mut scratch = WriteScratch::default();
    write_message_with(
        &mut scratch,
        out,
        method,
        (&[], 0),
        arguments,
        ascii_only,
        assign,
    )
}

/// [`write_message`], with buffers kept from earlier messages, and `written` arguments (JSON
/// joined by commas, and how many) before `arguments` (see [`CallArgs`](super::CallArgs)).
pub(crate) fn write_message_with(
    scratch: &mut WriteScratch,
    out: &mut Vec<u8>,
    method: &Method,
    written: (&[u8], usize),
    arguments: &[Value],
    ascii_only: bool,
    assign: impl FnMut(Function) -> Result<u64, LocalError>,
) -> Result<(), LocalError> {
    scratch.clear();
    let start = out.len();
    out.extend_from_slice(b"{\"method\":");
    match method {
        Method::Name(n) => write_js_string(out, n, ascii_only),
        Method::Id(id) => write_u64(out, *id),
    }
    out.extend_from_slice(b",\"arguments\":[");
    let mut s = Scrubber {
        ascii_only,
        path: reuse_room(std::mem::take(&mut scratch.path)),
        paths: &mut scratch.paths,
        callbacks: &mut scratch.callbacks,
        links: Vec::new(),
        assign,
        error: None,
    };
    let (json, skip) = written;
    out.extend_from_slice(json);
    for (i, a) in arguments.iter().enumerate() {
        let i = skip + i;
        if i > 0 {
            out.push(b',');
        }
        s.enter(Seg::Index(i));
        json::write_value(out, a, &mut s);
        s.leave();
    }
    scratch.path = reuse_room(std::mem::take(&mut s.path));
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
        out.extend_from_slice(&s.paths[path.clone()]);
    }
    out.extend_from_slice(b"},\"links\":[");
    for (i, (from, to)) in s.links.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"from\":");
        write_path(out, from, ascii_only);
        out.extend_from_slice(b",\"to\":");
        out.extend_from_slice(&s.paths[to.clone()]);
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
    use proptest::prelude::*;

    #[test]
    fn the_path_stack_keeps_its_room_from_one_message_to_the_next() {
        let mut scratch = WriteScratch::default();
        let mut out = Vec::new();
        let deep = Value::array([Value::object([("a", Value::array([Value::from(1.0)]))])]);
        write_message_with(
            &mut scratch,
            &mut out,
            &Method::Id(1),
            (&[], 0),
            &[deep],
            false,
            |_| Ok(0),
        )
        .unwrap();
        let room = scratch.path.capacity();
        assert!(room >= 4, "{room}");
        assert!(scratch.path.is_empty());
        let before = scratch.path.as_ptr();
        write_message_with(
            &mut scratch,
            &mut out,
            &Method::Id(1),
            (&[], 0),
            &[],
            false,
            |_| Ok(0),
        )
        .unwrap();
        assert_eq!(
            (scratch.path.capacity(), scratch.path.as_ptr()),
            (room, before)
        );
    }

    /// The straightforward reading `parse_message` must agree with: parse the line into a
    /// [`Value`], then take the fields out of the object.
    pub(crate) fn parse_message_via_value(line: &[u8]) -> Result<RawMessage, RemoteError> {
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
            Some(Value::Number(n))
                if n >= 0.0 && n.fract() == 0.0 && n < 9_007_199_254_740_992.0 =>
            {
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

    /// Pieces of dnode-looking JSON, so that random lines often parse.
    fn arb_line() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            prop::sample::select(vec![
                &b"{"[..],
                b"}",
                b"[",
                b"]",
                b",",
                b":",
                b"\"method\"",
                b"\"arguments\"",
                b"\"callbacks\"",
                b"\"links\"",
                b"\"from\"",
                b"\"to\"",
                b"\"meth\\u006fd\"",
                b"\"[Function]\"",
                b"\"0\"",
                b"\"1\"",
                b"\"01\"",
                b"\"x\"",
                b"0",
                b"1",
                b"-1",
                b"1.5",
                b"1e3",
                b"9007199254740992",
                b"null",
                b"true",
                b"\"\\ud800\"",
                b" ",
                b"\"cull\"",
                b"\"methods\"",
            ])
            .prop_map(<[u8]>::to_vec),
            prop::collection::vec(any::<u8>(), 0..3),
        ];
        let structured = (
            prop::sample::select(vec!["0", "\"m\"", "null", "[]", "1.5", "-1"]),
            prop::sample::select(vec![
                "[]",
                "[1,\"[Function]\",{\"a\":[\"[Function]\"]}]",
                "null",
                "{}",
                "5",
            ]),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["0", "1", "2", "01", "x", "9007199254740992", "1"]),
                    prop::sample::select(vec![
                        "[\"0\"]",
                        "[1]",
                        "[\"2\",\"a\",0]",
                        "[]",
                        "null",
                        "[true]",
                        "\"0\"",
                        "{}",
                        "[1.5e300]",
                    ]),
                ),
                0..20,
            ),
            prop::sample::select(vec![
                "[]",
                "null",
                "[{\"from\":[],\"to\":[\"0\"]}]",
                "[{\"from\":[\"0\"],\"to\":[\"1\",0]},5,{\"to\":[]}]",
            ]),
            any::<bool>(),
        )
            .prop_map(|(m, a, cbs, l, dup)| {
                let cbs: Vec<String> = cbs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                let mut s = format!(
                    "{{\"method\":{m},\"arguments\":{a},\"callbacks\":{{{}}},\"links\":{l}",
                    cbs.join(",")
                );
                if dup {
                    s.push_str(
                        ",\"extra\":[1,{\"y\":2}],\"method\":\"again\",\"callbacks\":{\"3\":[0]}",
                    );
                }
                s.push('}');
                s.into_bytes()
            });
        let whole = prop::sample::select(vec![
            &b"null"[..],
            b"5",
            b"-0",
            b"1e400",
            b"true",
            b"\"s\"",
            b"[1,[2]]",
            b"[",
            b"",
            b" ",
            b"{}",
            b"{\"method\":\"m\"} x",
            b"\r",
            b"{\"method\":\"m\",}",
        ])
        .prop_map(<[u8]>::to_vec);
        prop_oneof![
            2 => structured,
            2 => prop::collection::vec(piece, 0..30).prop_map(|v| v.concat()),
            1 => whole,
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        #[test]
        fn parse_message_agrees_with_reading_a_value_first(line in arb_line()) {
            prop_assert_eq!(parse_message(&line), parse_message_via_value(&line));
        }
    }

    #[test]
    fn repeated_callback_keys_keep_first_position_and_last_value_past_the_scan_limit() {
        let mut line = String::from("{\"method\":0,\"arguments\":[[]],\"callbacks\":{");
        for i in 0..40 {
            line.push_str(&format!("\"{}\":[\"0\",\"{}\"],", i % 25, i));
        }
        line.push_str("\"3\":null}}");
        let m = parse_message(line.as_bytes()).unwrap();
        assert_eq!(m, parse_message_via_value(line.as_bytes()).unwrap());
        assert_eq!(m.callbacks.len(), 24);
        assert_eq!(m.callbacks[0], (0, vec!["0".to_owned(), "25".to_owned()]));
        assert_eq!(m.callbacks[3], (4, vec!["0".to_owned(), "29".to_owned()]));
    }

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
