//! A set of live connections laid out over rooms (who is where, who publishes), and one
//! measured *step* of traffic over it: publish at a rate or with a window of unacknowledged
//! sends, drain, then count what arrived against what was expected.
//!
//! Expected deliveries of a message = every connection in its room (the sender's own
//! included, as all three servers echo to the sender); a message the server refused (an error
//! reply) is expected nowhere.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ws::Outgoing;
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, Semaphore};

use crate::accounts;
use crate::check::CheckCounts;
use crate::clock;
use crate::conn::{Conn, LiveConn, ReceiverCtx, Shared};
use crate::error::BenchError;
use crate::payload::{self, Stamp};
use crate::procstat::{CpuMeter, CpuWindow};
use crate::proto::{self, Request};
use crate::stats::{Latency, LatencySummary};
use crate::target::{Account, RoomRef, Target, WireRoom};

/// One connection of a layout.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    /// Room index (0..rooms).
    pub room: u32,
    pub publishes: bool,
}

/// Where connections go.
#[derive(Debug, Clone)]
pub struct Layout {
    pub rooms: u32,
    pub members: Vec<Member>,
}

impl Layout {
    /// `rooms` rooms of `per_room` connections; the first `publishers_per_room` of each publish.
    pub fn grid(rooms: u32, per_room: usize, publishers_per_room: usize) -> Layout {
        let members = (0..rooms)
            .flat_map(|room| {
                (0..per_room).map(move |i| Member {
                    room,
                    publishes: i < publishers_per_room,
                })
            })
            .collect();
        Layout { rooms, members }
    }
}

/// How a workload is set up.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Connections sharing one Natter account (all in the same room).
    pub conns_per_user: usize,
    /// Connections opened at once.
    pub concurrency: usize,
    pub users_file: Option<PathBuf>,
    /// Unique per run: room and user names start with it.
    pub run_id: String,
    pub timeout: Duration,
    /// In window mode, the unacknowledged sends each publisher may have.
    pub window: Option<usize>,
}

/// Setup figures.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SetupReport {
    pub accounts: usize,
    pub accounts_s: f64,
    pub connections: usize,
    pub connections_failed: usize,
    /// The first few connection errors.
    pub connection_errors: Vec<String>,
    pub connect_s: f64,
    /// Time to open, sign in and join, per connection.
    pub connect_latency: LatencySummary,
}

struct Publisher {
    conn: usize,
    sender: u32,
    room: RoomRef,
    /// Messages published so far (the next counter).
    counter: u64,
    window: Option<Arc<Semaphore>>,
}

/// Live connections over rooms, ready for steps.
pub struct Workload {
    target: Target,
    pub rooms: Vec<RoomRef>,
    conns: Vec<LiveConn>,
    publishers: Vec<Publisher>,
    /// Live connections per room key.
    room_sizes: Vec<u64>,
    shared: Arc<Shared>,
    body_bytes: usize,
    pub setup: SetupReport,
    /// The accounts used (Natter), the setup account first.
    pub accounts: Vec<Account>,
}

/// How a step publishes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pace {
    /// Messages per second across all publishers, spread evenly (open loop).
    Rate(f64),
    /// As fast as replies allow, with this many unacknowledged sends per publisher.
    Window(usize),
}

impl Pace {
    /// The offered rate (msg/s), for a rate-paced step.
    pub fn rate(self) -> Option<f64> {
        match self {
            Pace::Rate(r) => Some(r),
            Pace::Window(_) => None,
        }
    }
}

/// One step's plan.
#[derive(Debug, Clone, Copy)]
pub struct StepSpec {
    pub pace: Pace,
    pub duration: Duration,
    /// How long to wait after publishing for replies and deliveries still in flight.
    pub drain: Duration,
    /// At most this many messages per publisher.
    pub max_per_publisher: Option<u64>,
    pub server_pid: Option<u32>,
}

/// What a step measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    pub pace: Pace,
    pub publishers: usize,
    pub connections: usize,
    /// Seconds of publishing.
    pub publish_s: f64,
    /// Seconds from the first send until everything arrived (or the drain gave up).
    pub window_s: f64,
    pub sent: u64,
    pub replies_ok: u64,
    pub replies_err: u64,
    pub error_codes: BTreeMap<String, u64>,
    pub expected_deliveries: u64,
    pub checks: CheckCounts,
    /// Expected deliveries that never arrived.
    pub lost: u64,
    pub malformed_frames: u64,
    /// Connections that ended during the step, and the first few reasons.
    pub disconnects: u64,
    pub disconnect_reasons: Vec<String>,
    /// Whether every reply and delivery arrived before the drain timed out.
    pub drained: bool,
    /// Messages sent per second of publishing.
    pub msgs_per_sec: f64,
    /// Successful replies per second of the window (Natter's durable sends).
    pub acked_per_sec: f64,
    /// Distinct deliveries per second of the window.
    pub deliveries_per_sec: f64,
    pub latency: LatencySummary,
    pub ack_latency: Option<LatencySummary>,
    pub cpu: CpuWindow,
    pub server_cpu_ns_per_delivery: Option<f64>,
    pub server_cpu_ns_per_message: Option<f64>,
    /// Worst delay of a send behind its schedule (rate mode): the bench falling behind.
    pub max_schedule_lag_ms: f64,
    /// Sends more than 10 ms behind their schedule (rate mode).
    pub late_sends: u64,
    /// The bench was its own bottleneck: its CPU saturated, or more than 1% of sends were
    /// more than 10 ms late (it could not offer the load it was asked to) while the server
    /// was not saturated.
    pub bench_limited: bool,
}

impl StepResult {
    /// Nothing lost, duplicated, reordered or refused, no disconnects, everything drained.
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.checks.integrity_faults() == 0
            && self.replies_err == 0
            && self.disconnects == 0
            && self.malformed_frames == 0
            && self.drained
    }

    /// Clean, and within the latency target: a ramp step that passes.
    pub fn holds(&self, p99_ms: f64) -> bool {
        self.clean() && self.latency.p99_ms <= p99_ms
    }
}

impl Workload {
    /// Signs in, creates rooms, opens and joins every connection, and starts them.
    pub async fn build(
        target: &Target,
        layout: &Layout,
        opts: &BuildOptions,
        body_bytes: usize,
    ) -> Result<Workload, BenchError> {
        Ok(Workload::prepare(target, layout, opts, body_bytes)
            .await?
            .connect()
            .await)
    }

    /// The first half of [`Workload::build`]: accounts and rooms, no load connection yet.
    pub async fn prepare(
        target: &Target,
        layout: &Layout,
        opts: &BuildOptions,
        body_bytes: usize,
    ) -> Result<Prepared, BenchError> {
        let started = Instant::now();
        let accounts = if target.kind.is_natter() {
            let users = users_needed(layout, opts.conns_per_user) + 1;
            accounts::ensure(target, users, opts.users_file.as_deref(), 4, &opts.run_id).await?
        } else {
            Vec::new()
        };
        let accounts_s = started.elapsed().as_secs_f64();
        let rooms = make_rooms(target, layout.rooms, &accounts, opts).await?;
        Ok(Prepared {
            target: target.clone(),
            layout: layout.clone(),
            opts: opts.clone(),
            body_bytes,
            accounts,
            accounts_s,
            rooms,
        })
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Connections that have ended so far.
    pub fn closed(&self) -> u64 {
        self.shared.closed.load(Ordering::Relaxed)
    }

    /// Closes every connection (bounded wait).
    pub async fn close(self) {
        stream::iter(self.conns)
            .for_each_concurrent(256, |c| c.close(Duration::from_secs(2)))
            .await;
    }

    /// Runs one step of traffic and measures it.
    pub async fn run_step(&mut self, spec: StepSpec) -> Result<StepResult, BenchError> {
        if matches!(spec.pace, Pace::Window(_)) && !proto::sends_are_acked(self.target.kind) {
            return Err(BenchError::Config(format!(
                "window pacing needs acknowledged sends; {} has none",
                self.target.kind
            )));
        }
        let before = self.snapshot();
        let closed_before = self.closed();
        let replies_before = self.shared.replies.load(Ordering::Relaxed);
        let delivered_before = self.shared.delivered.load(Ordering::Relaxed);
        let err_before: Vec<u64> = self
            .publishers
            .iter()
            .map(|p| self.conns[p.conn].lock().replies_err)
            .collect();

        let meter = CpuMeter::start(spec.server_pid);
        let started = Instant::now();
        let outcomes = self.publish(spec).await;
        let publish_s = started.elapsed().as_secs_f64();
        let sent: u64 = outcomes.iter().map(|o| o.sent).sum();
        let max_lag_ns = outcomes.iter().map(|o| o.max_lag_ns).max().unwrap_or(0);
        let late_sends = outcomes.iter().map(|o| o.late_sends).sum();

        let acked = proto::sends_are_acked(self.target.kind);
        let deadline = Instant::now() + spec.drain;
        let mut expected;
        let mut drained;
        loop {
            let replies = self.shared.replies.load(Ordering::Relaxed) - replies_before;
            expected = self.expected(&outcomes, &err_before);
            let delivered = self.shared.delivered.load(Ordering::Relaxed) - delivered_before;
            drained = (!acked || replies >= sent) && delivered >= expected;
            if drained || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let window_s = started.elapsed().as_secs_f64();
        let cpu = meter.finish();
        let after = self.snapshot();
        Ok(self.result(StepFigures {
            spec,
            before,
            after,
            sent,
            expected,
            drained,
            publish_s,
            window_s,
            cpu,
            max_lag_ns,
            late_sends,
            disconnects: self.closed() - closed_before,
        }))
    }

    async fn publish(&mut self, spec: StepSpec) -> Vec<PublishOutcome> {
        let per_publisher_rate = match spec.pace {
            Pace::Rate(total) => Some(total / self.publishers.len().max(1) as f64),
            Pace::Window(_) => None,
        };
        let mut tasks = Vec::with_capacity(self.publishers.len());
        for p in &self.publishers {
            let conn = &self.conns[p.conn];
            let job = PublishJob {
                kind: self.target.kind,
                writer: conn.writer.clone(),
                room: p.room.clone(),
                sender: p.sender,
                first_counter: p.counter,
                first_ref: conn.next_ref + p.counter,
                rate: per_publisher_rate,
                window: p.window.clone(),
                duration: spec.duration,
                limit: spec.max_per_publisher.unwrap_or(u64::MAX),
                body_bytes: self.body_bytes,
            };
            tasks.push(tokio::spawn(job.run()));
        }
        let mut outcomes = Vec::with_capacity(tasks.len());
        for (task, p) in tasks.into_iter().zip(self.publishers.iter_mut()) {
            let outcome = task.await.unwrap_or_default();
            p.counter += outcome.sent;
            outcomes.push(outcome);
        }
        outcomes
    }

    /// Deliveries owed for what was sent in this step (refused sends owe none).
    fn expected(&self, outcomes: &[PublishOutcome], err_before: &[u64]) -> u64 {
        self.publishers
            .iter()
            .zip(outcomes)
            .zip(err_before)
            .map(|((p, o), before)| {
                let refused = self.conns[p.conn].lock().replies_err - before;
                o.sent.saturating_sub(refused) * self.room_sizes[p.room.key as usize]
            })
            .sum()
    }

    /// Sums every reader's counters and takes (and resets) their latency histograms.
    fn snapshot(&self) -> Snapshot {
        let mut snap = Snapshot::default();
        for conn in &self.conns {
            let mut st = conn.lock();
            snap.checks.add(&st.check.counts());
            snap.replies_ok += st.replies_ok;
            snap.replies_err += st.replies_err;
            snap.malformed += st.malformed;
            for (code, n) in &st.error_codes {
                *snap.error_codes.entry(code.clone()).or_default() += n;
            }
            if let Some(l) = st.latency.as_mut() {
                snap.latency.merge(l);
                l.reset();
            }
            if let Some(l) = st.ack_latency.as_mut() {
                snap.ack_latency.merge(l);
                l.reset();
            }
            if let Some(reason) = &st.closed {
                if snap.close_reasons.len() < 5 {
                    snap.close_reasons.push(reason.clone());
                }
            }
        }
        snap
    }

    fn result(&self, f: StepFigures) -> StepResult {
        let checks = f.after.checks.since(&f.before.checks);
        let replies_ok = f.after.replies_ok - f.before.replies_ok;
        let deliveries_per_sec = checks.distinct as f64 / f.window_s.max(1e-9);
        let mut error_codes = f.after.error_codes.clone();
        for (code, n) in &f.before.error_codes {
            if let Some(v) = error_codes.get_mut(code) {
                *v -= n;
            }
        }
        error_codes.retain(|_, n| *n > 0);
        let max_schedule_lag_ms = f.max_lag_ns as f64 / 1e6;
        StepResult {
            pace: f.spec.pace,
            publishers: self.publishers.len(),
            connections: self.conns.len(),
            publish_s: f.publish_s,
            window_s: f.window_s,
            sent: f.sent,
            replies_ok,
            replies_err: f.after.replies_err - f.before.replies_err,
            error_codes,
            expected_deliveries: f.expected,
            lost: f.expected.saturating_sub(checks.distinct),
            checks,
            malformed_frames: f.after.malformed - f.before.malformed,
            disconnects: f.disconnects,
            disconnect_reasons: if f.disconnects > 0 {
                f.after.close_reasons.clone()
            } else {
                Vec::new()
            },
            drained: f.drained,
            msgs_per_sec: f.sent as f64 / f.publish_s.max(1e-9),
            acked_per_sec: replies_ok as f64 / f.window_s.max(1e-9),
            deliveries_per_sec,
            latency: f.after.latency.summary(),
            ack_latency: (f.after.ack_latency.count() > 0).then(|| f.after.ack_latency.summary()),
            server_cpu_ns_per_delivery: f
                .cpu
                .server_cpu_s
                .filter(|_| checks.distinct > 0)
                .map(|s| s * 1e9 / checks.distinct as f64),
            server_cpu_ns_per_message: f
                .cpu
                .server_cpu_s
                .filter(|_| f.sent > 0)
                .map(|s| s * 1e9 / f.sent as f64),
            late_sends: f.late_sends,
            // Late sends while the server is saturated are its backpressure, not the bench's.
            bench_limited: f.cpu.bench_saturated
                || (f.late_sends * 100 > f.sent && f.cpu.server_util.is_none_or(|u| u < 0.85)),
            cpu: f.cpu,
            max_schedule_lag_ms,
        }
    }
}

/// Accounts and rooms made; connections not yet opened.
pub struct Prepared {
    target: Target,
    layout: Layout,
    opts: BuildOptions,
    body_bytes: usize,
    pub accounts: Vec<Account>,
    accounts_s: f64,
    pub rooms: Vec<RoomRef>,
}

impl Prepared {
    /// Opens and joins every connection of the layout (failures are counted, not fatal).
    pub async fn connect(self) -> Workload {
        let Prepared {
            target,
            layout,
            opts,
            body_bytes,
            accounts,
            accounts_s,
            rooms,
        } = self;
        let mut setup = SetupReport {
            accounts: accounts.len(),
            accounts_s,
            ..SetupReport::default()
        };
        let sender_rooms = Arc::new(
            layout
                .members
                .iter()
                .filter(|m| m.publishes)
                .map(|m| m.room)
                .collect::<Vec<u32>>(),
        );
        let shared = Arc::new(Shared::default());
        let tokens = assign_tokens(&layout, &accounts, opts.conns_per_user);
        let started = Instant::now();
        let opened: Vec<(Member, u64, OpenResult)> =
            stream::iter(layout.members.iter().enumerate())
                .map(|(i, member)| {
                    let room = rooms[member.room as usize].clone();
                    let ctx = ReceiverCtx {
                        rooms: vec![room.clone()],
                        sender_rooms: Arc::clone(&sender_rooms),
                        shared: Arc::clone(&shared),
                        window: None,
                    };
                    let window = opts.window.filter(|_| member.publishes);
                    let token = tokens.get(i).cloned();
                    let target = &target;
                    let timeout = opts.timeout;
                    async move {
                        let t0 = clock::now_ns();
                        let result = open_member(target, token, room, ctx, window, timeout).await;
                        (*member, clock::now_ns().saturating_sub(t0), result)
                    }
                })
                .buffered(opts.concurrency.max(1))
                .collect()
                .await;
        setup.connect_s = started.elapsed().as_secs_f64();

        let mut connect_latency = Latency::new();
        let mut conns = Vec::new();
        let mut publishers = Vec::new();
        let mut room_sizes = vec![0u64; layout.rooms as usize];
        let mut sender = 0u32;
        for (member, took_ns, result) in opened {
            let this_sender = sender;
            if member.publishes {
                sender += 1;
            }
            match result {
                Ok((live, window)) => {
                    connect_latency.record_ns(took_ns);
                    room_sizes[member.room as usize] += 1;
                    if member.publishes {
                        publishers.push(Publisher {
                            conn: conns.len(),
                            sender: this_sender,
                            room: rooms[member.room as usize].clone(),
                            counter: 0,
                            window,
                        });
                    }
                    conns.push(live);
                }
                Err(e) => {
                    setup.connections_failed += 1;
                    if setup.connection_errors.len() < 5 {
                        setup.connection_errors.push(e.to_string());
                    }
                }
            }
        }
        setup.connections = conns.len();
        setup.connect_latency = connect_latency.summary();
        Workload {
            target,
            rooms,
            conns,
            publishers,
            room_sizes,
            shared,
            body_bytes,
            setup,
            accounts,
        }
    }
}

struct StepFigures {
    spec: StepSpec,
    before: Snapshot,
    after: Snapshot,
    sent: u64,
    expected: u64,
    drained: bool,
    publish_s: f64,
    window_s: f64,
    cpu: CpuWindow,
    max_lag_ns: u64,
    late_sends: u64,
    disconnects: u64,
}

#[derive(Default)]
struct Snapshot {
    checks: CheckCounts,
    replies_ok: u64,
    replies_err: u64,
    malformed: u64,
    error_codes: BTreeMap<String, u64>,
    latency: Latency,
    ack_latency: Latency,
    close_reasons: Vec<String>,
}

/// Users a layout needs: each user's connections share one room.
fn users_needed(layout: &Layout, conns_per_user: usize) -> usize {
    let mut per_room = vec![0usize; layout.rooms as usize];
    for m in &layout.members {
        per_room[m.room as usize] += 1;
    }
    per_room
        .iter()
        .map(|n| n.div_ceil(conns_per_user.max(1)))
        .sum()
}

/// Token per member: account 0 is the setup account (it created the rooms, so it is a member of
/// all of them and holds no load connection); the rest are dealt out room by room.
fn assign_tokens(layout: &Layout, accounts: &[Account], conns_per_user: usize) -> Vec<String> {
    if accounts.is_empty() {
        return Vec::new();
    }
    let mut next_user = 1usize;
    let mut room_user: Vec<Option<(usize, usize)>> = vec![None; layout.rooms as usize];
    layout
        .members
        .iter()
        .map(|m| {
            let slot = &mut room_user[m.room as usize];
            let (user, used) = match *slot {
                Some((user, used)) if used < conns_per_user.max(1) => (user, used),
                _ => {
                    next_user += 1;
                    (next_user - 1, 0)
                }
            };
            *slot = Some((user, used + 1));
            accounts[user.min(accounts.len() - 1)].token.clone()
        })
        .collect()
}

async fn make_rooms(
    target: &Target,
    count: u32,
    accounts: &[Account],
    opts: &BuildOptions,
) -> Result<Vec<RoomRef>, BenchError> {
    let names: Vec<String> = (0..count)
        .map(|i| format!("nb{}r{i}", opts.run_id))
        .collect();
    if !target.kind.is_natter() {
        return Ok(names
            .into_iter()
            .enumerate()
            .map(|(i, name)| RoomRef {
                key: i as u32,
                wire: WireRoom::Name(name),
            })
            .collect());
    }
    let setup_account = accounts
        .first()
        .ok_or_else(|| BenchError::Config("no setup account".into()))?;
    let mut conn = Conn::open(target, Some(&setup_account.token), opts.timeout).await?;
    let mut rooms = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let reply = conn.request(Request::CreateRoom { name }).await?;
        let id = reply
            .room_id
            .ok_or_else(|| BenchError::Protocol("room.create reply without a room id".into()))?;
        rooms.push(RoomRef {
            key: i as u32,
            wire: WireRoom::Id(id),
        });
    }
    Ok(rooms)
}

async fn open_member(
    target: &Target,
    token: Option<String>,
    room: RoomRef,
    mut ctx: ReceiverCtx,
    window: Option<usize>,
    timeout: Duration,
) -> OpenResult {
    let mut conn = Conn::open(target, token.as_deref(), timeout).await?;
    conn.request(Request::Join { room: &room }).await?;
    let window = window.map(|w| Arc::new(Semaphore::new(w)));
    ctx.window = window.clone();
    Ok((conn.start(ctx), window))
}

/// A started connection and its send window (window mode).
type OpenResult = Result<(LiveConn, Option<Arc<Semaphore>>), BenchError>;

#[derive(Debug, Default, Clone, Copy)]
struct PublishOutcome {
    sent: u64,
    max_lag_ns: u64,
    /// Sends more than [`LATE_NS`] behind schedule.
    late_sends: u64,
}

/// A send this far behind its schedule counts as late.
const LATE_NS: u64 = 10_000_000;

/// One publisher's part of a step.
struct PublishJob {
    kind: crate::target::TargetKind,
    writer: mpsc::Sender<Outgoing>,
    room: RoomRef,
    sender: u32,
    first_counter: u64,
    first_ref: u64,
    /// Messages per second for this publisher (rate mode).
    rate: Option<f64>,
    window: Option<Arc<Semaphore>>,
    duration: Duration,
    limit: u64,
    body_bytes: usize,
}

impl PublishJob {
    async fn run(self) -> PublishOutcome {
        let started = Instant::now();
        let deadline = started + self.duration;
        let mut out = PublishOutcome::default();
        match self.rate {
            Some(rate) if rate > 0.0 => {
                // Spread publishers' phases over one interval so they do not fire together.
                let phase = (f64::from(self.sender) * 0.618_033_988_75).fract() / rate;
                let t0 = started + Duration::from_secs_f64(phase);
                while out.sent < self.limit {
                    let due_at = t0 + Duration::from_secs_f64(out.sent as f64 / rate);
                    if due_at >= deadline {
                        break;
                    }
                    let now = Instant::now();
                    if due_at > now {
                        tokio::time::sleep_until(due_at.into()).await;
                    } else {
                        let lag = u64::try_from((now - due_at).as_nanos()).unwrap_or(u64::MAX);
                        out.max_lag_ns = out.max_lag_ns.max(lag);
                        out.late_sends += u64::from(lag > LATE_NS);
                    }
                    if !self.send(out.sent).await {
                        break;
                    }
                    out.sent += 1;
                }
            }
            Some(_) => {}
            None => {
                let Some(window) = self.window.clone() else {
                    return out;
                };
                while out.sent < self.limit && Instant::now() < deadline {
                    match tokio::time::timeout_at(deadline.into(), window.acquire()).await {
                        Ok(Ok(permit)) => permit.forget(),
                        _ => break,
                    }
                    if !self.send(out.sent).await {
                        break;
                    }
                    out.sent += 1;
                }
            }
        }
        out
    }

    /// Publishes message number `first_counter + i`; false when the connection is gone.
    async fn send(&self, i: u64) -> bool {
        let counter = self.first_counter + i;
        let body = payload::encode(
            Stamp {
                sent_ns: clock::now_ns(),
                sender: self.sender,
                counter,
            },
            self.body_bytes,
        );
        let client_id = format!("c{}-{counter}", self.sender);
        let request = Request::Send {
            room: &self.room,
            body: &body,
            client_id: &client_id,
        };
        match proto::encode(self.kind, request, self.first_ref + i) {
            Some(frame) => self.writer.send(Outgoing::Text(frame)).await.is_ok(),
            None => false,
        }
    }
}
