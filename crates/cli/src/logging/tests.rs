use super::{choose, LogFormat, Sink};

/// (format, JOURNAL_STREAM, stderr's dev:ino, expected)
type Case<'a> = (LogFormat, Option<&'a str>, Option<(u64, u64)>, Sink);

#[test]
fn the_journal_only_when_stderr_is_the_stream_systemd_named() {
    let s = Some((64769, 1234567));
    let cases: &[Case] = &[
        (LogFormat::Auto, Some("64769:1234567"), s, Sink::Journal),
        (LogFormat::Auto, Some("64769:1234567\n"), s, Sink::Journal),
        // stderr redirected by a wrapper or a shell: its own choice stands
        (LogFormat::Auto, Some("64769:7654321"), s, Sink::Text),
        (LogFormat::Auto, Some("1:1234567"), s, Sink::Text),
        (LogFormat::Auto, None, s, Sink::Text),
        (LogFormat::Auto, Some(""), s, Sink::Text),
        (LogFormat::Auto, Some("64769"), s, Sink::Text),
        (LogFormat::Auto, Some("x:y"), s, Sink::Text),
        (LogFormat::Auto, Some("64769:1234567"), None, Sink::Text),
        // an explicit format wins over the environment
        (LogFormat::Text, Some("64769:1234567"), s, Sink::Text),
        (LogFormat::Json, Some("64769:1234567"), s, Sink::Json),
        (LogFormat::Json, None, None, Sink::Json),
        (LogFormat::Journal, None, None, Sink::Journal),
    ];
    for (format, stream, stderr, want) in cases {
        assert_eq!(
            choose(*format, *stream, *stderr),
            *want,
            "{format:?} JOURNAL_STREAM={stream:?} stderr={stderr:?}"
        );
    }
}
