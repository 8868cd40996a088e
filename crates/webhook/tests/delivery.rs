//! End-to-end delivery against a local receiver that checks every request with LiveKit's own
//! verifier (`livekit-api`'s `WebhookReceiver`): order per room, parallelism across rooms,
//! outages (503 and nothing listening), give-up, shutdown, and restart from the outbox.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use livekit_api::access_token::TokenVerifier;
use livekit_api::webhooks::WebhookReceiver;
use livekit_protocol as proto;
use switchyard_store::Store;
use switchyard_webhook::{Notifier, NotifierConfig, RetryPolicy};

const KEY: &str = "APIhooks";
const SECRET: &str = "webhook-secret-of-32-characters!!";
const DEADLINE: Duration = Duration::from_secs(20);

/// What the receiver saw. An event is identified by (room, index), index from the identity.
#[derive(Default)]
struct Seen {
    /// Events answered 200, in arrival order.
    accepted: Vec<proto::WebhookEvent>,
    /// Event ids of every request (accepted or not), by (room, index).
    ids: HashMap<(String, usize), HashSet<String>>,
    /// Requests that LiveKit's verifier or the header checks refused.
    rejected: Vec<String>,
    /// Requests currently being answered, per room.
    in_flight: HashMap<String, usize>,
    /// Times a room had two requests at once.
    overlaps: usize,
}

struct ReceiverState {
    verifier: WebhookReceiver,
    /// Answer 503 while set.
    failing: AtomicBool,
    /// Hold each request this long before answering.
    delay: Duration,
    /// Requests for this room wait until `release` is set.
    blocked_room: Option<String>,
    release: tokio::sync::watch::Receiver<bool>,
    attempts: AtomicUsize,
    seen: Mutex<Seen>,
}

struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    release: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

fn index_of(ev: &proto::WebhookEvent) -> (String, usize) {
    let room = ev.room.as_ref().unwrap().name.clone();
    let identity = &ev.participant.as_ref().unwrap().identity;
    (room, identity.trim_start_matches('p').parse().unwrap())
}

/// Counts a request out of its room's `in_flight` when the handler ends, however it ends.
struct InFlight<'a> {
    state: &'a ReceiverState,
    room: &'a str,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut seen = self.state.seen.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = seen.in_flight.get_mut(self.room) {
            *n -= 1;
        }
    }
}

async fn handle(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    state.attempts.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let mut problems = Vec::new();
    if header("content-type") != "application/webhook+json" {
        problems.push(format!("content-type {:?}", header("content-type")));
    }
    if header("user-agent") != "LiveKit" {
        problems.push(format!("user-agent {:?}", header("user-agent")));
    }
    let auth = header("authorization");
    if auth.starts_with("Bearer") {
        problems.push("Bearer prefix".into());
    }
    let ev = match state.verifier.receive(&body, auth) {
        Ok(ev) => ev,
        Err(e) => {
            problems.push(format!("verifier: {e}"));
            state
                .seen
                .lock()
                .unwrap()
                .rejected
                .push(problems.join(", "));
            return StatusCode::UNAUTHORIZED;
        }
    };
    if !problems.is_empty() {
        state
            .seen
            .lock()
            .unwrap()
            .rejected
            .push(problems.join(", "));
        return StatusCode::BAD_REQUEST;
    }
    let key = index_of(&ev);
    {
        let mut seen = state.seen.lock().unwrap();
        seen.ids
            .entry(key.clone())
            .or_default()
            .insert(ev.id.clone());
        let n = seen.in_flight.entry(key.0.clone()).or_default();
        *n += 1;
        if *n > 1 {
            seen.overlaps += 1;
        }
    }
    // A sender that goes away mid-request (a dropped notifier aborts its requests) makes
    // hyper drop this handler at an await point: the guard still ends the request's count.
    let _in_flight = InFlight {
        state: &state,
        room: &key.0,
    };
    if state.blocked_room.as_deref() == Some(key.0.as_str()) {
        let mut release = state.release.clone();
        let _ = release.wait_for(|r| *r).await;
    }
    tokio::time::sleep(state.delay).await;
    let mut seen = state.seen.lock().unwrap();
    if state.failing.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    seen.accepted.push(ev);
    StatusCode::OK
}

impl Receiver {
    async fn start(delay: Duration, blocked_room: Option<&str>) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, delay, blocked_room)
    }

    fn serve(
        listener: tokio::net::TcpListener,
        delay: Duration,
        blocked_room: Option<&str>,
    ) -> Receiver {
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (release, release_rx) = tokio::sync::watch::channel(false);
        let state = Arc::new(ReceiverState {
            verifier: WebhookReceiver::new(TokenVerifier::with_api_key(KEY, SECRET)),
            failing: AtomicBool::new(false),
            delay,
            blocked_room: blocked_room.map(str::to_owned),
            release: release_rx,
            attempts: AtomicUsize::new(0),
            seen: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(handle))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://{addr}/hook"),
            state,
            release,
            server,
        }
    }

    fn set_failing(&self, failing: bool) {
        self.state.failing.store(failing, Ordering::SeqCst);
    }

    fn accepted(&self) -> Vec<proto::WebhookEvent> {
        self.state.seen.lock().unwrap().accepted.clone()
    }

    fn attempts(&self) -> usize {
        self.state.attempts.load(Ordering::SeqCst)
    }

    /// The checks every test ends with: nothing refused, never two requests of one room at
    /// once, every event answered 200 exactly once, always with one id, and each room's
    /// events in index order.
    fn assert_delivered(&self, rooms: &[&str], per_room: usize) {
        let seen = self.state.seen.lock().unwrap();
        assert!(
            seen.rejected.is_empty(),
            "refused requests: {:?}",
            seen.rejected
        );
        assert_eq!(
            seen.overlaps, 0,
            "two requests of one room in flight at once"
        );
        assert_eq!(seen.accepted.len(), rooms.len() * per_room);
        let mut order: HashMap<String, Vec<usize>> = HashMap::new();
        let mut ids = HashSet::new();
        for ev in &seen.accepted {
            assert!(
                ev.id.starts_with("EV_") && ev.id.len() == 15,
                "id {}",
                ev.id
            );
            assert!(
                ev.created_at > 1_600_000_000,
                "created_at {}",
                ev.created_at
            );
            assert!(ids.insert(ev.id.clone()), "id {} accepted twice", ev.id);
            let (room, index) = index_of(ev);
            order.entry(room).or_default().push(index);
        }
        for room in rooms {
            assert_eq!(
                order[*room],
                (0..per_room).collect::<Vec<_>>(),
                "order of {room}"
            );
        }
        for (key, ids) in &seen.ids {
            assert_eq!(ids.len(), 1, "{key:?} was sent with different ids: {ids:?}");
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn event(room: &str, index: usize) -> proto::WebhookEvent {
    proto::WebhookEvent {
        event: "participant_joined".into(),
        room: Some(proto::Room {
            sid: format!("RM_{room}"),
            name: room.into(),
            ..Default::default()
        }),
        participant: Some(proto::ParticipantInfo {
            identity: format!("p{index}"),
            state: proto::participant_info::State::Active as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        initial_backoff: Duration::from_millis(20),
        factor: 2,
        max_backoff: Duration::from_millis(100),
        max_age: Duration::from_secs(3600),
    }
}

fn config(urls: Vec<String>) -> NotifierConfig {
    NotifierConfig {
        retry: fast_retry(),
        request_timeout: Duration::from_secs(5),
        ..NotifierConfig::new(urls, KEY, SECRET)
    }
}

struct Db {
    url: String,
    _dir: tempfile::TempDir,
}

impl Db {
    fn new() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("hooks.db").display()
        );
        Db { url, _dir: dir }
    }

    async fn open(&self) -> Store {
        Store::connect(&self.url, 4, Duration::from_secs(5))
            .await
            .unwrap()
    }
}

/// Polls `cond` every 10 ms until it holds; panics with `what` after [`DEADLINE`].
async fn wait_until(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Notifies `per_room` events for each room, one `notify` call per index (rooms interleaved).
async fn notify_all(notifier: &Notifier, rooms: &[&str], per_room: usize) {
    for i in 0..per_room {
        let events = rooms.iter().map(|r| event(r, i)).collect();
        notifier.notify(events).await.unwrap();
    }
}

#[tokio::test]
async fn delivers_signed_events_in_order_to_every_url() {
    let db = Db::new();
    let store = db.open().await;
    let a = Receiver::start(Duration::from_millis(2), None).await;
    let b = Receiver::start(Duration::ZERO, None).await;
    let notifier =
        Notifier::start(store.clone(), config(vec![a.url.clone(), b.url.clone()])).unwrap();
    let rooms = ["r1", "r2", "r3", "r4"];
    notify_all(&notifier, &rooms, 10).await;
    wait_until("all events at both receivers", async || {
        a.accepted().len() == 40 && b.accepted().len() == 40
    })
    .await;
    a.assert_delivered(&rooms, 10);
    b.assert_delivered(&rooms, 10);
    // The same event carries the same id to every URL.
    let ids = |r: &Receiver| -> HashMap<(String, usize), String> {
        r.accepted()
            .iter()
            .map(|e| (index_of(e), e.id.clone()))
            .collect()
    };
    assert_eq!(ids(&a), ids(&b));
    wait_until("empty outbox", async || {
        store.outbox_pending_count().await.unwrap() == 0
    })
    .await;
    notifier.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn explicit_id_and_created_at_are_kept() {
    let db = Db::new();
    let r = Receiver::start(Duration::ZERO, None).await;
    let notifier = Notifier::start(db.open().await, config(vec![r.url.clone()])).unwrap();
    let mut ev = event("r", 0);
    ev.id = "EV_givenid0000".into();
    ev.created_at = 1_700_000_000;
    notifier.notify(vec![ev]).await.unwrap();
    wait_until("the event", async || r.accepted().len() == 1).await;
    let got = &r.accepted()[0];
    assert_eq!(
        (got.id.as_str(), got.created_at),
        ("EV_givenid0000", 1_700_000_000)
    );
}

#[tokio::test]
async fn a_slow_room_does_not_hold_up_the_others() {
    let db = Db::new();
    let r = Receiver::start(Duration::ZERO, Some("slow")).await;
    let notifier = Notifier::start(db.open().await, config(vec![r.url.clone()])).unwrap();
    // "slow" is queued first; its first request hangs until released.
    notify_all(&notifier, &["slow"], 5).await;
    notify_all(&notifier, &["fast1", "fast2"], 5).await;
    wait_until("the other rooms", async || r.accepted().len() == 10).await;
    assert!(r.accepted().iter().all(|e| index_of(e).0 != "slow"));
    // Its second event was not sent while the first one is unanswered.
    assert_eq!(
        r.state
            .seen
            .lock()
            .unwrap()
            .ids
            .keys()
            .filter(|k| k.0 == "slow")
            .count(),
        1
    );
    r.release.send(true).unwrap();
    wait_until("the slow room", async || r.accepted().len() == 15).await;
    r.assert_delivered(&["slow", "fast1", "fast2"], 5);
}

#[tokio::test]
async fn outage_with_503_then_recovery_delivers_everything_once_in_order() {
    let db = Db::new();
    let store = db.open().await;
    let r = Receiver::start(Duration::ZERO, None).await;
    r.set_failing(true);
    let notifier = Notifier::start(store.clone(), config(vec![r.url.clone()])).unwrap();
    let rooms = ["a", "b", "c"];
    notify_all(&notifier, &rooms, 5).await;
    // Several rounds of retries with backoff; only queue heads are tried.
    wait_until("retries", async || r.attempts() >= 12).await;
    assert!(r.accepted().is_empty());
    assert_eq!(store.outbox_pending_count().await.unwrap(), 15);
    {
        let seen = r.state.seen.lock().unwrap();
        let tried: HashSet<usize> = seen.ids.keys().map(|k| k.1).collect();
        assert_eq!(
            tried,
            HashSet::from([0]),
            "only the head of each room is attempted"
        );
    }
    r.set_failing(false);
    wait_until("recovery", async || r.accepted().len() == 15).await;
    r.assert_delivered(&rooms, 5);
    wait_until("empty outbox", async || {
        store.outbox_pending_count().await.unwrap() == 0
    })
    .await;
}

#[tokio::test]
async fn receiver_not_listening_then_up() {
    let db = Db::new();
    let store = db.open().await;
    // Reserve a port, then close it: connections are refused until the receiver binds it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/hook");
    let notifier = Notifier::start(store.clone(), config(vec![url.clone()])).unwrap();
    let rooms = ["x", "y"];
    notify_all(&notifier, &rooms, 4).await;
    // Let a few attempts fail with "connection refused".
    wait_until("failed attempts", async || {
        let due = store.outbox_due(i64::MAX, 10).await.unwrap();
        due.iter().all(|e| e.attempts >= 2)
    })
    .await;
    let due = store.outbox_due(i64::MAX, 10).await.unwrap();
    assert!(
        due[0].last_error.as_deref().unwrap().contains("onnect"),
        "{:?}",
        due[0].last_error
    );

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let r = Receiver::serve(listener, Duration::ZERO, None);
    assert_eq!(r.url, url);
    wait_until("delivery", async || r.accepted().len() == 8).await;
    r.assert_delivered(&rooms, 4);
}

#[tokio::test]
async fn restart_delivers_what_the_previous_notifier_left() {
    let db = Db::new();
    let r = Receiver::start(Duration::ZERO, None).await;
    r.set_failing(true);
    let rooms = ["m", "n"];
    {
        let store = db.open().await;
        let notifier = Notifier::start(store.clone(), config(vec![r.url.clone()])).unwrap();
        notify_all(&notifier, &rooms, 3).await;
        // The receiver answering 503 is not enough: wait until the store recorded it.
        wait_until("a failed attempt in the outbox", async || {
            let heads = store.outbox_due(i64::MAX, 10).await.unwrap();
            r.attempts() >= 2 && heads.iter().any(|e| e.attempts >= 1)
        })
        .await;
        drop(notifier);
        store.close().await;
    }
    let store = db.open().await;
    assert_eq!(store.outbox_pending_count().await.unwrap(), 6);
    let heads = store.outbox_due(i64::MAX, 10).await.unwrap();
    assert_eq!(heads.len(), 2);
    assert!(heads.iter().any(|e| e.attempts >= 1));

    r.set_failing(false);
    // A fresh notifier, with nothing new to notify: it resumes the outbox on its own.
    let _notifier = Notifier::start(store.clone(), config(vec![r.url.clone()])).unwrap();
    wait_until("resumed delivery", async || r.accepted().len() == 6).await;
    r.assert_delivered(&rooms, 3);
    wait_until("empty outbox", async || {
        store.outbox_pending_count().await.unwrap() == 0
    })
    .await;
}

#[tokio::test]
async fn gives_up_after_max_age_and_moves_on() {
    let db = Db::new();
    let store = db.open().await;
    let r = Receiver::start(Duration::ZERO, None).await;
    r.set_failing(true);
    let mut cfg = config(vec![r.url.clone()]);
    cfg.retry.max_age = Duration::from_millis(300);
    let notifier = Notifier::start(store.clone(), cfg).unwrap();
    notify_all(&notifier, &["g"], 2).await;
    wait_until("give-up", async || {
        store.outbox_pending_count().await.unwrap() == 0
    })
    .await;
    assert!(r.accepted().is_empty());
    // Both events were tried (the second only after the first was given up).
    let seen = r.state.seen.lock().unwrap();
    assert!(seen.ids.contains_key(&("g".into(), 0)) && seen.ids.contains_key(&("g".into(), 1)));
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish() {
    let db = Db::new();
    let store = db.open().await;
    let r = Receiver::start(Duration::from_millis(300), None).await;
    let notifier = Notifier::start(store.clone(), config(vec![r.url.clone()])).unwrap();
    notifier.notify(vec![event("s", 0)]).await.unwrap();
    wait_until("the request", async || r.attempts() == 1).await;
    notifier.shutdown(Duration::from_secs(5)).await;
    assert_eq!(r.accepted().len(), 1);
    assert_eq!(store.outbox_pending_count().await.unwrap(), 0);
}

#[tokio::test]
async fn no_urls_means_nothing_is_queued() {
    let db = Db::new();
    let store = db.open().await;
    let notifier = Notifier::start(store.clone(), config(vec![])).unwrap();
    notifier.notify(vec![event("r", 0)]).await.unwrap();
    assert_eq!(store.outbox_pending_count().await.unwrap(), 0);
}
