//! Command-line interface: one subcommand per scenario, plus `report`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::target::TargetKind;

#[derive(Debug, Parser)]
#[command(
    name = "natter-bench",
    about = "Load generator for Natter and its Node.js peers (issue 7)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One room, N subscribers, P publishers.
    Fanout(FanoutArgs),
    /// R rooms x K clients, every client publishing.
    Rooms(RoomsArgs),
    /// Raise the rate step by step; report the highest that holds the p99 target, lossless.
    Ramp(RampArgs),
    /// Hold C idle connections over rooms; server memory per connection.
    Idle(IdleArgs),
    /// Connections (and Natter sign-ins) per second.
    Connect(ConnectArgs),
    /// Acknowledged (durably stored) sends per second from many senders (Natter only).
    Durable(DurableArgs),
    /// Regenerate docs/performance.md's generated section and plots from result files.
    Report(ReportArgs),
}

/// Options every scenario takes.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// What is under test.
    #[arg(long, value_enum)]
    pub target: TargetKind,
    /// The server's address, e.g. http://127.0.0.1:3000. For a cluster (`--target natter`
    /// only): every node's address, `--url` repeated or a comma list; accounts and rooms are
    /// made on the first, and each room's connections are spread over all of them in turn.
    #[arg(long, required = true, value_delimiter = ',')]
    pub url: Vec<String>,
    /// The server's pid, for its CPU time and RSS from /proc; with several nodes, each node's
    /// (repeated or a comma list): their CPU and RSS are summed.
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// A Redis the servers use as their broker, e.g. redis://127.0.0.1:6379: its `INFO stats`
    /// and `INFO commandstats` are read before and after the measured step, and the traffic
    /// per stored message is reported (fanout, rooms, durable). The counters are the whole
    /// Redis server's: anything else using it is counted too.
    #[arg(long)]
    pub redis: Option<String>,
    /// Write the result (JSON) here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Connections sharing one Natter account (scenario default when absent).
    #[arg(long)]
    pub conns_per_user: Option<usize>,
    /// Connections opened at once during setup.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Keep Natter accounts here and reuse them (one file per server instance).
    #[arg(long)]
    pub users_file: Option<PathBuf>,
    /// Bytes per message body (the stamp plus padding).
    #[arg(long, default_value_t = 64)]
    pub body_bytes: usize,
    /// Percent of each publisher's operations that, instead of a `message.send`, edit one of
    /// its recent messages or add/remove a reaction on one (alternately); Natter's native
    /// protocol (`--target natter`) only.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub change_percent: u32,
    /// Seconds to wait for in-flight replies and deliveries after publishing.
    #[arg(long, default_value_t = 5.0)]
    pub drain_secs: f64,
    /// Seconds allowed for each connect and setup request.
    #[arg(long, default_value_t = 15.0)]
    pub timeout_secs: f64,
    /// Free text stored with the result (e.g. `rep 2`).
    #[arg(long, default_value = "")]
    pub label: String,
    /// The command that produced this run (e.g. `bench/run --full`), stored with the result.
    #[arg(long)]
    pub command_note: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    #[arg(long, default_value_t = 10)]
    pub publishers: usize,
    /// Messages per second, all publishers together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 10.0)]
    pub duration_secs: f64,
}

#[derive(Debug, Clone, Args)]
pub struct RoomsArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 100)]
    pub rooms: u32,
    /// Clients per room (each publishes).
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// Messages per second, all clients together.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    #[arg(long, default_value_t = 10.0)]
    pub duration_secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shape {
    Fanout,
    Rooms,
}

#[derive(Debug, Clone, Args)]
pub struct RampArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, value_enum, default_value_t = Shape::Fanout)]
    pub shape: Shape,
    /// fanout shape: subscribers in the room.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// fanout shape: publishers.
    #[arg(long, default_value_t = 10)]
    pub publishers: usize,
    /// rooms shape: rooms.
    #[arg(long, default_value_t = 100)]
    pub rooms: u32,
    /// rooms shape: clients per room.
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// First step's messages per second (all publishers together).
    #[arg(long, default_value_t = 20.0)]
    pub start_rate: f64,
    /// Each step's rate is the previous one's times this.
    #[arg(long, default_value_t = 1.5)]
    pub factor: f64,
    #[arg(long, default_value_t = 14)]
    pub max_steps: usize,
    /// After the first failing step, this many steps bisect (geometrically) between it and
    /// the last passing one, so the limit is found to within factor^(1/2^refine).
    #[arg(long, default_value_t = 3)]
    pub refine: usize,
    #[arg(long, default_value_t = 5.0)]
    pub step_secs: f64,
    /// The latency a step must hold (p99, milliseconds).
    #[arg(long, default_value_t = 50.0)]
    pub p99_ms: f64,
    /// Steps that miss only the latency target may be run again this many times in all
    /// (a shared machine is noisy); loss is never retried.
    #[arg(long, default_value_t = 2)]
    pub retries: usize,
}

#[derive(Debug, Clone, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    #[arg(long, default_value_t = 100)]
    pub rooms: u32,
    /// Seconds to hold the connections before measuring again.
    #[arg(long, default_value_t = 10.0)]
    pub hold_secs: f64,
}

#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 2000)]
    pub connections: usize,
    #[arg(long, default_value_t = 10)]
    pub rooms: u32,
    /// Sign-ins (POST /api/login) to time, Natter only.
    #[arg(long, default_value_t = 100)]
    pub logins: usize,
}

#[derive(Debug, Clone, Args)]
pub struct DurableArgs {
    #[command(flatten)]
    pub common: Common,
    /// Senders, each in its own room.
    #[arg(long, default_value_t = 100)]
    pub senders: u32,
    /// Unacknowledged sends each sender may have in flight.
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    #[arg(long, default_value_t = 10.0)]
    pub duration_secs: f64,
}

#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Directory of result files (`*.json` written with --out).
    #[arg(long)]
    pub results: PathBuf,
    /// The Markdown file whose generated section is rewritten.
    #[arg(long)]
    pub doc: PathBuf,
    /// Where the SVG plots go (default: beside the doc).
    #[arg(long)]
    pub svg_dir: Option<PathBuf>,
    /// The command that produced the results, quoted in the doc.
    #[arg(long, default_value = "bench/run")]
    pub command: String,
    /// Only the headline and target tables and the plots, pointing to the full report
    /// (`report.md` in the results directory) for every table and command.
    #[arg(long)]
    pub brief: bool,
}
