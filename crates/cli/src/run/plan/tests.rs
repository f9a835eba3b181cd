//! Flags → plan or error, without starting anything.

use super::*;
use clap::Parser;

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

/// What a plan decided, in a form a table can state.
#[derive(Debug, PartialEq, Eq)]
struct Decided {
    role: Role,
    trusted: Vec<u32>,
    mark: Option<u32>,
    firewall: Watching,
    here: Watching,
    audit: AuditLog,
    lookup: CallerLookup,
    pid_file: Option<PathBuf>,
}

fn decided(p: &Plan) -> Decided {
    Decided {
        role: p.role.clone(),
        trusted: p.trusted_uids.clone(),
        mark: p.mark,
        firewall: p.firewall,
        here: p.watches_here(),
        audit: p.audit.clone(),
        lookup: p.lookup,
        pid_file: p.pid_file.clone(),
    }
}

#[test]
fn flags_decide_the_plan() {
    use CallerLookup::*;
    use Watching::*;
    let log = || AuditLog::Path(PathBuf::from("/var/log/gatehouse/audit.log"));
    let d =
        |role, trusted: &[u32], mark, firewall, here, audit, lookup, pid: Option<&str>| Decided {
            role,
            trusted: trusted.to_vec(),
            mark,
            firewall,
            here,
            audit,
            lookup,
            pid_file: pid.map(PathBuf::from),
        };
    let table: Vec<(u32, &str, Decided)> = vec![
        // A VM: marked, the table kept, the system audit log, root only.
        (
            0,
            "--upstream imds",
            d(
                Role::Alone,
                &[0],
                Some(DEFAULT_MARK),
                Watch,
                Watch,
                log(),
                Auto,
                None,
            ),
        ),
        (
            0,
            "--upstream imds --upstream-mark 0x10",
            d(
                Role::Alone,
                &[0],
                Some(0x10),
                Watch,
                Watch,
                log(),
                Auto,
                None,
            ),
        ),
        (
            0,
            "--upstream imds --no-upstream-mark --firewall off",
            d(Role::Alone, &[0], None, Off, Off, log(), Auto, None),
        ),
        // Try-it: unmarked, no table, a private log, the user trusted too.
        (
            1000,
            "--upstream emulator",
            d(
                Role::Alone,
                &[0, 1000],
                None,
                Off,
                Off,
                AuditLog::TryIt,
                Auto,
                None,
            ),
        ),
        (
            0,
            "--upstream emulator",
            d(
                Role::Alone,
                &[0],
                None,
                Off,
                Off,
                AuditLog::TryIt,
                Auto,
                None,
            ),
        ),
        (
            1000,
            "--upstream emulator --audit /tmp/a.log",
            d(
                Role::Alone,
                &[0, 1000],
                None,
                Off,
                Off,
                AuditLog::Path("/tmp/a.log".into()),
                Auto,
                None,
            ),
        ),
        (
            1000,
            "--upstream http://127.0.0.1:8080",
            d(Role::Alone, &[0], None, Off, Off, log(), Auto, None),
        ),
        // Separated: the broker keeps the pid file and the table; the worker neither.
        (
            0,
            "--upstream imds --user gatehouse --pid-file /run/g.pid",
            d(
                Role::Broker {
                    user: "gatehouse".into(),
                },
                &[0],
                Some(DEFAULT_MARK),
                Watch,
                Watch,
                log(),
                Auto,
                Some("/run/g.pid"),
            ),
        ),
        (
            999,
            "--upstream imds --internal-worker --pid-file /run/g.pid",
            d(
                Role::Worker,
                &[0],
                Some(DEFAULT_MARK),
                Watch,
                Off,
                log(),
                Auto,
                None,
            ),
        ),
        (
            999,
            "--upstream emulator --internal-worker",
            d(
                Role::Worker,
                &[0],
                None,
                Off,
                Off,
                AuditLog::TryIt,
                Auto,
                None,
            ),
        ),
        // Caller lookup: `--all-holders` settles it.
        (
            0,
            "--upstream imds --all-holders",
            d(
                Role::Alone,
                &[0],
                Some(DEFAULT_MARK),
                Watch,
                Watch,
                log(),
                SockDiag,
                None,
            ),
        ),
        (
            0,
            "--upstream imds --caller-lookup ebpf",
            d(
                Role::Alone,
                &[0],
                Some(DEFAULT_MARK),
                Watch,
                Watch,
                log(),
                Ebpf,
                None,
            ),
        ),
        (
            0,
            "--upstream imds --all-holders --caller-lookup sock-diag",
            d(
                Role::Alone,
                &[0],
                Some(DEFAULT_MARK),
                Watch,
                Watch,
                log(),
                SockDiag,
                None,
            ),
        ),
    ];
    for (me, flags, want) in table {
        assert_eq!(decided(&ok(me, flags)), want, "uid {me}: `{flags}`");
    }
}

#[test]
fn flags_that_cannot_start_say_why_and_what_to_do() {
    type Is = fn(&StartError) -> bool;
    let table: Vec<(u32, &str, Is, &str)> = vec![
        (
            0,
            "",
            |e| matches!(e, StartError::NoUpstream),
            "`--upstream imds`",
        ),
        (
            0,
            "--upstream nowhere",
            |e| matches!(e, StartError::Upstream(_)),
            "`--upstream imds`",
        ),
        (
            0,
            "--upstream http://h:1/path",
            |e| matches!(e, StartError::Upstream(_)),
            "never picks",
        ),
        (
            1000,
            "--upstream imds --user gatehouse",
            |e| matches!(e, StartError::UserNeedsRoot),
            "drop `--user`",
        ),
        (
            0,
            "--upstream imds --no-upstream-mark",
            |e| matches!(e, StartError::WatchWithoutMark),
            "`--firewall off`",
        ),
        (
            0,
            "--upstream emulator --firewall watch",
            |e| matches!(e, StartError::WatchWithoutMark),
            "`--firewall off`",
        ),
        (
            0,
            "--upstream imds --all-holders --caller-lookup ebpf",
            |e| matches!(e, StartError::AllHoldersWithEbpf),
            "drop one",
        ),
        (
            0,
            "--upstream imds --metrics-listen 169.254.169.254:80",
            |e| matches!(e, StartError::MetricsOnImdsPath(_)),
            "of their own",
        ),
        (
            0,
            "--upstream imds --listen 127.0.0.1:9000 --metrics-listen 127.0.0.1:9000",
            |e| matches!(e, StartError::MetricsOnImdsPath(_)),
            "of their own",
        ),
    ];
    for (me, flags, is, hint) in table {
        let Err(e) = plan(me, flags) else {
            panic!("uid {me}: `{flags}` should not start");
        };
        assert!(is(&e), "uid {me}: `{flags}`: {e:?}");
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
         --firewall-every 3 --containers redirect --jit-db /j.db --admin-socket /a.sock \
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
