//! Scheduled Events: the seeded maintenance events, and approving them
//! (`StartRequests`), which removes them and bumps `DocumentIncarnation`.

use serde::{Deserialize, Serialize};

use crate::config::ScheduledEvent;

#[cfg(test)]
mod tests;

/// The live event list.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    incarnation: u64,
    events: Vec<ScheduledEvent>,
    vm_name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Document<'a> {
    document_incarnation: u64,
    events: Vec<EventView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct EventView<'a> {
    event_id: &'a str,
    event_status: &'a str,
    event_type: &'a str,
    resource_type: &'a str,
    resources: Vec<&'a str>,
    not_before: &'a str,
    description: &'a str,
    event_source: &'a str,
    duration_in_seconds: i64,
}

/// The POST body.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Approval {
    start_requests: Vec<StartRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StartRequest {
    event_id: String,
}

impl Events {
    pub(crate) fn new(events: Vec<ScheduledEvent>, vm_name: &str) -> Self {
        Self {
            incarnation: 1,
            events,
            vm_name: vm_name.to_string(),
        }
    }

    /// The GET document.
    pub(crate) fn document(&self) -> serde_json::Result<serde_json::Value> {
        let events = self
            .events
            .iter()
            .map(|e| EventView {
                event_id: &e.event_id,
                event_status: &e.event_status,
                event_type: &e.event_type,
                resource_type: &e.resource_type,
                resources: if e.resources.is_empty() {
                    vec![self.vm_name.as_str()]
                } else {
                    e.resources.iter().map(String::as_str).collect()
                },
                not_before: &e.not_before,
                description: &e.description,
                event_source: &e.event_source,
                duration_in_seconds: e.duration_in_seconds,
            })
            .collect();
        serde_json::to_value(Document {
            document_incarnation: self.incarnation,
            events,
        })
    }

    /// Approves the named events; unknown ids are ignored as IMDS does.
    /// Returns how many were removed.
    pub(crate) fn approve(&mut self, approval: &Approval) -> usize {
        let before = self.events.len();
        self.events.retain(|e| {
            !approval
                .start_requests
                .iter()
                .any(|r| r.event_id == e.event_id)
        });
        let removed = before - self.events.len();
        if removed > 0 {
            self.incarnation = self.incarnation.saturating_add(1);
        }
        removed
    }
}
