use super::wire::{Answer, Ask, Request};
use super::*;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

fn is_root() -> bool {
    gatehouse_sys::effective_uid() == 0
}

fn skip(what: &str) {
    if std::env::var("GATEHOUSE_REQUIRE_PRIVILEGED").as_deref() == Ok("1") {
        panic!("needs root: {what}");
    }
    eprintln!("SKIPPED (needs root): {what}");
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn ask(broker: &Broker, ask: Ask) -> Answer {
    let bytes = serde_json::to_vec(&Request { id: 7, ask }).unwrap();
    let (reply, _) = broker.answer(&bytes, 0);
    assert_eq!(reply.id, 7);
    reply.answer
}

fn refusal(answer: Answer) -> Option<String> {
    match answer {
        Answer::Refused(why) => Some(why),
        _ => None,
    }
}

#[test]
fn requests_outside_the_gates_business_are_refused() {
    let broker = Broker::new(
        addr("127.0.0.1:16925"),
        Some(0x6761),
        ConnectTargets::Only(vec![addr("169.254.169.254:80")]),
    );
    let needs = gatehouse_sys::Needs::default();
    // (ask, refused because)
    let cases = [
        (
            Ask::Identify {
                src: addr("127.0.0.1:5000"),
                dst: addr("127.0.0.1:22"),
                needs,
            },
            "is not the gate's address",
        ),
        (
            Ask::Identify {
                src: addr("0.0.0.0:5000"),
                dst: addr("127.0.0.1:16925"),
                needs,
            },
            "is not a peer address",
        ),
        (
            Ask::Identify {
                src: addr("127.0.0.1:0"),
                dst: addr("127.0.0.1:16925"),
                needs,
            },
            "is not a peer address",
        ),
        (
            Ask::Connect {
                addr: addr("169.254.169.254:80"),
                mark: 1,
            },
            "is not the gate's",
        ),
        (
            Ask::Connect {
                addr: addr("10.0.0.1:80"),
                mark: 0x6761,
            },
            "is not the upstream",
        ),
        (
            Ask::Connect {
                addr: addr("169.254.169.254:443"),
                mark: 0x6761,
            },
            "is not the upstream",
        ),
    ];
    for (request, why) in cases {
        let got = refusal(ask(&broker, request.clone())).unwrap_or_default();
        assert!(got.contains(why), "{request:?}: {got:?}");
    }
    // IPv6: the gate's only with an IPv6 listener. (Asked about, such a
    // connection that does not exist is looked up and not found.)
    let six = [
        (addr("[fd00:ec2::254]:80"), true),
        (addr("[::1]:16925"), true),
        (addr("[::1]:22"), false),
        (addr("[fd00:ec2::254]:443"), false),
    ];
    let with6 = Broker::new(addr("127.0.0.1:16925"), None, ConnectTargets::Loopback)
        .with_listen6(Some(addr("[::1]:16925")));
    for (dst, gates) in six {
        let request = Ask::Identify {
            src: addr("[fd00:e2e::2]:5000"),
            dst,
            needs,
        };
        let got = refusal(ask(&with6, request.clone())).unwrap_or_default();
        assert_eq!(
            !got.contains("is not the gate's address"),
            gates,
            "{dst}: {got}"
        );
        let got = refusal(ask(&broker, request)).unwrap_or_default();
        assert!(
            got.contains("is not the gate's address"),
            "without IPv6, {dst}: {got}"
        );
    }
    // A connection that is the gate's but does not exist: identification
    // runs and finds nothing.
    let got = ask(
        &broker,
        Ask::Identify {
            src: addr("127.0.0.1:1"),
            dst: addr("127.0.0.1:16925"),
            needs,
        },
    );
    assert!(refusal(got).unwrap_or_default().contains("no local socket"));
}

#[test]
fn malformed_requests_are_refused() {
    let broker = Broker::new(addr("127.0.0.1:16925"), None, ConnectTargets::Loopback);
    let connect = br#"{"id":3,"ask":{"connect":{"addr":"127.0.0.1:80","mark":1}}}"#;
    let cases: [(&[u8], usize, u64); 5] = [
        (b"", 0, 0),
        (b"not json", 0, 0),
        (
            br#"{"id":3,"ask":{"connect":{"addr":"127.0.0.1:80","mark":1}},"extra":1}"#,
            0,
            0,
        ),
        (br#"{"id":3,"ask":{"shell":{"cmd":"id"}}}"#, 0, 0),
        (connect, 1, 3),
    ];
    for (bytes, fds, id) in cases {
        let (reply, fd) = broker.answer(bytes, fds);
        assert!(fd.is_none());
        assert_eq!(reply.id, id, "{}", String::from_utf8_lossy(bytes));
        assert!(
            refusal(reply.answer).is_some(),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
    // Without a configured mark, no marked connection at all.
    let (reply, fd) = broker.answer(connect, 0);
    assert!(fd.is_none() && refusal(reply.answer).is_some());
}

/// A broker serving on one end of a socketpair, on its own thread.
fn served(
    broker: Broker,
) -> (
    Arc<BrokerClient>,
    std::thread::JoinHandle<std::io::Result<()>>,
) {
    let (worker_end, broker_end) = gatehouse_sys::seqpacket_pair().unwrap();
    let handle = std::thread::spawn(move || broker.serve(&broker_end));
    (Arc::new(BrokerClient::new(worker_end).unwrap()), handle)
}

#[test]
fn the_client_identifies_through_the_broker_and_the_broker_stops_when_it_goes() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = listener.local_addr().unwrap();
    let client_stream = TcpStream::connect(listen).unwrap();
    let (_server_side, peer) = listener.accept().unwrap();
    let (client, handle) = served(Broker::new(listen, None, ConnectTargets::Loopback));

    let needs = gatehouse_sys::Needs {
        exe: true,
        ..Default::default()
    };
    let facts = client.identify(peer, listen, needs).unwrap();
    assert_eq!(facts.socket_uid, gatehouse_sys::effective_uid());
    assert_eq!(
        facts.holders.first().map(|h| h.pid),
        Some(std::process::id())
    );
    // Through the trait the gate uses, with the same result.
    let source: Arc<dyn crate::caller::CallerSource> = client.clone();
    assert_eq!(
        source.identify(peer, listen, needs).unwrap().socket_inode,
        facts.socket_inode
    );
    let err = client
        .identify(peer, addr("127.0.0.1:9"), needs)
        .unwrap_err();
    assert!(
        err.to_string().contains("is not the gate's address"),
        "{err}"
    );

    drop(client_stream);
    drop(source);
    drop(client);
    assert!(
        handle.join().unwrap().is_ok(),
        "the broker returns when the worker's end closes"
    );
}

#[test]
fn a_client_whose_broker_is_gone_fails_closed() {
    let (worker_end, broker_end) = gatehouse_sys::seqpacket_pair().unwrap();
    drop(broker_end);
    let client = BrokerClient::new(worker_end).unwrap();
    let err = client
        .identify(
            addr("127.0.0.1:5000"),
            addr("127.0.0.1:16925"),
            gatehouse_sys::Needs::default(),
        )
        .unwrap_err();
    assert!(matches!(err, BrokerError::Gone), "{err:?}");
}

#[test]
fn marked_upstream_sockets_come_from_the_broker() {
    if !is_root() {
        return skip("SO_MARK needs CAP_NET_ADMIN");
    }
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = upstream.local_addr().unwrap();
    let (client, _handle) = served(Broker::new(
        addr("127.0.0.1:16925"),
        Some(0x6761),
        ConnectTargets::Only(vec![target]),
    ));
    let fd = client.connect(target, 0x6761).unwrap();
    assert_eq!(gatehouse_sys::socket_mark(&fd).unwrap(), 0x6761);
    let (_accepted, _) = upstream.accept().unwrap();
    let err = client.connect(addr("127.0.0.1:1"), 0x6761).unwrap_err();
    assert!(matches!(err, BrokerError::Refused(_)), "{err:?}");
}

#[test]
fn events_pass_as_audit_events_only() {
    let (a, b) = gatehouse_sys::seqpacket_pair().unwrap();
    let event = gatehouse_audit::Event::FirewallRepaired {
        trigger: "periodic".into(),
        differences: vec!["x".into()],
        remaining: vec![],
    };
    send_event(&a, &event).unwrap();
    assert_eq!(recv_event(&b).unwrap(), Some(event));
    gatehouse_sys::send_message(&a, b"[1,2]", &[]).unwrap();
    assert!(recv_event(&b).is_err());
    // A JSON object that is not a known event is refused too: the broker can
    // have the worker audit only what the schema describes.
    let unknown = br#"{"type": "firewall_repaired", "differences": ["x"]}"#;
    gatehouse_sys::send_message(&a, unknown, &[]).unwrap();
    assert!(recv_event(&b).is_err());
    drop(a);
    assert_eq!(recv_event(&b).unwrap(), None);
}

/// The event socket both ways: commands to the worker, answers to the
/// broker; an audit event that is no object, a message of the other
/// direction, or one with descriptors is refused; closing reads as gone.
#[test]
fn commands_and_answers_pass_both_ways_and_nothing_else() {
    use super::wire::{ToBroker, ToWorker};
    use super::{recv_from_broker, recv_from_worker, send_to_broker, send_to_worker};
    use crate::lifecycle::ReloadOutcome;
    let (broker, worker) = gatehouse_sys::seqpacket_pair().unwrap();
    let commands = [
        ToWorker::Reload { id: 7 },
        ToWorker::Stop {
            reason: "SIGTERM".to_owned(),
        },
        ToWorker::Audit(gatehouse_audit::Event::FirewallMonitorLost {
            error: "gone".to_owned(),
        }),
    ];
    for c in &commands {
        send_to_worker(&broker, c).unwrap();
        assert_eq!(recv_from_broker(&worker).unwrap().as_ref(), Some(c));
    }
    let answers = [
        ToBroker::Ready {
            policy: "ab".repeat(32),
            served: 0,
        },
        ToBroker::Reloaded {
            id: 7,
            outcome: ReloadOutcome::Kept {
                policy: "ab".repeat(32),
                reason: "policy has 1 error(s)".to_owned(),
                details: "policy.toml:3:8: error".to_owned(),
            },
        },
        ToBroker::Alive {
            policy: "cd".repeat(32),
            served: 12,
        },
    ];
    for a in &answers {
        send_to_broker(&worker, a).unwrap();
        assert_eq!(recv_from_worker(&broker).unwrap().as_ref(), Some(a));
    }
    let refused: [&[u8]; 4] = [
        br#"{"audit":[1]}"#,
        br#"{"reload":{"id":1,"extra":2}}"#,
        br#"{"alive":{"policy":"x","served":1}}"#,
        b"not json",
    ];
    for bytes in refused {
        gatehouse_sys::send_message(&broker, bytes, &[]).unwrap();
        let got = recv_from_broker(&worker);
        assert!(got.is_err(), "{}: {got:?}", String::from_utf8_lossy(bytes));
    }
    let (spare, _other) = gatehouse_sys::seqpacket_pair().unwrap();
    let stop = serde_json::to_vec(&ToWorker::Stop {
        reason: "x".to_owned(),
    })
    .unwrap();
    gatehouse_sys::send_message(&broker, &stop, &[std::os::fd::AsFd::as_fd(&spare)]).unwrap();
    assert!(recv_from_broker(&worker).is_err(), "descriptors refused");
    drop(broker);
    assert_eq!(recv_from_broker(&worker).unwrap(), None);
}

/// Caller facts with `count` holders whose exe paths are `path_len` long.
fn facts_with(count: usize, path_len: usize) -> gatehouse_sys::CallerFacts {
    let holder = gatehouse_sys::ProcessFacts {
        exe_path: Some(format!("/{}", "d".repeat(path_len))),
        ..gatehouse_sys::ProcessFacts::with_ids(1, 1000, 1000, 1000, 1000, vec![])
    };
    gatehouse_sys::CallerFacts {
        socket_uid: 1000,
        socket_inode: 1,
        holders: vec![holder; count],
        lookup: gatehouse_sys::LookupStats {
            strategy: gatehouse_sys::Strategy::Recent,
            holder_search: gatehouse_sys::HolderSearch::Related,
            candidates: count as u32,
            micros: 1,
        },
    }
}

/// (reply limit, holders, exe path length) → the first request's answer is
/// refused with `why`; the broker answers the next request as usual and
/// returns cleanly when the worker goes. The first row is a reply over
/// MAX_REPLY (64 holders with 4,000-byte paths); the second passes the
/// limit but not the kernel (`EMSGSIZE`: 4 MiB exceeds the socket buffer).
#[test]
fn replies_too_large_are_refused_and_the_broker_goes_on() {
    use std::os::fd::AsFd;
    let cases: [(usize, usize, usize, &str); 2] = [
        (wire::MAX_REPLY, 64, 4000, "too many holders"),
        (usize::MAX, 64, 64 * 1024, "the reply could not be sent"),
    ];
    for (limit, count, path_len, why) in cases {
        let (worker_end, broker_end) = gatehouse_sys::seqpacket_pair().unwrap();
        let handle = std::thread::spawn(move || {
            broker::serve_with(broker_end.as_fd(), limit, |bytes, _| {
                let request: Request = serde_json::from_slice(bytes).unwrap();
                // Request 1 gets the large answer, every other a small one.
                let facts = if request.id == 1 {
                    facts_with(count, path_len)
                } else {
                    facts_with(1, 10)
                };
                (
                    wire::Reply {
                        id: request.id,
                        answer: Answer::Caller(Box::new(facts)),
                    },
                    None,
                )
            })
        });
        let needs = gatehouse_sys::Needs::default();
        for id in [1u64, 2] {
            let ask = Ask::Identify {
                src: addr("127.0.0.1:5000"),
                dst: addr("127.0.0.1:16925"),
                needs,
            };
            let bytes = serde_json::to_vec(&Request { id, ask }).unwrap();
            gatehouse_sys::send_message(&worker_end, &bytes, &[]).unwrap();
            let message = gatehouse_sys::recv_message(&worker_end, wire::MAX_REPLY)
                .unwrap()
                .unwrap();
            let reply: wire::Reply = serde_json::from_slice(&message.bytes).unwrap();
            assert_eq!(reply.id, id, "{why}");
            match (id, reply.answer) {
                (1, Answer::Refused(got)) => assert_eq!(got, why),
                (2, Answer::Caller(facts)) => assert_eq!(facts.holders.len(), 1, "{why}"),
                (_, other) => panic!("{why}: request {id}: {other:?}"),
            }
        }
        drop(worker_end);
        assert!(
            handle.join().unwrap().is_ok(),
            "{why}: the broker kept serving until the worker went"
        );
    }
}
