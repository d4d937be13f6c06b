//! The rule of the plain reader: what it accepts, serde_json accepts with
//! the same value; and it accepts every plain text serde_json accepts.

use super::*;
use crate::server::api::batch::{TypedBatch, TypedItem, MAX_BATCH_ITEMS};
use crate::wire::messages::SymmetricRequest;
use proptest::prelude::*;

/// What a symmetric batch item says, comparable.
type ItemView = (Option<String>, Vec<u8>, String, String, Vec<u8>, Vec<u8>, u32, bool);

fn view_item(TypedItem { reference, request: r }: TypedItem<SymmetricRequest>) -> ItemView {
    let reference = reference.map(|text| text.into_owned());
    let (name, algorithm) = (r.key_name.into_owned(), r.algorithm.into_owned());
    (reference, r.input.0, name, algorithm, r.aad.0, r.iv.0, r.key_version, r.versioned)
}

fn view(batch: TypedBatch<SymmetricRequest>) -> Vec<ItemView> {
    batch.items.into_iter().map(view_item).collect()
}

fn plain_batch(text: &str) -> std::result::Result<Vec<ItemView>, NotPlain> {
    from_str::<TypedBatch<SymmetricRequest>>(text).map(view)
}

fn serde_batch(text: &str) -> std::result::Result<Vec<ItemView>, String> {
    serde_json::from_str::<TypedBatch<SymmetricRequest>>(text).map(view).map_err(|e| e.to_string())
}

#[test]
fn a_plain_batch_reads_as_serde_json_reads_it() {
    let text = r#" {"items": [
        {"keyName": "k1", "algorithm": "AES/GCM/NoPadding", "input": "aGVsbG8=", "reference": "r-1"},
        {"key_name":"k2","input":"","keyVersion":7,"versioned":true,"reference":null,"aad":null},
        {"keyName":"k3","keyVersion":"12","iv":"AAAAAAAAAAAAAAAA","algorithm":"AES/CBC/PKCS5Padding"},
        {}
    ]}
    "#;
    let plain = plain_batch(text).expect("plain");
    assert_eq!(plain.len(), 4);
    assert_eq!(plain[0].0.as_deref(), Some("r-1"));
    assert_eq!(plain[0].1, b"hello");
    assert_eq!(plain[1].6, 7);
    assert_eq!(plain[2].6, 12);
    assert_eq!(Ok(plain), serde_batch(text));
}

#[test]
fn anything_not_plain_goes_to_serde_json() {
    let cases = [
        r#"{"items":[{"keyName":"\u006b"}]}"#,          // an escape
        r#"{"items":[{"keyName":"a\"b"}]}"#,            // an escaped quote
        "{\"items\":[{\"keyName\":\"a\tb\"}]}",         // a raw control character (serde_json refuses it too)
        r#"{"items":[{"keyVersion":1.0}]}"#,            // a fraction
        r#"{"items":[{"keyVersion":1e1}]}"#,            // an exponent
        r#"{"items":[{"keyVersion":-1}]}"#,             // a sign
        r#"{"items":[{"keyVersion":01}]}"#,             // a leading zero
        r#"{"items":[{"keyName":"k"}],}"#,              // a trailing comma
        r#"{"items":[{"keyName":"k"}]} x"#,             // trailing text
        r#"{"items":[{"keyName":"k","keyName":"k"}]}"#, // a duplicate (the type refuses it)
        r#"{"items":[{"other":1}]}"#,                   // an unknown field (the type refuses it)
        r#"{"items":[{"input":5}]}"#,                   // a wrong type
        r#"{"items":[[]]}"#,                            // an item that is not an object
        r#"{"items":[{}]"#,                             // unclosed
        r#"{"items":[{}],"items":[]}"#,                 // a second member
        r#"{"items":[{},,{}]}"#,                        // an empty element
        r#"{"items":[,{}]}"#,                           // a leading comma
        r#"{"items":[{}{}]}"#,                          // no comma
        r#"{"itemz":[{}]}"#,                            // not a batch
    ];
    for text in cases {
        assert_eq!(plain_batch(text), Err(NotPlain), "{text}");
    }
    let limit = format!(r#"{{"items":[{}]}}"#, vec!["{}"; MAX_BATCH_ITEMS].join(","));
    assert_eq!(plain_batch(&limit).map(|items| items.len()), Ok(MAX_BATCH_ITEMS));
    let over = format!(r#"{{"items":[{}]}}"#, vec!["{}"; MAX_BATCH_ITEMS + 1].join(","));
    assert_eq!(plain_batch(&over), Err(NotPlain));
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert_eq!(from_str::<serde_json::Value>(&deep), Err(NotPlain));
    let shallow = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    assert!(from_str::<serde_json::Value>(&shallow).is_ok());
}

/// A JSON document as a tree, written out with chosen whitespace.
#[derive(Debug, Clone)]
enum Doc {
    Raw(&'static str),
    Array(Vec<Doc>),
    Object(Vec<(&'static str, Doc)>),
}

const KEYS: &[&str] = &[
    "\"keyName\"",
    "\"key_name\"",
    "\"algorithm\"",
    "\"input\"",
    "\"aad\"",
    "\"iv\"",
    "\"keyVersion\"",
    "\"key_version\"",
    "\"versioned\"",
    "\"reference\"",
    "\"other\"",
    "\"k\\u0065yName\"",
];
/// Values a plain text may hold.
const PLAIN: &[&str] = &[
    "\"\"",
    "\"aGVsbG8=\"",
    "\"k1\"",
    "\"AES/GCM/NoPadding\"",
    "\"AAAAAAAAAAAAAAAA\"",
    "\"\u{e9}t\u{e9}\"",
    "\"7\"",
    "0",
    "7",
    "4294967295",
    "4294967296",
    "9999999999999999999",
    "true",
    "false",
    "null",
];
/// Values outside the plain subset (some not JSON at all).
const OTHER: &[&str] = &[
    "\"\\u0041\"",
    "\"a\\\"b\"",
    "\"a\\\\b\"",
    "\"tab\there\"",
    "-1",
    "-0",
    "1.5",
    "1e3",
    "007",
    "18446744073709551616",
    "99999999999999999999",
    "tru",
    "nul",
    "\"open",
];

/// Keys, the last one escaped (not plain).
fn keys(plain_only: bool) -> Vec<&'static str> {
    KEYS[..KEYS.len() - usize::from(plain_only)].to_vec()
}

fn doc(plain_only: bool) -> impl Strategy<Value = Doc> {
    let values = if plain_only { PLAIN.to_vec() } else { [PLAIN, OTHER].concat() };
    let keys = keys(plain_only);
    let leaf = proptest::sample::select(values).prop_map(Doc::Raw);
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Doc::Array),
            proptest::collection::vec((proptest::sample::select(keys.clone()), inner), 0..4).prop_map(Doc::Object),
        ]
    })
}

/// `{"items": [objects]}`: the shape a batch has.
fn batch(plain_only: bool) -> impl Strategy<Value = Doc> {
    let member = (proptest::sample::select(keys(plain_only)), doc(plain_only));
    let item = proptest::collection::vec(member, 0..6).prop_map(Doc::Object);
    proptest::collection::vec(item, 0..5).prop_map(|items| Doc::Object(vec![("\"items\"", Doc::Array(items))]))
}

fn write(doc: &Doc, spaces: &mut impl Iterator<Item = &'static str>, out: &mut String) {
    out.push_str(spaces.next().unwrap_or(""));
    match doc {
        Doc::Raw(text) => out.push_str(text),
        Doc::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                out.push_str(if i > 0 { "," } else { "" });
                write(item, spaces, out);
            }
            out.push_str(spaces.next().unwrap_or(""));
            out.push(']');
        }
        Doc::Object(members) => {
            out.push('{');
            for (i, (key, value)) in members.iter().enumerate() {
                out.push_str(if i > 0 { "," } else { "" });
                out.push_str(spaces.next().unwrap_or(""));
                out.push_str(key);
                out.push_str(spaces.next().unwrap_or(""));
                out.push(':');
                write(value, spaces, out);
            }
            out.push_str(spaces.next().unwrap_or(""));
            out.push('}');
        }
    }
}

fn text_of(doc: &Doc, spaces: &[&'static str]) -> String {
    let mut out = String::new();
    write(doc, &mut spaces.iter().copied().cycle(), &mut out);
    out
}

fn spaces() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::collection::vec(proptest::sample::select(vec!["", "", " ", "\n  ", "\t", "\r\n"]), 1..8)
}

/// `text` with one byte dropped or one inserted at `at` (a broken document).
fn damaged(text: &str, at: usize, insert: Option<char>) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    match insert {
        Some(c) => chars.insert(at, c),
        None if at < chars.len() => drop(chars.remove(at)),
        None => {}
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn what_the_plain_reader_accepts_serde_json_reads_the_same(
        doc in prop_oneof![batch(false), doc(false)],
        spaces in spaces(),
        at in 0usize..400,
        insert in proptest::option::of(proptest::sample::select(vec!['"', ',', ':', '{', '}', '[', ']', '\\', '0', ' '])),
        damage in any::<bool>(),
    ) {
        let mut text = text_of(&doc, &spaces);
        if damage {
            text = damaged(&text, at, insert);
        }
        if let Ok(plain) = plain_batch(&text) {
            prop_assert_eq!(Ok(plain), serde_batch(&text), "{}", text);
        }
        if let Ok(plain) = from_str::<serde_json::Value>(&text) {
            prop_assert_eq!(Some(plain), serde_json::from_str::<serde_json::Value>(&text).ok(), "{}", text);
        }
    }

    #[test]
    fn every_plain_text_serde_json_reads_is_read(doc in batch(true), spaces in spaces()) {
        let text = text_of(&doc, &spaces);
        prop_assert_eq!(plain_batch(&text).ok(), serde_batch(&text).ok(), "{}", text);
        let value = serde_json::from_str::<serde_json::Value>(&text).expect("generated JSON");
        prop_assert_eq!(from_str::<serde_json::Value>(&text).ok(), Some(value), "{}", text);
    }
}

/// Mostly ordinary bytes (UTF-8 continuation bytes included), sometimes a
/// quote, a backslash or a control character.
fn scanned_bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![12 => 0x20u8..=0xff, 1 => proptest::sample::select(vec![b'"', b'\\', 0, 0x1f, b'\n'])];
    proptest::collection::vec(byte, 0..48)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn find_special_finds_the_first_quote_backslash_or_control(bytes in scanned_bytes()) {
        let expected = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
        prop_assert_eq!(find_special(&bytes), expected);
    }
}
