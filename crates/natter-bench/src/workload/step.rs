//! One measured step of traffic: publish (at a rate or with a window), drain, then count
//! what arrived against what was expected, with latencies, CPU and errors.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::check::CheckCounts;
use crate::error::BenchError;
use crate::nodes::SplitLatency;
use crate::procstat::{CpuMeter, CpuWindow};
use crate::proto;
use crate::stats::Latency;

use super::plan::{Pace, StepResult, StepSpec};
use super::publish::{PublishJob, PublishOutcome};
use super::Workload;

impl Workload {
    /// Runs one step of traffic and measures it.
    pub async fn run_step(&mut self, spec: StepSpec) -> Result<StepResult, BenchError> {
        if matches!(spec.pace, Pace::Window(_)) && !proto::sends_are_acked(self.target.kind) {
            return Err(BenchError::Config(format!(
                "window pacing needs acknowledged sends; {} has none",
                self.target.kind
            )));
        }
        if spec.change_percent > 0 && self.target.kind != crate::target::TargetKind::Natter {
            return Err(BenchError::Config(format!(
                "--change-percent needs Natter's native protocol (--target natter); {} has no \
                 edits or reactions in the bench",
                self.target.kind
            )));
        }
        if spec.change_percent > 100 {
            return Err(BenchError::Config("--change-percent is at most 100".into()));
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

        let meter = CpuMeter::start(&spec.server_pids);
        let started = Instant::now();
        let outcomes = self.publish(&spec).await;
        let publish_s = started.elapsed().as_secs_f64();
        let sent: u64 = outcomes.iter().map(|o| o.sent).sum();
        let changes_sent: u64 = outcomes.iter().map(|o| o.changes).sum();
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
            changes_sent,
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

    async fn publish(&mut self, spec: &StepSpec) -> Vec<PublishOutcome> {
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
                change_percent: spec.change_percent,
                change_state: p.changes,
                state: std::sync::Arc::clone(&conn.state),
            };
            tasks.push(tokio::spawn(job.run()));
        }
        let mut outcomes = Vec::with_capacity(tasks.len());
        for (task, p) in tasks.into_iter().zip(self.publishers.iter_mut()) {
            let outcome = task.await.unwrap_or_default();
            p.counter += outcome.sent;
            p.changes = outcome.change_state;
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
            if let Some(l) = st.node_latency.as_mut() {
                snap.node_latency.merge(l);
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
            changes_sent: f.changes_sent,
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
            node_split: f.after.node_latency.summary(),
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

pub(super) struct StepFigures {
    pub(super) spec: StepSpec,
    pub(super) before: Snapshot,
    pub(super) after: Snapshot,
    pub(super) sent: u64,
    pub(super) changes_sent: u64,
    pub(super) expected: u64,
    pub(super) drained: bool,
    pub(super) publish_s: f64,
    pub(super) window_s: f64,
    pub(super) cpu: CpuWindow,
    pub(super) max_lag_ns: u64,
    pub(super) late_sends: u64,
    pub(super) disconnects: u64,
}

#[derive(Default)]
pub(super) struct Snapshot {
    pub(super) checks: CheckCounts,
    pub(super) replies_ok: u64,
    pub(super) replies_err: u64,
    pub(super) malformed: u64,
    pub(super) error_codes: BTreeMap<String, u64>,
    pub(super) latency: Latency,
    pub(super) node_latency: SplitLatency,
    pub(super) ack_latency: Latency,
    pub(super) close_reasons: Vec<String>,
}
