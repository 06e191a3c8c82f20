//! The environment that switches optional tests on: `NATTER_TEST_POSTGRES` (a `postgres://`
//! URL), `NATTER_TEST_REDIS` (a `redis://` URL), `NATTER_TEST_NGINX` (the nginx binary) and
//! the like. Without its variables a test prints a visible skip and passes, unless
//! `NATTER_REQUIRE_SERVICES=1` (CI): then a test that would be skipped fails instead.

use std::io::Write;

pub const POSTGRES: &str = "NATTER_TEST_POSTGRES";
pub const REDIS: &str = "NATTER_TEST_REDIS";
pub const NGINX: &str = "NATTER_TEST_NGINX";

/// Whether skips are failures here (`NATTER_REQUIRE_SERVICES=1`).
pub fn services_required() -> bool {
    std::env::var("NATTER_REQUIRE_SERVICES").as_deref() == Ok("1")
}

/// Says that `test` is skipped and why. Straight to stderr: libtest captures `eprintln!`,
/// and a skip must show.
pub fn print_skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

/// The values of `vars`, in order, when all are set and not empty. Otherwise prints a skip
/// and returns None, or panics when services are required.
pub fn services(test: &str, vars: &[&str]) -> Option<Vec<String>> {
    let values: Vec<Option<String>> = vars
        .iter()
        .map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .collect();
    let missing: Vec<&str> = vars
        .iter()
        .zip(&values)
        .filter(|(_, v)| v.is_none())
        .map(|(n, _)| *n)
        .collect();
    if missing.is_empty() {
        return values.into_iter().collect();
    }
    if services_required() {
        panic!("{test}: NATTER_REQUIRE_SERVICES=1 but {missing:?} not set");
    }
    print_skip(test, &format!("set {} to run it", missing.join(", ")));
    None
}

/// The PostgreSQL base URL (`NATTER_TEST_POSTGRES`), or None with a visible skip.
pub fn postgres_url(test: &str) -> Option<String> {
    services(test, &[POSTGRES])?.pop()
}

/// The Redis URL (`NATTER_TEST_REDIS`), or None with a visible skip.
pub fn redis_url(test: &str) -> Option<String> {
    services(test, &[REDIS])?.pop()
}

/// Whether `suite` (its description), switched on by a flag (`var=1` or `true`), runs;
/// prints a skip when it does not, or panics when services are required.
pub fn flag_enabled(var: &str, suite: &str) -> bool {
    if matches!(std::env::var(var).as_deref(), Ok("1") | Ok("true")) {
        return true;
    }
    assert!(
        !services_required(),
        "NATTER_REQUIRE_SERVICES=1 but {var} is not set: {suite} would be skipped"
    );
    print_skip(suite, &format!("set {var}=1 to run it"));
    false
}
