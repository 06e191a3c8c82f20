//! The `natter` binary: reads configuration, then serves (binds, runs until SIGINT/SIGTERM)
//! or runs an operator's command (`natter admin ...`, `natter backup`; `natter_server::admin`).
//! Its one unsafe block (malloc tuning, `release_large_allocations`) is allowed by name.

use natter_server::admin::Command;
use natter_server::{run, Settings};
use tokio::net::TcpListener;

/// jemalloc rather than glibc's malloc: its size classes are naturally aligned, so tokio's
/// 128-byte-aligned task cells and I/O registrations (two per connection) waste nothing,
/// where glibc's `memalign` leaves a fragment beside each. An idle connection costs ~1.28 KiB
/// resident instead of ~1.72 (tests/idle_memory.rs; ADR 0006).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    release_large_allocations();
    let mut settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("natter: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // `natter` and `natter serve` serve; anything else is an operator's command, which logs
    // only warnings unless `--log` says otherwise.
    let command = settings
        .command
        .take()
        .filter(|c| !matches!(c, Command::Serve));
    if command.is_some() && settings.log.is_none() {
        settings.log = Some("warn".into());
    }
    let config = match settings.resolve() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("natter: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&config.log, config.log_json);
    match command {
        Some(command) => operate(&command, &config).await,
        None => serve(config).await,
    }
}

async fn serve(config: natter_server::Config) -> std::process::ExitCode {
    let listener = match TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("natter: cannot listen on {}: {e}", config.listen);
            return std::process::ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("natter listening on http://{addr}"),
        Err(e) => eprintln!("natter: {e}"),
    }
    match run(config, listener, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("natter: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

async fn operate(command: &Command, config: &natter_server::Config) -> std::process::ExitCode {
    let mut out = std::io::stdout();
    match natter_server::admin::execute(command, config, &mut out).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("natter: {e}");
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// glibc's malloc still serves the C code (SQLite): its big allocations go straight to mmap
/// and back to the system when freed. (This was for argon2id's 19 MiB blocks, which glibc kept
/// in per-thread arenas: 100 sign-ups left ~650 MB resident. Rust's allocations, argon2's
/// included, now go to jemalloc, which returns such blocks at once: 60 sign-ups, 4 at a time,
/// leave 14 MB resident, peak 53 MB.)
#[allow(unsafe_code)]
fn release_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning (thread-safe), called once at startup.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
