//! [`TypedError`]: why typed data could not become a [`Value`](crate::protocol::Value) or be
//! read back out of one.

use serde::de::{self, Expected, Unexpected};
use serde::ser;
use std::fmt;

/// Why typed data could not be turned into a [`Value`](crate::protocol::Value) or read back out
/// of one.
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
    /// [`to_args`](super::to_args) or [`from_args`](super::from_args) was given something that
    /// is not a list of arguments.
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
    pub(super) fn retype_enum(self, what: &str) -> TypedError {
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
