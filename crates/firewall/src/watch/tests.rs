use super::*;
use serde_json::json;

#[test]
fn audit_records_name_the_trigger_and_the_differences() {
    let table = [
        (
            WatchEvent::Repaired {
                trigger: Trigger::Event,
                differences: vec![Difference::ChainMissing {
                    chain: "output".into(),
                }],
                remaining: vec![],
            },
            json!({"type": "firewall_repaired", "trigger": "nft-event",
                   "differences": ["chain `output` is missing"], "remaining": []}),
        ),
        (
            WatchEvent::Failed {
                trigger: Trigger::Periodic,
                error: "boom".into(),
            },
            json!({"type": "firewall_repair_failed", "trigger": "periodic", "error": "boom"}),
        ),
        (
            WatchEvent::MonitorLost {
                error: "gone".into(),
            },
            json!({"type": "firewall_monitor_lost", "error": "gone"}),
        ),
    ];
    for (event, expected) in table {
        assert_eq!(
            serde_json::to_value(event.audit_record()).unwrap(),
            expected
        );
    }
}

#[test]
fn monitor_lines_about_our_table_only_are_changes() {
    let lines = "add table inet other\n# new generation 5 by process 1 (nft)\n\
                 delete rule inet gatehouse output handle 11\nadd rule ip filter x accept\n";
    let (tx, rx) = mpsc::channel();
    follow(std::io::Cursor::new(lines), &tx);
    let got: Vec<&str> = rx
        .try_iter()
        .map(|m| match m {
            Msg::Changed => "changed",
            Msg::MonitorEnded(_) => "ended",
            Msg::Stop => "stop",
        })
        .collect();
    assert_eq!(got, ["changed", "ended"]);
}
