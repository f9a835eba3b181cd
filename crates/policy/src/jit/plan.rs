//! The request and approval rules: may this caller ask for that, for how
//! long, and who must approve it? Pure: the daemon supplies the caller, the
//! time and (for ports) the source address, and persists the outcome.

use std::net::IpAddr;
use std::time::Duration;

use crate::action::Action;
use crate::audience::normalise_audience;
use crate::caller::{Caller, Request};
use crate::condition::evaluate;
use crate::model::{Assignment, Scope};
use crate::policy::Policy;
use crate::principal::Principal;
use crate::vocabulary::Ctx;

use super::{
    text, Activation, ActivationAsk, AutoApprove, Eligibility, JitPort, JitRefusal, JitRefusalKind,
    PortAsk, PortPlan, PortRequester, Protocol, Requester, MAX_TEXT,
};
use crate::audience;

type Refused<T> = Result<T, JitRefusal>;

fn refuse<T>(kind: JitRefusalKind, message: impl Into<String>) -> Refused<T> {
    Err(JitRefusal::new(kind, message))
}

/// The duration to grant: the asked one, capped at `max`.
fn cap(asked: Duration, max: Duration) -> Refused<(Duration, bool)> {
    if asked.is_zero() {
        return refuse(
            JitRefusalKind::ZeroDuration,
            "a duration of zero grants nothing: ask for a duration such as `1h`",
        );
    }
    let max = max.min(super::MAX_GRANT);
    Ok(if asked > max {
        (max, true)
    } else {
        (asked, false)
    })
}

/// A justification or ticket must fit on one audit line.
fn check_text(what: &'static str, kind: JitRefusalKind, s: Option<&str>) -> Refused<()> {
    match s {
        Some(t) if t.chars().count() > MAX_TEXT => refuse(
            kind,
            format!("the {what} is longer than {MAX_TEXT} characters: shorten it"),
        ),
        Some(t) if t.chars().any(char::is_control) => refuse(
            kind,
            format!(
                "the {what} contains control characters (such as a newline): write it on one line"
            ),
        ),
        _ => Ok(()),
    }
}

/// An approver is someone the kernel named, and not the requester.
fn approver_known(approver: &Caller, requester_uid: Option<u32>) -> Refused<()> {
    if approver.uid.is_some() && approver.uid == requester_uid {
        return refuse(
            JitRefusalKind::SelfApproval,
            "you cannot approve your own request: ask another approver",
        );
    }
    if approver.uid.is_none() {
        return refuse(
            JitRefusalKind::CallerUnknown,
            "the approver could not be identified: approve over the admin socket as yourself",
        );
    }
    Ok(())
}

/// Whether `approver` is one of `approvers`; if not, who is (or, when no
/// one is, `without`: how such requests are approved instead).
fn may_approve(
    approvers: &[Principal],
    approver: &Caller,
    what: &str,
    without: &str,
) -> Refused<()> {
    if approvers.iter().any(|p| p.grants_to(approver)) {
        return Ok(());
    }
    let who = if approvers.is_empty() {
        format!("it has no approvers ({without})")
    } else {
        format!("ask one of its approvers: {}", approvers_text(approvers))
    };
    refuse(
        JitRefusalKind::NotAnApprover,
        format!("you may not approve {what}: {who}"),
    )
}

fn approvers_text(approvers: &[Principal]) -> String {
    approvers
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn scope_has(scope: &Scope, pred: impl Fn(&str) -> bool) -> bool {
    match scope {
        Scope::Any => true,
        Scope::Only(values) => values.iter().any(|v| pred(v)),
    }
}

impl Policy {
    /// May `ask.requester` activate role `ask.role` for `ask.identity` (and
    /// `ask.audience`)? Looks for eligible assignments whose principal
    /// grants to the requester, whose role is the asked one (by canonical
    /// name, case-insensitively) and whose scope covers the identity and
    /// the normalised audience. Caps the duration at the assignment's
    /// `max_duration` (`capped`, not an error), refuses a missing
    /// justification or ticket when required, and decides auto-approval
    /// (for `auto_approve_condition`: the condition evaluated for the
    /// requester and a token request of that identity and audience at
    /// `ask.at`). When several assignments fit, the plan that is
    /// auto-approved, then the longest, then the first in the file wins.
    pub fn plan_activation(&self, ask: &ActivationAsk<'_>) -> Result<Activation, JitRefusal> {
        if ask.requester.uid.is_none() {
            return refuse(
                JitRefusalKind::CallerUnknown,
                "the requester could not be identified: ask over the admin socket as yourself",
            );
        }
        let audience = match ask.audience {
            None => None,
            Some(a) => match normalise_audience(a) {
                Some(n) if !n.contains('*') => Some(n),
                _ => {
                    return refuse(
                        JitRefusalKind::InvalidAudience,
                        format!("`{}` is not an audience: name one audience, e.g. `https://storage.azure.com`, without spaces or `*`", a.escape_debug()),
                    )
                }
            },
        };
        let Some(identity) = self.identities.iter().find(|i| i.name == ask.identity) else {
            return refuse(
                JitRefusalKind::UnknownIdentity,
                format!("there is no identity `{}` in the policy: use an identity name from the policy file", ask.identity.escape_debug()),
            );
        };
        check_text(
            "justification",
            JitRefusalKind::InvalidJustification,
            ask.reason,
        )?;
        check_text("ticket", JitRefusalKind::InvalidTicket, ask.ticket)?;
        let fits = |a: &&Assignment| {
            a.eligible.is_some()
                && a.principal.grants_to(ask.requester)
                && a.role.eq_ignore_ascii_case(ask.role)
                && scope_has(&a.identities, |n| n == ask.identity)
                && audience.as_deref().is_none_or(|aud| {
                    scope_has(&a.audiences, |p| audience::pattern_matches(p, aud))
                })
        };
        let request = Request::new(Action::TokenRead)
            .identity(Some(ask.identity))
            .audience(audience.as_deref())
            .at(ask.at);
        let ctx = Ctx {
            caller: ask.requester,
            request: &request,
            identity: Some(identity),
        };
        let mut best: Option<Activation> = None;
        let mut first_refusal = None;
        for a in self.assignments.iter().filter(fits) {
            let Some(e) = &a.eligible else { continue };
            match plan_one(a, e, ask, &ctx) {
                Ok(plan) => {
                    let better = best.as_ref().is_none_or(|b| {
                        (plan.auto_approved, plan.duration) > (b.auto_approved, b.duration)
                    });
                    if better {
                        best = Some(plan);
                    }
                }
                Err(r) => {
                    first_refusal.get_or_insert(r);
                }
            }
        }
        match (best, first_refusal) {
            (Some(plan), _) => Ok(plan),
            (None, Some(r)) => Err(r),
            (None, None) => refuse(
                JitRefusalKind::NotEligible,
                format!(
                    "you are not eligible for role `{}` on identity `{}`{}: check the role and identity names, or ask an administrator for an eligible assignment (`eligible = true`)",
                    ask.role.escape_debug(),
                    ask.identity.escape_debug(),
                    audience.map(|a| format!(" and audience `{a}`")).unwrap_or_default()
                ),
            ),
        }
    }

    /// May `approver` approve a request by `requester_uid` to activate
    /// eligible assignment `assignment`? Self-approval is refused before
    /// anything else.
    pub fn may_approve_activation(
        &self,
        assignment: &str,
        approver: &Caller,
        requester_uid: u32,
    ) -> Result<(), JitRefusal> {
        approver_known(approver, Some(requester_uid))?;
        let Some(e) = self
            .assignments
            .iter()
            .find(|a| a.name == assignment)
            .and_then(|a| a.eligible.as_ref())
        else {
            return refuse(
                JitRefusalKind::NotEligible,
                format!("`{}` is not an eligible assignment in the current policy (it may have changed since the request): the requester must ask again", assignment.escape_debug()),
            );
        };
        may_approve(
            &e.approvers,
            approver,
            &format!("activations of `{assignment}`"),
            "only its auto-approval condition can approve it",
        )
    }

    /// May this requester have port `ask.port` opened for `ask.source`? The
    /// requester (a local caller, or a signer name) must be one of the
    /// port's `requesters` and the source inside one of its `sources`; the
    /// duration is capped at its `max_duration` (shorter is fine).
    pub fn plan_port(&self, ask: &PortAsk<'_>) -> Result<PortPlan, JitRefusal> {
        let port = self.known_port(ask.port, ask.protocol)?;
        let allowed = match ask.requester {
            PortRequester::Local(c) => {
                c.uid.is_some()
                    && port
                        .requesters
                        .iter()
                        .any(|r| matches!(r, Requester::Local(p) if p.grants_to(c)))
            }
            PortRequester::Signer(name) => port
                .requesters
                .iter()
                .any(|r| matches!(r, Requester::Signer(s) if s == name)),
        };
        if !allowed {
            return refuse(
                JitRefusalKind::NotARequester,
                format!("you may not request port `{}` ({}/{}): ask an administrator to add you to its `requesters`", port.name, port.port, port.protocol),
            );
        }
        let (duration, capped) = cap(ask.duration, port.max_duration)?;
        check_text(
            "justification",
            JitRefusalKind::InvalidJustification,
            ask.reason,
        )?;
        let source = ask.source.to_canonical();
        if source.is_unspecified()
            || source.is_multicast()
            || source == IpAddr::from([255, 255, 255, 255])
        {
            return refuse(
                JitRefusalKind::SourceNotAllowed,
                format!("`{source}` is not one host's address: name the address you connect from"),
            );
        }
        if !port.sources.iter().any(|n| n.contains(&source)) {
            return refuse(
                JitRefusalKind::SourceNotAllowed,
                format!("`{source}` is outside the source ranges of port `{}`: request it from an address inside its `sources`", port.name),
            );
        }
        Ok(PortPlan {
            name: port.name.clone(),
            duration,
            capped,
            auto_approved: port.auto_approve,
        })
    }

    /// May `approver` approve a request for port `port`/`protocol`? A local
    /// requester (`requester_uid`) may not approve their own request; a
    /// signed remote request has no uid to compare.
    pub fn may_approve_port(
        &self,
        port: u16,
        protocol: Protocol,
        approver: &Caller,
        requester_uid: Option<u32>,
    ) -> Result<(), JitRefusal> {
        approver_known(approver, requester_uid)?;
        let p = self.known_port(port, protocol)?;
        may_approve(
            &p.approvers,
            approver,
            &format!("requests for port `{}`", p.name),
            "requests are auto-approved",
        )
    }

    fn known_port(&self, port: u16, protocol: Protocol) -> Refused<&JitPort> {
        self.jit_port(port, protocol).ok_or_else(|| {
            JitRefusal::new(
                JitRefusalKind::UnknownPort,
                format!("port {port}/{protocol} is not a just-in-time port: ask an administrator to add a `[[jit_port]]` for it"),
            )
        })
    }
}

/// One eligible assignment's answer to `ask`.
fn plan_one(
    a: &Assignment,
    e: &Eligibility,
    ask: &ActivationAsk<'_>,
    ctx: &Ctx<'_>,
) -> Refused<Activation> {
    let (duration, capped) = cap(ask.duration, e.max_duration)?;
    if e.require_justification && text(ask.reason).is_none() {
        return refuse(
            JitRefusalKind::JustificationRequired,
            format!(
                "activating `{}` needs a justification: say why you need it",
                a.role
            ),
        );
    }
    if e.require_ticket && text(ask.ticket).is_none() {
        return refuse(
            JitRefusalKind::TicketRequired,
            format!(
                "activating `{}` needs a ticket: give the change or incident ticket it is for",
                a.role
            ),
        );
    }
    let auto_approved = match &e.auto_approve {
        AutoApprove::Never => false,
        AutoApprove::Always => true,
        AutoApprove::When(c) => evaluate(&c.expr, ctx).value,
    };
    Ok(Activation {
        assignment: a.name.clone(),
        role: a.role.clone(),
        duration,
        capped,
        auto_approved,
    })
}
