use super::*;
use crate::caller::CallerError;
use crate::token_path::WrongIdentity;
use crate::upstream::UpstreamError;
use gatehouse_policy::Reason;

/// Every refusal: its status, its audit outcome, and the audit line's
/// `reason` as written from the type.
fn table() -> Vec<(Refusal, u16, Outcome, &'static str)> {
    use Outcome::*;
    vec![
        (
            Refusal::MethodNotAllowed,
            405,
            Rejected,
            "method not allowed: IMDS answers GET, and POST on scheduled events",
        ),
        (
            Refusal::ForwardedFor,
            400,
            Rejected,
            "`X-Forwarded-For` present: IMDS refuses proxied requests",
        ),
        (
            Refusal::AmbiguousFraming,
            400,
            Rejected,
            "`Transfer-Encoding` present: ambiguous framing, connection closed",
        ),
        (
            Refusal::MissingMetadata,
            400,
            Rejected,
            "no single `Metadata: true` header",
        ),
        (
            Refusal::NotCanonical(CanonError::UnknownPath),
            404,
            Rejected,
            "",
        ),
        (
            Refusal::MissingResource,
            400,
            Rejected,
            "token request without a `resource` audience",
        ),
        (
            Refusal::BadAudience,
            400,
            Rejected,
            "the `resource` parameter is not a valid audience",
        ),
        (
            Refusal::IdentityNotFound,
            400,
            Rejected,
            "no identity of the policy matches the request's selector",
        ),
        (
            Refusal::MultipleIdentities,
            400,
            Rejected,
            "several identities match and no selector picks one",
        ),
        (
            Refusal::Denied(Reason::ExplicitDeny),
            403,
            Denied,
            "a deny assignment blocks this request",
        ),
        (
            Refusal::CallerUnknown(CallerError::Task("cancelled".into())),
            403,
            Denied,
            "caller unknown: identification failed: cancelled",
        ),
        (
            Refusal::CallerUnknown(CallerError::Broker(crate::privsep::BrokerError::Refused(
                "no local socket".into(),
            ))),
            403,
            Denied,
            "caller unknown: no local socket",
        ),
        (
            Refusal::BodyTooLarge,
            400,
            Rejected,
            "request body too large, or not sent within 10 s",
        ),
        (
            Refusal::WrongIdentity(WrongIdentity::ObjectId("app".into())),
            502,
            Failed,
            "token oid is not identity `app`",
        ),
        (
            Refusal::Upstream(UpstreamError::Connect("refused".into())),
            503,
            Failed,
            "upstream unreachable: refused",
        ),
        (
            Refusal::Upstream(UpstreamError::Abandoned),
            503,
            Failed,
            "the upstream exchange was abandoned",
        ),
        (
            Refusal::UpstreamTimeout,
            504,
            Failed,
            "the metadata service did not answer in time",
        ),
        (
            Refusal::Limited,
            429,
            Failed,
            "no slot under the metadata service's rate limits in time",
        ),
        (
            Refusal::AuditUnavailable,
            503,
            Failed,
            "the audit log is unavailable",
        ),
    ]
}

#[test]
fn each_refusal_answers_and_is_recorded_from_its_type() {
    for (refusal, status, outcome, detail) in table() {
        let (err, got) = refusal.answer("0123456789ab");
        assert_eq!((err.status, got), (status, outcome), "{refusal:?}");
        let written = refusal.detail();
        if !detail.is_empty() {
            assert_eq!(written, detail, "{refusal:?}");
        }
        // Written from the type, not a Debug dump of it.
        assert_ne!(written, format!("{refusal:?}"));
        assert!(!written.contains("::"), "{written}");
        let first = written.chars().next().unwrap_or('?');
        assert!(
            first.is_lowercase() || first == '`',
            "lowercase or user input first: {written}"
        );
    }
}

#[test]
fn a_denial_keeps_the_policy_reason_and_tells_the_client_it() {
    let refusal = Refusal::Denied(Reason::NoMatchingAssignment);
    assert!(matches!(
        refusal,
        Refusal::Denied(Reason::NoMatchingAssignment)
    ));
    let (err, _) = refusal.answer("0123456789ab");
    assert!(
        err.body.contains("no assignment allows this request"),
        "{}",
        err.body
    );
}

#[test]
fn only_upstream_trouble_says_when_to_retry() {
    for (refusal, ..) in table() {
        let retry = refusal.retry_after();
        let expected = matches!(
            refusal,
            Refusal::Upstream(_) | Refusal::UpstreamTimeout | Refusal::Limited
        );
        assert_eq!(retry.is_some(), expected, "{refusal:?}");
    }
}
