//! A `redis-server` of the test's own on a spare loopback port, for tests that stop and
//! restart Redis under running nodes. Killed when dropped.

use crate::wait::{spare_port, wait_for_listener};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

/// A restartable Redis (no persistence: a restart forgets everything, as after a crash).
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    /// Starts `redis-server` on a spare port and waits until it listens.
    pub async fn start() -> OwnRedis {
        let mut redis = OwnRedis {
            port: spare_port(),
            child: None,
        };
        redis.spawn().await;
        redis
    }

    /// Starts it (again) on its port and waits until it listens.
    pub async fn spawn(&mut self) {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        wait_for_listener(addr, "redis-server", &mut child)
            .await
            .expect("redis-server");
        self.child = Some(child);
    }

    /// SIGKILL: Redis goes away without a word.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.kill();
    }
}
