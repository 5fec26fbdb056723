//! `Serialize` and `Deserialize` for [`Value`] (and `Serialize` for [`Map`]), side by side.
//! Functions and links go through the private channel in [`handle`](super::handle).

use super::handle;
use super::{Map, Value};
use serde::de::{Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use std::fmt;

const TWO_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_64: f64 = 18_446_744_073_709_551_616.0;

/// How serde sees a [`Value::Number`]: an integral number in range as an integer (so serde_json
/// writes `5`, not `5.0`, and integer targets can read it), anything else as a float. NaN and
/// the infinities have a NaN fraction, so they stay floats.
#[derive(Clone, Copy)]
pub(crate) enum SerdeNumber {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl SerdeNumber {
    pub(crate) fn of(n: f64) -> SerdeNumber {
        if n.fract() == 0.0 {
            if (0.0..TWO_64).contains(&n) {
                return SerdeNumber::Unsigned(n as u64);
            }
            if (-TWO_63..0.0).contains(&n) {
                return SerdeNumber::Signed(n as i64);
            }
        }
        SerdeNumber::Float(n)
    }
}

/// Serializes like `JSON.stringify` would see the value (integral numbers as integers, so
/// serde_json writes `5`, not `5.0`), with functions as `"[Function]"` and links as
/// `"[Circular]"`. Objects go in insertion order; for the exact bytes a Node peer writes use
/// [`Value::to_json_string`]. Through [`to_value`](crate::protocol::to_value) this is the
/// identity, functions and links included.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            // -0 goes as a float, not as the integer 0, so it keeps its sign.
            Value::Number(n) if *n == 0.0 && n.is_sign_negative() => s.serialize_f64(*n),
            Value::Number(n) => match SerdeNumber::of(*n) {
                SerdeNumber::Unsigned(u) => s.serialize_u64(u),
                SerdeNumber::Signed(i) => s.serialize_i64(i),
                SerdeNumber::Float(f) => s.serialize_f64(f),
            },
            Value::String(st) => s.serialize_str(st),
            Value::Array(items) => s.collect_seq(items),
            Value::Object(m) => m.serialize(s),
            Value::Function(f) => f.serialize(s),
            Value::Link(path) => handle::serialize_link(path, s),
        }
    }
}

/// Serializes as a map, in insertion order.
impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// Reads any JSON value from any deserializer; functions and links only from upnode's own
/// ([`from_value`](crate::protocol::from_value)).
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// Builds a [`Value`] from whatever a deserializer hands over: JSON data from any reader, and
/// functions and links only from ours.
pub(crate) struct ValueVisitor;

/// Collects a parsed array's items or an object's entries into a vector with no spare room
/// (values from the peer may be held for long, such as the answers of 100 000 calls waiting
/// to be read, or a handler's arguments). Up to three items are allocated exactly once; a
/// longer list starts from the reader's size hint (at most 1 024), grows as usual and is
/// trimmed at the end.
fn collect_exact<T, E>(
    hint: Option<usize>,
    mut next: impl FnMut() -> Result<Option<T>, E>,
) -> Result<Vec<T>, E> {
    let Some(a) = next()? else {
        return Ok(Vec::new());
    };
    let Some(b) = next()? else {
        return Ok(vec![a]);
    };
    let Some(c) = next()? else {
        return Ok(vec![a, b]);
    };
    let Some(d) = next()? else {
        return Ok(vec![a, b, c]);
    };
    let mut items = Vec::with_capacity(hint.unwrap_or(0).clamp(8, 1024));
    items.extend([a, b, c, d]);
    while let Some(x) = next()? {
        items.push(x);
    }
    items.shrink_to_fit();
    Ok(items)
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n as f64))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value, E> {
        Ok(Value::Number(n))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Deserialize::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        collect_exact(seq.size_hint(), || seq.next_element()).map(Value::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let entries = collect_exact(map.size_hint(), || map.next_entry::<String, Value>())?;
        Ok(Value::Object(Map::from_entries(entries)))
    }
    /// Only upnode's own deserializer ([`from_value`](crate::protocol::from_value)) calls
    /// this, to hand over a function handle or a link; no JSON reader does, so none can be
    /// forged from text.
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        handle::read_non_json(data).map(handle::NonJson::into_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsed_arrays_and_objects_of_any_length_keep_no_spare_room() {
        for n in 0..40usize {
            let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
            let array = format!("[{}]", items.join(","));
            let Value::Array(a) = serde_json::from_str::<Value>(&array).unwrap() else {
                panic!("{array} is an array")
            };
            assert_eq!(a, (0..n).map(|i| Value::from(i as f64)).collect::<Vec<_>>());
            assert_eq!(a.capacity(), n, "{n} items");

            let entries: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
            let object = format!("{{{}}}", entries.join(","));
            let Value::Object(m) = serde_json::from_str::<Value>(&object).unwrap() else {
                panic!("{object} is an object")
            };
            assert_eq!(m.len(), n);
            assert_eq!(m.entries().len(), m.entries.capacity(), "{n} entries");
            for i in 0..n {
                assert_eq!(m.get(&format!("k{i}")), Some(&Value::from(i as f64)));
            }
        }
    }
}
