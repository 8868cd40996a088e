//! One fanout measurement, start to finish: publish over WHIP, ramp WHEP subscribers at a
//! bounded rate, wait until each receives media, measure the server's CPU over a fixed
//! window while counting what is offered and delivered, then stop and DELETE every
//! session. Must run inside a `tokio::task::LocalSet` (peers share `Rc` state).

use std::{
    cell::{Cell, RefCell},
    io::{IsTerminal, Write},
    net::IpAddr,
    rc::Rc,
    time::{Duration, Instant},
};

use tokio::{sync::watch, task::JoinHandle};

use super::{
    auth::{Auth, Role as Grant},
    clock::{Clock, SharedWindow, Window},
    http::{self, Session},
    peer::{Interceptors, Peer, PeerCounters},
    procstat::{self, Pid, ProcSample},
    publisher::{MediaConfig, Publisher, PublisherStats},
    report::{RawCounts, RunReport},
    subscriber::{Subscriber, SubscriberStats},
};

/// Everything one fanout run needs.
#[derive(Debug, Clone)]
pub struct FanoutConfig {
    /// Publishers (`pub0`, `pub1`, ...).
    pub publishers: usize,
    /// Subscribers (`sub0`, ...); subscriber j plays publisher j mod publishers.
    pub subscribers: usize,
    /// What publishers send.
    pub media: MediaConfig,
    /// Measured window.
    pub duration: Duration,
    /// WHIP URL template (`{stream}`, `{room}`).
    pub whip_url: String,
    /// WHEP URL template.
    pub whep_url: String,
    /// Room, for tokens and `{room}`.
    pub room: String,
    /// Authorization.
    pub auth: Auth,
    /// Address the peers' sockets bind to and advertise.
    pub local_ip: IpAddr,
    /// Subscribers started per second.
    pub ramp_per_sec: f64,
    /// How long publishers may take to connect, and subscribers to receive media after
    /// the ramp.
    pub connect_timeout: Duration,
    /// Server process to measure.
    pub server_pid: Option<u32>,
}

/// A run could not be carried out (a measurement with losses is not an error).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A publisher could not be set up or did not connect.
    #[error("publisher {identity}: {reason}")]
    Publisher {
        /// Its identity.
        identity: String,
        /// Why.
        reason: String,
    },
    /// Reading /proc failed (wrong PID, server died).
    #[error(transparent)]
    Proc(#[from] procstat::ProcError),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// After the window, how long in-flight packets (sent inside it) may still arrive.
const GRACE: Duration = Duration::from_millis(500);

/// What every subscriber task shares.
struct Shared {
    http: reqwest::Client,
    cfg: FanoutConfig,
    clock: Clock,
    window: SharedWindow,
}

/// POSTs the peer's offer and applies the answer.
async fn negotiate(
    http: &reqwest::Client,
    peer: &mut Peer,
    url: &str,
    token: Option<String>,
) -> Result<Session, String> {
    let offer = peer.offer().map_err(|e| e.to_string())?;
    let session = http::post_offer(http, url, token, &offer)
        .await
        .map_err(|e| e.to_string())?;
    peer.apply_answer(session.answer.clone())
        .map_err(|e| e.to_string())?;
    Ok(session)
}

type TaskResult = (Option<Session>, PeerCounters);

async fn subscriber_task(
    sh: Rc<Shared>,
    j: usize,
    stats: Rc<RefCell<SubscriberStats>>,
    stop: watch::Receiver<bool>,
) -> TaskResult {
    let fail = |why: String| {
        stats.borrow_mut().failed = Some(why);
        (None, PeerCounters::default())
    };
    let identity = format!("sub{j}");
    let stream = format!("pub{}", stats.borrow().publisher);
    let mut peer = match Peer::new(sh.cfg.local_ip, Interceptors::Default) {
        Ok(p) => p,
        Err(e) => return fail(e.to_string()),
    };
    let mut role = match Subscriber::new(&mut peer.pc, sh.clock, sh.window.clone(), stats.clone()) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let token = match sh.cfg.auth.token(&identity, Grant::Subscribe) {
        Ok(t) => t,
        Err(e) => return fail(e.to_string()),
    };
    let url = http::fill(&sh.cfg.whep_url, &stream, &sh.cfg.room);
    let session = match negotiate(&sh.http, &mut peer, &url, token).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    peer.run(&mut role, stop).await;
    (Some(session), peer.counters)
}

/// Status lines on stderr: rewritten in place on a terminal, every few seconds otherwise.
struct Progress {
    tty: bool,
    last: Option<Instant>,
    open_line: bool,
}

impl Progress {
    fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            last: None,
            open_line: false,
        }
    }

    fn show(&mut self, force: bool, line: impl FnOnce() -> String) {
        let every = if self.tty {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(2)
        };
        if !force && self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last = Some(Instant::now());
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{}", line());
            self.open_line = true;
        } else {
            let _ = writeln!(err, "{}", line());
        }
        let _ = err.flush();
    }

    fn done(&mut self) {
        if self.open_line {
            eprintln!();
            self.open_line = false;
        }
    }
}

fn subscriber_status(subs: &[Rc<RefCell<SubscriberStats>>], audio: bool) -> (usize, usize, usize) {
    let mut connected = 0;
    let mut receiving = 0;
    let mut failed = 0;
    for s in subs {
        let s = s.borrow();
        connected += usize::from(s.connected);
        receiving += usize::from(s.receiving(audio));
        failed += usize::from(s.failed.is_some());
    }
    (connected, receiving, failed)
}

/// Runs one fanout measurement.
pub async fn fanout(cfg: FanoutConfig) -> Result<RunReport, RunError> {
    let clock = Clock::start();
    let window: SharedWindow = Rc::new(Cell::new(Window::NOT_STARTED));
    let (stop_tx, stop_rx) = watch::channel(false);
    let sh = Rc::new(Shared {
        http: http::client()?,
        cfg: cfg.clone(),
        clock,
        window: window.clone(),
    });
    let mut progress = Progress::new();
    let mut tasks: Vec<JoinHandle<TaskResult>> = Vec::new();

    // Publishers, one after the other; any failure ends the run (and their sessions).
    let mut pubs: Vec<Rc<RefCell<PublisherStats>>> = Vec::new();
    let mut pub_sessions: Vec<Session> = Vec::new();
    let started = start_publishers(&sh, &stop_rx, &mut tasks, &mut pubs, &mut pub_sessions).await;
    if let Err(e) = started {
        let _ = stop_tx.send(true);
        delete_all(&sh.http, &pub_sessions).await;
        return Err(e);
    }

    // Subscribers, at a bounded rate.
    let subs: Vec<Rc<RefCell<SubscriberStats>>> = (0..cfg.subscribers)
        .map(|j| {
            Rc::new(RefCell::new(SubscriberStats::playing(
                (j % cfg.publishers.max(1)) as u32,
            )))
        })
        .collect();
    let period = Duration::from_secs_f64(1.0 / cfg.ramp_per_sec.max(0.01));
    let ramp_start = Instant::now();
    for (j, stats) in subs.iter().enumerate() {
        let at = ramp_start + period.mul_f64(j as f64);
        while Instant::now() < at {
            progress.show(false, || ramp_line(j, &subs, cfg.media.audio));
            tokio::time::sleep_until(at.min(Instant::now() + Duration::from_millis(100)).into())
                .await;
        }
        tasks.push(tokio::task::spawn_local(subscriber_task(
            sh.clone(),
            j,
            stats.clone(),
            stop_rx.clone(),
        )));
    }
    let deadline = Instant::now() + cfg.connect_timeout;
    loop {
        let (_, receiving, failed) = subscriber_status(&subs, cfg.media.audio);
        progress.show(false, || ramp_line(subs.len(), &subs, cfg.media.audio));
        if receiving + failed >= subs.len() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    progress.show(true, || ramp_line(subs.len(), &subs, cfg.media.audio));
    progress.done();
    let ready = subscriber_status(&subs, cfg.media.audio).1;

    // The measured window; whatever happens in it, the sessions are ended below.
    let measured = measure(&cfg, clock, &window, &subs, &mut progress).await;

    // Stop every peer, then end every session.
    let _ = stop_tx.send(true);
    let mut sessions = pub_sessions;
    let mut peer_errors = 0;
    for t in tasks {
        if let Ok((session, counters)) = t.await {
            sessions.extend(session);
            peer_errors += counters.errors;
        }
    }
    let failed_deletes = delete_all(&sh.http, &sessions).await;
    if failed_deletes > 0 {
        eprintln!(
            "warning: {failed_deletes} of {} DELETEs failed",
            sessions.len()
        );
    }
    for (j, s) in subs.iter().enumerate() {
        if let Some(why) = &s.borrow().failed {
            eprintln!("warning: sub{j} failed: {why}");
            break;
        }
    }

    // Figures.
    let Measured { w, server, me } = measured?;
    let offered: Vec<u64> = pubs
        .iter()
        .map(|p| p.borrow().sent_between(w.start_ns, w.end_ns))
        .collect();
    let mut raw = RawCounts {
        server_name: cfg
            .server_pid
            .and_then(|p| procstat::command_name(Pid::Of(p))),
        publishers: cfg.publishers,
        subscribers: cfg.subscribers,
        subscribers_ready: ready,
        bitrate_bps: cfg.media.bitrate_bps,
        packet_size: cfg.media.packet_size,
        audio: cfg.media.audio,
        paced: cfg.media.paced,
        window_s: w.length().as_secs_f64(),
        offered: offered.iter().sum(),
        generator_cpu_s: procstat::cpu_between(&me.0, &me.1).as_secs_f64(),
        peer_errors,
        ..Default::default()
    };
    for s in &subs {
        let mut s = s.borrow_mut();
        raw.expected += offered.get(s.publisher as usize).copied().unwrap_or(0);
        raw.delivered += s.delivered;
        raw.duplicates += s.duplicates;
        raw.latencies_us.append(&mut s.latencies_us);
    }
    if let Some((a, b)) = server {
        raw.server = Some((procstat::cpu_between(&a, &b).as_secs_f64(), b.rss_kib));
    }
    Ok(RunReport::from_counts(raw))
}

/// The window and the process samples at its edges.
struct Measured {
    w: Window,
    server: Option<(ProcSample, ProcSample)>,
    me: (ProcSample, ProcSample),
}

/// Opens the window, waits `cfg.duration`, closes it, and waits for packets in flight.
async fn measure(
    cfg: &FanoutConfig,
    clock: Clock,
    window: &SharedWindow,
    subs: &[Rc<RefCell<SubscriberStats>>],
    progress: &mut Progress,
) -> Result<Measured, RunError> {
    let server = cfg.server_pid.map(Pid::Of);
    let srv_a: Option<ProcSample> = server.map(procstat::sample).transpose()?;
    let me_a = procstat::sample(Pid::Myself)?;
    let t0 = Instant::now();
    window.set(Window {
        start_ns: clock.ns(t0),
        end_ns: u64::MAX,
    });
    let t_end = t0 + cfg.duration;
    while Instant::now() < t_end {
        progress.show(false, || {
            let (_, receiving, _) = subscriber_status(subs, cfg.media.audio);
            format!(
                "measuring: {:.0}/{:.0} s, {receiving}/{} subscribers receiving",
                t0.elapsed().as_secs_f64(),
                cfg.duration.as_secs_f64(),
                subs.len()
            )
        });
        tokio::time::sleep_until(
            t_end
                .min(Instant::now() + Duration::from_millis(100))
                .into(),
        )
        .await;
    }
    let srv_b: Option<ProcSample> = server.map(procstat::sample).transpose()?;
    let me_b = procstat::sample(Pid::Myself)?;
    let t1 = Instant::now();
    let w = Window {
        start_ns: clock.ns(t0),
        end_ns: clock.ns(t1),
    };
    window.set(w);
    progress.show(true, || "measured; collecting packets in flight".into());
    progress.done();
    tokio::time::sleep(GRACE).await;
    Ok(Measured {
        w,
        server: srv_a.zip(srv_b),
        me: (me_a, me_b),
    })
}

/// Starts every publisher and waits until all are connected.
async fn start_publishers(
    sh: &Shared,
    stop_rx: &watch::Receiver<bool>,
    tasks: &mut Vec<JoinHandle<TaskResult>>,
    pubs: &mut Vec<Rc<RefCell<PublisherStats>>>,
    sessions: &mut Vec<Session>,
) -> Result<(), RunError> {
    let cfg = &sh.cfg;
    let publisher_err = |identity: &str, reason: String| RunError::Publisher {
        identity: identity.into(),
        reason,
    };
    for i in 0..cfg.publishers {
        let identity = format!("pub{i}");
        let stats = Rc::new(RefCell::new(PublisherStats::default()));
        let mut peer = Peer::new(cfg.local_ip, Interceptors::DefaultWithFeedback)
            .map_err(|e| publisher_err(&identity, e.to_string()))?;
        let mut role = Publisher::new(
            &mut peer.pc,
            i as u32,
            cfg.media.clone(),
            sh.clock,
            stats.clone(),
        )
        .map_err(|e| publisher_err(&identity, e.to_string()))?;
        let token = cfg
            .auth
            .token(&identity, Grant::Publish)
            .map_err(|e| publisher_err(&identity, e.to_string()))?;
        let url = http::fill(&cfg.whip_url, &identity, &cfg.room);
        let session = negotiate(&sh.http, &mut peer, &url, token)
            .await
            .map_err(|e| publisher_err(&identity, e))?;
        let stop = stop_rx.clone();
        tasks.push(tokio::task::spawn_local(async move {
            peer.run(&mut role, stop).await;
            (None, peer.counters)
        }));
        pubs.push(stats);
        sessions.push(session);
    }
    let deadline = Instant::now() + cfg.connect_timeout;
    while let Some(i) = pubs.iter().position(|p| !p.borrow().connected) {
        if Instant::now() >= deadline {
            return Err(publisher_err(
                &format!("pub{i}"),
                format!("not connected after {:?}", cfg.connect_timeout),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

fn ramp_line(started: usize, subs: &[Rc<RefCell<SubscriberStats>>], audio: bool) -> String {
    let (connected, receiving, failed) = subscriber_status(subs, audio);
    format!(
        "ramp: {started}/{} subscribers started, {connected} connected, {receiving} receiving, {failed} failed",
        subs.len()
    )
}

/// DELETEs every session concurrently; returns how many failed.
async fn delete_all(http: &reqwest::Client, sessions: &[Session]) -> usize {
    let handles: Vec<JoinHandle<bool>> = sessions
        .iter()
        .cloned()
        .map(|s| {
            let http = http.clone();
            tokio::task::spawn_local(async move { http::delete(&http, &s).await.is_ok() })
        })
        .collect();
    let mut failed = 0;
    for h in handles {
        if !h.await.unwrap_or(false) {
            failed += 1;
        }
    }
    failed
}
