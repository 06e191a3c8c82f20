//! CPU time and resident memory of a process, read from /proc (the server under test) or
//! getrusage (the load generator itself, to tell when it was the bottleneck).

// libc calls (sysconf, getrusage), each with its SAFETY comment.
#![allow(unsafe_code)]

use std::time::Instant;

use serde::Serialize;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ProcSample {
    /// utime + stime, nanoseconds.
    pub cpu_ns: u64,
    /// VmRSS, bytes.
    pub rss_bytes: u64,
}

fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 on error.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
pub fn sample_pid(pid: u32) -> std::io::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(ProcSample {
        cpu_ns: parse_stat_cpu_ticks(&stat)
            .map(|t| t * (1_000_000_000 / clock_ticks_per_sec()))
            .ok_or_else(|| std::io::Error::other("unreadable /proc/PID/stat"))?,
        rss_bytes: parse_status_rss(&status)
            .ok_or_else(|| std::io::Error::other("no VmRSS in /proc/PID/status"))?,
    })
}

/// The sum of [`sample_pid`] over `pids` (the nodes of a cluster); `None` for no pids or
/// when one of them cannot be read.
pub fn sample_pids(pids: &[u32]) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    let mut total = ProcSample {
        cpu_ns: 0,
        rss_bytes: 0,
    };
    for &pid in pids {
        let one = sample_pid(pid).ok()?;
        total.cpu_ns += one.cpu_ns;
        total.rss_bytes += one.rss_bytes;
    }
    Some(total)
}

/// utime + stime in clock ticks: fields 14 and 15, counted after the `(comm)` field.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // after_comm starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn parse_status_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// This process's own CPU time (user + system), nanoseconds, from getrusage.
pub fn self_cpu_ns() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return 0;
    }
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Busy and total CPU time of the whole machine (all CPUs), nanoseconds, from /proc/stat.
pub fn machine_cpu_ns() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_cpu(&stat).map(|(busy, total)| {
        let ns = 1_000_000_000 / clock_ticks_per_sec();
        (busy * ns, total * ns)
    })
}

/// (busy, total) ticks from the aggregate `cpu` line: busy is everything but idle and iowait.
fn parse_machine_cpu(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4];
    Some((total - idle, total))
}

/// CPUs this process may run on (its affinity mask, so `taskset -c 1` gives 1).
pub fn usable_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// CPU use of the server and of the load generator over one measured window.
#[derive(Debug, Clone, Copy, Default, Serialize, serde::Deserialize)]
pub struct CpuWindow {
    pub wall_s: f64,
    /// Server CPU seconds in the window, every node's together (None when no server pid was
    /// given).
    pub server_cpu_s: Option<f64>,
    /// Server CPU seconds / wall seconds (1.0 = one core busy; several nodes summed).
    pub server_util: Option<f64>,
    pub server_rss_start_mb: Option<f64>,
    pub server_rss_end_mb: Option<f64>,
    pub bench_cpu_s: f64,
    /// Load generator CPU seconds / (wall seconds x usable CPUs).
    pub bench_util: f64,
    /// True when the load generator was at or near its CPU limit (>= 85%): its figures may
    /// then be its own limit, not the server's.
    pub bench_saturated: bool,
    /// CPU time the rest of the machine used meanwhile (busy time of all CPUs, from
    /// /proc/stat, less the server's and the bench's; includes unattributed kernel work).
    #[serde(default)]
    pub others_cpu_s: Option<f64>,
    /// `others_cpu_s` per wall second (1.0 = a whole core taken by other work).
    #[serde(default)]
    pub others_util: Option<f64>,
    /// Other work took more than a quarter of a core: the figures are disturbed.
    #[serde(default)]
    pub noisy: bool,
}

/// Starts a [`CpuWindow`] measurement.
pub struct CpuMeter {
    pids: Vec<u32>,
    started: Instant,
    server_start: Option<ProcSample>,
    bench_start_ns: u64,
    machine_start: Option<(u64, u64)>,
}

impl CpuMeter {
    /// Starts measuring the server processes `pids` (none, one, or every node of a cluster).
    pub fn start(pids: &[u32]) -> Self {
        CpuMeter {
            pids: pids.to_vec(),
            started: Instant::now(),
            server_start: sample_pids(pids),
            bench_start_ns: self_cpu_ns(),
            machine_start: machine_cpu_ns(),
        }
    }

    pub fn finish(&self) -> CpuWindow {
        let wall_s = self.started.elapsed().as_secs_f64().max(1e-9);
        let server_end = sample_pids(&self.pids);
        let bench_cpu_s = (self_cpu_ns().saturating_sub(self.bench_start_ns)) as f64 / 1e9;
        let bench_util = bench_cpu_s / (wall_s * usable_cpus() as f64);
        let server_cpu_s = match (self.server_start, server_end) {
            (Some(a), Some(b)) => Some(b.cpu_ns.saturating_sub(a.cpu_ns) as f64 / 1e9),
            _ => None,
        };
        let others_cpu_s = match (self.machine_start, machine_cpu_ns()) {
            (Some((b0, _)), Some((b1, _))) => {
                let busy_s = b1.saturating_sub(b0) as f64 / 1e9;
                Some((busy_s - bench_cpu_s - server_cpu_s.unwrap_or(0.0)).max(0.0))
            }
            _ => None,
        };
        let others_util = others_cpu_s.map(|c| c / wall_s);
        CpuWindow {
            others_cpu_s,
            others_util,
            noisy: others_util.is_some_and(|u| u > 0.25),
            wall_s,
            server_cpu_s,
            server_util: server_cpu_s.map(|c| c / wall_s),
            server_rss_start_mb: self.server_start.map(|s| s.rss_bytes as f64 / 1048576.0),
            server_rss_end_mb: server_end.map(|s| s.rss_bytes as f64 / 1048576.0),
            bench_cpu_s,
            bench_util,
            bench_saturated: bench_util >= 0.85,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_comm() {
        let stat = "1234 (my (odd) proc) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(300));
    }

    #[test]
    fn parses_machine_cpu_line() {
        let stat = "cpu  100 5 20 800 10 0 3 2 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        assert_eq!(parse_machine_cpu(stat), Some((130, 940)));
        assert!(machine_cpu_ns().is_some());
    }

    #[test]
    fn reads_own_process() {
        let s = sample_pid(std::process::id()).expect("own /proc entry");
        assert!(s.rss_bytes > 0);
        assert!(usable_cpus() >= 1);
    }
}
