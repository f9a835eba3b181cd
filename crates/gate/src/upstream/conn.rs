//! The upstream's HTTP/1 connections, driven by the request that uses them.
//!
//! A pooled client that runs each connection in a task of its own hands
//! every request to that task and waits to be woken with the answer: two
//! task switches and a channel per exchange, on the path of every request
//! that is not served from the cache. Here the request polls its connection
//! itself while it waits (hyper's connection-level client), so writing the
//! request, reading the answer and handing it on happen in one task. An idle
//! connection sits in the pool unpolled; taking it polls it once, and one
//! that the metadata service closed meanwhile is dropped there. A request
//! that a pooled connection could not even send (it had just been closed)
//! goes out once more on another connection; one that was sent is never
//! sent twice.
//!
//! Connections are kept per serving thread (each is registered with the
//! reactor of the thread that opened it), at most `max_idle` a thread, none
//! idle longer than `idle_timeout` (checked whenever the pool is used: an
//! idle connection is not polled, so one the other side closed waits,
//! half-closed, until then).

use crate::connector::MarkedConnector;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tower_service::Service as _;

type Io = TokioIo<TcpStream>;
type Body = Full<Bytes>;

/// Why an exchange gave no answer.
#[derive(Debug)]
pub(crate) enum Failed {
    /// No connection could be made.
    Connect(std::io::Error),
    /// The answer was larger than allowed.
    TooLarge,
    /// The exchange failed after it started.
    Request(String),
}

/// An answer: its head and its whole body.
pub(crate) struct Answer {
    pub parts: http::response::Parts,
    pub body: Bytes,
}

/// One connection: the handle requests are sent through and the connection
/// itself, polled by whoever waits on it.
struct Conn {
    send: http1::SendRequest<Body>,
    /// `None` once the connection has ended.
    conn: Option<Pin<Box<http1::Connection<Io, Body>>>>,
    idle_since: Instant,
    thread: ThreadId,
}

impl Conn {
    /// Poll the connection (it writes, reads and hands on what it read);
    /// once it has ended it is not polled again.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(conn) = self.conn.as_mut() {
            if conn.as_mut().poll(cx).is_ready() {
                self.conn = None;
            }
        }
    }

    /// Whether another request can go out on it now (polled once, so a close
    /// by the other side that has arrived is seen).
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        self.drive(&mut cx);
        self.conn.is_some() && !self.send.is_closed() && self.send.is_ready()
    }

    /// Send `request` and read the whole answer (at most `max_body` bytes of
    /// body), driving the connection meanwhile. `Err(Ok(request))`: it could
    /// not be sent at all (the connection had closed), so it may go out on
    /// another.
    async fn exchange(
        &mut self,
        request: http::Request<Body>,
        max_body: usize,
    ) -> Result<Answer, Result<http::Request<Body>, Failed>> {
        let mut response = std::pin::pin!(self.send.try_send_request(request));
        let head = poll_fn(|cx| {
            if let Poll::Ready(r) = response.as_mut().poll(cx) {
                return Poll::Ready(r);
            }
            self.drive(cx);
            response.as_mut().poll(cx)
        })
        .await;
        let head = match head {
            Ok(head) => head,
            Err(mut e) => {
                return Err(match e.take_message() {
                    Some(request) => Ok(request),
                    None => Err(Failed::Request(e.into_error().to_string())),
                })
            }
        };
        let (parts, body) = head.into_parts();
        let mut collecting = std::pin::pin!(Limited::new(body, max_body).collect());
        let collected = poll_fn(|cx| {
            if let Poll::Ready(c) = collecting.as_mut().poll(cx) {
                return Poll::Ready(c);
            }
            self.drive(cx);
            collecting.as_mut().poll(cx)
        })
        .await;
        let body = match collected {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                return Err(Err(
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        Failed::TooLarge
                    } else {
                        Failed::Request(e.to_string())
                    },
                ))
            }
        };
        Ok(Answer { parts, body })
    }
}

/// The idle connections to one upstream.
pub(crate) struct Pool {
    connector: MarkedConnector,
    idle: Mutex<Vec<Conn>>,
    max_idle: usize,
    idle_timeout: Duration,
}

impl Pool {
    pub(crate) fn new(connector: MarkedConnector, max_idle: usize, idle_timeout: Duration) -> Self {
        Pool {
            connector,
            idle: Mutex::new(Vec::new()),
            max_idle,
            idle_timeout,
        }
    }

    /// `request` (origin-form, with its `Host`) on a pooled connection of
    /// this thread, or a new one to `uri`'s host; the whole answer.
    pub(crate) async fn send(
        &self,
        uri: &http::Uri,
        mut request: http::Request<Body>,
        max_body: usize,
    ) -> Result<Answer, Failed> {
        loop {
            let (mut conn, pooled) = match self.take() {
                Some(conn) => (conn, true),
                None => (self.open(uri).await?, false),
            };
            match conn.exchange(request, max_body).await {
                Ok(answer) => {
                    self.put(conn);
                    return Ok(answer);
                }
                // Not sent: the connection had just closed. Pooled ones are
                // finite, and a new one that cannot send is an error.
                Err(Ok(unsent)) if pooled => request = unsent,
                Err(Ok(_)) => {
                    return Err(Failed::Request(
                        "a new upstream connection closed before the request was sent".into(),
                    ))
                }
                Err(Err(failed)) => return Err(failed),
            }
        }
    }

    async fn open(&self, uri: &http::Uri) -> Result<Conn, Failed> {
        let io = self
            .connector
            .clone()
            .call(uri.clone())
            .await
            .map_err(Failed::Connect)?;
        let (send, conn) = http1::Builder::new()
            .handshake(io)
            .await
            .map_err(|e| Failed::Request(e.to_string()))?;
        Ok(Conn {
            send,
            conn: Some(Box::pin(conn)),
            idle_since: Instant::now(),
            thread: std::thread::current().id(),
        })
    }

    /// The most recently used idle connection of this thread that can still
    /// send; closed and expired ones are dropped on the way (their sockets
    /// closed, and connections polled, outside the lock).
    fn take(&self) -> Option<Conn> {
        let here = std::thread::current().id();
        loop {
            let (taken, expired) = {
                let mut idle = self.lock();
                let expired = drain_expired(&mut idle, Instant::now(), self.idle_timeout);
                let at = idle.iter().rposition(|c| c.thread == here);
                (at.map(|at| idle.remove(at)), expired)
            };
            drop(expired);
            let mut conn = taken?;
            if conn.usable() {
                return Some(conn);
            }
        }
    }

    /// Back into the pool after an exchange, if it can send again. A thread
    /// keeps at most `max_idle`: its own oldest makes room, so one busy
    /// thread cannot push out another's.
    fn put(&self, mut conn: Conn) {
        if !conn.usable() {
            return;
        }
        conn.idle_since = Instant::now();
        let dropped = {
            let mut idle = self.lock();
            let mut dropped = drain_expired(&mut idle, conn.idle_since, self.idle_timeout);
            let mine = idle.iter().filter(|c| c.thread == conn.thread).count();
            if mine >= self.max_idle.max(1) {
                if let Some(at) = idle.iter().position(|c| c.thread == conn.thread) {
                    dropped.push(idle.remove(at));
                }
            }
            idle.push(conn);
            dropped
        };
        drop(dropped);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The connections idle for `timeout` or longer, taken out of `idle`.
/// (No allocation when none is: this runs twice per uncached request.)
fn drain_expired(idle: &mut Vec<Conn>, now: Instant, timeout: Duration) -> Vec<Conn> {
    let fresh = |c: &Conn| now.saturating_duration_since(c.idle_since) < timeout;
    if idle.iter().all(fresh) {
        return Vec::new();
    }
    let (keep, expired) = std::mem::take(idle).into_iter().partition(fresh);
    *idle = keep;
    expired
}

#[cfg(test)]
mod tests {
    use super::{Failed, Pool};
    use crate::connector::MarkedConnector;
    use bytes::Bytes;
    use http_body_util::Full;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// What a scripted upstream does with each request on a connection.
    #[derive(Clone, Copy)]
    enum Script {
        /// Answer every request, keeping the connection.
        KeepAlive,
        /// Answer one request, then close the connection (without saying so).
        CloseAfterOne,
        /// Read the request and close without answering.
        Vanish,
        /// Answer with a body of this many bytes.
        Big(usize),
    }

    /// A loopback upstream: counts connections and requests.
    fn upstream(script: Script) -> (http::Uri, Arc<AtomicUsize>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let uri: http::Uri = format!("http://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let (conns, reqs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (c, r) = (Arc::clone(&conns), Arc::clone(&reqs));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                c.fetch_add(1, Ordering::SeqCst);
                let r = Arc::clone(&r);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    loop {
                        let mut line = String::new();
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        r.fetch_add(1, Ordering::SeqCst);
                        let body = match script {
                            Script::Vanish => return,
                            Script::Big(n) => "x".repeat(n),
                            _ => "{}".to_owned(),
                        };
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if matches!(script, Script::CloseAfterOne) {
                            return;
                        }
                    }
                });
            }
        });
        (uri, conns, reqs)
    }

    fn pool() -> Pool {
        let connector = MarkedConnector {
            mark: None,
            connect_timeout: Duration::from_secs(2),
        };
        Pool::new(connector, 8, Duration::from_secs(30))
    }

    fn get(uri: &http::Uri) -> http::Request<Full<Bytes>> {
        http::Request::get("/metadata/instance")
            .header(http::header::HOST, uri.authority().unwrap().as_str())
            .body(Full::new(Bytes::new()))
            .unwrap()
    }

    #[tokio::test]
    async fn connections_are_reused_and_closed_ones_are_not() {
        let (uri, conns, reqs) = upstream(Script::KeepAlive);
        let pool = pool();
        for _ in 0..3 {
            let answer = pool.send(&uri, get(&uri), 1024).await.unwrap();
            assert_eq!(answer.parts.status, 200);
            assert_eq!(answer.body, Bytes::from_static(b"{}"));
        }
        assert_eq!(
            conns.load(Ordering::SeqCst),
            1,
            "one connection for all three"
        );
        assert_eq!(reqs.load(Ordering::SeqCst), 3);

        // An upstream that closes each connection after one answer: the
        // pooled one is found closed and a new one carries the request.
        let (uri, conns, reqs) = upstream(Script::CloseAfterOne);
        let pool = self::pool(); // a pool is for one upstream
        for _ in 0..3 {
            let answer = pool.send(&uri, get(&uri), 1024).await.unwrap();
            assert_eq!(answer.parts.status, 200);
            tokio::time::sleep(Duration::from_millis(50)).await; // the close arrives
        }
        assert_eq!(conns.load(Ordering::SeqCst), 3);
        assert_eq!(reqs.load(Ordering::SeqCst), 3, "each request sent once");
    }

    /// Each serving thread keeps its own: one thread's connections do not
    /// push out another's, and none is taken by a thread that did not open it.
    #[test]
    fn a_thread_keeps_its_own_connections() {
        let (uri, conns, reqs) = upstream(Script::KeepAlive);
        let pool = Arc::new(Pool::new(pool().connector, 1, Duration::from_secs(30)));
        let on_a_thread = |requests: usize| {
            let (pool, uri) = (Arc::clone(&pool), uri.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async {
                    for _ in 0..requests {
                        pool.send(&uri, get(&uri), 1024).await.unwrap();
                    }
                });
            })
            .join()
            .unwrap();
        };
        on_a_thread(2);
        on_a_thread(2);
        assert_eq!(reqs.load(Ordering::SeqCst), 4);
        assert_eq!(conns.load(Ordering::SeqCst), 2, "one per thread, reused");
        assert_eq!(
            pool.lock().len(),
            2,
            "the second did not push out the first"
        );
    }

    #[tokio::test]
    async fn an_expired_connection_is_not_reused() {
        let (uri, conns, _) = upstream(Script::KeepAlive);
        let pool = Pool::new(pool().connector, 8, Duration::ZERO);
        for _ in 0..2 {
            pool.send(&uri, get(&uri), 1024).await.unwrap();
        }
        assert_eq!(conns.load(Ordering::SeqCst), 2, "the idle one had expired");
        assert_eq!(pool.lock().len(), 1, "only the latest is kept");
    }

    #[tokio::test]
    async fn a_request_that_was_sent_is_not_sent_again() {
        let (uri, conns, reqs) = upstream(Script::Vanish);
        let pool = pool();
        let failed = pool.send(&uri, get(&uri), 1024).await;
        assert!(
            matches!(failed, Err(Failed::Request(_))),
            "{:?}",
            failed.err()
        );
        assert_eq!(reqs.load(Ordering::SeqCst), 1, "sent once");
        assert_eq!(conns.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_answer_larger_than_allowed_is_refused() {
        let (uri, _, _) = upstream(Script::Big(4096));
        let pool = pool();
        let failed = pool.send(&uri, get(&uri), 1024).await;
        assert!(
            matches!(failed, Err(Failed::TooLarge)),
            "{:?}",
            failed.err()
        );
        let answer = pool.send(&uri, get(&uri), 8192).await.unwrap();
        assert_eq!(answer.body.len(), 4096);
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let uri: http::Uri = format!("http://127.0.0.1:{port}").parse().unwrap();
        let failed = pool().send(&uri, get(&uri), 1024).await;
        assert!(
            matches!(failed, Err(Failed::Connect(_))),
            "{:?}",
            failed.err()
        );
    }
}
