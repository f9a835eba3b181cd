//! Accepting connections: bounded, with header timeouts, one task each.

use crate::handler::ConnInfo;
use crate::Gate;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 1024;
/// Connections one uid may hold open at once, by default. A flood from one
/// user (or one compromised service) is turned away at accept and cannot
/// starve everyone else of the gate.
pub const MAX_CONNECTIONS_PER_UID: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// How long requests already being decided may take to finish at shutdown.
pub const DRAIN: Duration = Duration::from_secs(1);

/// Something the accept loop does every `every`: a sign of life that runs
/// only while the loop itself turns (systemd's watchdog, the status line).
pub struct Heartbeat {
    pub every: Duration,
    pub beat: Box<dyn FnMut() + Send>,
}

/// Serve until `shutdown` completes.
pub async fn serve(gate: Arc<Gate>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
    serve_with_heartbeat(gate, listener, shutdown, None).await;
}

/// [`serve`], beating `heartbeat` from the accept loop. At shutdown no new
/// connection is taken, and requests being decided get up to [`DRAIN`] to
/// finish (their audit lines included).
pub async fn serve_with_heartbeat(
    gate: Arc<Gate>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    heartbeat: Option<Heartbeat>,
) {
    serve_on(gate, listener, None, shutdown, heartbeat).await;
}

/// [`serve_with_heartbeat`] on a second listener too (the IPv6 one the
/// table sends IMDS's IPv6 address to): both accept until `shutdown`, and
/// the drain waits for the requests of both. The heartbeat beats from the
/// first.
pub async fn serve_on(
    gate: Arc<Gate>,
    listener: TcpListener,
    second: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
    heartbeat: Option<Heartbeat>,
) {
    serve_threads(gate, listener, second, shutdown, heartbeat, 1).await;
}

/// [`serve_on`] with `threads` serving threads (at least one).
///
/// Requests are served on threads of their own, each a current-thread
/// runtime that accepts from the same listeners: a connection is accepted,
/// decided, answered and recorded on one thread, with only blocking work
/// (caller lookups, hashing, the broker's round trips) on its blocking
/// pool. Measured on two cores, a multi-threaded scheduler woke its other
/// worker for nearly every request: a cached token cost 43 µs of CPU there
/// against 31 µs here, an upstream hop 98 µs against 54. The caller's
/// runtime (metrics, export, the embedded emulator's RSA signing) never
/// delays a request. The connection limits (in all, per uid) hold across
/// every thread and both listeners.
pub async fn serve_threads(
    gate: Arc<Gate>,
    listener: TcpListener,
    second: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
    heartbeat: Option<Heartbeat>,
    threads: usize,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The listeners leave this runtime's reactor for the serving threads'
    // (each thread a descriptor of its own for the same sockets).
    let listeners = listener
        .into_std()
        .and_then(|l| Ok((l, second.map(TcpListener::into_std).transpose()?)));
    let (listener, second) = match listeners {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot hand the listeners to the serving threads");
            return;
        }
    };
    let limits = Limits {
        slots: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        per_uid: PerUid::new(gate.max_connections_per_uid),
        in_flight: InFlight::default(),
    };
    let mut heartbeat = heartbeat;
    // Each serving thread says when it ends (and drops its sender).
    let (ended_tx, mut ended) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut started = 0;
    for i in 0..threads.max(1) {
        let copies = listener.try_clone().and_then(|l| {
            Ok((
                l,
                second
                    .as_ref()
                    .map(std::net::TcpListener::try_clone)
                    .transpose()?,
            ))
        });
        let (mine, mine6) = match copies {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot share the listeners with serving thread {i}");
                break;
            }
        };
        let (gate, stop, limits, beat, ended_tx) = (
            Arc::clone(&gate),
            stop_rx.clone(),
            limits.clone(),
            heartbeat.take(),
            ended_tx.clone(),
        );
        let serving = std::thread::Builder::new()
            .name(format!("gatehouse-requests-{i}"))
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot start a serving runtime");
                        return;
                    }
                };
                runtime.block_on(serve_here(gate, mine, mine6, stop, beat, limits));
                let _ = ended_tx.send(());
            });
        match serving {
            Ok(_) => started += 1,
            Err(e) => {
                tracing::error!(error = %e, "cannot start serving thread {i}");
                break;
            }
        }
    }
    drop((listener, second, ended_tx));
    if started == 0 {
        return;
    }
    // Until `shutdown`, or until a serving thread ends on its own (it could
    // not serve): then all stop, and each drains what it started.
    tokio::select! {
        () = shutdown => {}
        _ = ended.recv() => {}
    }
    stop_tx.send_replace(true);
    while ended.recv().await.is_some() {}
}

/// What every serving thread shares: the connection slots in all and per
/// uid, and the requests being decided (the drain waits for all of them).
#[derive(Clone)]
struct Limits {
    slots: Arc<Semaphore>,
    per_uid: PerUid,
    in_flight: InFlight,
}

/// A serving thread's part of [`serve_threads`]: accept until `stop`, then
/// drain.
async fn serve_here(
    gate: Arc<Gate>,
    listener: std::net::TcpListener,
    second: Option<std::net::TcpListener>,
    stop: tokio::sync::watch::Receiver<bool>,
    heartbeat: Option<Heartbeat>,
    limits: Limits,
) {
    let listen = |l: std::net::TcpListener| {
        l.set_nonblocking(true)
            .and_then(|()| TcpListener::from_std(l))
    };
    let listener = match listen(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve on the listener");
            return;
        }
    };
    let second = second.and_then(|l| {
        listen(l)
            .inspect_err(|e| tracing::error!(error = %e, "cannot serve on the second listener"))
            .ok()
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        // An error means the sender is gone: stop as well.
        let _ = rx.wait_for(|s| *s).await;
    };
    let first = accept_loop(
        Arc::clone(&gate),
        listener,
        stopped(stop.clone()),
        heartbeat,
        limits.clone(),
    );
    let second = async {
        if let Some(l) = second {
            accept_loop(gate, l, stopped(stop), None, limits.clone()).await;
        }
    };
    tokio::join!(first, second);
    if !limits.in_flight.drained(DRAIN).await {
        tracing::warn!("stopping with requests still being decided");
    }
}

async fn accept_loop(
    gate: Arc<Gate>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    heartbeat: Option<Heartbeat>,
    limits: Limits,
) {
    let Limits {
        slots,
        per_uid,
        in_flight,
    } = limits;
    let (every, mut beat) = match heartbeat {
        Some(h) => (h.every, Some(h.beat)),
        None => (Duration::from_secs(3600), None),
    };
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => return,
            _ = ticks.tick(), if beat.is_some() => {
                if let Some(b) = beat.as_mut() { b() }
                continue;
            }
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            _ = ticks.tick(), if beat.is_some() => {
                if let Some(b) = beat.as_mut() { b() }
                continue;
            }
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let conn = match conn_info(&stream, peer, gate.identifier.as_ref()) {
            Some(c) => c,
            None => continue,
        };
        // Unknown owners share one bucket.
        let owner = conn.owner.map_or(u32::MAX, |o| o.uid);
        let Some(uid_slot) = per_uid.enter(owner) else {
            crate::metrics::connection_refused("per_uid_limit");
            tracing::warn!(
                uid = owner,
                "connection refused: too many open connections for this uid"
            );
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let gate = Arc::clone(&gate);
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _uid_slot = uid_slot;
            let service = service_fn(move |req| {
                let gate = Arc::clone(&gate);
                let deciding = in_flight.enter();
                // Once started, a request always finishes: if the client
                // goes away mid-request hyper drops this future, but the
                // decision, any upstream call and the audit line still
                // complete — nothing reaches IMDS unrecorded.
                let handled = Detach::new(async move {
                    let _deciding = deciding;
                    gate.count_request();
                    gate.handle(conn, req).await
                });
                async move {
                    Ok::<_, Infallible>(
                        handled
                            .await
                            .unwrap_or_else(|_| crate::handler::internal_error()),
                    )
                }
            });
            let result = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
}

/// A request's future, polled where hyper polls it, to its end: a request
/// costs no task of its own and no wake-up of another, whether it is
/// answered at once (a cached token) or waits (upstream, the caller
/// lookup). If hyper drops it half-way (the client went away), the rest
/// goes on in a task of its own and runs to the end, so a started request
/// cannot be cut off. Dropped before its first poll, nothing of the request
/// has happened and nothing is run. A panic inside it is caught and
/// answered as an internal error, as a panicking task's would be.
struct Detach<F: Future + Send + 'static>
where
    F::Output: Send + 'static,
{
    future: Option<std::pin::Pin<Box<F>>>,
    started: bool,
}

/// The request's future panicked.
#[derive(Debug)]
struct Panicked;

impl<F: Future + Send + 'static> Detach<F>
where
    F::Output: Send + 'static,
{
    fn new(future: F) -> Self {
        Detach {
            future: Some(Box::pin(future)),
            started: false,
        }
    }
}

impl<F: Future + Send + 'static> Future for Detach<F>
where
    F::Output: Send + 'static,
{
    type Output = Result<F::Output, Panicked>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let this = self.get_mut();
        let Some(future) = this.future.as_mut() else {
            // Polled again after it completed: a bug in the caller.
            return Poll::Pending;
        };
        this.started = true;
        let polled =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.as_mut().poll(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => {
                this.future = None;
                Poll::Ready(Ok(out))
            }
            Err(_) => {
                this.future = None;
                tracing::error!("a request's handling panicked; answered as an internal error");
                Poll::Ready(Err(Panicked))
            }
        }
    }
}

impl<F: Future + Send + 'static> Drop for Detach<F>
where
    F::Output: Send + 'static,
{
    fn drop(&mut self) {
        let Some(future) = self.future.take() else {
            return;
        };
        if !self.started {
            return;
        }
        // Its next poll registers the task's own waker with whatever it
        // waits on (only the latest poll's waker is woken).
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(future)),
            Err(_) => tracing::error!("a started request was dropped outside the runtime"),
        }
    }
}

fn conn_info(
    stream: &tokio::net::TcpStream,
    peer: SocketAddr,
    callers: &dyn crate::caller::CallerSource,
) -> Option<ConnInfo> {
    use std::os::fd::AsFd;
    let local = stream.local_addr().ok()?;
    let original = gatehouse_sys::original_dst(stream.as_fd()).ok().flatten();
    let (dst, redirected) = match original {
        Some(dst) if dst != local => (dst, true),
        _ => (local, false),
    };
    Some(ConnInfo {
        peer,
        dst,
        redirected,
        // The socket's owner, from the kernel (about 4 µs), kept for the
        // connection's requests.
        owner: callers.at_accept(peer, dst),
    })
}

/// Requests being decided (each holds an [`Deciding`] until its task ends).
#[derive(Clone, Default)]
struct InFlight(Arc<(std::sync::atomic::AtomicUsize, tokio::sync::Notify)>);

struct Deciding(InFlight);

impl InFlight {
    fn enter(&self) -> Deciding {
        self.0 .0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Deciding(self.clone())
    }

    /// Wait until none is left, at most `within`; whether none is.
    async fn drained(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let woken = self.0 .1.notified();
            if self.0 .0.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return self.0 .0.load(std::sync::atomic::Ordering::SeqCst) == 0;
            }
        }
    }
}

impl Drop for Deciding {
    fn drop(&mut self) {
        self.0
             .0
             .0
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        self.0 .0 .1.notify_waiters();
    }
}

/// Open connections per uid.
#[derive(Clone)]
struct PerUid {
    limit: usize,
    open: Arc<std::sync::Mutex<std::collections::HashMap<u32, usize>>>,
}

/// Holds one of a uid's connection slots until dropped.
struct UidSlot {
    uid: u32,
    open: Arc<std::sync::Mutex<std::collections::HashMap<u32, usize>>>,
}

impl PerUid {
    fn new(limit: usize) -> Self {
        PerUid {
            limit,
            open: Arc::default(),
        }
    }

    fn enter(&self, uid: u32) -> Option<UidSlot> {
        let mut open = match self.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let n = open.entry(uid).or_insert(0);
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(UidSlot {
            uid,
            open: Arc::clone(&self.open),
        })
    }
}

impl Drop for UidSlot {
    fn drop(&mut self) {
        let mut open = match self.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(n) = open.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.uid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Detach;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// A request that waits and whose client goes away still finishes; one
    /// that need not wait, or waits while its client stays, finishes where
    /// it was polled; a panic is an error, not a lost connection; one
    /// dropped before its first poll never starts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_started_request_finishes_even_when_its_client_leaves() {
        let here = std::thread::current().id();
        let inline = Detach::new(async move { std::thread::current().id() });
        assert_eq!(inline.await.unwrap(), here, "answered without a task");

        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let finished = Arc::new(AtomicBool::new(false));
        let done = Arc::clone(&finished);
        let mut waiting = Box::pin(Detach::new(async move {
            let _ = rx.await;
            done.store(true, Ordering::SeqCst);
        }));
        let polled = poll_once(waiting.as_mut()).await;
        assert!(polled.is_pending(), "it waits for the channel");
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        drop(waiting); // the client went away
        assert_eq!(
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            tasks + 1,
            "the rest goes on in a task of its own"
        );
        tx.send(()).unwrap();
        for _ in 0..200 {
            if finished.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(finished.load(Ordering::SeqCst), "finished in its own task");
        // Until that task is gone, it still counts.
        for _ in 0..200 {
            if tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
                == tasks
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // A request that waits is served where it was polled: no task.
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        let served = Detach::new(async move { rx.await.unwrap_or(0) + 1 });
        let answer = tokio::join!(served, async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send(41);
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        });
        assert_eq!(answer.0.unwrap(), 42);
        assert_eq!(answer.1, tasks, "no task was spawned for it");

        let panicking = Detach::new(async move {
            if tasks < usize::MAX {
                panic!("a bug on the request path");
            }
        });
        assert!(panicking.await.is_err(), "a panic is an internal error");

        let started = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&started);
        drop(Detach::new(async move { s.store(true, Ordering::SeqCst) }));
        tokio::task::yield_now().await;
        assert!(
            !started.load(Ordering::SeqCst),
            "never polled, never started"
        );
    }

    async fn poll_once<F: std::future::Future + Unpin>(mut f: F) -> std::task::Poll<F::Output> {
        std::future::poll_fn(|cx| std::task::Poll::Ready(std::pin::Pin::new(&mut f).poll(cx))).await
    }
}
