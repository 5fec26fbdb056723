//! Serializer methods that differ only in name or type, written once: used by `ser` and `args`
//! (declared first in `typed/mod.rs`, so both see them).

/// `Serializer` methods for scalar types that all answer alike: `|v| body` for each
/// `method: type` listed, returning `Result<$ok, TypedError>`.
macro_rules! serialize_scalars {
    ($ok:ty; |$v:pat_param| $body:expr; $($method:ident: $t:ty),* $(,)?) => {$(
        fn $method(self, $v: $t) -> Result<$ok, TypedError> {
            $body
        }
    )*};
}

/// `SerializeSeq`, `SerializeTuple` and `SerializeTupleStruct` for a builder of elements with
/// `push(&mut self, &T)` and `finish(self) -> $ok`: the three differ only in name.
macro_rules! impl_serialize_seq {
    ($builder:ty => $ok:ty) => {
        impl_serialize_seq!(@one $builder => $ok, SerializeSeq::serialize_element);
        impl_serialize_seq!(@one $builder => $ok, SerializeTuple::serialize_element);
        impl_serialize_seq!(@one $builder => $ok, SerializeTupleStruct::serialize_field);
    };
    (@one $builder:ty => $ok:ty, $trait:ident::$method:ident) => {
        impl ser::$trait for $builder {
            type Ok = $ok;
            type Error = TypedError;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), TypedError> {
                self.push(v)
            }
            fn end(self) -> Result<$ok, TypedError> {
                Ok(self.finish())
            }
        }
    };
}

/// The `Serializer` methods for maps, structs and enum variants with data, in a serializer
/// that refuses them all: each is `Err($refuse(what))`, `what` naming the form, variants with
/// data as `$variant`.
macro_rules! refuse_maps_structs_variants {
    ($refuse:ident, $variant:literal) => {
        fn serialize_newtype_variant<T: Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<Self::Ok, TypedError> {
            Err($refuse($variant))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, TypedError> {
            Err($refuse($variant))
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, TypedError> {
            Err($refuse("a map"))
        }
        fn serialize_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStruct, TypedError> {
            Err($refuse("a struct"))
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, TypedError> {
            Err($refuse($variant))
        }
    };
}
