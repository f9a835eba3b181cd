use super::{Approval, Events};
use crate::config::ScheduledEvent;

fn event(id: &str) -> ScheduledEvent {
    ScheduledEvent {
        event_id: id.into(),
        event_type: "Reboot".into(),
        resource_type: "VirtualMachine".into(),
        resources: vec![],
        event_status: "Scheduled".into(),
        not_before: "Mon, 19 Sep 2016 18:29:47 GMT".into(),
        description: String::new(),
        event_source: "Platform".into(),
        duration_in_seconds: -1,
    }
}

#[test]
fn approve_removes_and_bumps() {
    let mut events = Events::new(vec![event("a"), event("b")], "vm");
    let doc = events.document().unwrap();
    assert_eq!(doc["DocumentIncarnation"], 1);
    assert_eq!(doc["Events"][0]["Resources"][0], "vm");
    assert_eq!(doc["Events"][0]["DurationInSeconds"], -1);
    let unknown: Approval =
        serde_json::from_str(r#"{"StartRequests":[{"EventId":"zzz"}]}"#).unwrap();
    assert_eq!(events.approve(&unknown), 0);
    assert_eq!(events.document().unwrap()["DocumentIncarnation"], 1);
    let approval: Approval =
        serde_json::from_str(r#"{"StartRequests":[{"EventId":"a"}]}"#).unwrap();
    assert_eq!(events.approve(&approval), 1);
    let doc = events.document().unwrap();
    assert_eq!(doc["DocumentIncarnation"], 2);
    assert_eq!(doc["Events"].as_array().unwrap().len(), 1);
    assert_eq!(doc["Events"][0]["EventId"], "b");
}
