//! The SQLite reader pool: a fixed set of threads, each owning a read-only use of one
//! connection, taking jobs from one queue. A burst of reads (a thousand sign-ins at once)
//! waits in the queue, bounded by a semaphore, instead of growing tokio's blocking pool by a
//! thread, and the pool by a connection, per concurrent read.

use natter_core::StoreError;
use rusqlite::Connection;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::{oneshot, Semaphore};

/// Reads queued or running at once; further callers wait (asynchronously) for a place.
const QUEUED_READS: usize = 1024;

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

pub(super) struct Readers {
    /// The queue; None after `shutdown` (the threads finish what is queued and exit).
    jobs: Mutex<Option<mpsc::Sender<ReadJob>>>,
    places: Arc<Semaphore>,
    /// The threads; taken by `shutdown`.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

fn stopped() -> StoreError {
    StoreError::Backend("sqlite readers stopped".into())
}

impl Readers {
    /// Starts one thread per connection.
    pub(super) fn start(connections: Vec<Connection>) -> Result<Readers, StoreError> {
        let (tx, rx) = mpsc::channel::<ReadJob>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::with_capacity(connections.len());
        for (i, conn) in connections.into_iter().enumerate() {
            let rx = rx.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("natter-sqlite-read{i}"))
                    .spawn(move || serve(&conn, &rx))
                    .map_err(|e| StoreError::Backend(e.to_string()))?,
            );
        }
        Ok(Readers {
            jobs: Mutex::new(Some(tx)),
            places: Arc::new(Semaphore::new(QUEUED_READS)),
            threads: Mutex::new(threads),
        })
    }

    /// Runs `f` on a reader thread's connection.
    pub(super) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let place = self
            .places
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| stopped())?;
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(f(conn));
            drop(place);
        });
        self.jobs
            .lock()
            .map_err(|_| stopped())?
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        rx.await
            .map_err(|_| StoreError::Backend("a sqlite read failed (panicked)".into()))?
    }

    /// Stops taking reads; queued ones still run. Returns the threads, which exit (closing
    /// their connections) once the queue is empty: the caller may join them.
    pub(super) fn shutdown(&self) -> Vec<std::thread::JoinHandle<()>> {
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        self.threads
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default()
    }
}

/// A reader thread: runs jobs until the queue closes. A job that panics fails only itself
/// (its caller gets an error); the thread goes on.
fn serve(conn: &Connection, jobs: &Mutex<mpsc::Receiver<ReadJob>>) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if catch_unwind(AssertUnwindSafe(|| job(conn))).is_err() {
            tracing::error!("a sqlite read panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Readers {
        let conns = (0..n)
            .map(|_| Connection::open_in_memory().expect("open"))
            .collect();
        Readers::start(conns).expect("start")
    }

    #[tokio::test]
    async fn many_concurrent_reads_run_on_the_fixed_threads() {
        let readers = Arc::new(pool(3));
        let mut tasks = Vec::new();
        for i in 0..2000_i64 {
            let readers = readers.clone();
            tasks.push(tokio::spawn(async move {
                readers
                    .run(move |conn| {
                        let v: i64 = conn
                            .query_row("SELECT ?1 * 2", [i], |r| r.get(0))
                            .map_err(|e| StoreError::Backend(e.to_string()))?;
                        let thread = std::thread::current().name().map(str::to_string);
                        Ok((v, thread))
                    })
                    .await
            }));
        }
        let mut threads = std::collections::BTreeSet::new();
        for (i, task) in tasks.into_iter().enumerate() {
            let (v, thread) = task.await.expect("task").expect("read");
            assert_eq!(v, i as i64 * 2);
            threads.insert(thread.expect("named thread"));
        }
        assert!(threads.len() <= 3, "reads ran on {threads:?}");
        assert!(threads.iter().all(|t| t.starts_with("natter-sqlite-read")));
    }

    #[tokio::test]
    async fn a_panicking_read_fails_alone_and_the_pool_goes_on() {
        let readers = pool(1);
        let failed = readers
            .run(|_| -> Result<(), StoreError> { panic!("boom") })
            .await;
        assert!(matches!(failed, Err(StoreError::Backend(_))));
        let ok = readers.run(|_| Ok(7)).await.expect("read after a panic");
        assert_eq!(ok, 7);
    }

    #[tokio::test]
    async fn reads_after_shutdown_fail_cleanly() {
        let readers = pool(2);
        readers.shutdown();
        assert!(matches!(
            readers.run(|_| Ok(())).await,
            Err(StoreError::Backend(_))
        ));
    }
}
