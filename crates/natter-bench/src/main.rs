//! The natter-bench binary: parse arguments, run the scenario, exit 0 (checks passed),
//! 2 (a delivery check failed) or 1 (the run could not be made).

#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = natter_bench::cli::Cli::parse();
    // Pinned to one CPU (bench/run), a single-threaded runtime is cheapest per delivery: no
    // hand-offs between a worker and the main thread, no work-stealing.
    let cpus = natter_bench::procstat::usable_cpus();
    let built = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cpus)
            .enable_all()
            .build()
    };
    let runtime = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("natter-bench: cannot start the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(natter_bench::run(cli.command));
    // Do not wait for readers of connections the server never closed.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(2),
        Err(e) => {
            eprintln!("natter-bench: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
