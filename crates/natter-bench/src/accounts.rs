//! Natter accounts for a run: registered over `POST /api/register` (argon2id makes each one
//! take tens of milliseconds, so a modest pool is made and several connections share a user),
//! optionally kept in a file so the scenarios of one server run reuse them.

use std::path::Path;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use serde::Deserialize;

use crate::error::BenchError;
use crate::http;
use crate::proto::json_str;
use crate::target::{Account, Target};

const PASSWORD: &str = "bench-password-1";

#[derive(Deserialize)]
struct TokenReply {
    token: String,
}

/// Returns `n` signed-in accounts: those in `users_file` first, then new ones (saved back).
pub async fn ensure(
    target: &Target,
    n: usize,
    users_file: Option<&Path>,
    concurrency: usize,
    run_id: &str,
) -> Result<Vec<Account>, BenchError> {
    let mut accounts: Vec<Account> = match users_file {
        Some(path) if path.exists() => serde_json::from_str(&std::fs::read_to_string(path)?)?,
        _ => Vec::new(),
    };
    if accounts.len() < n {
        let start = accounts.len();
        let names: Vec<String> = (start..n).map(|i| format!("nb{run_id}u{i}")).collect();
        let created: Vec<Result<Account, BenchError>> = stream::iter(names)
            .map(|name| register(target, name))
            .buffered(concurrency.max(1))
            .collect()
            .await;
        for account in created {
            accounts.push(account?);
        }
        if let Some(path) = users_file {
            std::fs::write(path, serde_json::to_string_pretty(&accounts)?)?;
        }
    }
    accounts.truncate(n);
    Ok(accounts)
}

async fn register(target: &Target, name: String) -> Result<Account, BenchError> {
    let body = format!(
        r#"{{"username":{},"password":{}}}"#,
        json_str(&name),
        json_str(PASSWORD)
    );
    let response = tokio::time::timeout(
        Duration::from_secs(30),
        http::post_json(&target.host_port, "/api/register", &body),
    )
    .await
    .map_err(|_| BenchError::Timeout(format!("registering {name}")))??;
    if response.status != 201 && response.status != 200 {
        return Err(BenchError::Refused {
            request: format!("POST /api/register {name}"),
            code: response.status.to_string(),
            message: response.body,
        });
    }
    let reply: TokenReply = serde_json::from_str(&response.body)?;
    Ok(Account {
        name,
        password: PASSWORD.to_string(),
        token: reply.token,
    })
}

/// Signs `account` in again (`POST /api/login`); the `connect` scenario times these.
pub async fn login(target: &Target, account: &Account) -> Result<String, BenchError> {
    let body = format!(
        r#"{{"username":{},"password":{}}}"#,
        json_str(&account.name),
        json_str(&account.password)
    );
    let response = http::post_json(&target.host_port, "/api/login", &body).await?;
    if response.status != 200 {
        return Err(BenchError::Refused {
            request: format!("POST /api/login {}", account.name),
            code: response.status.to_string(),
            message: response.body,
        });
    }
    Ok(serde_json::from_str::<TokenReply>(&response.body)?.token)
}
