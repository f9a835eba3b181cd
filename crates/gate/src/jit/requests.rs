//! Asking: a role activation or a port opening from the admin socket, and
//! a verified signed request from outside, checked by the policy and then
//! recorded by the store.

use super::api::{AdminResponse, ApiError, ErrorKind};
use super::*;
use gatehouse_jit::store::{
    Common, Kind, ListFilter, NewRequest, Record, Requester, State, Target,
};
use gatehouse_policy::{ActivationAsk, JitRefusalKind, PortAsk, PortRequester, Protocol};
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

impl JitService {
    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per field of the admin request it serves"
    )]
    pub(super) fn request_role(
        &self,
        who: &AdminCaller,
        role: &str,
        identity: &str,
        audience: Option<String>,
        duration_secs: u64,
        reason: Option<String>,
        ticket: Option<String>,
    ) -> Result<AdminResponse, ApiError> {
        let asked = duration(duration_secs)?;
        let reason = text("reason", reason)?;
        let ticket = text("ticket", ticket)?;
        let audience = match audience {
            None => None,
            Some(a) => Some(gatehouse_policy::normalise_audience(&a).ok_or_else(|| {
                ApiError::new(ErrorKind::BadAudience, format!("`{a}` is not an audience: a resource URI such as https://storage.azure.com/"))
            })?),
        };
        let now = self.now();
        let policy = self.gate.policy();
        let plan = policy
            .plan_activation(&ActivationAsk {
                requester: &who.caller,
                role,
                identity,
                audience: audience.as_deref(),
                duration: asked,
                reason: reason.as_deref(),
                ticket: ticket.as_deref(),
                at: now,
            })
            .map_err(refusal)?;
        let mut notices = capped(
            plan.capped,
            plan.duration,
            &format!("`{}`", plan.assignment),
        );
        let new = NewRequest {
            common: Common {
                requester: who.requester(),
                duration_secs: plan.duration.as_secs(),
                requested_secs: asked.as_secs(),
                reason,
                ticket,
                via: "admin-socket".into(),
            },
            target: Target::Role {
                role: plan.role.clone(),
                assignment: plan.assignment.clone(),
                identity: identity.to_owned(),
                audience,
            },
        };
        let record = self.insert(&policy, new, now, plan.auto_approved, &mut notices)?;
        notices.extend(self.after_change(false));
        Ok(AdminResponse::record(record, notices))
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one argument per field of the admin request it serves"
    )]
    pub(super) fn request_port(
        &self,
        who: PortWho<'_>,
        port: u16,
        protocol_name: &str,
        source: IpAddr,
        duration_secs: u64,
        reason: Option<String>,
        ticket: Option<String>,
        via: &str,
    ) -> Result<AdminResponse, ApiError> {
        let proto = protocol(protocol_name)?;
        let asked = duration(duration_secs)?;
        let reason = text("reason", reason)?;
        let ticket = text("ticket", ticket)?;
        if self.ports.is_none() {
            return Err(ApiError::new(
                ErrorKind::NoFirewall,
                "this gate does not manage the firewall, so it cannot open ports: run it as root with `--firewall watch`",
            ));
        }
        if !self.protected.contains(&(proto, port))
            && self.gate.policy().jit_port(port, proto).is_some()
        {
            return Err(ApiError::new(
                ErrorKind::RestartNeeded,
                format!("port {port}/{proto} was added to the policy after the gate started; the firewall protects it only after a restart of the gate"),
            ));
        }
        // `::ffff:a.b.c.d` is the IPv4 address it carries.
        let source = source.to_canonical();
        let now = self.now();
        let active_ports = self
            .store
            .active(Kind::Port, now)
            .map_err(store_error)?
            .len();
        if active_ports >= MAX_ACTIVE_PORT_GRANTS {
            return Err(ApiError::new(
                ErrorKind::TooManyPorts,
                format!("{active_ports} port grants are active, the most this gate keeps: revoke some first"),
            ));
        }
        let policy = self.gate.policy();
        let requester = match &who {
            PortWho::Local(a) => PortRequester::Local(&a.caller),
            PortWho::Signer(name) => PortRequester::Signer(name),
        };
        let plan = policy
            .plan_port(&PortAsk {
                requester,
                port,
                protocol: proto,
                source,
                duration: asked,
                reason: reason.as_deref(),
                at: now,
            })
            .map_err(refusal)?;
        let mut notices = capped(plan.capped, plan.duration, &format!("port `{}`", plan.name));
        let requester = match &who {
            PortWho::Local(a) => a.requester(),
            PortWho::Signer(name) => Requester {
                uid: None,
                name: format!("signer:{name}"),
            },
        };
        let new = NewRequest {
            common: Common {
                requester,
                duration_secs: plan.duration.as_secs(),
                requested_secs: asked.as_secs(),
                reason,
                ticket,
                via: via.to_owned(),
            },
            target: Target::Port {
                name: plan.name.clone(),
                port,
                protocol: proto,
                source,
            },
        };
        let record = self.insert(&policy, new, now, plan.auto_approved, &mut notices)?;
        notices.extend(self.after_change(record.state == State::Active));
        Ok(AdminResponse::record(record, notices))
    }

    /// Store a new request, within its requester's pending limit; a
    /// pending one gets the notice of who may approve it.
    fn insert(
        &self,
        policy: &gatehouse_policy::Policy,
        new: NewRequest,
        now: SystemTime,
        auto_approved: bool,
        notices: &mut Vec<String>,
    ) -> Result<Record, ApiError> {
        self.check_pending_limit(&new.common.requester, now)?;
        let record = self
            .store
            .insert(new, now, auto_approved)
            .map_err(store_error)?;
        if record.state == State::Pending {
            notices.push(approvers_notice(policy, &record));
        }
        Ok(record)
    }

    pub(super) fn check_pending_limit(
        &self,
        requester: &Requester,
        now: SystemTime,
    ) -> Result<(), ApiError> {
        let filter = ListFilter {
            state: Some(State::Pending),
            active_only: false,
            requester_uid: requester.uid,
            requester_name: requester.uid.is_none().then(|| requester.name.clone()),
            limit: MAX_PENDING_PER_REQUESTER + 1,
        };
        let pending = self.store.list(&filter, now).map_err(store_error)?.len();
        if pending >= MAX_PENDING_PER_REQUESTER {
            return Err(ApiError::new(
                ErrorKind::TooManyPending,
                format!(
                    "you have {pending} pending requests already: wait for a decision, or withdraw some with `gatehouse jit revoke ID`"
                ),
            ));
        }
        Ok(())
    }

    /// A verified signed request from outside.
    pub fn knock(
        &self,
        verified: &gatehouse_jit::knock::Verified,
    ) -> Result<AdminResponse, ApiError> {
        let _serial = self.one_at_a_time();
        let now = self.now();
        let r = &verified.request;
        let keep_until = std::time::UNIX_EPOCH
            + Duration::from_secs(r.timestamp)
            + gatehouse_jit::knock::MAX_SKEW
            + gatehouse_jit::knock::MAX_SKEW;
        let fresh = self
            .store
            .remember_nonce(&verified.signer, &r.nonce, keep_until, now)
            .map_err(store_error)?;
        if !fresh {
            return Err(ApiError::new(
                ErrorKind::Replay,
                "this signed request was seen before; sign a new one",
            ));
        }
        self.request_port(
            PortWho::Signer(&verified.signer),
            r.port,
            &r.protocol,
            r.source,
            r.duration_secs,
            Some(r.reason.clone()),
            r.ticket.clone(),
            "signed-request",
        )
    }
}

pub(super) enum PortWho<'a> {
    Local(&'a AdminCaller),
    Signer(&'a str),
}

pub(super) fn text(field: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(v) if v.len() > MAX_TEXT => Err(ApiError::new(
            ErrorKind::TooLong,
            format!("the {field} is longer than {MAX_TEXT} bytes"),
        )),
        Some(v) if v.chars().any(char::is_control) => Err(ApiError::new(
            ErrorKind::BadText,
            format!("the {field} contains control characters"),
        )),
        other => Ok(other),
    }
}

pub(super) fn protocol(s: &str) -> Result<Protocol, ApiError> {
    s.parse::<Protocol>().map_err(|_| {
        ApiError::new(
            ErrorKind::BadProtocol,
            format!("unknown protocol `{s}`: tcp or udp"),
        )
    })
}

pub(super) fn duration(secs: u64) -> Result<Duration, ApiError> {
    if secs == 0 {
        return Err(ApiError::new(
            JitRefusalKind::ZeroDuration,
            "a duration of zero grants nothing: ask for e.g. `--duration 1h`",
        ));
    }
    Ok(Duration::from_secs(secs))
}

pub(super) fn approvers_notice(policy: &gatehouse_policy::Policy, r: &Record) -> String {
    let names: Vec<String> = match &r.request.target {
        Target::Role { assignment, .. } => policy
            .assignments()
            .find(|x| &x.name == assignment)
            .and_then(|a| a.eligible.as_ref())
            .map(|e| e.approvers.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        Target::Port { name, .. } => policy
            .jit_ports()
            .iter()
            .find(|p| &p.name == name)
            .map(|p| p.approvers.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
    };
    format!(
        "pending: `{}` waits for one of {} to run `gatehouse jit approve {}` (it lapses after 24 h)",
        r.id,
        if names.is_empty() { "the approvers".to_owned() } else { names.join(", ") },
        r.id
    )
}

/// The notice that the policy cut the duration asked for down to what
/// `what` allows.
fn capped(capped: bool, duration: std::time::Duration, what: &str) -> Vec<String> {
    if !capped {
        return Vec::new();
    }
    vec![format!(
        "the duration was capped at {}, the most {what} allows",
        gatehouse_policy::format_duration(duration)
    )]
}
