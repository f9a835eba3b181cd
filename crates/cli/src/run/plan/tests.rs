//! Flags → plan or error, without starting anything.

use super::*;
use clap::Parser;
use std::path::Path;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn plan(me: u32, flags: &str) -> Result<Plan, StartError> {
    let argv = std::iter::once("gatehouse").chain(flags.split_whitespace());
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("`{flags}`: {e}"));
    Plan::new(&cli.args, me)
}

fn ok(me: u32, flags: &str) -> Plan {
    plan(me, flags).unwrap_or_else(|e| panic!("`{flags}`: {e}"))
}

/// What a plan decided, in one line a table can state: role, trusted uids,
/// mark, firewall kept/watched here, audit log, caller lookup, pid file.
fn decided(p: &Plan) -> String {
    let role = match &p.role {
        Role::Alone => "alone".to_owned(),
        Role::Broker { user } => format!("broker:{user}"),
        Role::Worker => "worker".to_owned(),
    };
    let trusted: Vec<String> = p.trusted_uids.iter().map(u32::to_string).collect();
    let mark = p.mark.map_or("-".to_owned(), |m| format!("{m:#x}"));
    let fw = |w: Watching| match w {
        Watching::Watch => "watch",
        Watching::Off => "off",
    };
    let audit = match &p.audit {
        AuditLog::TryIt => "try-it".to_owned(),
        AuditLog::Path(path) if path == Path::new("/var/log/gatehouse/audit.log") => {
            "default".to_owned()
        }
        AuditLog::Path(path) => path.display().to_string(),
    };
    let lookup = match p.lookup {
        CallerLookup::Auto => "auto",
        CallerLookup::Ebpf => "ebpf",
        CallerLookup::SockDiag => "sock-diag",
    };
    let pid = p
        .pid_file
        .as_ref()
        .map_or("-".to_owned(), |f| f.display().to_string());
    format!(
        "{role} {} {mark} {}/{} {audit} {lookup} {pid}",
        trusted.join(","),
        fw(p.firewall),
        fw(p.watches_here())
    )
}

#[test]
fn flags_decide_the_plan() {
    #[rustfmt::skip]
    let table = [
        // A VM: marked, the table kept, the system audit log, root only.
        (0, "--upstream imds", "alone 0 0x6761 watch/watch default auto -"),
        (0, "--upstream imds --upstream-mark 0x10", "alone 0 0x10 watch/watch default auto -"),
        (0, "--upstream imds --no-upstream-mark --firewall off", "alone 0 - off/off default auto -"),
        // Try-it: unmarked, no table, a private log, the user trusted too.
        (1000, "--upstream emulator", "alone 0,1000 - off/off try-it auto -"),
        (0, "--upstream emulator", "alone 0 - off/off try-it auto -"),
        (1000, "--upstream emulator --audit /tmp/a.log", "alone 0,1000 - off/off /tmp/a.log auto -"),
        (1000, "--upstream http://127.0.0.1:8080", "alone 0 - off/off default auto -"),
        // Separated: the broker keeps the pid file and the table; the worker neither.
        (0, "--upstream imds --user gh --pid-file /g.pid", "broker:gh 0 0x6761 watch/watch default auto /g.pid"),
        (999, "--upstream imds --internal-worker --pid-file /g.pid", "worker 0 0x6761 watch/off default auto -"),
        (999, "--upstream emulator --internal-worker", "worker 0 - off/off try-it auto -"),
        // Caller lookup: `--all-holders` settles it.
        (0, "--upstream imds --all-holders", "alone 0 0x6761 watch/watch default sock-diag -"),
        (0, "--upstream imds --caller-lookup ebpf", "alone 0 0x6761 watch/watch default ebpf -"),
        (0, "--upstream imds --caller-lookup sock-diag", "alone 0 0x6761 watch/watch default sock-diag -"),
    ];
    for (me, flags, want) in table {
        assert_eq!(decided(&ok(me, flags)), want, "uid {me}: `{flags}`");
    }
}

/// A refusal's variant, as a table names it.
fn kind(e: &StartError) -> &'static str {
    match e {
        StartError::NoUpstream => "no-upstream",
        StartError::Upstream(_) => "upstream",
        StartError::UserNeedsRoot => "user-needs-root",
        StartError::AllHoldersWithEbpf => "all-holders-ebpf",
        StartError::WatchWithoutMark => "watch-without-mark",
        StartError::MetricsOnImdsPath(_) => "metrics-on-imds",
        StartError::Policy { .. } => "policy",
        StartError::Step { .. } => "step",
    }
}

#[test]
fn flags_that_cannot_start_say_why_and_what_to_do() {
    #[rustfmt::skip]
    let table = [
        (0, "", "no-upstream", "`--upstream imds`"),
        (0, "--upstream nowhere", "upstream", "`--upstream imds`"),
        (0, "--upstream http://h:1/path", "upstream", "never picks"),
        (1000, "--upstream imds --user gatehouse", "user-needs-root", "drop `--user`"),
        (0, "--upstream imds --no-upstream-mark", "watch-without-mark", "`--firewall off`"),
        (0, "--upstream emulator --firewall watch", "watch-without-mark", "`--firewall off`"),
        (0, "--upstream imds --all-holders --caller-lookup ebpf", "all-holders-ebpf", "drop one"),
        (0, "--upstream imds --metrics-listen 169.254.169.254:80", "metrics-on-imds", "own"),
        (0, "--upstream imds --listen 127.0.0.1:9 --metrics-listen 127.0.0.1:9", "metrics-on-imds", "own"),
    ];
    for (me, flags, want, hint) in table {
        let Err(e) = plan(me, flags) else {
            panic!("uid {me}: `{flags}` should not start");
        };
        assert_eq!(kind(&e), want, "uid {me}: `{flags}`: {e:?}");
        let message = e.to_string();
        assert!(
            message
                .chars()
                .next()
                .is_some_and(|c| c.is_lowercase() || c == '`'),
            "{message}"
        );
        assert!(
            e.hint().is_some_and(|h| h.contains(hint)),
            "`{flags}`: {:?}",
            e.hint()
        );
    }
}

#[test]
fn every_other_setting_is_carried_as_given() {
    let p = ok(
        0,
        "--upstream imds --policy /p.toml --listen 127.0.0.1:1 --audit-rotate-bytes 0 \
         --cache-margin 60 --no-upstream-limits --upstream-timeout 2.5 --max-connections-per-uid 7 \
         --threads 3 --firewall-every 3 --containers redirect --jit-db /j.db --admin-socket /a.sock \
         --jit-retention-days 0 --knock-listen 0.0.0.0:62201 --knock-host h \
         --allowed-signers /s --metrics-listen 127.0.0.1:9925 --emulator-config /e.toml",
    );
    assert_eq!(p.policy, PathBuf::from("/p.toml"));
    assert_eq!(p.listen, "127.0.0.1:1".parse().unwrap());
    assert_eq!(p.audit_rotate_bytes, None);
    assert_eq!(p.cache_margin, Some(Duration::from_secs(60)));
    assert!(!p.upstream_limits);
    assert_eq!(p.upstream_timeout, Duration::from_millis(2500));
    assert_eq!(p.max_connections_per_uid, 7);
    assert_eq!(p.threads, 3);
    assert_eq!(p.firewall_every, Duration::from_secs(3));
    assert_eq!(
        p.firewall_shape.containers,
        crate::firewall::ContainerMode::Redirect
    );
    assert_eq!(p.emulator_config, Some(PathBuf::from("/e.toml")));
    assert_eq!(
        p.jit,
        JitPlan {
            db: Some("/j.db".into()),
            admin_socket: Some("/a.sock".into()),
            // At least a day.
            retention: Duration::from_secs(86_400),
            knock_listen: Some("0.0.0.0:62201".parse().unwrap()),
            knock_host: Some("h".into()),
            allowed_signers: "/s".into(),
        }
    );
    assert_eq!(
        p.metrics,
        Some(MetricsAddr::Tcp("127.0.0.1:9925".parse().unwrap()))
    );
    let defaults = ok(0, "--upstream imds --no-cache");
    assert_eq!(defaults.cache_margin, None);
    assert_eq!(defaults.audit_rotate_bytes, Some(64 * 1024 * 1024));
    assert_eq!(defaults.jit.retention, Duration::from_secs(90 * 86_400));
    assert!(defaults.upstream_limits);
}

#[test]
fn serving_threads_are_one_by_default_and_bounded() {
    assert_eq!(ok(0, "--upstream imds").threads, 1);
    assert_eq!(ok(0, "--upstream imds --threads 64").threads, 64);
    for bad in ["0", "65", "-1", "two"] {
        let argv = ["gatehouse", "--upstream", "imds", "--threads", bad];
        assert!(Cli::try_parse_from(argv).is_err(), "--threads {bad}");
    }
}
