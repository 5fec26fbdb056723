//! Typed data in and out of [`Value`] through serde: [`to_value`], [`from_value`], [`to_args`],
//! [`from_args`], and the `Serialize` / `Deserialize` impls of function handles. The mapping is
//! documented on [`to_value`].

use super::value::{Function, LocalFn, Map, Path, RemoteFn, Value};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, Expected, IntoDeserializer, MapAccess,
    SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::ser::{self, Impossible, Serialize, Serializer};
use serde::{forward_to_deserialize_any, Deserialize, Deserializer};
use std::fmt;

// ---------------------------------------------------------------------------------------------
// Errors

/// Why typed data could not be turned into a [`Value`] or read back out of one.
///
/// ```
/// use upnode_core::{from_value, TypedError, Value};
///
/// let err = from_value::<u32>(Value::from("five")).unwrap_err();
/// assert!(matches!(err, TypedError::InvalidType { .. }));
/// assert_eq!(err.to_string(), r#"invalid type: string "five", expected u32"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypedError {
    /// A message from serde or from a type's own `Serialize` / `Deserialize` code (a missing
    /// field, an unknown variant, a wrong length...).
    #[error("{0}")]
    Message(String),
    /// The value had another type than the target wanted.
    #[error("invalid type: {unexpected}, expected {expected}")]
    InvalidType {
        /// What was found, e.g. `string "five"`.
        unexpected: String,
        /// What the target wanted, e.g. `u32`.
        expected: String,
    },
    /// A map key that JavaScript would not turn into a property name.
    #[error("map key must be a string, an integer, a char or a bool, not {found}")]
    KeyNotAString {
        /// What the key was.
        found: &'static str,
    },
    /// [`to_args`] or [`from_args`] was given something that is not a list of arguments.
    #[error(
        "an argument list is a tuple, an array or a Vec, not {found}; \
         wrap a single argument in a 1-tuple: `(arg,)`"
    )]
    NotAnArgumentList {
        /// What was given instead.
        found: String,
    },
}

impl ser::Error for TypedError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TypedError::Message(msg.to_string())
    }
}

impl de::Error for TypedError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        TypedError::Message(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        TypedError::InvalidType {
            unexpected: unexp.to_string(),
            expected: exp.to_string(),
        }
    }
}

impl TypedError {
    /// A visitor that does not know our function/link channel reports "invalid type: enum";
    /// say what it really was.
    fn retype_enum(self, what: &str) -> TypedError {
        match self {
            TypedError::InvalidType {
                unexpected,
                expected,
            } if unexpected == "enum" => TypedError::InvalidType {
                unexpected: what.to_owned(),
                expected,
            },
            other => other,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The private channel for functions and links
//
// Serializing: `Function` and `Value::Link` serialize as a newtype struct with a reserved name
// around a `Placeholder`. The placeholder serializes through `collect_str`; its `Display` prints
// `[Function]` / `[Circular]` normally, and an encoding of the handle only under the `{:+#}`
// flags, which only our serializer asks for. So foreign serializers write the placeholder.
//
// Deserializing: our deserializer hands functions and links to a visitor through `visit_enum`
// with reserved variant names. No deserializer of a text format calls `visit_enum` from
// `deserialize_any` or `deserialize_newtype_struct`, so a handle cannot be forged from text.

const FUNCTION_TOKEN: &str = "$upnode_core::private::Function";
const LINK_TOKEN: &str = "$upnode_core::private::Link";
const LOCAL_VARIANT: &str = "$upnode_core::private::Local";
const REMOTE_VARIANT: &str = "$upnode_core::private::Remote";
const LINK_VARIANT: &str = "$upnode_core::private::Link";

const NOT_OURS: &str = "function handles can only be read from an upnode Value \
                        (upnode_core::from_value or from_args), not from another data format";

enum Placeholder<'a> {
    Function(Function),
    Link(&'a [String]),
}

impl fmt::Display for Placeholder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !(f.alternate() && f.sign_plus()) {
            return f.write_str(match self {
                Placeholder::Function(_) => "[Function]",
                Placeholder::Link(_) => "[Circular]",
            });
        }
        match self {
            Placeholder::Function(Function::Local(LocalFn(id))) => write!(f, "L{id}"),
            Placeholder::Function(Function::Remote(RemoteFn(id))) => write!(f, "R{id}"),
            Placeholder::Link(path) => {
                f.write_str("C")?;
                for seg in *path {
                    write!(f, "{}:{seg}", seg.len())?;
                }
                Ok(())
            }
        }
    }
}

impl Serialize for Placeholder<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Reads what `Placeholder` printed under `{:+#}`.
fn decode_placeholder(encoded: &str) -> Option<Value> {
    let (tag, rest) = (encoded.get(..1)?, encoded.get(1..)?);
    match tag {
        "L" => Some(Value::from(LocalFn(rest.parse().ok()?))),
        "R" => Some(Value::from(RemoteFn(rest.parse().ok()?))),
        "C" => {
            let mut path = Path::new();
            let mut rest = rest;
            while !rest.is_empty() {
                let (len, tail) = rest.split_once(':')?;
                let len: usize = len.parse().ok()?;
                path.push(tail.get(..len)?.to_owned());
                rest = tail.get(len..)?;
            }
            Some(Value::Link(path))
        }
        _ => None,
    }
}

/// A function or a link, the two kinds of [`Value`] JSON has no room for, on its way out of our
/// deserializer through the private channel.
pub(crate) enum NonJson {
    Function(Function),
    Link(Path),
}

impl NonJson {
    pub(crate) fn into_value(self) -> Value {
        match self {
            NonJson::Function(f) => Value::Function(f),
            NonJson::Link(p) => Value::Link(p),
        }
    }
}

struct NonJsonAccess(NonJson);

impl<'de> EnumAccess<'de> for NonJsonAccess {
    type Error = TypedError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self), TypedError> {
        let name = match &self.0 {
            NonJson::Function(Function::Local(_)) => LOCAL_VARIANT,
            NonJson::Function(Function::Remote(_)) => REMOTE_VARIANT,
            NonJson::Link(_) => LINK_VARIANT,
        };
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

/// Reads a function or link handed over by our deserializer through `visit_enum`.
pub(crate) fn read_non_json<'de, A: EnumAccess<'de>>(data: A) -> Result<NonJson, A::Error> {
    let (name, variant): (String, A::Variant) = data.variant()?;
    match name.as_str() {
        LOCAL_VARIANT => Ok(NonJson::Function(Function::Local(LocalFn(
            variant.newtype_variant()?,
        )))),
        REMOTE_VARIANT => Ok(NonJson::Function(Function::Remote(RemoteFn(
            variant.newtype_variant()?,
        )))),
        LINK_VARIANT => Ok(NonJson::Link(variant.newtype_variant()?)),
        other => Err(de::Error::invalid_type(
            Unexpected::Other(&format!("enum variant {other:?}")),
            &"a JSON value or an upnode function handle",
        )),
    }
}

struct FunctionVisitor;

impl<'de> Visitor<'de> for FunctionVisitor {
    type Value = Function;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a function handle")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Function, A::Error> {
        match read_non_json(data)? {
            NonJson::Function(f) => Ok(f),
            NonJson::Link(_) => Err(de::Error::invalid_type(
                Unexpected::Other("circular reference"),
                &self,
            )),
        }
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, _: D) -> Result<Function, D::Error> {
        Err(de::Error::custom(NOT_OURS))
    }
}

impl Serialize for Function {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(FUNCTION_TOKEN, &Placeholder::Function(*self))
    }
}

impl Serialize for LocalFn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Function::Local(*self).serialize(s)
    }
}

impl Serialize for RemoteFn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Function::Remote(*self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Function {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Function, D::Error> {
        d.deserialize_newtype_struct(FUNCTION_TOKEN, FunctionVisitor)
    }
}

impl<'de> Deserialize<'de> for LocalFn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<LocalFn, D::Error> {
        match Function::deserialize(d)? {
            Function::Local(f) => Ok(f),
            Function::Remote(_) => Err(de::Error::invalid_type(
                Unexpected::Other("the peer's function (RemoteFn)"),
                &"one of our own functions (LocalFn)",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for RemoteFn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RemoteFn, D::Error> {
        match Function::deserialize(d)? {
            Function::Remote(f) => Ok(f),
            Function::Local(_) => Err(de::Error::invalid_type(
                Unexpected::Other("one of our own functions (LocalFn)"),
                &"the peer's function (RemoteFn)",
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Serialize for Value and Map

const TWO_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_64: f64 = 18_446_744_073_709_551_616.0;

/// Serializes like `JSON.stringify` would see the value (integral numbers as integers, so
/// serde_json writes `5`, not `5.0`), with functions as `"[Function]"` and links as
/// `"[Circular]"`. Objects go in insertion order; for the exact bytes a Node peer writes use
/// [`Value::to_json_string`]. Through [`to_value`] this is the identity, functions and links
/// included.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => {
                let n = *n;
                if n.fract() == 0.0 && !(n == 0.0 && n.is_sign_negative()) {
                    if (0.0..TWO_64).contains(&n) {
                        return s.serialize_u64(n as u64);
                    }
                    if (-TWO_63..0.0).contains(&n) {
                        return s.serialize_i64(n as i64);
                    }
                }
                s.serialize_f64(n)
            }
            Value::String(st) => s.serialize_str(st),
            Value::Array(items) => s.collect_seq(items),
            Value::Object(m) => m.serialize(s),
            Value::Function(f) => f.serialize(s),
            Value::Link(path) => s.serialize_newtype_struct(LINK_TOKEN, &Placeholder::Link(path)),
        }
    }
}

/// Serializes as a map, in insertion order.
impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

// ---------------------------------------------------------------------------------------------
// to_value

/// Serializes `v` into a [`Value`], capturing function handles as [`Value::Function`].
///
/// The mapping is the one a Node peer sees through `JSON.stringify` / `JSON.parse`
/// ([`from_value`] reads it back):
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
    fn serialize_i8(self, v: i8) -> Result<Value, TypedError> {
        Ok(Value::Number(f64::from(v)))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, TypedError> {
        Ok(Value::Number(f64::from(v)))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, TypedError> {
        Ok(Value::Number(f64::from(v)))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, TypedError> {
        Ok(Value::Number(v as f64))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, TypedError> {
        Ok(Value::Number(v as f64))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, TypedError> {
        Ok(Value::Number(f64::from(v)))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, TypedError> {
        Ok(Value::Number(f64::from(v)))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, TypedError> {
        Ok(Value::Number(f64::from(v)))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, TypedError> {
        Ok(Value::Number(v as f64))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, TypedError> {
        Ok(Value::Number(v as f64))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, TypedError> {
        Ok(Value::Number(f64::from(v)))
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
        if name == FUNCTION_TOKEN || name == LINK_TOKEN {
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

struct SeqBuilder {
    items: Vec<Value>,
}

impl SeqBuilder {
    fn with_capacity(n: usize) -> SeqBuilder {
        SeqBuilder {
            items: Vec::with_capacity(n.min(MAX_PREALLOC)),
        }
    }
    fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.items.push(to_value(v)?);
        Ok(())
    }
}

impl ser::SerializeSeq for SeqBuilder {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.push(v)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(Value::Array(self.items))
    }
}

impl ser::SerializeTuple for SeqBuilder {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.push(v)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(Value::Array(self.items))
    }
}

impl ser::SerializeTupleStruct for SeqBuilder {
    type Ok = Value;
    type Error = TypedError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.push(v)
    }
    fn end(self) -> Result<Value, TypedError> {
        Ok(Value::Array(self.items))
    }
}

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
        Ok(object1(self.variant, Value::Array(self.seq.items)))
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

    fn serialize_bool(self, v: bool) -> Result<String, TypedError> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String, TypedError> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String, TypedError> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String, TypedError> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String, TypedError> {
        Ok(v.to_string())
    }
    fn serialize_i128(self, v: i128) -> Result<String, TypedError> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String, TypedError> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String, TypedError> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String, TypedError> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String, TypedError> {
        Ok(v.to_string())
    }
    fn serialize_u128(self, v: u128) -> Result<String, TypedError> {
        Ok(v.to_string())
    }
    fn serialize_f32(self, _: f32) -> Result<String, TypedError> {
        Err(key_error("a floating point number"))
    }
    fn serialize_f64(self, _: f64) -> Result<String, TypedError> {
        Err(key_error("a floating point number"))
    }
    fn serialize_char(self, v: char) -> Result<String, TypedError> {
        Ok(v.to_string())
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
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String, TypedError> {
        Err(key_error("an enum variant with data"))
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
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, TypedError> {
        Err(key_error("an enum variant with data"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, TypedError> {
        Err(key_error("a map"))
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, TypedError> {
        Err(key_error("a struct"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, TypedError> {
        Err(key_error("an enum variant with data"))
    }
}

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

fn not_args(found: &str) -> TypedError {
    TypedError::NotAnArgumentList {
        found: found.to_owned(),
    }
}

struct ArgsBuilder(SeqBuilder);

impl ser::SerializeSeq for ArgsBuilder {
    type Ok = Vec<Value>;
    type Error = TypedError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.0.push(v)
    }
    fn end(self) -> Result<Vec<Value>, TypedError> {
        Ok(self.0.items)
    }
}

impl ser::SerializeTuple for ArgsBuilder {
    type Ok = Vec<Value>;
    type Error = TypedError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.0.push(v)
    }
    fn end(self) -> Result<Vec<Value>, TypedError> {
        Ok(self.0.items)
    }
}

impl ser::SerializeTupleStruct for ArgsBuilder {
    type Ok = Vec<Value>;
    type Error = TypedError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
        self.0.push(v)
    }
    fn end(self) -> Result<Vec<Value>, TypedError> {
        Ok(self.0.items)
    }
}

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
    fn serialize_i8(self, _: i8) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a number"))
    }
    fn serialize_i16(self, _: i16) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a number"))
    }
    fn serialize_i32(self, _: i32) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a number"))
    }
    fn serialize_i64(self, _: i64) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a number"))
    }
    fn serialize_i128(self, _: i128) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a number"))
    }
    fn serialize_u8(self, _: u8) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a number"))
    }
    fn serialize_u16(self, _: u16) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a number"))
    }
    fn serialize_u32(self, _: u32) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a number"))
    }
    fn serialize_u64(self, _: u64) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a number"))
    }
    fn serialize_u128(self, _: u128) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a number"))
    }
    fn serialize_f32(self, _: f32) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a number"))
    }
    fn serialize_f64(self, _: f64) -> Result<Vec<Value>, TypedError> {
        Err(not_args("a number"))
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
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Vec<Value>, TypedError> {
        Err(not_args("an enum variant"))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<ArgsBuilder, TypedError> {
        Ok(ArgsBuilder(SeqBuilder::with_capacity(len.unwrap_or(0))))
    }
    fn serialize_tuple(self, len: usize) -> Result<ArgsBuilder, TypedError> {
        Ok(ArgsBuilder(SeqBuilder::with_capacity(len)))
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        len: usize,
    ) -> Result<ArgsBuilder, TypedError> {
        Ok(ArgsBuilder(SeqBuilder::with_capacity(len)))
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, TypedError> {
        Err(not_args("an enum variant"))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, TypedError> {
        Err(not_args("a map"))
    }
    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStruct, TypedError> {
        Err(not_args("a struct"))
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, TypedError> {
        Err(not_args("an enum variant"))
    }
}

// ---------------------------------------------------------------------------------------------
// from_value

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
        Value::Number(n) => {
            let n = *n;
            if n.fract() == 0.0 && (0.0..TWO_64).contains(&n) {
                Unexpected::Unsigned(n as u64)
            } else if n.fract() == 0.0 && (-TWO_63..0.0).contains(&n) {
                Unexpected::Signed(n as i64)
            } else {
                Unexpected::Float(n)
            }
        }
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
        Value::Function(_) => Unexpected::Other("function"),
        Value::Link(_) => Unexpected::Other("circular reference"),
    }
}

/// Integral numbers in range go to `visit_u64` / `visit_i64`, so integer targets work.
fn visit_number<'de, V: Visitor<'de>>(n: f64, visitor: V) -> Result<V::Value, TypedError> {
    // NaN and the infinities have a NaN fraction.
    if n.fract() == 0.0 {
        if (0.0..TWO_64).contains(&n) {
            return visitor.visit_u64(n as u64);
        }
        if (-TWO_63..0.0).contains(&n) {
            return visitor.visit_i64(n as i64);
        }
    }
    visitor.visit_f64(n)
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

struct ValueDeserializer(Value);

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
