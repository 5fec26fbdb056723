//! [`to_value`]: typed data into a [`Value`] through serde, function handles included.

use super::TypedError;
use crate::protocol::value::handle::{
    decode_placeholder, is_handle_token, FUNCTION_TOKEN, LINK_TOKEN,
};
use crate::protocol::value::{Map, Value};
use serde::ser::{self, Impossible, Serialize, Serializer};
use std::fmt;

/// Serializes `v` into a [`Value`], capturing function handles as [`Value::Function`].
///
/// The mapping is the one a Node peer sees through `JSON.stringify` / `JSON.parse`
/// ([`from_value`](super::from_value) reads it back):
///
/// | Rust | [`Value`] |
/// |---|---|
/// | `bool` | `Bool` |
/// | every integer and float type | `Number`, an `f64` |
/// | `char`, `str`, `String` | `String` |
/// | `None`, `()`, unit structs | `Null` |
/// | `Some(x)`, newtype structs | `x` |
/// | sequences, tuples, tuple structs, bytes | `Array` |
/// | maps, structs (fields in declaration order) | `Object` |
/// | enums | externally tagged as in serde_json: `"Unit"`, `{"Newtype":x}`, `{"Tuple":[..]}`, `{"Struct":{..}}` |
/// | [`Function`], [`LocalFn`], [`RemoteFn`] | `Function` |
/// | a [`Value`] | the same value, functions and links included |
///
/// Integers beyond ±2^53 lose precision exactly as in JavaScript (`2^53 + 1` becomes `2^53`).
/// Map keys must be strings, or integers, chars or bools, which become strings as property
/// names do in JavaScript; any other key is [`TypedError::KeyNotAString`].
///
/// ```
/// use serde::Serialize;
/// use upnode_core::{to_value, LocalFn, Value};
///
/// #[derive(Serialize)]
/// struct Hello<'a> { name: &'a str, times: u32, reply: LocalFn, note: Option<String> }
///
/// let v = to_value(&Hello { name: "moo", times: 2, reply: LocalFn(7), note: None }).unwrap();
/// assert_eq!(v.to_json_string(), r#"{"name":"moo","times":2,"reply":"[Function]","note":null}"#);
/// assert_eq!(v.get("reply"), Some(&Value::from(LocalFn(7))));
/// ```
///
/// # Function handles
///
/// [`Function`], [`LocalFn`] and [`RemoteFn`] implement `Serialize` and `Deserialize`, so a
/// callback can sit anywhere inside typed data. Only `to_value` / `from_value` (and the
/// argument-list pair) carry the handle itself: any other serializer (serde_json, for one)
/// writes the placeholder string `"[Function]"`, as dnode does on the wire, and no other
/// deserializer can produce a handle, so none can be forged from text.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use upnode_core::{from_value, to_value, RemoteFn};
///
/// #[derive(Serialize, Deserialize, Debug, PartialEq)]
/// struct Opts {
///     name: String,
///     on_data: RemoteFn,
/// }
///
/// let opts = Opts { name: "feed".into(), on_data: RemoteFn(3) };
/// let v = to_value(&opts).unwrap();
/// assert_eq!(v.get("on_data").unwrap().as_function(), Some(RemoteFn(3).into()));
/// assert_eq!(from_value::<Opts>(v).unwrap(), opts);
/// assert_eq!(
///     serde_json::to_string(&opts).unwrap(),
///     r#"{"name":"feed","on_data":"[Function]"}"#
/// );
/// assert!(serde_json::from_str::<RemoteFn>(r#""[Function]""#).is_err());
/// ```
///
/// # Links
///
/// A [`Value::Link`] (a back-reference standing for a cycle) survives `to_value` and
/// `from_value` when the target is a [`Value`]. A typed target reads it as absent: `None` for an
/// `Option`, `()` for a unit; any other typed target is an error ("invalid type: circular
/// reference"). Other serializers write it as the placeholder `"[Circular]"`.
///
/// # Limitation
///
/// Function handles and links cannot pass through `#[serde(untagged)]`, internally tagged or
/// `#[serde(flatten)]` types: serde buffers those through its own content type, which has no
/// room for a handle. Reading one there is an error, never a panic; plain data works as usual.
///
/// [`Function`]: crate::protocol::Function
/// [`LocalFn`]: crate::protocol::LocalFn
/// [`RemoteFn`]: crate::protocol::RemoteFn
pub fn to_value<T: Serialize + ?Sized>(v: &T) -> Result<Value, TypedError> {
    v.serialize(ValueSerializer::default())
}

#[derive(Default, Clone, Copy)]
struct ValueSerializer {
    /// Serializing the inside of one of our reserved newtype structs: `collect_str` asks the
    /// placeholder for its encoding.
    capture: bool,
}

fn object1(key: &str, v: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.to_owned(), v);
    Value::Object(m)
}

impl Serializer for ValueSerializer {
    type Ok = Value;
    type Error = TypedError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = VariantSeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = VariantMapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, TypedError> {
        Ok(Value::Bool(v))
    }
    serialize_scalars! { Value; |v| Ok(Value::Number(f64::from(v)));
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32,
        serialize_u8: u8, serialize_u16: u16, serialize_u32: u32, serialize_f32: f32,
    }
    serialize_scalars! { Value; |v| Ok(Value::Number(v as f64));
        serialize_i64: i64, serialize_i128: i128, serialize_u64: u64, serialize_u128: u128,
    }
    fn serialize_f64(self, v: f64) -> Result<Value, TypedError> {
        Ok(Value::Number(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, TypedError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, TypedError> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, TypedError> {
        Ok(Value::Array(
            v.iter().map(|b| Value::Number(f64::from(*b))).collect(),
        ))
    }
    fn serialize_none(self) -> Result<Value, TypedError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, TypedError> {
        v.serialize(ValueSerializer::default())
    }
    fn serialize_unit(self) -> Result<Value, TypedError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Value, TypedError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<Value, TypedError> {
        Ok(Value::String(variant.to_owned()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<Value, TypedError> {
        if is_handle_token(name) {
            let inner = v.serialize(ValueSerializer { capture: true })?;
            return inner.as_str().and_then(decode_placeholder).ok_or_else(|| {
                TypedError::Message(format!(
                    "the newtype struct name {name:?} is reserved by upnode_core"
                ))
            });
        }
        v.serialize(ValueSerializer::default())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, TypedError> {
        Ok(object1(variant, to_value(v)?))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, TypedError> {
        Ok(SeqBuilder::with_capacity(len.unwrap_or(0)))
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, TypedError> {
        Ok(SeqBuilder::with_capacity(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<SeqBuilder, TypedError> {
        Ok(SeqBuilder::with_capacity(len))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantSeqBuilder, TypedError> {
        Ok(VariantSeqBuilder {
            variant,
            seq: SeqBuilder::with_capacity(len),
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, TypedError> {
        Ok(MapBuilder::with_capacity(len.unwrap_or(0)))
    }
    fn serialize_struct(self, _: &'static str, len: usize) -> Result<MapBuilder, TypedError> {
        Ok(MapBuilder::with_capacity(len))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<VariantMapBuilder, TypedError> {
        Ok(VariantMapBuilder {
            variant,
            map: MapBuilder::with_capacity(len),
        })
    }
    fn collect_str<T: fmt::Display + ?Sized>(self, v: &T) -> Result<Value, TypedError> {
        Ok(Value::String(if self.capture {
            format!("{v:+#}")
        } else {
            v.to_string()
        }))
    }
}

/// Caps preallocation from size hints we do not control.
const MAX_PREALLOC: usize = 4096;

pub(super) struct SeqBuilder {
    pub(super) items: Vec<Value>,
}

impl SeqBuilder {
    pub(super) fn with_capacity(n: usize) -> SeqBuilder {
        SeqBuilder {
            items: Vec::with_capacity(n.min(MAX_PREALLOC)),
        }
    }
    pub(super) fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.items.push(to_value(v)?);
        Ok(())
    }
    fn finish(self) -> Value {
        Value::Array(self.items)
    }
}

impl_serialize_seq!(SeqBuilder => Value);

struct VariantSeqBuilder {
    variant: &'static str,
    seq: SeqBuilder,
}

impl ser::SerializeTupleVariant for VariantSeqBuilder {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.seq.push(v)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(object1(self.variant, self.seq.finish()))
    }
}

struct MapBuilder {
    entries: Vec<(String, Value)>,
    key: Option<String>,
}

impl MapBuilder {
    fn with_capacity(n: usize) -> MapBuilder {
        MapBuilder {
            entries: Vec::with_capacity(n.min(MAX_PREALLOC)),
            key: None,
        }
    }
    fn finish(self) -> Value {
        Value::Object(Map::from_entries(self.entries))
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), TypedError> {
        self.key = Some(k.serialize(KeySerializer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        let key = self.key.take().ok_or_else(|| {
            TypedError::Message("serialize_value called before serialize_key".into())
        })?;
        self.entries.push((key, to_value(v)?));
        Ok(())
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapBuilder {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), TypedError> {
        self.entries.push((key.to_owned(), to_value(v)?));
        Ok(())
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(self.finish())
    }
}

struct VariantMapBuilder {
    variant: &'static str,
    map: MapBuilder,
}

impl ser::SerializeStructVariant for VariantMapBuilder {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), TypedError> {
        ser::SerializeStruct::serialize_field(&mut self.map, key, v)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(object1(self.variant, self.map.finish()))
    }
}

/// Map keys: strings as they are; integers, chars and bools as JavaScript prints them.
struct KeySerializer;

fn key_error(found: &'static str) -> TypedError {
    TypedError::KeyNotAString { found }
}

impl Serializer for KeySerializer {
    type Ok = String;
    type Error = TypedError;
    type SerializeSeq = Impossible<String, TypedError>;
    type SerializeTuple = Impossible<String, TypedError>;
    type SerializeTupleStruct = Impossible<String, TypedError>;
    type SerializeTupleVariant = Impossible<String, TypedError>;
    type SerializeMap = Impossible<String, TypedError>;
    type SerializeStruct = Impossible<String, TypedError>;
    type SerializeStructVariant = Impossible<String, TypedError>;

    serialize_scalars! { String; |v| Ok(v.to_string());
        serialize_bool: bool, serialize_char: char,
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128,
    }
    serialize_scalars! { String; |_| Err(key_error("a floating point number"));
        serialize_f32: f32, serialize_f64: f64,
    }
    fn serialize_str(self, v: &str) -> Result<String, TypedError> {
        Ok(v.to_owned())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String, TypedError> {
        Err(key_error("bytes"))
    }
    fn serialize_none(self) -> Result<String, TypedError> {
        Err(key_error("an Option"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<String, TypedError> {
        Err(key_error("an Option"))
    }
    fn serialize_unit(self) -> Result<String, TypedError> {
        Err(key_error("a unit"))
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String, TypedError> {
        Err(key_error("a unit struct"))
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<String, TypedError> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<String, TypedError> {
        match name {
            FUNCTION_TOKEN => Err(key_error("a function")),
            LINK_TOKEN => Err(key_error("a circular reference")),
            _ => v.serialize(self),
        }
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, TypedError> {
        Err(key_error("a sequence"))
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, TypedError> {
        Err(key_error("a tuple"))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, TypedError> {
        Err(key_error("a tuple struct"))
    }
    refuse_maps_structs_variants!(key_error, "an enum variant with data");
}
