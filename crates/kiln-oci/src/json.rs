//! Canonical JSON for the documents kiln writes: keys sorted at every
//! level, no insignificant white space, so the same value always has the
//! same digest.

use serde::Serialize;
use serde_json::Value;

/// Serialise `value` canonically.
pub fn to_canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut v = serde_json::to_value(value)?;
    // Sorted explicitly: another crate in the build may turn on serde_json's
    // `preserve_order`, which would keep insertion order instead.
    sort_keys(&mut v);
    serde_json::to_vec(&v)
}

fn sort_keys(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.sort_keys();
            for (_, child) in map.iter_mut() {
                sort_keys(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(sort_keys),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sorted_compact() {
        let v = serde_json::json!({"b": 1, "a": {"d": [ {"z": 0, "y": 1} ], "c": "x"}});
        let out = to_canonical_json(&v).expect("serialises");
        assert_eq!(out, br#"{"a":{"c":"x","d":[{"y":1,"z":0}]},"b":1}"#);
    }
}
