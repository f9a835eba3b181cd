use super::*;
use serde_json::json;

#[test]
fn connect_and_sendmsg_programs_are_named() {
    let listing = json!([
        {"cgroup": "/sys/fs/cgroup", "programs": [
            {"id": 12, "attach_type": "cgroup_inet4_connect", "attach_flags": "", "name": "connect4"},
            {"id": 13, "attach_type": "egress", "name": "counter"}
        ]},
        {"cgroup": "/sys/fs/cgroup/system.slice", "programs": [
            {"id": 14, "attach_type": "sendmsg6", "name": "udp6"}
        ]}
    ]);
    assert_eq!(
        address_rewriters(&listing),
        vec![
            "`connect4` (id 12, cgroup_inet4_connect) on `/sys/fs/cgroup`".to_owned(),
            "`udp6` (id 14, sendmsg6) on `/sys/fs/cgroup/system.slice`".to_owned(),
        ]
    );
}

#[test]
fn empty_or_odd_listings_find_nothing() {
    for listing in [
        json!([]),
        json!({}),
        json!([{"error": "x"}]),
        json!([{"cgroup": "/", "programs": []}]),
    ] {
        assert!(address_rewriters(&listing).is_empty(), "{listing}");
    }
}
