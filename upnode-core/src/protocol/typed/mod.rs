//! Typed data in and out of [`Value`] through serde: [`to_value`], [`from_value`], [`to_args`],
//! [`from_args`]. The mapping is documented on [`to_value`].
//!
//! - `ser`: the serializer behind [`to_value`] (and the map-key serializer).
//! - `de`: the deserializer behind [`from_value`].
//! - `args`: argument lists, [`to_args`] and [`from_args`], built on the two above.
//! - `error`: [`TypedError`].
//! - `macros`: the serializer methods that differ only in name or type, written once.
//!
//! Function handles and links reach these through the private channel in
//! `protocol::value::handle`; `Serialize` / `Deserialize` for [`Value`] itself are in
//! `protocol::value::serde_impls`. This module depends on `protocol::value` only.
//!
//! [`Value`]: crate::protocol::Value

#[macro_use]
mod macros;

mod args;
mod de;
mod error;
mod ser;

pub use args::{from_args, to_args};
pub use de::from_value;
pub use error::TypedError;
pub use ser::to_value;
