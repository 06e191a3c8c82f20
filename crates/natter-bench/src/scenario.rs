//! The scenarios of issue 7, each turning its arguments into a layout and steps and its
//! measurements into a [`RunRecord`]: fanout, rooms, ramp, idle, connect, durable.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{self, StreamExt};
use serde_json::json;

use crate::accounts;
use crate::cli::{
    Common, ConnectArgs, DurableArgs, FanoutArgs, IdleArgs, RampArgs, RoomsArgs, Shape,
};
use crate::error::BenchError;
use crate::procstat::{self, CpuMeter};
use crate::record::{RunRecord, Summary, Verdict};
use crate::redis_stats::{self, RedisTraffic};
use crate::stats::Latency;
use crate::target::{Target, TargetKind};
use crate::workload::{BuildOptions, Layout, Pace, StepResult, StepSpec, Workload};

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A short id unique to this run (room and user names start with it).
fn run_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut n = (nanos / 1_000_000) as u64 ^ u64::from(std::process::id());
    let mut id = String::new();
    for _ in 0..8 {
        let digit = (n % 36) as u32;
        id.push(char::from_digit(digit, 36).unwrap_or('0'));
        n /= 36;
    }
    id
}

fn options(
    common: &Common,
    default_conns_per_user: usize,
    window: Option<usize>,
) -> Result<BuildOptions, BenchError> {
    Ok(BuildOptions {
        conns_per_user: common
            .conns_per_user
            .unwrap_or(default_conns_per_user)
            .max(1),
        concurrency: common.concurrency,
        users_file: common.users_file.clone(),
        run_id: run_id(),
        timeout: Duration::from_secs_f64(common.timeout_secs),
        window,
        nodes: nodes(common)?,
    })
}

/// The server (the first node, with several `--url`s): accounts and rooms are made there.
fn target(common: &Common) -> Target {
    let first = common.url.first().map_or("", String::as_str);
    Target::new(common.target, first)
}

/// Every node given by `--url`: one, or a cluster's (Natter's native protocol only).
fn nodes(common: &Common) -> Result<Vec<Target>, BenchError> {
    if common.url.is_empty() {
        return Err(BenchError::Config("--url is required".into()));
    }
    if common.url.len() > 1 && common.target != TargetKind::Natter {
        return Err(BenchError::Config(format!(
            "several --url (a cluster) need --target natter, not {}",
            common.target
        )));
    }
    Ok(common
        .url
        .iter()
        .map(|u| Target::new(common.target, u))
        .collect())
}

fn spec(common: &Common, pace: Pace, secs: f64) -> StepSpec {
    StepSpec {
        pace,
        duration: Duration::from_secs_f64(secs),
        drain: Duration::from_secs_f64(common.drain_secs),
        max_per_publisher: None,
        server_pids: common.server_pid.clone(),
        change_percent: common.change_percent,
    }
}

fn record(
    scenario: &str,
    common: &Common,
    params: serde_json::Value,
    work: &Workload,
    steps: Vec<StepResult>,
    summary: Summary,
    verdict: Verdict,
) -> RunRecord {
    let mut params = params;
    if common.url.len() > 1 {
        if let Some(p) = params.as_object_mut() {
            p.insert("nodes".into(), json!(common.url.len()));
        }
    }
    RunRecord {
        scenario: scenario.to_string(),
        target: common.target,
        label: common.label.clone(),
        command: std::env::args()
            .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
            .collect::<Vec<_>>()
            .join(" "),
        command_note: common.command_note.clone(),
        started_unix_s: unix_now(),
        bench_cpus: procstat::usable_cpus(),
        params,
        setup: work.setup.clone(),
        steps,
        summary,
        verdict,
    }
}

fn traffic_summary(step: &StepResult) -> Summary {
    Summary {
        deliveries_per_sec: Some(step.deliveries_per_sec),
        msgs_per_sec: Some(step.msgs_per_sec),
        latency: Some(step.latency),
        node_split: step.node_split,
        server_cpu_ns_per_delivery: step.server_cpu_ns_per_delivery,
        acked_per_sec: (step.replies_ok > 0).then_some(step.acked_per_sec),
        ack_latency: step.ack_latency,
        bench_limited: step.bench_limited,
        noisy: step.cpu.noisy,
        ..Summary::default()
    }
}

fn setup_problems(work: &Workload, verdict: &mut Verdict) {
    if work.setup.connections_failed > 0 {
        verdict.ok = false;
        verdict.problems.push(format!(
            "{} connections failed to open: {:?}",
            work.setup.connections_failed, work.setup.connection_errors
        ));
    }
}

fn fanout_layout(subscribers: usize, publishers: usize) -> Layout {
    Layout::grid(1, subscribers + publishers, publishers)
}

/// One step of traffic at one rate over a fresh workload.
async fn single_step(
    scenario: &str,
    common: &Common,
    layout: Layout,
    params: serde_json::Value,
    pace: Pace,
    secs: f64,
) -> Result<RunRecord, BenchError> {
    let window = match pace {
        Pace::Window(w) => Some(w),
        Pace::Rate(_) => None,
    };
    let mut work = Workload::build(
        &target(common),
        &layout,
        &options(common, 10, window)?,
        common.body_bytes,
    )
    .await?;
    let timeout = Duration::from_secs_f64(common.timeout_secs);
    let redis = match &common.redis {
        Some(url) => {
            let at = redis_stats::host_port(url)?;
            let before = redis_stats::read(&at, timeout).await?;
            Some((at, before))
        }
        None => None,
    };
    let step = work.run_step(spec(common, pace, secs)).await?;
    let mut summary = traffic_summary(&step);
    if let Some((at, before)) = redis {
        let after = redis_stats::read(&at, timeout).await?;
        summary.redis = Some(RedisTraffic::between(&before, &after, step.replies_ok));
    }
    let steps = vec![step];
    let mut verdict = Verdict::judge(&steps, |_| false);
    setup_problems(&work, &mut verdict);
    let rec = record(scenario, common, params, &work, steps, summary, verdict);
    work.close().await;
    Ok(rec)
}

pub async fn fanout(a: &FanoutArgs) -> Result<RunRecord, BenchError> {
    let params = json!({"subscribers": a.subscribers, "publishers": a.publishers,
        "rate": a.rate, "duration_secs": a.duration_secs, "body_bytes": a.common.body_bytes,
        "change_percent": a.common.change_percent});
    let layout = fanout_layout(a.subscribers, a.publishers);
    single_step(
        "fanout",
        &a.common,
        layout,
        params,
        Pace::Rate(a.rate),
        a.duration_secs,
    )
    .await
}

pub async fn rooms(a: &RoomsArgs) -> Result<RunRecord, BenchError> {
    let params = json!({"rooms": a.rooms, "clients": a.clients, "rate": a.rate,
        "duration_secs": a.duration_secs, "body_bytes": a.common.body_bytes,
        "change_percent": a.common.change_percent});
    let layout = Layout::grid(a.rooms, a.clients, a.clients);
    single_step(
        "rooms",
        &a.common,
        layout,
        params,
        Pace::Rate(a.rate),
        a.duration_secs,
    )
    .await
}

pub async fn durable(a: &DurableArgs) -> Result<RunRecord, BenchError> {
    if !a.common.target.is_natter() {
        return Err(BenchError::Config(
            "durable needs acknowledged sends: natter targets only".into(),
        ));
    }
    let params = json!({"senders": a.senders, "window": a.window,
        "duration_secs": a.duration_secs, "body_bytes": a.common.body_bytes,
        "change_percent": a.common.change_percent});
    let layout = Layout::grid(a.senders, 1, 1);
    single_step(
        "durable",
        &a.common,
        layout,
        params,
        Pace::Window(a.window),
        a.duration_secs,
    )
    .await
}

/// A ramp's steps so far, with the retry budget for steps that miss only the latency target.
struct Ramp {
    steps: Vec<StepResult>,
    retried: Vec<StepResult>,
    retries_left: usize,
}

impl Ramp {
    /// Runs one step at `rate` (again, within the retry budget, if it missed only the latency
    /// target); returns whether it passed and whether connections were lost (the ramp ends).
    async fn step(
        &mut self,
        work: &mut Workload,
        a: &RampArgs,
        rate: f64,
        name: &str,
    ) -> Result<(bool, bool), BenchError> {
        loop {
            let step = work
                .run_step(spec(&a.common, Pace::Rate(rate), a.step_secs))
                .await?;
            let pass = step.holds(a.p99_ms);
            // A step that misses only the latency target (nothing lost or refused) may be
            // noise on a shared machine: run it again, up to --retries times in the ramp.
            if !pass && step.clean() && self.retries_left > 0 {
                self.retries_left -= 1;
                eprintln!(
                    "ramp {name}: {rate:.0} msg/s, p99 {:.1} ms over target: retrying",
                    step.latency.p99_ms
                );
                self.retried.push(step);
                continue;
            }
            eprintln!(
                "ramp {name}: {rate:.0} msg/s -> {:.0} deliveries/s, p99 {:.1} ms, lost {}, {}{}",
                step.deliveries_per_sec,
                step.latency.p99_ms,
                step.lost,
                if pass { "pass" } else { "FAIL" },
                if step.bench_limited {
                    " (bench-limited)"
                } else {
                    ""
                }
            );
            let disconnected = step.disconnects > 0;
            self.steps.push(step);
            return Ok((pass, disconnected));
        }
    }
}

pub async fn ramp(a: &RampArgs) -> Result<RunRecord, BenchError> {
    let (layout, shape) = match a.shape {
        Shape::Fanout => (fanout_layout(a.subscribers, a.publishers), "fanout"),
        Shape::Rooms => (Layout::grid(a.rooms, a.clients, a.clients), "rooms"),
    };
    let mut params = json!({"shape": shape, "start_rate": a.start_rate, "factor": a.factor,
        "max_steps": a.max_steps, "refine": a.refine, "step_secs": a.step_secs, "p99_ms": a.p99_ms,
        "body_bytes": a.common.body_bytes,
        "change_percent": a.common.change_percent});
    let shape_params = match a.shape {
        Shape::Fanout => json!({"subscribers": a.subscribers, "publishers": a.publishers}),
        Shape::Rooms => json!({"rooms": a.rooms, "clients": a.clients}),
    };
    if let (Some(p), Some(extra)) = (params.as_object_mut(), shape_params.as_object()) {
        p.extend(extra.clone());
    }
    let mut work = Workload::build(
        &target(&a.common),
        &layout,
        &options(&a.common, 10, None)?,
        a.common.body_bytes,
    )
    .await?;
    let mut ramp = Ramp {
        steps: Vec::new(),
        retried: Vec::new(),
        retries_left: a.retries,
    };
    let mut rate = a.start_rate;
    // The highest passing rate and the lowest failing one.
    let mut passed: Option<f64> = None;
    let mut failed: Option<f64> = None;
    let mut disconnected = false;
    for i in 0..a.max_steps {
        let (pass, ended) = ramp.step(&mut work, a, rate, &format!("step {i}")).await?;
        disconnected = ended;
        if pass {
            passed = Some(rate);
        } else {
            failed = Some(rate);
            break;
        }
        if ended {
            break;
        }
        rate *= a.factor;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Narrow the limit down between the last passing and the first failing rate: each
    // server's figure is then within factor^(1/2^refine) of its limit, not one whole step.
    if let (Some(mut lo), Some(mut hi)) = (passed, failed) {
        for k in 0..a.refine {
            if disconnected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mid = (lo * hi).sqrt();
            let (pass, ended) = ramp.step(&mut work, a, mid, &format!("refine {k}")).await?;
            disconnected = ended;
            if pass {
                lo = mid;
            } else {
                hi = mid;
            }
        }
    }
    let Ramp {
        mut steps, retried, ..
    } = ramp;
    // In rate order (the refinement ran its steps after the climb), so the report's plots
    // and its "best step" (the last passing one) read them as a ladder.
    let offered = |s: &StepResult| s.pace.rate().unwrap_or(0.0);
    steps.sort_by(|x, y| offered(x).total_cmp(&offered(y)));
    let best = steps.iter().rposition(|s| s.holds(a.p99_ms));
    let failing: Vec<usize> = (0..steps.len())
        .filter(|&i| !steps[i].holds(a.p99_ms))
        .collect();
    let failed_at = failing.first().copied();
    let mut summary = best.map_or_else(Summary::default, |b| traffic_summary(&steps[b]));
    summary.p99_target_ms = Some(a.p99_ms);
    summary.ramp_hit_limit = Some(failed_at.is_some());
    summary.limit_is_bench = failed_at.map(|f| steps[f].bench_limited);
    let mut verdict = Verdict::judge(&steps, |i| failing.contains(&i));
    if !retried.is_empty() {
        verdict.notes.push(format!(
            "{} step attempt(s) missed the p99 target and were run again (kept: the rerun)",
            retried.len()
        ));
        // The discarded attempts' delivery checks still count.
        let checked = Verdict::judge(&retried, |_| true);
        verdict
            .problems
            .extend(checked.problems.into_iter().map(|p| format!("retried {p}")));
        verdict.ok = verdict.problems.is_empty();
    }
    if best.is_none() {
        verdict.notes.push(format!(
            "no step held p99 <= {} ms without loss (first step: {} msg/s)",
            a.p99_ms, a.start_rate
        ));
    }
    setup_problems(&work, &mut verdict);
    let rec = record("ramp", &a.common, params, &work, steps, summary, verdict);
    work.close().await;
    Ok(rec)
}

pub async fn idle(a: &IdleArgs) -> Result<RunRecord, BenchError> {
    let per_room = a.connections.div_ceil(a.rooms.max(1) as usize);
    let params = json!({"connections": a.connections, "rooms": a.rooms, "hold_secs": a.hold_secs});
    let mut layout = Layout::grid(a.rooms, per_room, 1);
    layout.members.truncate(a.connections);
    let target = target(&a.common);
    let opts = options(&a.common, per_room, None)?;
    let prepared = Workload::prepare(&target, &layout, &opts, a.common.body_bytes).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = procstat::sample_pids(&a.common.server_pid);
    let mut work = prepared.connect().await;
    tokio::time::sleep(Duration::from_secs_f64(a.hold_secs)).await;
    let after = procstat::sample_pids(&a.common.server_pid);
    let held = work.connections() as u64 - work.closed().min(work.connections() as u64);
    // Liveness: one message per room must reach every held connection.
    let mut liveness = spec(&a.common, Pace::Rate(1e6), 1.0);
    liveness.max_per_publisher = Some(1);
    let step = work.run_step(liveness).await?;
    let mem = match (before, after) {
        (Some(b), Some(af)) if held > 0 => {
            Some((af.rss_bytes as f64 - b.rss_bytes as f64) / held as f64)
        }
        _ => None,
    };
    let summary = Summary {
        mem_per_conn_bytes: mem,
        rss_before_mb: before.map(|s| s.rss_bytes as f64 / 1048576.0),
        rss_after_mb: after.map(|s| s.rss_bytes as f64 / 1048576.0),
        connections_held: Some(held as usize),
        connect_latency: Some(work.setup.connect_latency),
        connections_per_sec: Some(work.connections() as f64 / work.setup.connect_s.max(1e-9)),
        bench_limited: false,
        ..Summary::default()
    };
    let steps = vec![step];
    let mut verdict = Verdict::judge(&steps, |_| false);
    setup_problems(&work, &mut verdict);
    let rec = record("idle", &a.common, params, &work, steps, summary, verdict);
    work.close().await;
    Ok(rec)
}

pub async fn connect(a: &ConnectArgs) -> Result<RunRecord, BenchError> {
    let per_room = a.connections.div_ceil(a.rooms.max(1) as usize);
    let params = json!({"connections": a.connections, "rooms": a.rooms, "logins": a.logins,
        "concurrency": a.common.concurrency});
    let mut layout = Layout::grid(a.rooms, per_room, 0);
    layout.members.truncate(a.connections);
    let target = target(&a.common);
    let opts = options(&a.common, 10, None)?;
    let prepared = Workload::prepare(&target, &layout, &opts, a.common.body_bytes).await?;
    let meter = CpuMeter::start(&a.common.server_pid);
    let work = prepared.connect().await;
    let cpu = meter.finish();
    let mut summary = Summary {
        connections_held: Some(work.connections()),
        connections_per_sec: Some(work.connections() as f64 / work.setup.connect_s.max(1e-9)),
        connect_latency: Some(work.setup.connect_latency),
        server_cpu_us_per_connection: cpu
            .server_cpu_s
            .filter(|_| work.connections() > 0)
            .map(|s| s * 1e6 / work.connections() as f64),
        bench_limited: cpu.bench_saturated,
        noisy: cpu.noisy,
        ..Summary::default()
    };
    let mut verdict = Verdict {
        ok: true,
        ..Verdict::default()
    };
    if target.kind.is_natter() && a.logins > 0 && work.accounts.len() > 1 {
        let users = &work.accounts[1..];
        let started = Instant::now();
        let timed: Vec<Result<u64, BenchError>> = stream::iter(0..a.logins)
            .map(|i| {
                let account = &users[i % users.len()];
                let target = &target;
                async move {
                    let t0 = Instant::now();
                    accounts::login(target, account).await?;
                    Ok(t0.elapsed().as_nanos() as u64)
                }
            })
            .buffer_unordered(a.common.concurrency.clamp(1, 16))
            .collect()
            .await;
        let wall = started.elapsed().as_secs_f64();
        let mut lat = Latency::new();
        let mut failures = 0;
        for t in timed {
            match t {
                Ok(ns) => lat.record_ns(ns),
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        verdict.problems.push(format!("login failed: {e}"));
                    }
                }
            }
        }
        summary.logins_per_sec = Some(lat.count() as f64 / wall.max(1e-9));
        summary.login_latency = Some(lat.summary());
        if failures > 0 {
            verdict.ok = false;
            verdict.problems.push(format!("{failures} logins failed"));
        }
    }
    setup_problems(&work, &mut verdict);
    let rec = record(
        "connect",
        &a.common,
        params,
        &work,
        Vec::new(),
        summary,
        verdict,
    );
    work.close().await;
    Ok(rec)
}
