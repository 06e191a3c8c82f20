//! The load generator's delivery checks against deliberately faulty servers: a lossy, a
//! duplicating, a reordering and a seq-skipping server must each be caught, and a correct
//! one must pass clean (plain-ws peer protocol, Socket.IO v4, and Natter's native protocol).
//! And the ramp must find a server's limit: climbing, then narrowing it down.

mod common;

use std::time::Duration;

use common::{Dialect, Fault};
use natter_bench::record::Verdict;
use natter_bench::target::{Target, TargetKind};
use natter_bench::workload::{BuildOptions, Layout, Pace, StepResult, StepSpec, Workload};

async fn run(dialect: Dialect, fault: Fault, pace: Pace) -> StepResult {
    run_with_changes(dialect, fault, pace, 0).await
}

async fn run_with_changes(
    dialect: Dialect,
    fault: Fault,
    pace: Pace,
    change_percent: u32,
) -> StepResult {
    natter_bench::clock::init();
    let addr = common::start(dialect, fault).await;
    let kind = match dialect {
        Dialect::PlainWs => TargetKind::WsPeer,
        Dialect::Native => TargetKind::Natter,
        Dialect::SocketIo => TargetKind::SioPeer,
    };
    let target = Target::new(kind, &format!("http://{addr}"));
    let opts = BuildOptions {
        conns_per_user: 5,
        concurrency: 16,
        users_file: None,
        run_id: "t".into(),
        timeout: Duration::from_secs(5),
        window: match pace {
            Pace::Window(w) => Some(w),
            Pace::Rate(_) => None,
        },
        nodes: Vec::new(),
    };
    // Two rooms of 10 connections, 2 publishers each.
    let layout = Layout::grid(2, 10, 2);
    let mut work = Workload::build(&target, &layout, &opts, 80)
        .await
        .expect("workload");
    assert_eq!(work.connections(), 20);
    let step = work
        .run_step(StepSpec {
            pace,
            duration: Duration::from_millis(600),
            drain: Duration::from_secs(3),
            max_per_publisher: None,
            server_pids: vec![std::process::id()],
            change_percent,
        })
        .await
        .expect("step");
    work.close().await;
    assert!(step.sent > 0, "nothing sent: {step:?}");
    step
}

const RATE: Pace = Pace::Rate(400.0);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_server_passes_clean() {
    let step = run(Dialect::PlainWs, Fault::None, RATE).await;
    assert!(step.clean(), "{step:#?}");
    assert_eq!(step.expected_deliveries, step.sent * 10);
    assert_eq!(step.checks.distinct, step.expected_deliveries);
    assert!(step.latency.count > 0 && step.latency.p99_ms < 5000.0);
    assert!(step.server_cpu_ns_per_delivery.is_some());
    assert!(Verdict::judge(&[step], |_| false).ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_server_is_caught() {
    let step = run(Dialect::PlainWs, Fault::DropEvery(17), RATE).await;
    assert!(step.lost > 0, "{step:#?}");
    assert_eq!(step.checks.duplicates, 0);
    let verdict = Verdict::judge(&[step], |_| false);
    assert!(!verdict.ok);
    assert!(
        verdict.problems.iter().any(|p| p.contains("lost")),
        "{verdict:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicating_server_is_caught() {
    let step = run(Dialect::PlainWs, Fault::DuplicateEvery(13), RATE).await;
    assert!(step.checks.duplicates > 0, "{step:#?}");
    assert_eq!(step.lost, 0, "{step:#?}");
    let verdict = Verdict::judge(&[step], |_| true);
    assert!(
        !verdict.ok,
        "duplicates fail a run even where loss is allowed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reordering_server_is_caught() {
    let step = run(Dialect::PlainWs, Fault::ReorderEvery(7), RATE).await;
    assert!(step.checks.out_of_order > 0, "{step:#?}");
    assert!(!Verdict::judge(&[step], |_| true).ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_protocol_correct_server_with_acks() {
    let step = run(Dialect::Native, Fault::None, RATE).await;
    assert!(step.clean(), "{step:#?}");
    assert_eq!(step.replies_ok, step.sent);
    assert!(step.ack_latency.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_seq_gaps_are_caught() {
    let step = run(Dialect::Native, Fault::SeqGapEvery(5), RATE).await;
    assert!(step.checks.seq_gaps > 0, "{step:#?}");
    assert_eq!(step.lost, 0);
    assert!(!Verdict::judge(&[step], |_| true).ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_edits_and_reactions_are_delivered_timed_and_in_the_seq_sequence() {
    let step = run_with_changes(Dialect::Native, Fault::None, RATE, 25).await;
    assert!(step.clean(), "{step:#?}");
    assert!(step.changes_sent > 0, "{step:#?}");
    assert_eq!(step.replies_ok, step.sent);
    assert_eq!(step.expected_deliveries, step.sent * 10);
    assert_eq!(step.checks.distinct, step.expected_deliveries);
    assert_eq!(step.checks.changes, step.changes_sent * 10);
    assert_eq!(step.latency.count, step.checks.received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_lost_change_events_are_caught() {
    let step = run_with_changes(Dialect::Native, Fault::DropChanges, RATE, 25).await;
    assert!(step.changes_sent > 0, "{step:#?}");
    assert_eq!(step.lost, step.changes_sent * 10, "{step:#?}");
    assert!(step.checks.seq_gaps > 0, "{step:#?}");
    assert!(!Verdict::judge(&[step], |_| true).ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_are_refused_on_other_protocols() {
    natter_bench::clock::init();
    let addr = common::start(Dialect::PlainWs, Fault::None).await;
    let target = Target::new(TargetKind::WsPeer, &format!("http://{addr}"));
    let opts = BuildOptions {
        conns_per_user: 5,
        concurrency: 16,
        users_file: None,
        run_id: "t".into(),
        timeout: Duration::from_secs(5),
        window: None,
        nodes: Vec::new(),
    };
    let mut work = Workload::build(&target, &Layout::grid(1, 2, 1), &opts, 80)
        .await
        .expect("workload");
    let err = work
        .run_step(StepSpec {
            pace: RATE,
            duration: Duration::from_millis(100),
            drain: Duration::from_secs(1),
            max_per_publisher: None,
            server_pids: Vec::new(),
            change_percent: 10,
        })
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("--change-percent"), "{err}");
    work.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_lossy_server_is_caught_in_window_mode() {
    let step = run(Dialect::Native, Fault::DropEvery(11), Pace::Window(4)).await;
    assert!(step.lost > 0, "{step:#?}");
    assert!(step.replies_ok > 0 && step.acked_per_sec > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_correct_server_passes_and_pings_are_answered() {
    let step = run(Dialect::SocketIo, Fault::None, RATE).await;
    assert!(step.clean(), "{step:#?}");
    assert_eq!(step.checks.distinct, step.sent * 10);
    assert!(common::PONGS.load(std::sync::atomic::Ordering::Relaxed) >= 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_io_lossy_and_duplicating_servers_are_caught() {
    let lossy = run(Dialect::SocketIo, Fault::DropEvery(19), RATE).await;
    assert!(lossy.lost > 0, "{lossy:#?}");
    let dup = run(Dialect::SocketIo, Fault::DuplicateEvery(19), RATE).await;
    assert!(dup.checks.duplicates > 0, "{dup:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_climbs_then_narrows_down_to_the_servers_limit() {
    use clap::Parser;
    use natter_bench::cli::{Cli, Command};
    natter_bench::clock::init();
    // A server that loses messages beyond 250/s. The ramp climbs 40, 80, 160 (pass), 320
    // (fail); three bisection steps then land between 226 and 320 msg/s.
    let addr = common::start(Dialect::PlainWs, Fault::DropAboveRate(250)).await;
    let url = format!("http://{addr}");
    let cli = Cli::try_parse_from([
        "natter-bench",
        "ramp",
        "--shape",
        "fanout",
        "--subscribers",
        "10",
        "--publishers",
        "2",
        "--start-rate",
        "40",
        "--factor",
        "2",
        "--max-steps",
        "6",
        "--refine",
        "3",
        "--step-secs",
        "0.8",
        "--p99-ms",
        "1000",
        "--drain-secs",
        "2",
        "--target",
        "ws-peer",
        "--url",
        &url,
    ])
    .expect("arguments");
    let Command::Ramp(args) = cli.command else {
        panic!("not a ramp")
    };
    let rec = natter_bench::scenario::ramp(&args).await.expect("ramp");
    let rates: Vec<f64> = rec
        .steps
        .iter()
        .map(|s| s.pace.rate().unwrap_or(0.0))
        .collect();
    assert_eq!(rates.len(), 4 + 3, "climb and refinement steps: {rates:?}");
    assert!(
        rates.windows(2).all(|w| w[0] < w[1]),
        "in rate order: {rates:?}"
    );
    let sustained = rec.summary.msgs_per_sec.expect("a sustained rate");
    assert!(
        (200.0..320.0).contains(&sustained),
        "sustained {sustained} msg/s; steps at {rates:?}"
    );
    // Losses at the failing steps are expected, nowhere else.
    assert!(rec.verdict.ok, "{:?}", rec.verdict.problems);
    assert!(
        rec.steps.iter().any(|s| s.lost > 0),
        "the limit was never hit"
    );
}
