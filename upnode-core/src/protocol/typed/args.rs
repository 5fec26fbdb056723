//! Argument lists: [`to_args`] and [`from_args`], with JavaScript's call semantics.

use super::de::ValueDeserializer;
use super::ser::SeqBuilder;
use super::TypedError;
use crate::protocol::value::handle::{FUNCTION_TOKEN, LINK_TOKEN};
use crate::protocol::value::Value;
use serde::de::{DeserializeOwned, DeserializeSeed, Expected, SeqAccess, Visitor};
use serde::ser::{self, Impossible, Serialize, Serializer};
use serde::Deserializer;

// ---------------------------------------------------------------------------------------------
// to_args

/// Serializes an argument list: a tuple, an array, a slice or a `Vec` gives one [`Value`] per
/// element, and `()` gives no arguments. Anything else is
/// [`TypedError::NotAnArgumentList`]: wrap a single argument in a 1-tuple, `(arg,)`.
///
/// ```
/// use upnode_core::{to_args, RemoteFn, TypedError, Value};
///
/// // cb(null, "pong"), with a callback for the peer to call back.
/// let args = to_args(&(None::<String>, "pong", RemoteFn(4))).unwrap();
/// assert_eq!(args, vec![Value::Null, Value::from("pong"), Value::from(RemoteFn(4))]);
/// assert_eq!(to_args(&()).unwrap(), vec![]);
/// assert!(matches!(to_args("moo"), Err(TypedError::NotAnArgumentList { .. })));
/// assert_eq!(to_args(&("moo",)).unwrap(), vec![Value::from("moo")]);
/// ```
pub fn to_args<T: Serialize + ?Sized>(args: &T) -> Result<Vec<Value>, TypedError> {
    args.serialize(ArgsSerializer)
}

struct ArgsSerializer;

/// Room left in an argument list for the answer callback a call appends to it (so that
/// appending it does not move the list).
const ANSWER_SLOT: usize = 1;

fn not_args(found: &str) -> TypedError {
    TypedError::NotAnArgumentList {
        found: found.to_owned(),
    }
}

struct ArgsBuilder(SeqBuilder);

impl ArgsBuilder {
    fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.0.push(v)
    }
    fn finish(self) -> Vec<Value> {
        self.0.items
    }
}

impl_serialize_seq!(ArgsBuilder => Vec<Value>);

impl Serializer for ArgsSerializer {
    type Ok = Vec<Value>;
    type Error = TypedError;
    type SerializeSeq = ArgsBuilder;
    type SerializeTuple = ArgsBuilder;
    type SerializeTupleStruct = ArgsBuilder;
    type SerializeTupleVariant = Impossible<Vec<Value>, TypedError>;
    type SerializeMap = Impossible<Vec<Value>, TypedError>;
    type SerializeStruct = Impossible<Vec<Value>, TypedError>;
    type SerializeStructVariant = Impossible<Vec<Value>, TypedError>;

    fn serialize_bool(self, _: bool) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a bool"))
    }
    serialize_scalars! { Vec<Value>; |_| Err(not_args("a number"));
        serialize_i8: i8, serialize_i16: i16, serialize_i32: i32, serialize_i64: i64,
        serialize_i128: i128, serialize_u8: u8, serialize_u16: u16, serialize_u32: u32,
        serialize_u64: u64, serialize_u128: u128, serialize_f32: f32, serialize_f64: f64,
    }
    fn serialize_char(self, _: char) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a char"))
    }
    fn serialize_str(self, _: &str) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a string"))
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<Vec<Value>, TypedError> {
        Err(not_args("bytes"))
    }
    fn serialize_none(self) -> Result<Vec<Value>, TypedError> {
        Err(not_args("an Option"))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Vec<Value>, TypedError> {
        Err(not_args("an Option"))
    }
    fn serialize_unit(self) -> Result<Vec<Value>, TypedError> {
        Ok(Vec::new())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<Vec<Value>, TypedError> {
        Ok(Vec::new())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<Vec<Value>, TypedError> {
        Err(not_args("an enum variant"))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<Vec<Value>, TypedError> {
        match name {
            FUNCTION_TOKEN => Err(not_args("a function")),
            LINK_TOKEN => Err(not_args("a circular reference")),
            _ => v.serialize(self),
        }
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<ArgsBuilder, TypedError> {
        Ok(ArgsBuilder(SeqBuilder::with_capacity(
            len.unwrap_or(0).saturating_add(ANSWER_SLOT),
        )))
    }
    fn serialize_tuple(self, len: usize) -> Result<ArgsBuilder, TypedError> {
        Ok(ArgsBuilder(SeqBuilder::with_capacity(
            len.saturating_add(ANSWER_SLOT),
        )))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<ArgsBuilder, TypedError> {
        Ok(ArgsBuilder(SeqBuilder::with_capacity(
            len.saturating_add(ANSWER_SLOT),
        )))
    }
    refuse_maps_structs_variants!(not_args, "an enum variant");
}

// ---------------------------------------------------------------------------------------------
// from_args

/// Deserializes an argument list with JavaScript's call semantics: a tuple, an array, or a
/// struct (read positionally, field by field) takes the arguments in order; missing trailing
/// arguments read as `null` and extra ones are ignored. A `Vec` takes exactly the arguments
/// given, and `()` accepts any. Anything else is [`TypedError::NotAnArgumentList`].
///
/// This is how a callback's arguments are read, Node's `cb(err, result)` convention included:
///
/// ```
/// use serde::Deserialize;
/// use upnode_core::{from_args, RemoteFn, Value};
///
/// #[derive(Deserialize, Debug, PartialEq)]
/// struct Beep { beep: RemoteFn }
///
/// // cb(null, {beep: fn})
/// let args = vec![Value::Null, Value::object([("beep", Value::from(RemoteFn(2)))])];
/// let (err, beep): (Option<String>, Beep) = from_args(args).unwrap();
/// assert_eq!((err, beep), (None, Beep { beep: RemoteFn(2) }));
///
/// // cb("ACCESS DENIED"): the missing result reads as null.
/// let (err, beep): (Option<String>, Option<Beep>) =
///     from_args(vec![Value::from("ACCESS DENIED")]).unwrap();
/// assert_eq!((err.as_deref(), beep), (Some("ACCESS DENIED"), None));
///
/// // Extra arguments are ignored; `()` accepts anything.
/// let (n,): (u32,) = from_args(vec![Value::from(1), Value::from(2)]).unwrap();
/// assert_eq!(n, 1);
/// from_args::<()>(vec![Value::from(1)]).unwrap();
/// ```
pub fn from_args<T: DeserializeOwned>(args: Vec<Value>) -> Result<T, TypedError> {
    T::deserialize(ArgsDeserializer(args))
}

struct ArgsDeserializer(Vec<Value>);

impl ArgsDeserializer {
    fn visit_padded<'de, V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        visitor.visit_seq(ArgsAccessor {
            iter: self.0.into_iter(),
            remaining: len,
        })
    }
}

fn not_args_for<'de, V: Visitor<'de>, T>(visitor: &V) -> Result<T, TypedError> {
    Err(not_args(&(visitor as &dyn Expected).to_string()))
}

macro_rules! args_not_a_list {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
            not_args_for(&visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for ArgsDeserializer {
    type Error = TypedError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        let len = self.0.len();
        self.visit_padded(len, visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        self.deserialize_any(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        self.visit_padded(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        self.visit_padded(len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        self.visit_padded(fields.len(), visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        visitor.visit_unit()
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TypedError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        if name == FUNCTION_TOKEN {
            return not_args_for(&visitor);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TypedError> {
        not_args_for(&visitor)
    }

    args_not_a_list! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_option
        deserialize_map deserialize_identifier
    }
}

struct ArgsAccessor {
    iter: std::vec::IntoIter<Value>,
    /// Elements still to hand out, padding with `null` past the end of the arguments.
    remaining: usize,
}

impl<'de> SeqAccess<'de> for ArgsAccessor {
    type Error = TypedError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, TypedError> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        let v = self.iter.next().unwrap_or(Value::Null);
        seed.deserialize(ValueDeserializer(v)).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining)
    }
}
