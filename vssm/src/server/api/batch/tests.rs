//! Batch parsing without a node: what is a batch, the item limit, how an
//! item is split from its reference, and error positions.

use super::*;
use crate::server::api::crypto_ops::CryptoAnswer;

fn items_of(body: &str) -> Result<(Vec<String>, usize), JsonError> {
    let request: BatchRequest = crate::server::json::parse_json(body.as_bytes())?;
    Ok((request.items.items.iter().map(|item| item.get().to_string()).collect(), request.items.count))
}

fn split_owned(item: &str) -> Result<(Option<String>, String), String> {
    let mut scratch = Vec::new();
    match split(item, &mut scratch) {
        Ok(Item { reference, request }) => {
            Ok((reference.map(Cow::into_owned), String::from_utf8(request.to_vec()).unwrap()))
        }
        Err(error) => Err(error.to_string()),
    }
}

#[test]
fn a_batch_is_an_object_with_an_items_key() {
    assert!(is_batch(br#"{"items":[]}"#));
    assert!(is_batch(br#" { "keyName" : "k", "items" : 5 }"#));
    assert!(is_batch(br#"{"\u0069tems":[]}"#));
    assert!(is_batch(br#"{"items":[{}] "#), "broken after the key: a malformed batch");
    assert!(!is_batch(br#"{"keyName":"items","input":"aXRlbXM="}"#));
    assert!(!is_batch(br#"{"keyName":"k","algorithm":"items"}"#));
    assert!(!is_batch(br#"["items"]"#));
    assert!(!is_batch(br#""items""#));
    assert!(!is_batch(br#"{"itemz":[]}"#));
    assert!(!is_batch(br#"{"keyName":"k"} {"items":[]}"#));
    assert!(!is_batch(b"items"));
    assert!(!is_batch(b""));
}

#[test]
fn items_are_slices_of_the_body_and_counted_past_the_limit() {
    let (items, count) = items_of(r#"{"items":[ {"a":1} ,{"b":"\u0041"},[],"x",null]}"#).unwrap();
    assert_eq!(items, [r#"{"a":1}"#, r#"{"b":"\u0041"}"#, "[]", r#""x""#, "null"]);
    assert_eq!(count, 5);
    let many = format!(r#"{{"items":[{}]}}"#, vec!["{}"; MAX_BATCH_ITEMS + 500].join(","));
    let (items, count) = items_of(&many).unwrap();
    assert_eq!((items.len(), count), (MAX_BATCH_ITEMS, MAX_BATCH_ITEMS + 500));
    assert!(items_of(r#"{"items":5}"#).is_err());
    assert!(items_of(r#"{"items":[],"keyName":"k"}"#).unwrap_err().to_string().starts_with("unknown field `keyName`"));
    assert!(items_of(r#"{}"#).unwrap_err().to_string().starts_with("missing field `items`"));
}

#[test]
fn an_item_without_a_reference_is_passed_as_it_is() {
    let item = r#"{ "keyName": "k", "input": "AAAA" }"#;
    assert_eq!(split_owned(item), Ok((None, item.to_string())));
    // A value mentioning `reference` is not a reference.
    assert_eq!(split_owned(r#"{"keyName":"reference"}"#), Ok((None, r#"{"keyName":"reference"}"#.into())));
}

#[test]
fn a_reference_is_taken_out_of_its_item_wherever_it_stands() {
    assert_eq!(
        split_owned(r#"{ "reference" : "r1", "keyName": "k", "input": "AAAA" }"#),
        Ok((Some("r1".into()), r#"{"keyName":"k","input":"AAAA"}"#.into()))
    );
    assert_eq!(
        split_owned(r#"{"keyName":"k","reference":"r\"2\u00e9","aad":{"x":[1, 2]}}"#),
        Ok((Some("r\"2é".into()), r#"{"keyName":"k","aad":{"x":[1, 2]}}"#.into()))
    );
    // Keys are written back as JSON strings, escapes resolved.
    assert_eq!(
        split_owned(r#"{"k\u0065yName":"k","\u0072eference":"r"}"#),
        Ok((Some("r".into()), r#"{"keyName":"k"}"#.into()))
    );
    assert_eq!(split_owned(r#"{"reference":"only"}"#), Ok((Some("only".into()), "{}".into())));
}

#[test]
fn a_reference_must_be_one_short_string() {
    let refused = Err(BatchError::InvalidReference.to_string());
    let longest = "é".repeat(MAX_REFERENCE_BYTES / 2);
    assert_eq!(split_owned(&format!(r#"{{"reference":"{longest}"}}"#)), Ok((Some(longest.clone()), "{}".into())));
    assert_eq!(split_owned(&format!(r#"{{"reference":"{longest}x"}}"#)), refused);
    assert_eq!(split_owned(r#"{"reference":7}"#), refused);
    assert_eq!(split_owned(r#"{"reference":null,"keyName":"k"}"#), Ok((None, r#"{"keyName":"k"}"#.into())));
    assert_eq!(split_owned(r#"{"reference":["r"]}"#), refused);
    assert_eq!(split_owned(r#"{"reference":"a","reference":"b"}"#), Err("duplicate field `reference`".into()));
}

#[test]
fn item_errors_leave_out_positions_that_would_count_in_the_rebuilt_item() {
    let message = "unknown field `inptu`, expected one of `input`, `keyName` at line 1 column 73";
    assert_eq!(without_position(message), "unknown field `inptu`, expected one of `input`, `keyName`");
    assert_eq!(
        without_position("no AES key named \"a at line 1 column 2x\""),
        "no AES key named \"a at line 1 column 2x\""
    );
    assert_eq!(without_position("keyName is required"), "keyName is required");
}

#[test]
fn results_carry_the_reference_first_then_the_single_fields() {
    use crate::wire::{Bytes, OutputResponse};
    let mut out = Vec::new();
    let answer = CryptoAnswer::Output(OutputResponse { output: Bytes(vec![1, 2, 3]), key_version: None });
    write_result(&mut out, Some("r"), Ok(answer)).unwrap();
    out.push(b',');
    write_result(&mut out, None, Err(ApiError::KeyNameRequired)).unwrap();
    out.push(b',');
    write_result(&mut out, Some("i"), Err(crate::crypto::CryptoError::Internal("rng failed: secret detail").into()))
        .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"reference":"r","output":"AQID"},{"error":"keyName is required","status":400},"#.to_string()
            + r#"{"reference":"i","error":"internal error","status":500}"#
    );
}
