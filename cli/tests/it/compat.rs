//! Golden request/response pairs from the original's spec
//! (`tests/fixtures/golden.json`), checked against the running daemon.

use serde_json::Value;

use crate::harness::*;

/// `expected` must be contained in `actual`: objects by key, recursively; other
/// values exactly; the string `$any` matches anything.
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (_, Value::String(s)) if s == "$any" => true,
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (a, e) => a == e,
    }
}

#[test]
fn golden_pairs_from_the_spec() {
    let fixture: Value =
        serde_json::from_str(include_str!("../fixtures/golden.json")).expect("golden.json");
    let loopsy = Loopsy::started();
    let key = loopsy.key();
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 20);
    for case in cases {
        let name = case["name"].as_str().unwrap_or("?");
        let request = &case["request"];
        let method = request["method"].as_str().expect("method");
        let path = request["path"].as_str().expect("path");
        let bearer = match (request.get("auth"), request["key"].as_str()) {
            (_, Some(other)) => Some(format!("Bearer {other}")),
            (Some(Value::Bool(false)), None) => None,
            _ => Some(format!("Bearer {key}")),
        };
        let body = request.get("body").map(|b| b.to_string());
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        let response = loopsy.http(method, path, &headers, body.as_deref().map(str::as_bytes));
        let expected = &case["response"];
        assert_eq!(
            Some(u64::from(response.status)),
            expected["status"].as_u64(),
            "{name}: {}",
            response.body
        );
        let actual = response.json();
        for key in expected["keys"].as_array().into_iter().flatten() {
            let key = key.as_str().expect("key");
            assert!(
                actual.get(key).is_some(),
                "{name}: `{key}` missing in {actual}"
            );
        }
        for key in expected["absent"].as_array().into_iter().flatten() {
            let key = key.as_str().expect("key");
            assert!(
                actual.get(key).is_none(),
                "{name}: `{key}` should be absent in {actual}"
            );
        }
        if let Some(body) = expected.get("body") {
            assert!(
                contains(&actual, body),
                "{name}: expected {body} within {actual}"
            );
        }
        if let Some(count) = case["entries"].as_u64() {
            assert_eq!(
                actual["entries"].as_array().map(|e| e.len() as u64),
                Some(count),
                "{name}"
            );
        }
    }
}
