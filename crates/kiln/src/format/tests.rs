use serde_json::json;

use super::*;

#[test]
fn smoke() {
    let out = render_to_string("{{.A}}", &[json!({"A": 1})], &[]).expect("renders");
    assert_eq!(out, "1\n");
}
