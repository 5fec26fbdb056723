//! The private channel that carries function handles and links through serde, and the
//! `Serialize` / `Deserialize` impls of [`Function`], [`LocalFn`] and [`RemoteFn`].
//!
//! Only upnode's own serializer and deserializer ([`to_value`](crate::protocol::to_value),
//! [`from_value`](crate::protocol::from_value) and the argument-list pair) carry the handle
//! itself; every other format sees a placeholder string, and none can forge a handle.
//!
//! Serializing: `Function` and `Value::Link` serialize as a newtype struct with a reserved name
//! around a `Placeholder`. The placeholder serializes through `collect_str`; its `Display` prints
//! `[Function]` / `[Circular]` normally, and an encoding of the handle only under the `{:+#}`
//! flags, which only our serializer asks for. So foreign serializers write the placeholder.
//!
//! Deserializing: our deserializer hands functions and links to a visitor through `visit_enum`
//! with reserved variant names. No deserializer of a text format calls `visit_enum` from
//! `deserialize_any` or `deserialize_newtype_struct`, so a handle cannot be forged from text.

use super::{Function, LocalFn, Path, RemoteFn, Value};
use serde::de::{self, EnumAccess, Unexpected, VariantAccess, Visitor};
use serde::ser::{Serialize, Serializer};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// The newtype-struct name a [`Function`] serializes under.
pub(crate) const FUNCTION_TOKEN: &str = "$upnode_core::private::Function";
/// The newtype-struct name a [`Value::Link`] serializes under.
pub(crate) const LINK_TOKEN: &str = "$upnode_core::private::Link";

/// Whether a newtype-struct name is one a function or a link serializes under.
pub(crate) fn is_handle_token(name: &str) -> bool {
    name == FUNCTION_TOKEN || name == LINK_TOKEN
}

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
pub(crate) fn decode_placeholder(encoded: &str) -> Option<Value> {
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

    /// The reserved enum variant name it is handed over under.
    pub(crate) fn variant_name(&self) -> &'static str {
        match self {
            NonJson::Function(Function::Local(_)) => LOCAL_VARIANT,
            NonJson::Function(Function::Remote(_)) => REMOTE_VARIANT,
            NonJson::Link(_) => LINK_VARIANT,
        }
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

/// Serializes a [`Value::Link`] through the channel: our serializer reads the path back, any
/// other one writes `"[Circular]"`.
pub(super) fn serialize_link<S: Serializer>(path: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_newtype_struct(LINK_TOKEN, &Placeholder::Link(path))
}
