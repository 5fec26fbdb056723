//! The value type carried by dnode messages: JSON plus function handles.
//!
//! - `handle`: the private channel that carries function handles and links through serde, and
//!   the serde impls of [`Function`], [`LocalFn`] and [`RemoteFn`].
//! - `serde_impls`: `Serialize` and `Deserialize` for [`Value`], side by side.
//!
//! Writing a value as JSON ([`Value::to_json_string`]) is in `protocol::json`, next to the
//! writer; this module depends on no other part of `protocol`.

pub(crate) mod handle;
pub(crate) mod serde_impls;

use std::fmt;

/// One of our own functions, named by a key the session's owner chooses.
///
/// The core never runs code: when the peer calls one of our functions the session reports
/// [`SessionEvent::Call`](crate::session::SessionEvent::Call) with this key, and the driver runs
/// whatever it stored under it.
///
/// ```
/// use upnode_core::{LocalFn, Value};
/// let exports = Value::object([("time", Value::from(LocalFn(0)))]);
/// assert!(exports.get("time").unwrap().as_function().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalFn(pub u64);

/// A function of the peer's: a callback id in the peer's own numbering.
///
/// Every occurrence of a `RemoteFn` inside a value the session hands out holds one reference on
/// the peer's callback. Give it back with
/// [`Session::release`](crate::session::Session::release) when done, so the session can send
/// `cull` and the peer can free it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RemoteFn(pub u64);

/// A function anywhere in a [`Value`] tree: ours or the peer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    /// One of ours.
    Local(LocalFn),
    /// One of the peer's; passing it back to the peer makes a forwarding callback.
    Remote(RemoteFn),
}

impl From<LocalFn> for Function {
    fn from(f: LocalFn) -> Self {
        Function::Local(f)
    }
}

impl From<RemoteFn> for Function {
    fn from(f: RemoteFn) -> Self {
        Function::Remote(f)
    }
}

/// A path inside a message's `arguments` array: each element an object key or an array index,
/// written as a decimal string as Node does.
pub type Path = Vec<String>;

/// JSON plus function handles and back-references.
///
/// Numbers are IEEE doubles, as in JavaScript: integers beyond ±2^53 lose precision exactly as
/// they would in a Node peer. Objects keep insertion order; on the wire their keys follow
/// JavaScript's order (integer-like keys ascending first).
///
/// ```
/// use upnode_core::Value;
/// let v = Value::array([Value::from(5), Value::from("x"), Value::Null]);
/// assert_eq!(v.to_json_string(), r#"[5,"x",null]"#);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `null` (also what `undefined` inside an array becomes).
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number (a double, as in JavaScript).
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Map),
    /// A function: on the wire the placeholder `"[Function]"` and an entry in `callbacks`.
    Function(Function),
    /// A back-reference to the value at this path from the root of the same message's
    /// `arguments` (dnode's `links`, used for cycles). On the wire the placeholder
    /// `"[Circular]"` and an entry in `links`. It is never resolved by the core, so a cyclic
    /// argument can neither loop nor recurse.
    Link(Path),
}

/// Levels walked by recursion before a walk over a value moves its stack to the heap.
const WALK_DEPTH: usize = 32;

impl Value {
    /// An array value.
    pub fn array(items: impl IntoIterator<Item = Value>) -> Value {
        Value::Array(items.into_iter().collect())
    }

    /// An object value from key/value pairs (a repeated key keeps its first position and its
    /// last value, as `JSON.parse` does).
    pub fn object<K: Into<String>>(entries: impl IntoIterator<Item = (K, Value)>) -> Value {
        let mut m = Map::new();
        for (k, v) in entries {
            m.insert(k.into(), v);
        }
        Value::Object(m)
    }

    /// The member `key` of an object, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(m) => m.get(key),
            _ => None,
        }
    }

    /// The function handle, if this is a function.
    pub fn as_function(&self) -> Option<Function> {
        match self {
            Value::Function(f) => Some(*f),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The number, if this is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Whether this is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Calls `f` for every function in the tree, depth first, in wire key order.
    pub fn for_each_function(&self, f: &mut impl FnMut(Function)) {
        self.walk_functions(f, 0);
    }

    /// [`for_each_function`](Self::for_each_function) by recursion while the tree is
    /// shallow (no allocation: what calls carry), and with a stack on the heap below
    /// [`WALK_DEPTH`] levels, so that no value, however deep, can exhaust the thread's stack.
    fn walk_functions(&self, f: &mut impl FnMut(Function), depth: usize) {
        match self {
            Value::Function(func) => f(*func),
            _ if depth >= WALK_DEPTH => self.walk_functions_on_heap(f),
            Value::Array(items) => {
                for v in items {
                    v.walk_functions(f, depth + 1);
                }
            }
            Value::Object(m) if m.has_index_key() => {
                for i in m.wire_order() {
                    m.entries[i].1.walk_functions(f, depth + 1);
                }
            }
            Value::Object(m) => {
                for (_, v) in &m.entries {
                    v.walk_functions(f, depth + 1);
                }
            }
            _ => {}
        }
    }

    fn walk_functions_on_heap(&self, f: &mut impl FnMut(Function)) {
        let mut stack: Vec<&Value> = vec![self];
        // Depth-first, left to right: push children in reverse.
        while let Some(v) = stack.pop() {
            match v {
                Value::Function(func) => f(*func),
                Value::Array(items) => stack.extend(items.iter().rev()),
                Value::Object(m) if m.has_index_key() => {
                    let order = m.wire_order();
                    stack.extend(order.iter().rev().map(|&i| &m.entries[i].1));
                }
                Value::Object(m) => stack.extend(m.entries.iter().rev().map(|(_, v)| v)),
                _ => {}
            }
        }
    }

    /// The value at `path` below this one (array indices as decimal strings).
    pub fn pointer(&self, path: &[String]) -> Option<&Value> {
        let mut cur = self;
        for seg in path {
            cur = match cur {
                Value::Object(m) => m.get(seg)?,
                Value::Array(a) => a.get(array_index(seg)?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Mutable access to the value at `path` below this one.
    pub fn pointer_mut(&mut self, path: &[String]) -> Option<&mut Value> {
        let mut cur = self;
        for seg in path {
            cur = match cur {
                Value::Object(m) => m.get_mut(seg)?,
                Value::Array(a) => a.get_mut(array_index(seg)?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Sets the value at `path` below this one. The parent must exist; a missing object key is
    /// added, an array index may replace an element or append one past the end. Returns
    /// whether the value was placed. Never allocates more than the one new element.
    pub fn set_path(&mut self, path: &[String], v: Value) -> bool {
        let Some((last, parent_path)) = path.split_last() else {
            return false;
        };
        match self.pointer_mut(parent_path) {
            Some(Value::Object(m)) => {
                m.insert(last.clone(), v);
                true
            }
            Some(Value::Array(a)) => match array_index(last) {
                Some(i) if i < a.len() => {
                    a[i] = v;
                    true
                }
                Some(i) if i == a.len() => {
                    a.push(v);
                    true
                }
                _ => false,
            },
            _ => false,
        }
    }
}

/// A canonical array index: `0` or a decimal without leading zero, below 2^32 - 1.
pub(crate) fn array_index(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 10 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    if !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = s.parse().ok()?;
    if n < u32::MAX as u64 {
        usize::try_from(n).ok()
    } else {
        None
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json_string())
    }
}

macro_rules! from_num {
    ($($t:ty)*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Self { Value::Number(n as f64) }
        }
    )*};
}
from_num!(i8 i16 i32 i64 isize u8 u16 u32 u64 usize f32 f64);

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<Function> for Value {
    fn from(f: Function) -> Self {
        Value::Function(f)
    }
}
impl From<LocalFn> for Value {
    fn from(f: LocalFn) -> Self {
        Value::Function(Function::Local(f))
    }
}
impl From<RemoteFn> for Value {
    fn from(f: RemoteFn) -> Self {
        Value::Function(Function::Remote(f))
    }
}
impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Object(m)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// An insertion-ordered JSON object.
///
/// Lookups are linear, which is fastest for the small objects RPC carries; building a map from
/// many entries at once ([`Map::from_entries`]) stays O(n) expected time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    entries: Vec<(String, Value)>,
}

impl Map {
    /// An empty map.
    pub fn new() -> Map {
        Map::default()
    }

    /// Builds a map from entries; a repeated key keeps its first position and its last value.
    pub fn from_entries(entries: Vec<(String, Value)>) -> Map {
        if entries.len() <= 16 {
            // A repeated key is rare: the entries are kept as they are when there is none.
            let repeated =
                (1..entries.len()).any(|i| entries[..i].iter().any(|(k, _)| *k == entries[i].0));
            if !repeated {
                return Map { entries };
            }
            let mut m = Map {
                entries: Vec::with_capacity(entries.len()),
            };
            for (k, v) in entries {
                m.insert(k, v);
            }
            return m;
        }
        let mut index: std::collections::HashMap<String, usize> =
            std::collections::HashMap::with_capacity(entries.len());
        let mut out: Vec<(String, Value)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match index.get(&k) {
                Some(&i) => out[i].1 = v,
                None => {
                    index.insert(k.clone(), out.len());
                    out.push((k, v));
                }
            }
        }
        Map { entries: out }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Mutable access to the value under `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Inserts or replaces (in place) the value under `key`; returns the old value.
    pub fn insert(&mut self, key: String, value: Value) -> Option<Value> {
        if let Some(slot) = self.get_mut(&key) {
            return Some(std::mem::replace(slot, value));
        }
        self.entries.push((key, value));
        None
    }

    /// Removes the entry under `key`.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Entries in the order JavaScript enumerates (and the wire carries) them: integer-like
    /// keys ascending, then the rest in insertion order.
    pub fn iter_wire(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.wire_order().into_iter().map(|i| {
            let (k, v) = &self.entries[i];
            (k, v)
        })
    }

    /// Indices of entries in wire order.
    pub(crate) fn wire_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        if self.has_index_key() {
            // Stable: non-index keys keep insertion order after all index keys.
            order.sort_by_key(|&i| match array_index(&self.entries[i].0) {
                Some(n) => (0u8, n),
                None => (1u8, 0),
            });
        }
        order
    }

    /// Whether any key is integer-like (the wire order then differs from insertion order).
    pub(crate) fn has_index_key(&self) -> bool {
        self.entries.iter().any(|(k, _)| {
            k.as_bytes().first().is_some_and(u8::is_ascii_digit) && array_index(k).is_some()
        })
    }

    /// The entries in insertion order.
    pub(crate) fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }

    /// Consumes the map into its entries, in insertion order.
    pub fn into_entries(self) -> Vec<(String, Value)> {
        self.entries
    }
}

impl<K: Into<String>> FromIterator<(K, Value)> for Map {
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        Map::from_entries(iter.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A value `depth` levels deep: at each level an object whose index key `"1"` comes
    /// after `"b"` in insertion order but before it on the wire, holding the function of
    /// that level, then `"b"` holding the next level.
    fn deep(depth: u64) -> Value {
        let mut v = Value::from(Function::Local(LocalFn(depth)));
        for level in (0..depth).rev() {
            v = Value::object([
                ("b", Value::Array(vec![v, Value::from(level as f64)])),
                ("1", Value::from(Function::Local(LocalFn(level)))),
            ]);
        }
        v
    }

    #[test]
    fn functions_are_found_in_wire_order_at_any_depth_on_either_side_of_the_recursion_limit() {
        for depth in [
            0,
            1,
            WALK_DEPTH as u64 - 1,
            WALK_DEPTH as u64,
            3 * WALK_DEPTH as u64,
        ] {
            let mut seen = Vec::new();
            deep(depth).for_each_function(&mut |f| seen.push(f));
            let expected: Vec<Function> =
                (0..=depth).map(|k| Function::Local(LocalFn(k))).collect();
            assert_eq!(seen, expected, "depth {depth}");
        }
    }

    #[test]
    fn repeated_key_keeps_first_position_and_last_value() {
        let v = Value::object([
            ("a", Value::from(1)),
            ("b", Value::from(2)),
            ("a", Value::from(3)),
        ]);
        assert_eq!(v.to_json_string(), r#"{"a":3,"b":2}"#);
        let big: Map = (0..40)
            .map(|i| (format!("k{}", i % 20), Value::from(i)))
            .collect();
        assert_eq!(big.len(), 20);
        assert_eq!(big.get("k3"), Some(&Value::from(23)));
        assert_eq!(big.iter().next().unwrap().0, "k0");
    }

    #[test]
    fn array_index_accepts_only_canonical_indices() {
        assert_eq!(array_index("0"), Some(0));
        assert_eq!(array_index("42"), Some(42));
        assert_eq!(array_index("01"), None);
        assert_eq!(array_index("-1"), None);
        assert_eq!(array_index("4294967295"), None);
        assert_eq!(array_index("4294967294"), Some(4294967294));
        assert_eq!(array_index(""), None);
        assert_eq!(array_index("1e3"), None);
    }

    #[test]
    fn set_path_never_grows_arrays_by_more_than_one() {
        let mut v = Value::array([Value::from(1)]);
        assert!(v.set_path(&["1".into()], Value::from(2)));
        assert!(!v.set_path(&["1000000000".into()], Value::from(2)));
        assert!(!v.set_path(&[], Value::from(2)));
        assert_eq!(v.to_json_string(), "[1,2]");
    }
}
