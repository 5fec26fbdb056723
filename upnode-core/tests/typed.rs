//! Typed data through serde: `to_value`, `from_value`, `to_args`, `from_args`.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use upnode_core::protocol::parse_json;
use upnode_core::{
    from_args, from_value, to_args, to_value, Function, LocalFn, Map, RemoteFn, TypedError, Value,
};

fn json(s: &str) -> Value {
    parse_json(s.as_bytes()).unwrap()
}

fn round_trip<T>(v: &T) -> T
where
    T: Serialize + serde::de::DeserializeOwned,
{
    from_value(to_value(v).unwrap()).unwrap()
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Address {
    street: String,
    number: u16,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Person {
    name: String,
    age: u32,
    balance: i64,
    score: f64,
    tags: Vec<String>,
    address: Option<Address>,
    nickname: Option<String>,
}

#[test]
fn struct_with_nested_fields_round_trips_and_keeps_field_order() {
    let p = Person {
        name: "Ada".into(),
        age: 36,
        balance: -12,
        score: 0.5,
        tags: vec!["x".into(), "y".into()],
        address: Some(Address {
            street: "Main".into(),
            number: 7,
        }),
        nickname: None,
    };
    let v = to_value(&p).unwrap();
    assert_eq!(
        v.to_json_string(),
        r#"{"name":"Ada","age":36,"balance":-12,"score":0.5,"tags":["x","y"],"address":{"street":"Main","number":7},"nickname":null}"#
    );
    assert_eq!(v.get("age"), Some(&Value::Number(36.0)));
    assert_eq!(from_value::<Person>(v).unwrap(), p);
}

#[test]
fn struct_fields_follow_declaration_order_not_alphabetical() {
    #[derive(Serialize)]
    struct Order {
        zeta: u8,
        alpha: u8,
        mid: u8,
    }
    let v = to_value(&Order {
        zeta: 1,
        alpha: 2,
        mid: 3,
    })
    .unwrap();
    let Value::Object(m) = &v else {
        panic!("{v:?}")
    };
    let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["zeta", "alpha", "mid"]);
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Shape {
    Point,
    Circle(f64),
    Segment(i32, i32),
    Rect { w: u32, h: u32 },
}

#[test]
fn enum_variants_are_externally_tagged_like_serde_json() {
    let cases = [
        (Shape::Point, r#""Point""#),
        (Shape::Circle(1.5), r#"{"Circle":1.5}"#),
        (Shape::Segment(-1, 2), r#"{"Segment":[-1,2]}"#),
        (Shape::Rect { w: 3, h: 4 }, r#"{"Rect":{"w":3,"h":4}}"#),
    ];
    for (shape, want) in cases {
        let v = to_value(&shape).unwrap();
        assert_eq!(v.to_json_string(), want);
        assert_eq!(
            serde_json::to_string(&shape).unwrap(),
            want,
            "same as serde_json"
        );
        assert_eq!(from_value::<Shape>(v).unwrap(), shape);
    }
    // A unit variant written as {"Point":null} reads too.
    assert_eq!(
        from_value::<Shape>(json(r#"{"Point":null}"#)).unwrap(),
        Shape::Point
    );
}

#[test]
fn enum_from_wrong_shape_is_an_error() {
    let err = from_value::<Shape>(json(r#"{"Circle":1,"Point":null}"#)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid type: map, expected an enum: a variant name or an object with a single key"
    );
    let err = from_value::<Shape>(json(r#""Hexagon""#)).unwrap_err();
    assert!(
        err.to_string().contains("unknown variant `Hexagon`"),
        "{err}"
    );
    let err = from_value::<Shape>(json(r#""Circle""#)).unwrap_err();
    assert!(matches!(err, TypedError::InvalidType { .. }), "{err:?}");
    let err = from_value::<Shape>(json(r#"{"Segment":5}"#)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid type: integer `5`, expected tuple variant Shape::Segment"
    );
}

#[test]
fn map_keys_integers_bools_and_chars_become_strings_and_read_back() {
    let m: BTreeMap<u32, &str> = [(2, "two"), (10, "ten")].into_iter().collect();
    let v = to_value(&m).unwrap();
    assert_eq!(v.get("2"), Some(&Value::from("two")));
    assert_eq!(v.to_json_string(), r#"{"2":"two","10":"ten"}"#);
    let back: BTreeMap<u32, String> = from_value(v).unwrap();
    assert_eq!(back[&10], "ten");

    let m: HashMap<i64, bool> = [(-3, true)].into_iter().collect();
    let v = to_value(&m).unwrap();
    assert_eq!(v, Value::object([("-3", Value::Bool(true))]));
    assert_eq!(from_value::<HashMap<i64, bool>>(v).unwrap(), m);

    let m: BTreeMap<bool, u8> = [(false, 0), (true, 1)].into_iter().collect();
    let v = to_value(&m).unwrap();
    assert_eq!(v.to_json_string(), r#"{"false":0,"true":1}"#);
    assert_eq!(from_value::<BTreeMap<bool, u8>>(v).unwrap(), m);

    let m: BTreeMap<char, u8> = [('x', 1)].into_iter().collect();
    assert_eq!(round_trip(&m), m);
}

#[test]
fn map_key_that_is_not_a_number_is_a_type_error() {
    let err = from_value::<HashMap<u32, u8>>(json(r#"{"seven":7}"#)).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid type: string "seven", expected u32"#
    );
}

#[test]
fn non_string_map_keys_are_errors() {
    let m: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into_iter().collect();
    let err = to_value(&m).unwrap_err();
    assert_eq!(err, TypedError::KeyNotAString { found: "a tuple" });
    assert_eq!(
        err.to_string(),
        "map key must be a string, an integer, a char or a bool, not a tuple"
    );

    let mut m = HashMap::new();
    m.insert(Some("k"), 1);
    assert_eq!(
        to_value(&m).unwrap_err(),
        TypedError::KeyNotAString { found: "an Option" }
    );

    let mut m = HashMap::new();
    m.insert(RemoteFn(1), 1);
    assert_eq!(
        to_value(&m).unwrap_err(),
        TypedError::KeyNotAString {
            found: "a function"
        }
    );

    #[derive(Serialize)]
    struct FloatKeys(Vec<(f64, u8)>);
    impl FloatKeys {
        fn as_map(&self) -> impl Serialize + '_ {
            struct M<'a>(&'a [(f64, u8)]);
            impl Serialize for M<'_> {
                fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
                }
            }
            M(&self.0)
        }
    }
    let fk = FloatKeys(vec![(1.5, 1)]);
    assert_eq!(
        to_value(&fk.as_map()).unwrap_err(),
        TypedError::KeyNotAString {
            found: "a floating point number"
        }
    );
}

#[test]
fn tuples_options_units_and_newtypes_map_as_documented() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Meters(f64);
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Marker;
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Pair(u8, String);

    assert_eq!(to_value(&None::<u8>).unwrap(), Value::Null);
    assert_eq!(to_value(&Some(3u8)).unwrap(), Value::Number(3.0));
    assert_eq!(to_value(&()).unwrap(), Value::Null);
    assert_eq!(to_value(&Marker).unwrap(), Value::Null);
    assert_eq!(to_value(&Meters(2.5)).unwrap(), Value::Number(2.5));
    assert_eq!(
        to_value(&Pair(1, "a".into())).unwrap().to_json_string(),
        r#"[1,"a"]"#
    );
    assert_eq!(
        to_value(&(1u8, "a", true, None::<()>))
            .unwrap()
            .to_json_string(),
        r#"[1,"a",true,null]"#
    );
    assert_eq!(to_value(&'é').unwrap(), Value::from("é"));

    assert_eq!(round_trip(&Some(Some(4u8))), Some(Some(4)));
    assert_eq!(round_trip(&None::<String>), None);
    assert_eq!(round_trip(&Meters(2.5)), Meters(2.5));
    assert_eq!(round_trip(&Marker), Marker);
    assert_eq!(round_trip(&Pair(1, "a".into())), Pair(1, "a".into()));
    assert_eq!(round_trip(&(1u8, -2i16, 'c')), (1, -2, 'c'));
    assert_eq!(round_trip(&[1u32, 2, 3]), [1, 2, 3]);
    from_value::<()>(Value::Null).unwrap();
}

#[test]
fn bytes_serialize_as_an_array_of_numbers() {
    struct Bytes<'a>(&'a [u8]);
    impl Serialize for Bytes<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    assert_eq!(
        to_value(&Bytes(b"hi")).unwrap().to_json_string(),
        "[104,105]"
    );
    assert_eq!(
        from_value::<Vec<u8>>(json("[104,105]")).unwrap(),
        b"hi".to_vec()
    );
}

#[test]
fn u64_beyond_2_pow_53_loses_precision_as_in_javascript() {
    let big: u64 = (1 << 53) + 1;
    let v = to_value(&big).unwrap();
    assert_eq!(v, Value::Number(9_007_199_254_740_992.0));
    assert_eq!(v.to_json_string(), "9007199254740992");
    // The lost bit stays lost: it reads back as 2^53, as `JSON.parse` would give.
    assert_eq!(from_value::<u64>(v).unwrap(), 1 << 53);

    // Exactly representable large integers survive.
    assert_eq!(round_trip(&(1u64 << 60)), 1 << 60);
    assert_eq!(round_trip(&i64::MIN), i64::MIN);

    // u64::MAX rounds up to 2^64, which no u64 holds: an error, not a wrap.
    let err = from_value::<u64>(to_value(&u64::MAX).unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid type: floating point `18446744073709552000.0`, expected u64"
    );
}

#[test]
fn integer_targets_accept_integral_numbers_only_in_range() {
    assert_eq!(from_value::<u8>(Value::Number(255.0)).unwrap(), 255);
    assert_eq!(from_value::<i32>(Value::Number(-5.0)).unwrap(), -5);
    assert_eq!(from_value::<f32>(Value::Number(2.0)).unwrap(), 2.0);
    assert_eq!(from_value::<u8>(Value::Number(-0.0)).unwrap(), 0);

    let err = from_value::<u8>(Value::Number(300.0)).unwrap_err();
    assert_eq!(err.to_string(), "invalid value: integer `300`, expected u8");
    let err = from_value::<u32>(Value::Number(1.5)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid type: floating point `1.5`, expected u32"
    );
    let err = from_value::<u32>(Value::Number(-1.0)).unwrap_err();
    assert_eq!(err.to_string(), "invalid value: integer `-1`, expected u32");
    assert!(from_value::<i64>(Value::Number(f64::NAN)).is_err());
    assert!(from_value::<f64>(Value::Number(f64::INFINITY))
        .unwrap()
        .is_infinite());
}

#[test]
fn non_finite_floats_become_numbers_written_as_null() {
    let v = to_value(&[f64::NAN, f64::INFINITY, 1.0]).unwrap();
    assert_eq!(v.to_json_string(), "[null,null,1]");
}

#[test]
fn wrong_types_are_errors_with_clear_messages() {
    let cases: Vec<(TypedError, &str)> = vec![
        (
            from_value::<String>(Value::Number(5.0)).unwrap_err(),
            "invalid type: integer `5`, expected a string",
        ),
        (
            from_value::<String>(Value::Null).unwrap_err(),
            "invalid type: null, expected a string",
        ),
        (
            from_value::<bool>(json(r#""true""#)).unwrap_err(),
            r#"invalid type: string "true", expected a boolean"#,
        ),
        (
            from_value::<Vec<u8>>(json("{}")).unwrap_err(),
            "invalid type: map, expected a sequence",
        ),
        (
            from_value::<Address>(json(r#""Main 7""#)).unwrap_err(),
            r#"invalid type: string "Main 7", expected struct Address"#,
        ),
        (
            from_value::<Address>(json(r#"{"street":"Main"}"#)).unwrap_err(),
            "missing field `number`",
        ),
        (
            from_value::<(u8, u8)>(json("[1,2,3]")).unwrap_err(),
            "invalid length 3, expected fewer elements in array",
        ),
        (
            from_value::<(u8, u8)>(json("[1]")).unwrap_err(),
            "invalid length 1, expected a tuple of size 2",
        ),
        (
            from_value::<u8>(Value::from(LocalFn(1))).unwrap_err(),
            "invalid type: function, expected u8",
        ),
        (
            from_value::<serde_json::Value>(Value::from(RemoteFn(1))).unwrap_err(),
            "invalid type: function, expected any valid JSON value",
        ),
    ];
    for (err, want) in cases {
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn structs_read_from_arrays_positionally() {
    let a: Address = from_value(json(r#"["Main",7]"#)).unwrap();
    assert_eq!(
        a,
        Address {
            street: "Main".into(),
            number: 7
        }
    );
}

#[test]
fn unknown_struct_fields_are_ignored() {
    let a: Address =
        from_value(json(r#"{"number":7,"extra":[1,{"f":2}],"street":"Main"}"#)).unwrap();
    assert_eq!(a.number, 7);
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Opts {
    name: String,
    on_data: RemoteFn,
}

#[test]
fn struct_with_remote_fn_round_trips() {
    let opts = Opts {
        name: "feed".into(),
        on_data: RemoteFn(42),
    };
    let v = to_value(&opts).unwrap();
    assert_eq!(
        v,
        Value::object([
            ("name", Value::from("feed")),
            ("on_data", Value::Function(Function::Remote(RemoteFn(42)))),
        ])
    );
    assert_eq!(from_value::<Opts>(v).unwrap(), opts);
}

#[test]
fn functions_nested_in_structs_and_vecs_round_trip() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Inner {
        mine: LocalFn,
        theirs: Option<RemoteFn>,
        any: Function,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Outer {
        handlers: Vec<Inner>,
        by_name: BTreeMap<String, Vec<RemoteFn>>,
        opts: Opts,
        raw: Value,
    }
    let outer = Outer {
        handlers: vec![
            Inner {
                mine: LocalFn(0),
                theirs: Some(RemoteFn(5)),
                any: Function::Local(LocalFn(9)),
            },
            Inner {
                mine: LocalFn(1),
                theirs: None,
                any: Function::Remote(RemoteFn(8)),
            },
        ],
        by_name: [("end".to_owned(), vec![RemoteFn(2), RemoteFn(3)])]
            .into_iter()
            .collect(),
        opts: Opts {
            name: "n".into(),
            on_data: RemoteFn(7),
        },
        raw: Value::array([Value::from(LocalFn(4)), Value::Link(vec!["0".into()])]),
    };
    let v = to_value(&outer).unwrap();
    let mut found = Vec::new();
    v.for_each_function(&mut |f| found.push(f));
    assert_eq!(
        found,
        [
            Function::Local(LocalFn(0)),
            Function::Remote(RemoteFn(5)),
            Function::Local(LocalFn(9)),
            Function::Local(LocalFn(1)),
            Function::Remote(RemoteFn(8)),
            Function::Remote(RemoteFn(2)),
            Function::Remote(RemoteFn(3)),
            Function::Remote(RemoteFn(7)),
            Function::Local(LocalFn(4)),
        ]
    );
    assert_eq!(
        v.to_json_string(),
        r#"{"handlers":[{"mine":"[Function]","theirs":"[Function]","any":"[Function]"},{"mine":"[Function]","theirs":null,"any":"[Function]"}],"by_name":{"end":["[Function]","[Function]"]},"opts":{"name":"n","on_data":"[Function]"},"raw":["[Function]","[Circular]"]}"#
    );
    assert_eq!(from_value::<Outer>(v).unwrap(), outer);
}

#[test]
fn foreign_serializers_see_function_and_circular_placeholders() {
    let opts = Opts {
        name: "x".into(),
        on_data: RemoteFn(1),
    };
    assert_eq!(
        serde_json::to_string(&opts).unwrap(),
        r#"{"name":"x","on_data":"[Function]"}"#
    );
    let v = Value::object([
        ("f", Value::from(LocalFn(3))),
        ("self", Value::Link(vec![])),
        ("n", Value::from(5)),
        ("x", Value::from(0.25)),
        ("neg", Value::from(-7)),
    ]);
    assert_eq!(
        serde_json::to_string(&v).unwrap(),
        r#"{"f":"[Function]","self":"[Circular]","n":5,"x":0.25,"neg":-7}"#
    );
}

#[test]
fn foreign_deserializers_cannot_forge_function_handles() {
    let err = serde_json::from_str::<RemoteFn>(r#""[Function]""#).unwrap_err();
    assert!(
        err.to_string()
            .contains("function handles can only be read from an upnode Value"),
        "{err}"
    );
    assert!(serde_json::from_str::<LocalFn>("5").is_err());
    assert!(serde_json::from_str::<Function>(r#"{"$upnode_core::private::Remote":5}"#).is_err());
    assert!(serde_json::from_str::<Opts>(r#"{"name":"x","on_data":"[Function]"}"#).is_err());
    // The JSON reader keeps such an object as plain data.
    let v = json(r#"{"$upnode_core::private::Remote":5}"#);
    assert_eq!(
        v,
        Value::object([("$upnode_core::private::Remote", Value::from(5))])
    );
    let mut found = 0;
    v.for_each_function(&mut |_| found += 1);
    assert_eq!(found, 0);
}

#[test]
fn remote_fn_from_a_non_function_is_a_clear_error() {
    let err = from_value::<RemoteFn>(Value::from("[Function]")).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid type: string "[Function]", expected a function handle"#
    );
    let err = from_value::<Opts>(json(r#"{"name":"x","on_data":null}"#)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid type: null, expected a function handle"
    );
    let err = from_value::<RemoteFn>(Value::from(LocalFn(1))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid type: one of our own functions (LocalFn), expected the peer's function (RemoteFn)"
    );
    let err = from_value::<LocalFn>(Value::from(RemoteFn(1))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid type: the peer's function (RemoteFn), expected one of our own functions (LocalFn)"
    );
    let err = from_value::<Function>(Value::Link(vec![])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid type: circular reference, expected a function handle"
    );
}

#[test]
fn to_value_of_a_value_is_the_identity_with_functions_and_links() {
    let v = Value::object([
        ("10", Value::from(1)),
        ("b", Value::Null),
        ("a", Value::from(-0.5)),
        (
            "list",
            Value::array([
                Value::from(LocalFn(1)),
                Value::from(RemoteFn(2)),
                Value::Link(vec!["list".into(), "0".into()]),
                Value::Link(vec![]),
                Value::Link(vec!["with:colon".into(), "".into(), "ü".into()]),
            ]),
        ),
        ("big", Value::from(1e300)),
        ("huge_int", Value::from(2f64.powi(70))),
        ("min", Value::from(-(2f64.powi(63)))),
    ]);
    assert_eq!(to_value(&v).unwrap(), v);
    assert_eq!(from_value::<Value>(v.clone()).unwrap(), v);
    let map = match &v {
        Value::Object(m) => m.clone(),
        _ => unreachable!(),
    };
    assert_eq!(to_value(&map).unwrap(), v);
}

#[test]
fn links_read_as_absent_for_typed_targets_and_stay_links_for_values() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Node {
        a: u32,
        #[serde(rename = "self")]
        me: Option<Box<Node>>,
        raw: Value,
    }
    let v = Value::object([
        ("a", Value::from(1)),
        ("self", Value::Link(vec![])),
        ("raw", Value::Link(vec!["0".into()])),
    ]);
    let n: Node = from_value(v).unwrap();
    assert_eq!(
        n,
        Node {
            a: 1,
            me: None,
            raw: Value::Link(vec!["0".into()])
        }
    );
    from_value::<()>(Value::Link(vec![])).unwrap();
    let err = from_value::<String>(Value::Link(vec![])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid type: circular reference, expected a string"
    );
    let err = from_value::<serde_json::Value>(Value::Link(vec![])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid type: circular reference, expected any valid JSON value"
    );
}

#[test]
fn functions_inside_untagged_enums_are_an_error_not_a_panic() {
    #[derive(Deserialize, Debug)]
    #[serde(untagged)]
    #[allow(dead_code)]
    enum Either {
        F(RemoteFn),
        S(String),
    }
    assert!(from_value::<Either>(Value::from(RemoteFn(1))).is_err());
    // Plain data still works through untagged and flattened types.
    assert!(matches!(
        from_value::<Either>(Value::from("s")).unwrap(),
        Either::S(s) if s == "s"
    ));
    #[derive(Deserialize, Debug, PartialEq)]
    struct Flat {
        a: u8,
        #[serde(flatten)]
        rest: BTreeMap<String, Value>,
    }
    let f: Flat = from_value(json(r#"{"a":1,"b":[true]}"#)).unwrap();
    assert_eq!(f.rest["b"], Value::array([Value::Bool(true)]));
}

// --- argument lists ------------------------------------------------------------------------

#[test]
fn to_args_takes_tuples_arrays_vecs_and_unit() {
    assert_eq!(
        to_args(&(1, "two", RemoteFn(3))).unwrap(),
        vec![Value::from(1), Value::from("two"), Value::from(RemoteFn(3))]
    );
    assert_eq!(
        to_args(&[true, false]).unwrap(),
        vec![Value::Bool(true), Value::Bool(false)]
    );
    assert_eq!(
        to_args(&vec![Some(1), None]).unwrap(),
        vec![Value::from(1), Value::Null]
    );
    assert_eq!(to_args(&[0u8; 0][..]).unwrap(), vec![]);
    assert_eq!(to_args(&()).unwrap(), vec![]);
    assert_eq!(to_args(&("only",)).unwrap(), vec![Value::from("only")]);
    assert_eq!(
        to_args(&Value::array([Value::from(LocalFn(0))])).unwrap(),
        vec![Value::from(LocalFn(0))]
    );
    #[derive(Serialize)]
    struct Wrapped((u8, u8));
    assert_eq!(
        to_args(&Wrapped((1, 2))).unwrap(),
        vec![Value::from(1), Value::from(2)]
    );
}

#[test]
fn to_args_rejects_non_lists_and_says_to_use_a_1_tuple() {
    let err = to_args("moo").unwrap_err();
    assert_eq!(
        err,
        TypedError::NotAnArgumentList {
            found: "a string".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "an argument list is a tuple, an array or a Vec, not a string; \
         wrap a single argument in a 1-tuple: `(arg,)`"
    );
    let opts = Opts {
        name: "x".into(),
        on_data: RemoteFn(1),
    };
    assert!(matches!(
        to_args(&opts),
        Err(TypedError::NotAnArgumentList { found }) if found == "a struct"
    ));
    assert!(to_args(&5u8).is_err());
    assert!(to_args(&RemoteFn(1)).is_err());
    assert!(to_args(&None::<(u8,)>).is_err());
    assert!(to_args(&Shape::Point).is_err());
    assert!(to_args(&HashMap::<String, u8>::new()).is_err());
}

#[test]
fn from_args_pads_missing_trailing_arguments_with_null() {
    let (err, v): (Option<String>, Option<Value>) = from_args(vec![Value::Null]).unwrap();
    assert_eq!((err, v), (None, None));
    let (a, b, c): (u8, Option<u8>, Option<Vec<u8>>) = from_args(vec![Value::from(1)]).unwrap();
    assert_eq!((a, b, c), (1, None, None));
    let arr: [Option<bool>; 3] = from_args(vec![Value::Bool(true)]).unwrap();
    assert_eq!(arr, [Some(true), None, None]);
    let err = from_args::<(u8, String)>(vec![Value::from(1)]).unwrap_err();
    assert_eq!(err.to_string(), "invalid type: null, expected a string");
}

#[test]
fn from_args_ignores_extra_arguments() {
    let (a,): (String,) = from_args(vec![
        Value::from("first"),
        Value::from(2),
        Value::from(RemoteFn(3)),
    ])
    .unwrap();
    assert_eq!(a, "first");
    from_args::<()>(vec![Value::from(1), Value::Null]).unwrap();
    from_args::<()>(vec![]).unwrap();
}

#[test]
fn from_args_into_a_vec_takes_exactly_the_arguments() {
    let all: Vec<Value> = from_args(vec![Value::from(1), Value::Null]).unwrap();
    assert_eq!(all, vec![Value::from(1), Value::Null]);
    let none: Vec<u8> = from_args(vec![]).unwrap();
    assert!(none.is_empty());
}

#[test]
fn from_args_into_a_struct_reads_positionally() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Reply {
        err: Option<String>,
        count: u32,
        more: Option<RemoteFn>,
    }
    let r: Reply = from_args(vec![Value::Null, Value::from(4)]).unwrap();
    assert_eq!(
        r,
        Reply {
            err: None,
            count: 4,
            more: None
        }
    );
}

#[test]
fn from_args_into_a_non_list_says_to_use_a_1_tuple() {
    let err = from_args::<String>(vec![Value::from("x")]).unwrap_err();
    assert_eq!(
        err,
        TypedError::NotAnArgumentList {
            found: "a string".into()
        }
    );
    assert!(err.to_string().contains("1-tuple"));
    assert!(from_args::<u32>(vec![]).is_err());
    assert!(from_args::<RemoteFn>(vec![Value::from(RemoteFn(1))]).is_err());
    assert!(from_args::<Option<(u8,)>>(vec![]).is_err());
    assert!(from_args::<HashMap<String, u8>>(vec![]).is_err());
}

#[derive(Deserialize, Debug, PartialEq)]
struct Beep {
    beep: RemoteFn,
}

#[test]
fn node_callback_with_null_error_and_object_holding_a_function() {
    // {"method":1,"arguments":[null,{"beep":"[Function]"}],"callbacks":{"2":["1","beep"]}}
    let args = vec![
        Value::Null,
        Value::object([("beep", Value::from(RemoteFn(2)))]),
    ];
    let (err, beep): (Option<String>, Beep) = from_args(args).unwrap();
    assert_eq!(err, None);
    assert_eq!(beep, Beep { beep: RemoteFn(2) });
}

#[test]
fn node_callback_with_an_error_string_and_no_result() {
    // cb("ACCESS DENIED")
    let (err, beep): (Option<String>, Option<Beep>) =
        from_args(vec![Value::from("ACCESS DENIED")]).unwrap();
    assert_eq!(err.as_deref(), Some("ACCESS DENIED"));
    assert_eq!(beep, None);
    // Reading the result as required then fails cleanly.
    let err = from_args::<(Option<String>, Beep)>(vec![Value::from("ACCESS DENIED")]).unwrap_err();
    assert_eq!(err.to_string(), "invalid type: null, expected struct Beep");
}

#[test]
fn args_round_trip_through_to_args_and_from_args() {
    let args = (
        None::<String>,
        Opts {
            name: "n".into(),
            on_data: RemoteFn(11),
        },
    );
    let back: (Option<String>, Opts) = from_args(to_args(&args).unwrap()).unwrap();
    assert_eq!(back, args);
}

// --- properties ----------------------------------------------------------------------------

fn arb_value(with_handles: bool) -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        any::<i64>().prop_map(|n| n as f64),
        any::<u64>().prop_map(|n| n as f64),
        any::<f64>().prop_filter("NaN is not equal to itself", |n| !n.is_nan()),
        (-1000i32..1000).prop_map(f64::from),
    ];
    let handles = if with_handles { 1u32 } else { 0 };
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number.prop_map(Value::Number),
        ".{0,8}".prop_map(Value::String),
        (0..handles + 1, any::<u64>(), any::<bool>()).prop_map(move |(on, id, local)| {
            match (on, local) {
                (0, _) => Value::Null,
                (_, true) => Value::from(LocalFn(id)),
                (_, false) => Value::from(RemoteFn(id)),
            }
        }),
        (0..handles + 1, prop::collection::vec(".{0,4}", 0..4)).prop_map(|(on, path)| {
            if on == 0 {
                Value::Null
            } else {
                Value::Link(path)
            }
        }),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((".{0,6}", inner), 0..6)
                .prop_map(|entries| Value::Object(Map::from_entries(entries))),
        ]
    })
}

proptest! {
    #[test]
    fn json_like_values_survive_from_value_then_to_value(v in arb_value(false)) {
        let back: Value = from_value(v.clone()).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(to_value(&back).unwrap(), v);
    }

    #[test]
    fn values_with_functions_and_links_survive_both_ways(v in arb_value(true)) {
        prop_assert_eq!(to_value(&v).unwrap(), v.clone());
        prop_assert_eq!(from_value::<Value>(v.clone()).unwrap(), v.clone());
        let args = vec![v.clone(), Value::Null];
        let back: (Value, Option<Value>, Option<Value>) = from_args(args).unwrap();
        prop_assert_eq!(back, (v, None, None));
    }

    #[test]
    fn json_text_reads_the_same_as_through_serde_json(v in arb_value(false)) {
        // Values without functions: serde_json writes what the Node-exact writer reads back.
        let text = serde_json::to_string(&v).unwrap();
        let reparsed = parse_json(text.as_bytes()).unwrap();
        prop_assert_eq!(reparsed.to_json_string(), v.to_json_string());
    }
}
