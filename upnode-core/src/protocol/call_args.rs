//! [`CallArgs`]: a call's arguments on their way to the wire, typed data written straight as
//! dnode's JSON where that gives the very bytes the [`Value`] path would.
//!
//! A call's arguments usually come from typed data (`remote.call("echo", &(msg,))`). Going
//! through [`to_args`] builds a [`Value`] tree, writes it, then drops it: for a small call
//! that is most of the caller's work. [`CallArgs::from_typed`] writes the JSON of the
//! arguments at once instead, for the shapes whose bytes it is sure of: scalars, ASCII
//! strings, sequences, tuples, structs and enum variants whose keys are ASCII and do not
//! start with a digit (a key that does is moved first by JavaScript's key order), with no
//! function or link anywhere. On anything else (a map, a function handle, a non-ASCII string
//! or key, a repeated struct key, deep nesting, an error) it gives up and takes the [`Value`]
//! path, so what reaches the wire, and every error, is what [`to_args`] and the message
//! writer make of the same data: the `call_args_equal_the_value_path` tests check it.

use super::json::{write_js_number, write_js_string};
use super::typed::{to_args, TypedError};
use super::value::handle::is_handle_token;
use super::value::Value;
use serde::ser::{self, Serialize, Serializer};
use std::fmt;

/// A call's arguments: some written as JSON already, then some [`Value`]s (the functions a
/// call appends, such as its answer callback, or arguments that were given as values).
///
/// ```
/// use upnode_core::{CallArgs, Value};
///
/// // Typed arguments are written at once where that gives the same bytes...
/// let args = CallArgs::from_typed(&("moo", 5)).unwrap();
/// assert_eq!(args.len(), 2);
/// // ...and values are kept as they are.
/// let args = CallArgs::from(vec![Value::from("moo")]);
/// assert_eq!(args.values(), &[Value::from("moo")]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallArgs {
    /// The first arguments, written: their JSON joined by commas.
    json: Vec<u8>,
    /// How many arguments `json` holds.
    json_len: usize,
    /// The arguments after those.
    values: Vec<Value>,
}

impl CallArgs {
    /// The arguments of a typed argument list (a tuple, an array, a slice, a `Vec`, `()`; see
    /// [`to_args`]), written as JSON at once where that gives the bytes the [`Value`] path
    /// gives, and as [`Value`]s otherwise. Fails as [`to_args`] does.
    pub fn from_typed<T: Serialize + ?Sized>(args: &T) -> Result<CallArgs, TypedError> {
        if let Some(written) = write_args(args) {
            return Ok(written);
        }
        to_args(args).map(CallArgs::from)
    }

    /// Appends an argument.
    pub fn push(&mut self, v: Value) {
        self.values.push(v);
    }

    /// How many arguments there are.
    pub fn len(&self) -> usize {
        self.json_len + self.values.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The arguments held as [`Value`]s: those after the written ones (all of them for
    /// arguments given as values). Every function among the arguments is here.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The written arguments: their JSON, joined by commas, and how many there are.
    pub(crate) fn written(&self) -> (&[u8], usize) {
        (&self.json, self.json_len)
    }

    /// Gives back the room the arguments do not use (the written JSON starts with
    /// [`FIRST_ROOM`] bytes, the values with room for an answer callback): for arguments
    /// that wait, as a call waiting for a slot does.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.json.shrink_to_fit();
        self.values.shrink_to_fit();
    }
}

impl From<Vec<Value>> for CallArgs {
    fn from(values: Vec<Value>) -> CallArgs {
        CallArgs {
            json: Vec::new(),
            json_len: 0,
            values,
        }
    }
}

/// Levels of nesting written at once; deeper data takes the [`Value`] path (whose writer
/// enforces the depth limit).
const MAX_WRITE_DEPTH: u32 = 32;

/// Struct fields checked for a repeated key, over the structs being written (a struct and
/// those around it); more take the [`Value`] path.
const MAX_FIELDS: usize = 32;

/// Room a written argument list starts with: a small call's JSON fits without growing.
const FIRST_ROOM: usize = 128;

/// Writes an argument list, or `None` where the [`Value`] path must decide.
fn write_args<T: Serialize + ?Sized>(args: &T) -> Option<CallArgs> {
    let mut w = Writer {
        out: Vec::with_capacity(FIRST_ROOM),
        depth: 0,
        listed: 0,
        keys: [""; MAX_FIELDS],
        key_count: 0,
    };
    args.serialize(ArgList(&mut w)).ok()?;
    Some(CallArgs {
        json: w.out,
        json_len: w.listed,
        values: Vec::with_capacity(1),
    })
}

/// Written at once is not possible here: the [`Value`] path takes over.
#[derive(Debug)]
struct GiveUp;

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not written at once")
    }
}

impl std::error::Error for GiveUp {}

impl ser::Error for GiveUp {
    fn custom<M: fmt::Display>(_: M) -> GiveUp {
        GiveUp
    }
}

type Done = Result<(), GiveUp>;

struct Writer {
    out: Vec<u8>,
    depth: u32,
    /// Elements of the argument list, once it is written.
    listed: usize,
    /// The keys of the structs being written, outermost first.
    keys: [&'static str; MAX_FIELDS],
    key_count: usize,
}

impl Writer {
    fn string(&mut self, s: &str) -> Done {
        // Non-ASCII text is written per the session's `escape_non_ascii`: the Value path's.
        if !s.is_ascii() {
            return Err(GiveUp);
        }
        write_js_string(&mut self.out, s, false);
        Ok(())
    }

    /// A key: written as the Value path writes it only if JavaScript keeps it in place.
    fn key(&mut self, k: &str) -> Done {
        if k.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            return Err(GiveUp);
        }
        self.string(k)?;
        self.out.push(b':');
        Ok(())
    }

    fn number(&mut self, n: f64) -> Done {
        write_js_number(&mut self.out, n);
        Ok(())
    }

    fn open(&mut self, bracket: u8) -> Done {
        if self.depth >= MAX_WRITE_DEPTH {
            return Err(GiveUp);
        }
        self.depth += 1;
        self.out.push(bracket);
        Ok(())
    }

    fn close(&mut self, bracket: u8) -> Done {
        self.depth -= 1;
        self.out.push(bracket);
        Ok(())
    }

    /// `{"variant":` of an enum variant with data.
    fn open_variant(&mut self, variant: &str) -> Done {
        self.open(b'{')?;
        self.key(variant)
    }
}

/// The argument list itself: what [`to_args`] takes as one (a sequence, `()`), elements
/// comma-separated without brackets. Anything else is left to it (and its error).
struct ArgList<'a>(&'a mut Writer);

/// Serializer methods that give up, listed by name.
macro_rules! give_up {
    ($($method:ident($($t:ty),*) -> $ok:ty;)*) => {$(
        fn $method(self, $(_: $t),*) -> Result<$ok, GiveUp> {
            Err(GiveUp)
        }
    )*};
}

impl<'a> Serializer for ArgList<'a> {
    type Ok = ();
    type Error = GiveUp;
    type SerializeSeq = Elements<'a>;
    type SerializeTuple = Elements<'a>;
    type SerializeTupleStruct = Elements<'a>;
    type SerializeTupleVariant = ser::Impossible<(), GiveUp>;
    type SerializeMap = ser::Impossible<(), GiveUp>;
    type SerializeStruct = ser::Impossible<(), GiveUp>;
    type SerializeStructVariant = ser::Impossible<(), GiveUp>;

    give_up! {
        serialize_bool(bool) -> (); serialize_i8(i8) -> (); serialize_i16(i16) -> ();
        serialize_i32(i32) -> (); serialize_i64(i64) -> (); serialize_u8(u8) -> ();
        serialize_u16(u16) -> (); serialize_u32(u32) -> (); serialize_u64(u64) -> ();
        serialize_f32(f32) -> (); serialize_f64(f64) -> (); serialize_char(char) -> ();
        serialize_str(&str) -> (); serialize_bytes(&[u8]) -> (); serialize_none() -> ();
        serialize_unit_variant(&'static str, u32, &'static str) -> ();
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Done {
        Err(GiveUp)
    }
    fn serialize_unit(self) -> Done {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Done {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, v: &T) -> Done {
        if is_handle_token(name) {
            return Err(GiveUp);
        }
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Done {
        Err(GiveUp)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Elements<'a>, GiveUp> {
        Ok(Elements {
            w: self.0,
            n: 0,
            close: None,
        })
    }
    fn serialize_tuple(self, _: usize) -> Result<Elements<'a>, GiveUp> {
        self.serialize_seq(None)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Elements<'a>, GiveUp> {
        self.serialize_seq(None)
    }
}

/// Elements, comma-separated: of the argument list (no brackets), of an array, or of an
/// enum variant's array (then `close` ends the variant's object too).
struct Elements<'a> {
    w: &'a mut Writer,
    n: usize,
    /// What ends it: `None` for the argument list, `Some(false)` an array, `Some(true)` a
    /// tuple variant's array and object.
    close: Option<bool>,
}

impl Elements<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, v: &T) -> Done {
        if self.n > 0 {
            self.w.out.push(b',');
        }
        self.n += 1;
        v.serialize(&mut *self.w)
    }

    fn finish(self) -> Done {
        match self.close {
            None => self.w.listed = self.n,
            Some(variant) => {
                self.w.close(b']')?;
                if variant {
                    self.w.close(b'}')?;
                }
            }
        }
        Ok(())
    }
}

macro_rules! elements_impl {
    ($($trait:ident::$method:ident),*) => {$(
        impl ser::$trait for Elements<'_> {
            type Ok = ();
            type Error = GiveUp;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Done {
                self.element(v)
            }
            fn end(self) -> Done {
                self.finish()
            }
        }
    )*};
}

elements_impl!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// A struct's fields (of a struct or a struct variant, `variant` then closing its object
/// too), each key checked against those before it: the Value path keeps a repeated key
/// once, in its first place.
struct Fields<'a> {
    w: &'a mut Writer,
    /// Where this struct's keys start in the writer's.
    first_key: usize,
    variant: bool,
}

impl Fields<'_> {
    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Done {
        let w = &mut *self.w;
        let n = w.key_count;
        if n == MAX_FIELDS || w.keys[self.first_key..n].contains(&key) {
            return Err(GiveUp);
        }
        if n > self.first_key {
            w.out.push(b',');
        }
        w.keys[n] = key;
        w.key_count = n + 1;
        w.key(key)?;
        v.serialize(&mut *w)
    }

    fn finish(self) -> Done {
        self.w.key_count = self.first_key;
        self.w.close(b'}')?;
        if self.variant {
            self.w.close(b'}')?;
        }
        Ok(())
    }
}

macro_rules! fields_impl {
    ($($trait:ident),*) => {$(
        impl ser::$trait for Fields<'_> {
            type Ok = ();
            type Error = GiveUp;
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, v: &T) -> Done {
                self.field(key, v)
            }
            fn end(self) -> Done {
                self.finish()
            }
        }
    )*};
}

fields_impl!(SerializeStruct, SerializeStructVariant);

/// Serializer methods for numbers: `method(v: type) => the f64 written`.
macro_rules! write_numbers {
    ($($method:ident($v:ident: $t:ty) => $f:expr;)*) => {$(
        fn $method(self, $v: $t) -> Done {
            self.number($f)
        }
    )*};
}

/// One value, written where it stands.
impl<'a> Serializer for &'a mut Writer {
    type Ok = ();
    type Error = GiveUp;
    type SerializeSeq = Elements<'a>;
    type SerializeTuple = Elements<'a>;
    type SerializeTupleStruct = Elements<'a>;
    type SerializeTupleVariant = Elements<'a>;
    type SerializeMap = ser::Impossible<(), GiveUp>;
    type SerializeStruct = Fields<'a>;
    type SerializeStructVariant = Fields<'a>;

    fn serialize_bool(self, v: bool) -> Done {
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    // As `to_value`: the small types exactly, the wide ones rounded as JavaScript would.
    write_numbers! {
        serialize_i8(v: i8) => f64::from(v); serialize_i16(v: i16) => f64::from(v);
        serialize_i32(v: i32) => f64::from(v); serialize_u8(v: u8) => f64::from(v);
        serialize_u16(v: u16) => f64::from(v); serialize_u32(v: u32) => f64::from(v);
        serialize_f32(v: f32) => f64::from(v); serialize_f64(v: f64) => v;
        serialize_i64(v: i64) => v as f64; serialize_i128(v: i128) => v as f64;
        serialize_u64(v: u64) => v as f64; serialize_u128(v: u128) => v as f64;
    }
    fn serialize_char(self, v: char) -> Done {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Done {
        self.string(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Done {
        let mut seq = ser::Serializer::serialize_seq(self, Some(v.len()))?;
        for b in v {
            ser::SerializeSeq::serialize_element(&mut seq, b)?;
        }
        ser::SerializeSeq::end(seq)
    }
    fn serialize_none(self) -> Done {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Done {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Done {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Done {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Done {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, v: &T) -> Done {
        // A function or a link: the Value path registers it.
        if is_handle_token(name) {
            return Err(GiveUp);
        }
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Done {
        self.open_variant(variant)?;
        v.serialize(&mut *self)?;
        self.close(b'}')
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Elements<'a>, GiveUp> {
        self.open(b'[')?;
        Ok(Elements {
            w: self,
            n: 0,
            close: Some(false),
        })
    }
    fn serialize_tuple(self, _: usize) -> Result<Elements<'a>, GiveUp> {
        self.serialize_seq(None)
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Elements<'a>, GiveUp> {
        self.serialize_seq(None)
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Elements<'a>, GiveUp> {
        self.open_variant(variant)?;
        self.open(b'[')?;
        Ok(Elements {
            w: self,
            n: 0,
            close: Some(true),
        })
    }
    // Keys of a map are checked for repeats by the Value path.
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, GiveUp> {
        Err(GiveUp)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Fields<'a>, GiveUp> {
        self.open(b'{')?;
        Ok(Fields {
            first_key: self.key_count,
            w: self,
            variant: false,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Fields<'a>, GiveUp> {
        self.open_variant(variant)?;
        self.open(b'{')?;
        Ok(Fields {
            first_key: self.key_count,
            w: self,
            variant: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::message::{write_message_with, Method, WriteScratch};
    use crate::protocol::{LocalFn, Map, RemoteFn};
    use proptest::prelude::*;
    use serde::ser::SerializeStruct;
    use serde::Serialize;
    use std::collections::BTreeMap;

    /// A call of `m` with `args` and an answer callback, written the Value path's way and
    /// through [`CallArgs`], each with and without `escape_non_ascii`: the two must agree,
    /// bytes or error. Returns whether the arguments were written at once.
    fn call_args_equal_the_value_path<T: Serialize + ?Sized>(args: &T) -> bool {
        let reply = Value::from(LocalFn(1));
        let mut written = false;
        for ascii_only in [false, true] {
            let by_values = to_args(args).map(|mut v| {
                v.push(reply.clone());
                let mut out = Vec::new();
                let r = write_message_with(
                    &mut WriteScratch::default(),
                    &mut out,
                    &Method::Name("m".into()),
                    (&[], 0),
                    &v,
                    ascii_only,
                    |_| Ok(7),
                );
                r.map(|()| String::from_utf8_lossy(&out).into_owned())
                    .map_err(|e| e.to_string())
            });
            let by_call_args = CallArgs::from_typed(args).map(|mut c| {
                written = c.written().1 > 0;
                c.push(reply.clone());
                assert_eq!(c.len(), c.written().1 + c.values().len());
                let mut out = Vec::new();
                let r = write_message_with(
                    &mut WriteScratch::default(),
                    &mut out,
                    &Method::Name("m".into()),
                    c.written(),
                    c.values(),
                    ascii_only,
                    |_| Ok(7),
                );
                r.map(|()| String::from_utf8_lossy(&out).into_owned())
                    .map_err(|e| e.to_string())
            });
            match (by_values, by_call_args) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "ascii_only {ascii_only}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("{a:?} against {b:?}"),
            }
        }
        written
    }

    #[derive(Serialize, Debug, Clone)]
    struct Unit;

    #[derive(Serialize, Debug, Clone)]
    struct Newtype(i32);

    #[derive(Serialize, Debug, Clone)]
    enum Shape {
        Point,
        Circle(f32),
        Pair(i32, String),
        Rect { w: u16, h: Option<String> },
    }

    #[derive(Serialize, Debug, Clone)]
    struct Inner {
        big: i128,
        unit: Unit,
        newtype: Newtype,
        bytes: serde_bytes_like::Bytes,
    }

    /// `serialize_bytes` without a dependency: a byte string serialized as such.
    mod serde_bytes_like {
        #[derive(Debug, Clone)]
        pub struct Bytes(pub Vec<u8>);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(&self.0)
            }
        }
    }

    #[derive(Serialize, Debug, Clone)]
    struct Sample {
        n: f64,
        i: i64,
        u: u64,
        s: String,
        c: char,
        o: Option<Vec<u8>>,
        shape: Shape,
        pair: (bool, i8),
        inner: Vec<Inner>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u32>,
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[\\x00-\\x7f]{0,12}",
            any::<String>(),
            Just("[Function]".to_owned())
        ]
    }

    fn number() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            Just(-0.0),
            Just(f64::NAN),
            Just(1e21),
            Just(1e-7),
            Just(9_007_199_254_740_993.0)
        ]
    }

    fn shape() -> impl Strategy<Value = Shape> {
        prop_oneof![
            Just(Shape::Point),
            any::<f32>().prop_map(Shape::Circle),
            (any::<i32>(), text()).prop_map(|(a, b)| Shape::Pair(a, b)),
            (any::<u16>(), proptest::option::of(text())).prop_map(|(w, h)| Shape::Rect { w, h }),
        ]
    }

    fn sample() -> impl Strategy<Value = Sample> {
        let inner = (
            any::<i128>(),
            any::<i32>(),
            proptest::collection::vec(any::<u8>(), 0..4),
        )
            .prop_map(|(big, n, b)| Inner {
                big,
                unit: Unit,
                newtype: Newtype(n),
                bytes: serde_bytes_like::Bytes(b),
            });
        (
            (number(), any::<i64>(), any::<u64>(), text(), any::<char>()),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..4)),
            shape(),
            (any::<bool>(), any::<i8>()),
            proptest::collection::vec(inner, 0..3),
            proptest::option::of(any::<u32>()),
        )
            .prop_map(|((n, i, u, s, c), o, shape, pair, inner, skipped)| Sample {
                n,
                i,
                u,
                s,
                c,
                o,
                shape,
                pair,
                inner,
                skipped,
            })
    }

    proptest! {
        #[test]
        fn typed_arguments_are_written_as_the_value_path_writes_them(
            a in sample(),
            b in text(),
            n in number(),
        ) {
            let ascii = a.s.is_ascii()
                && b.is_ascii()
                && match &a.shape {
                    Shape::Pair(_, s) => s.is_ascii(),
                    Shape::Rect { h, .. } => h.as_deref().is_none_or(str::is_ascii),
                    _ => true,
                }
                && a.c.is_ascii();
            let written = call_args_equal_the_value_path(&(a.clone(), b.clone(), n));
            // Everything here but non-ASCII text is written at once.
            prop_assert_eq!(written, ascii);
            call_args_equal_the_value_path(&vec![a]);
            call_args_equal_the_value_path(&[Some(b)]);
        }
    }

    #[test]
    fn argument_lists_of_every_form_are_written_at_once() {
        assert!(call_args_equal_the_value_path(&("moo", 5, true)));
        assert!(call_args_equal_the_value_path(&vec![1u8, 2, 3]));
        assert!(call_args_equal_the_value_path(&[1.5f64; 2][..]));
        assert!(call_args_equal_the_value_path(&(Newtype(3),)));
        // A key of an inner struct may be a key of the struct around it.
        #[derive(Serialize)]
        struct In {
            a: u8,
        }
        #[derive(Serialize)]
        struct Out {
            a: In,
            b: In,
        }
        assert!(call_args_equal_the_value_path(
            &(Keys(&WIDE[..MAX_FIELDS]),)
        ));
        assert!(call_args_equal_the_value_path(&(Out {
            a: In { a: 1 },
            b: In { a: 2 }
        },)));
        // No arguments: nothing to write, and the answer callback is argument 0.
        assert!(!call_args_equal_the_value_path(&()));
        assert!(!call_args_equal_the_value_path(&Unit));
        assert_eq!(CallArgs::from_typed(&()).unwrap().len(), 0);
    }

    /// A struct with these keys, in this order, as a hand-written `Serialize` may write one
    /// (each field's value is its index).
    struct Keys(&'static [&'static str]);

    impl Serialize for Keys {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut st = s.serialize_struct("Keys", self.0.len())?;
            for (i, k) in self.0.iter().enumerate() {
                st.serialize_field(k, &i)?;
            }
            st.end()
        }
    }

    /// More keys than are checked for repeats.
    const WIDE: [&str; 33] = [
        "k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09", "k10", "k11", "k12",
        "k13", "k14", "k15", "k16", "k17", "k18", "k19", "k20", "k21", "k22", "k23", "k24", "k25",
        "k26", "k27", "k28", "k29", "k30", "k31", "k32",
    ];

    /// A value whose `Serialize` fails partway.
    struct Fails;

    impl Serialize for Fails {
        fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(ser::Error::custom("no"))
        }
    }

    fn nested(depth: usize) -> Value {
        (0..depth).fold(Value::from(1), |v, _| Value::array([v]))
    }

    #[test]
    fn what_only_the_value_path_can_write_takes_it() {
        let mut m = BTreeMap::new();
        m.insert("k", 1);
        let cases: [(&str, bool); 12] = [
            ("a map", call_args_equal_the_value_path(&(m,))),
            (
                "a function",
                call_args_equal_the_value_path(&(1, LocalFn(4))),
            ),
            (
                "a remote function",
                call_args_equal_the_value_path(&(RemoteFn(4),)),
            ),
            (
                "an object value",
                call_args_equal_the_value_path(&(Value::Object(Map::new()),)),
            ),
            (
                "a link",
                call_args_equal_the_value_path(&(Value::Link(vec!["0".into()]),)),
            ),
            ("non-ASCII text", call_args_equal_the_value_path(&("é",))),
            ("a non-ASCII char", call_args_equal_the_value_path(&('é',))),
            (
                "a repeated key",
                call_args_equal_the_value_path(&(Keys(&["a", "b", "a"]),)),
            ),
            (
                "a wide struct",
                call_args_equal_the_value_path(&(Keys(&WIDE),)),
            ),
            (
                "a digit key",
                call_args_equal_the_value_path(&(Keys(&["b", "2"]),)),
            ),
            ("a failure", call_args_equal_the_value_path(&(1, Fails))),
            (
                "deep nesting",
                call_args_equal_the_value_path(&(nested(200),)),
            ),
        ];
        for (what, written) in cases {
            assert!(!written, "{what} was written at once");
        }
        // Nesting is written at once up to its own bound, below the Value path's limit.
        let bound = MAX_WRITE_DEPTH as usize;
        assert!(call_args_equal_the_value_path(&(nested(bound),)));
        assert!(!call_args_equal_the_value_path(&(nested(bound + 1),)));
        // What is not an argument list fails as `to_args` fails.
        assert!(!call_args_equal_the_value_path("moo"));
        assert!(!call_args_equal_the_value_path(&5));
        assert!(!call_args_equal_the_value_path(&Some((1,))));
        assert!(!call_args_equal_the_value_path(&Shape::Circle(1.0)));
    }

    #[test]
    fn arguments_that_wait_keep_no_spare_room() {
        let mut args = CallArgs::from_typed(&(1,)).unwrap();
        assert!(args.json.capacity() >= FIRST_ROOM);
        args.shrink_to_fit();
        assert_eq!(args.json.capacity(), args.json.len());
        assert_eq!(args.written(), (&b"1"[..], 1));
    }

    #[test]
    fn values_are_kept_as_values() {
        let args = CallArgs::from(vec![Value::from(1), Value::from(LocalFn(2))]);
        assert_eq!(args.written(), (&[][..], 0));
        assert_eq!(args.len(), 2);
        assert!(!args.is_empty());
        assert!(CallArgs::default().is_empty());
    }
}
