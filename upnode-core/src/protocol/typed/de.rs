//! [`from_value`]: typed data out of a [`Value`] through serde, function handles included.

use super::TypedError;
use crate::protocol::value::handle::{NonJson, FUNCTION_TOKEN};
use crate::protocol::value::serde_impls::SerdeNumber;
use crate::protocol::value::{Function, LocalFn, Map, RemoteFn, Value};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, VariantAccess, Visitor,
};
use serde::{forward_to_deserialize_any, Deserializer};

/// Deserializes a `T` out of a [`Value`], handing function handles to [`Function`],
/// [`LocalFn`] and [`RemoteFn`] fields.
///
/// Integral numbers reach integer targets (`5.0` reads as `5u8`; `300` into a `u8` or `1.5` into
/// a `u32` is an error). A [`Value::Link`] reads as `None` / `()` for typed targets and stays a
/// link for a [`Value`] target. Arrays must be read whole: `[1,2,3]` into a 2-tuple is an error.
///
/// ```
/// use serde::Deserialize;
/// use upnode_core::{from_value, RemoteFn, Value};
///
/// #[derive(Deserialize, Debug, PartialEq)]
/// enum Shape { Circle { r: f64 }, Point }
///
/// #[derive(Deserialize, Debug, PartialEq)]
/// struct Reply { shapes: Vec<Shape>, done: RemoteFn }
///
/// let v = Value::object([
///     ("shapes", Value::array([
///         Value::object([("Circle", Value::object([("r", Value::from(1.5))]))]),
///         Value::from("Point"),
///     ])),
///     ("done", Value::from(RemoteFn(9))),
/// ]);
/// let reply: Reply = from_value(v).unwrap();
/// assert_eq!(reply, Reply { shapes: vec![Shape::Circle { r: 1.5 }, Shape::Point], done: RemoteFn(9) });
/// ```
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, TypedError> {
    T::deserialize(ValueDeserializer(v))
}

/// How a [`Value`] is described in a type error.
fn unexpected(v: &Value) -> Unexpected<'_> {
    match v {
        Value::Null => Unexpected::Other("null"),
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match SerdeNumber::of(*n) {
            SerdeNumber::Unsigned(u) => Unexpected::Unsigned(u),
            SerdeNumber::Signed(i) => Unexpected::Signed(i),
            SerdeNumber::Float(f) => Unexpected::Float(f),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
        Value::Function(_) => Unexpected::Other("function"),
        Value::Link(_) => Unexpected::Other("circular reference"),
    }
}

/// Integral numbers in range go to `visit_u64` / `visit_i64`, so integer targets work.
fn visit_number<'de, V: Visitor<'de>>(n: f64, visitor: V) -> Result<V::Value, TypedError> {
    match SerdeNumber::of(n) {
        SerdeNumber::Unsigned(u) => visitor.visit_u64(u),
        SerdeNumber::Signed(i) => visitor.visit_i64(i),
        SerdeNumber::Float(f) => visitor.visit_f64(f),
    }
}

fn visit_array<'de, V: Visitor<'de>>(
    items: Vec<Value>,
    visitor: V,
) -> Result<V::Value, TypedError> {
    let len = items.len();
    let mut seq = SeqAccessor {
        iter: items.into_iter(),
    };
    let out = visitor.visit_seq(&mut seq)?;
    if seq.iter.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(len, &"fewer elements in array"))
    }
}

fn visit_object<'de, V: Visitor<'de>>(m: Map, visitor: V) -> Result<V::Value, TypedError> {
    let len = m.len();
    let mut map = MapAccessor {
        iter: m.into_entries().into_iter(),
        value: None,
    };
    let out = visitor.visit_map(&mut map)?;
    if map.iter.len() == 0 {
        Ok(out)
    } else {
        Err(de::Error::invalid_length(len, &"fewer entries in object"))
    }
}

fn visit_non_json<'de, V: Visitor<'de>>(s: NonJson, visitor: V) -> Result<V::Value, TypedError> {
    let what = match s {
        NonJson::Function(_) => "function",
        NonJson::Link(_) => "circular reference",
    };
    visitor
        .visit_enum(NonJsonAccess(s))
        .map_err(|e| e.retype_enum(what))
}

/// Hands a function or link to a visitor through `visit_enum`, under its reserved variant name.
struct NonJsonAccess(NonJson);

impl<'de> EnumAccess<'de> for NonJsonAccess {
    type Error = TypedError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), TypedError> {
        let name = self.0.variant_name();
        let v = seed.deserialize(IntoDeserializer::<TypedError>::into_deserializer(name))?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for NonJsonAccess {
    type Error = TypedError;

    fn unit_variant(self) -> Result<(), TypedError> {
        Err(de::Error::invalid_type(
            Unexpected::NewtypeVariant,
            &"a unit variant",
        ))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, TypedError> {
        match self.0 {
            NonJson::Function(Function::Local(LocalFn(id)))
            | NonJson::Function(Function::Remote(RemoteFn(id))) => {
                seed.deserialize(IntoDeserializer::<TypedError>::into_deserializer(id))
            }
            NonJson::Link(path) => seed.deserialize(ValueDeserializer(Value::Array(
                path.into_iter().map(Value::String).collect(),
            ))),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, _: V) -> Result<V::Value, TypedError> {
        Err(de::Error::invalid_type(
            Unexpected::NewtypeVariant,
            &"a tuple variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, TypedError> {
        Err(de::Error::invalid_type(
            Unexpected::NewtypeVariant,
            &"a struct variant",
        ))
    }
}

pub(super) struct ValueDeserializer(pub(super) Value);

impl ValueDeserializer {
    fn invalid<'de, V: Visitor<'de>, T>(&self, visitor: &V) -> Result<T, TypedError> {
        Err(de::Error::invalid_type(unexpected(&self.0), visitor))
    }
}

macro_rules! deserialize_number {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
            match self.0 {
                Value::Number(n) => visit_number(n, visitor),
                _ => self.invalid(&visitor),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for ValueDeserializer {
    type Error = TypedError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => visit_number(n, visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(m) => visit_object(m, visitor),
            Value::Function(f) => visit_non_json(NonJson::Function(f), visitor),
            Value::Link(p) => visit_non_json(NonJson::Link(p), visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.0 {
            Value::Bool(b) => visitor.visit_bool(b),
            _ => self.invalid(&visitor),
        }
    }

    deserialize_number! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.0 {
            Value::String(s) => visitor.visit_string(s),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.0 {
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visit_array(items, visitor),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.0 {
            Value::Null | Value::Link(_) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.0 {
            Value::Null | Value::Link(_) => visitor.visit_unit(),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        if name != FUNCTION_TOKEN {
            return visitor.visit_newtype_struct(self);
        }
        match self.0 {
            Value::Function(f) => visit_non_json(NonJson::Function(f), visitor),
            Value::Link(p) => visit_non_json(NonJson::Link(p), visitor),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.0 {
            Value::Array(items) => visit_array(items, visitor),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: usize,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        match self.0 {
            Value::Object(m) => visit_object(m, visitor),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        match self.0 {
            Value::Object(m) => visit_object(m, visitor),
            Value::Array(items) => visit_array(items, visitor),
            _ => self.invalid(&visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        match self.0 {
            Value::String(variant) => visitor.visit_enum(EnumAccessor {
                variant,
                content: None,
            }),
            Value::Object(m) if m.len() == 1 => {
                let (variant, content) = m.into_entries().pop().expect("one entry");
                visitor.visit_enum(EnumAccessor {
                    variant,
                    content: Some(content),
                })
            }
            _ => Err(de::Error::invalid_type(
                unexpected(&self.0),
                &"an enum: a variant name or an object with a single key",
            )),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        drop(self);
        visitor.visit_unit()
    }
}

struct SeqAccessor {
    iter: std::vec::IntoIter<Value>,
}

impl<'de> SeqAccess<'de> for SeqAccessor {
    type Error = TypedError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TypedError> {
        self.iter
            .next()
            .map(|v| seed.deserialize(ValueDeserializer(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapAccessor {
    iter: std::vec::IntoIter<(String, Value)>,
    value: Option<Value>,
}

impl<'de> MapAccess<'de> for MapAccessor {
    type Error = TypedError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, TypedError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(KeyDeserializer(k)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, TypedError> {
        let v = self
            .value
            .take()
            .ok_or_else(|| TypedError::Message("map value requested before its key".into()))?;
        seed.deserialize(ValueDeserializer(v))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An object key: a string, which integer, bool and char targets parse as JavaScript printed
/// them.
struct KeyDeserializer(String);

macro_rules! deserialize_key_parsed {
    ($($method:ident $t:ty => $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
            match self.0.parse::<$t>() {
                Ok(n) => visitor.$visit(n),
                // Let the visitor say what it wanted.
                Err(_) => visitor.visit_string(self.0),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for KeyDeserializer {
    type Error = TypedError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        visitor.visit_string(self.0)
    }

    deserialize_key_parsed! {
        deserialize_i8 i8 => visit_i8;
        deserialize_i16 i16 => visit_i16;
        deserialize_i32 i32 => visit_i32;
        deserialize_i64 i64 => visit_i64;
        deserialize_i128 i128 => visit_i128;
        deserialize_u8 u8 => visit_u8;
        deserialize_u16 u16 => visit_u16;
        deserialize_u32 u32 => visit_u32;
        deserialize_u64 u64 => visit_u64;
        deserialize_u128 u128 => visit_u128;
        deserialize_bool bool => visit_bool;
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        visitor.visit_enum(EnumAccessor {
            variant: self.0,
            content: None,
        })
    }

    forward_to_deserialize_any! {
        f32 f64 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

/// An externally tagged enum: `"Variant"` (no content) or `{"Variant": content}`.
struct EnumAccessor {
    variant: String,
    content: Option<Value>,
}

impl<'de> EnumAccess<'de> for EnumAccessor {
    type Error = TypedError;
    type Variant = VariantAccessor;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, VariantAccessor), TypedError> {
        let v = seed.deserialize(KeyDeserializer(self.variant))?;
        Ok((v, VariantAccessor(self.content)))
    }
}

struct VariantAccessor(Option<Value>);

impl<'de> VariantAccess<'de> for VariantAccessor {
    type Error = TypedError;

    fn unit_variant(self) -> Result<(), TypedError> {
        match self.0 {
            None | Some(Value::Null) => Ok(()),
            Some(v) => Err(de::Error::invalid_type(unexpected(&v), &"a unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, TypedError> {
        match self.0 {
            Some(v) => seed.deserialize(ValueDeserializer(v)),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, TypedError> {
        match self.0 {
            Some(v) => ValueDeserializer(v).deserialize_seq(visitor),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a tuple variant",
            )),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        match self.0 {
            Some(v) => ValueDeserializer(v).deserialize_struct("", fields, visitor),
            None => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a struct variant",
            )),
        }
    }
}
