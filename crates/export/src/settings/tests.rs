use super::*;

#[test]
fn a_full_file() {
    let text = r#"
[export]
hostname = "vm-17"
vm_id = "0a1b"

[export.sink.siem]
url = "syslog+tls://siem.example:6514"
ca = "/etc/gatehouse/siem-ca.pem"
facility = "local4"

[export.sink.otel]
url = "otlp+http://127.0.0.1:4318"
"#;
    let s = parse("gatehouse.toml", text).unwrap();
    assert_eq!(s.export.hostname.as_deref(), Some("vm-17"));
    assert_eq!(s.export.sinks.len(), 2);
    let siem = s.export.sinks.iter().find(|s| s.name == "siem").unwrap();
    assert_eq!(siem.facility, Facility::Local(4));
    assert!(siem.target.tls());
}

/// (file, the errors' `line:column: message` starts).
#[test]
fn every_mistake_with_its_place() {
    let cases: [(&str, &[&str]); 5] = [
        (
            "[export.sink.a]\nurl = \"udp://x:1\"\nfacility = \"kern\"\n",
            &[
                "2:7: unknown sink scheme `udp`",
                "3:12: unknown syslog facility `kern`",
            ],
        ),
        (
            "[export.sink.Bad]\nurl = \"syslog+tcp://x:1\"\n",
            &["1:1: sink name `Bad` is not allowed"],
        ),
        (
            "[export.sink.a]\nurl = \"syslog+tcp://x:1\"\nca = \"/ca.pem\"\n",
            &["3:6: `ca` is for TLS sinks"],
        ),
        (
            "[export.sink.a]\nurl = \"otlp+http://x\"\nfacility = \"daemon\"\n",
            &["3:12: `facility` is for syslog sinks"],
        ),
        ("[export]\nsinks = 1\n", &["2:1: unknown field `sinks`"]),
    ];
    for (text, want) in cases {
        let err = parse("g.toml", text).unwrap_err();
        let got: Vec<String> = err
            .diagnostics
            .iter()
            .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
            .collect();
        assert_eq!(got.len(), want.len(), "{text}: {got:?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.starts_with(w), "{text}: got {g}, want {w}");
        }
        assert!(err.to_string().contains("g.toml:"), "{err}");
    }
}

#[test]
fn flags_add_or_override() {
    let mut s = parse(
        "g",
        "[export.sink.a]\nurl = \"syslog+tcp://x:1\"\nfacility = \"daemon\"\n",
    )
    .unwrap();
    apply_flag(&mut s, "a=syslog+tcp://y:2").unwrap();
    apply_flag(&mut s, "b=otlp+http://z").unwrap();
    assert_eq!(s.export.sinks.len(), 2);
    assert_eq!(s.export.sinks[0].url, "syslog+tcp://y:2");
    assert_eq!(s.export.sinks[0].facility, Facility::Daemon);
    assert!(apply_flag(&mut s, "nourl").is_err());
    assert!(apply_flag(&mut s, "c=ftp://x").is_err());
}
