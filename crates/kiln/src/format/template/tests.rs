use serde_json::json;

use super::*;

#[test]
fn smoke() {
    let t = Template::parse("{{.A}}").expect("parses");
    assert_eq!(t.execute(&json!({"A": 1})).expect("runs"), "1");
}
