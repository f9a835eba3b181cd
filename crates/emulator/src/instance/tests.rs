use serde_json::Value;

use super::{document, lookup, segments};
use crate::config::EmulatorConfig;

fn all_primitives_are_strings(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(items) => items.iter().all(all_primitives_are_strings),
        Value::Object(map) => map.values().all(all_primitives_are_strings),
        _ => false,
    }
}

#[test]
fn document_is_all_strings() {
    let doc = document(&EmulatorConfig::demo());
    assert!(all_primitives_are_strings(&doc));
    assert_eq!(
        doc["compute"]["vmId"],
        "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
    );
}

#[test]
fn lookup_table() {
    let mut config = EmulatorConfig::demo();
    config.vm.tags.insert("env".into(), "dev".into());
    config.vm.tags.insert("team".into(), "core".into());
    let doc = document(&config);
    let cases: &[(&str, Option<&str>)] = &[
        ("compute/location", Some("westeurope")),
        ("compute/tags", Some("env:dev;team:core")),
        ("compute/tagsList/1/value", Some("core")),
        (
            "network/interface/0/ipv4/ipAddress/0/privateIpAddress",
            Some("10.0.0.4"),
        ),
        (
            "network/interface/0/ipv4/ipAddress/0/publicIpAddress",
            Some(""),
        ),
        ("network/interface/1", None),
        ("network/interface/x", None),
        ("compute/nope", None),
        ("compute/location/deeper", None),
    ];
    for (path, want) in cases {
        let segs = segments(path).unwrap();
        assert_eq!(lookup(&doc, &segs).and_then(Value::as_str), *want, "{path}");
    }
}

#[test]
fn segment_rules() {
    assert_eq!(segments(""), Some(vec![]));
    assert_eq!(segments("/"), Some(vec![]));
    assert_eq!(segments("/compute/"), Some(vec!["compute"]));
    assert_eq!(segments("/compute//name"), None);
}
