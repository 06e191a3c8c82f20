//! The built `natter` binary and its configuration: a value out of range, from a flag, the
//! environment or the `--config` file, stops it at start with a message naming the flag, the
//! value and the allowed range; `--help` shows each default and range.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `natter` with these arguments and environment (and nothing else of the test's
/// environment, so a `NATTER_*` variable of the caller cannot interfere) in `dir`, and
/// returns its output. A natter still running after 20 s has started serving: it is killed
/// and the test fails.
fn natter(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_natter"))
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn natter");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "natter {args:?} {env:?} did not stop: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn assert_refused(out: &Output, message: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end(), format!("natter: {message}"));
    assert!(out.stdout.is_empty(), "it did not listen");
}

#[test]
fn an_out_of_range_flag_stops_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = natter(dir.path(), &["--rate-burst", "0"], &[]);
    assert_refused(&out, "--rate-burst 0 is out of range: allowed 1 to 1000000");
}

#[test]
fn an_out_of_range_environment_variable_stops_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = natter(dir.path(), &[], &[("NATTER_OUTBOUND_QUEUE", "15")]);
    assert_refused(
        &out,
        "--outbound-queue 15 is out of range: allowed 16 to 1000000",
    );
}

#[test]
fn an_out_of_range_file_value_stops_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("natter.toml");
    std::fs::write(&file, "max_frame_bytes = 100\n").expect("write");
    let out = natter(dir.path(), &["--config", file.to_str().expect("utf8")], &[]);
    assert_refused(
        &out,
        "--max-frame-bytes 100 is out of range: allowed 1024 to 16777216",
    );
}

#[test]
fn help_shows_defaults_and_ranges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = natter(dir.path(), &["--help"], &[]);
    assert!(out.status.success(), "{:?}", out.status);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("[default: 40] [allowed: 1 to 1000000]"),
        "{help}"
    );
    assert!(help.contains("[default: 127.0.0.1:8080]"), "{help}");
    assert!(
        help.contains("[default: 20] [allowed: 0.001 to 1000000]"),
        "{help}"
    );
}
