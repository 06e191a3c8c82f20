//! The load generator's one error type.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BenchError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The server said or did something the protocol does not allow here.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The server refused a request (its error code and message).
    #[error("server refused {request}: {code} {message}")]
    Refused {
        request: String,
        code: String,
        message: String,
    },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{0}")]
    Config(String),
}
