//! Unit tests of the writer thread: batches, duplicates, seqs, failed commits and when the
//! search indexes are filled.

// (Also declared test-only here, not only at `mod tests;`: the file reads as test code alone.)
#![cfg(test)]

use super::*;
use crate::sqlite::{migrate, open_connection, Synchronous};

/// A migrated database with users 1 (ana) and 2 (bob) and rooms 1 and 2; returns the
/// writer and a second connection to the same file.
fn setup(dir: &tempfile::TempDir) -> (Writer, Connection) {
    let path = dir.path().join("w.db");
    let mut conn = open_connection(&path, Synchronous::Normal).unwrap();
    migrate(&mut conn).unwrap();
    conn.execute_batch(
        "INSERT INTO users (id, name, name_key, created_at) VALUES (1, 'ana', 'ana', 0), (2, 'bob', 'bob', 0);
             INSERT INTO rooms (id, name, kind, name_key, created_at) VALUES (1, 'one', 'public', 'one', 0), (2, 'two', 'public', 'two', 0);",
    )
    .unwrap();
    let other = open_connection(&path, Synchronous::Normal).unwrap();
    (Writer::new(conn, Arc::new(AtomicBool::new(true))), other)
}

fn user(id: i64) -> User {
    User {
        id: UserId(id),
        name: format!("u{id}"),
        guest: false,
        bot: false,
    }
}

type Reply = oneshot::Receiver<Result<Appended, StoreError>>;

fn append(room: i64, sender: i64, client_id: &str) -> (WriteJob, Reply) {
    let (reply, rx) = oneshot::channel();
    let message = NewMessage {
        room: RoomId(room),
        sender: user(sender),
        body: format!("body {client_id}"),
        client_id: client_id.into(),
        ts: 1,
        ..NewMessage::default()
    };
    (WriteJob::Append { message, reply }, rx)
}

/// A closure job running `f`; its outcome arrives on the receiver.
fn closure<T: Send + 'static>(
    f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
) -> (WriteJob, oneshot::Receiver<Result<T, StoreError>>) {
    let (tx, rx) = oneshot::channel();
    (WriteJob::closure(f, tx), rx)
}

fn seq_of(rx: &mut Reply) -> (i64, bool) {
    let appended = rx.try_recv().unwrap().unwrap();
    (appended.message.seq.0, appended.duplicate)
}

fn stored(conn: &Connection, room: i64) -> (i64, i64) {
    let count: i64 = conn
        .query_row(
            "SELECT count(*) FROM messages WHERE room_id = ?1",
            [room],
            |r| r.get(0),
        )
        .unwrap();
    let last: i64 = conn
        .query_row("SELECT last_seq FROM rooms WHERE id = ?1", [room], |r| {
            r.get(0)
        })
        .unwrap();
    (count, last)
}

#[test]
fn a_failing_job_leaves_its_neighbours_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, other) = setup(&dir);
    let (a, mut ra) = append(1, 1, "a");
    let (unknown_sender, mut rb) = append(1, 99, "b");
    let (unknown_room, mut rc) = append(42, 1, "c");
    let (bad_closure, mut rd) = closure(|conn| {
        conn.execute(
            "INSERT INTO users (id, name, name_key, created_at) VALUES (3, 'x', 'ana', 0)",
            [],
        )
        .map_err(crate::sqlite::backend)
    });
    let (e, mut re) = append(1, 2, "e");
    writer.run_batch(vec![a, unknown_sender, unknown_room, bad_closure, e]);
    assert_eq!(seq_of(&mut ra), (1, false));
    assert!(
        rb.try_recv().unwrap().is_err(),
        "a sender that does not exist"
    );
    assert!(matches!(rc.try_recv().unwrap(), Err(StoreError::NotFound)));
    assert!(rd.try_recv().unwrap().is_err(), "a taken name");
    assert_eq!(
        seq_of(&mut re),
        (2, false),
        "no seq is lost to the failures"
    );
    assert_eq!(stored(&other, 1), (2, 2));
}

#[test]
fn duplicates_within_and_across_batches_return_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, other) = setup(&dir);
    let (a, mut ra) = append(1, 1, "same");
    let (again, mut ragain) = append(1, 1, "same");
    let (bob, mut rbob) = append(1, 2, "same");
    writer.run_batch(vec![a, again, bob]);
    assert_eq!(seq_of(&mut ra), (1, false));
    assert_eq!(seq_of(&mut ragain), (1, true));
    assert_eq!(
        seq_of(&mut rbob),
        (2, false),
        "another sender's id is its own"
    );
    let (later, mut rlater) = append(1, 1, "same");
    let (next, mut rnext) = append(1, 1, "next");
    writer.run_batch(vec![later, next]);
    let original = rlater.try_recv().unwrap().unwrap();
    assert!(original.duplicate);
    assert_eq!(original.message.seq, Seq(1));
    assert_eq!(original.message.body, "body same");
    assert_eq!(seq_of(&mut rnext), (3, false));
    assert_eq!(stored(&other, 1), (3, 3));
}

#[test]
fn a_closure_sees_the_seqs_appended_before_it_in_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _other) = setup(&dir);
    let (a, _ra) = append(2, 1, "a");
    let (b, _rb) = append(2, 1, "b");
    let (read, mut rread) = closure(|conn| {
        conn.query_row("SELECT last_seq FROM rooms WHERE id = 2", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(crate::sqlite::backend)
    });
    let (c, mut rc) = append(2, 1, "c");
    writer.run_batch(vec![a, b, read, c]);
    assert_eq!(rread.try_recv().unwrap().unwrap(), 2);
    assert_eq!(seq_of(&mut rc), (3, false));
}

#[test]
fn seqs_written_by_another_connection_are_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, other) = setup(&dir);
    let (a, mut ra) = append(1, 1, "a");
    writer.run_batch(vec![a]);
    assert_eq!(seq_of(&mut ra), (1, false));
    other
        .execute_batch(
            "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at)
                 VALUES (1, 2, 2, 'elsewhere', 'x', 0);
                 UPDATE rooms SET last_seq = 2 WHERE id = 1;",
        )
        .unwrap();
    let (b, mut rb) = append(1, 1, "b");
    writer.run_batch(vec![b]);
    assert_eq!(seq_of(&mut rb), (3, false));
}

#[test]
fn a_batch_that_cannot_commit_fails_whole_and_uses_no_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, other) = setup(&dir);
    let (a, mut ra) = append(1, 1, "a");
    writer.run_batch(vec![a]);
    assert_eq!(seq_of(&mut ra), (1, false));
    // Writing rooms.last_seq = 3 fails, after both appends ran: the batch rolls back.
    // (Made on the writer's own connection, so only the rollback can make it forget.)
    writer
        .conn
        .execute_batch(
            "CREATE TRIGGER no_three BEFORE UPDATE OF last_seq ON rooms WHEN NEW.last_seq = 3
                 BEGIN SELECT RAISE(ABORT, 'no'); END;",
        )
        .unwrap();
    let (b, mut rb) = append(1, 1, "b");
    let (c, mut rc) = append(1, 2, "c");
    writer.run_batch(vec![b, c]);
    assert!(rb.try_recv().unwrap().is_err());
    assert!(rc.try_recv().unwrap().is_err());
    writer.conn.execute_batch("DROP TRIGGER no_three").unwrap();
    let (d, mut rd) = append(1, 1, "d");
    writer.run_batch(vec![d]);
    assert_eq!(seq_of(&mut rd), (2, false), "the failed batch used no seq");
    assert_eq!(stored(&other, 1), (2, 2));
}

/// A thread reply (several statements, in a savepoint) amid plain appends and a change in one
/// batch: a refused reply and a failing one leave no trace and spend no seq; the change sees
/// the seqs the appends before it took.
#[test]
fn replies_and_changes_share_a_batch_with_plain_appends() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, other) = setup(&dir);
    let (a, mut ra) = append(1, 1, "a");
    let reply_to = |parent: i64, sender: i64, client_id: &str| {
        let (reply, rx) = oneshot::channel();
        let message = NewMessage {
            room: RoomId(1),
            sender: user(sender),
            body: "reply".into(),
            client_id: client_id.into(),
            ts: 5,
            thread: Some(Seq(parent)),
            mentions: vec![UserId(2)],
            ..NewMessage::default()
        };
        (WriteJob::Append { message, reply }, rx)
    };
    let (no_parent, mut rb) = reply_to(9, 1, "b");
    let (bad_sender, mut rc) = reply_to(1, 99, "c");
    let (reply, mut rd) = reply_to(1, 2, "d");
    let (reply_e, mut re) = oneshot::channel();
    let edit = WriteJob::Change {
        change: NewChange {
            room: RoomId(1),
            sender: user(1),
            client_id: "e".into(),
            ts: 6,
            change: Change::Edit { target: Seq(1) },
            body: "edited".into(),
            max_reactions: 20,
        },
        reply: reply_e,
    };
    let (f, mut rf) = append(1, 1, "f");
    writer.run_batch(vec![a, no_parent, bad_sender, reply, edit, f]);
    assert_eq!(seq_of(&mut ra), (1, false));
    assert!(matches!(
        rb.try_recv().unwrap(),
        Err(StoreError::Refused(natter_core::Refusal::UnknownMessage))
    ));
    assert!(
        rc.try_recv().unwrap().is_err(),
        "a sender that does not exist"
    );
    let stored_reply = rd.try_recv().unwrap().unwrap().message;
    assert_eq!((stored_reply.seq, stored_reply.replies), (Seq(2), 1));
    match re.try_recv().unwrap().unwrap() {
        ChangeOutcome::Applied(e) => assert_eq!(e.seq, Seq(3)),
        other => panic!("{other:?}"),
    }
    assert_eq!(seq_of(&mut rf), (4, false));
    assert_eq!(stored(&other, 1), (4, 4));
    let (replies, body): (i64, String) = other
        .query_row(
            "SELECT replies, body FROM messages WHERE room_id = 1 AND seq = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (replies, body.as_str()),
        (1, "edited"),
        "the failed reply counted nothing"
    );
    let mentions: i64 = other
        .query_row("SELECT count(*) FROM mentions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mentions, 1, "only the stored reply's mention");
}

/// How many messages the word index holds, and how far `search_progress` says it got.
fn indexed(conn: &Connection) -> (i64, i64) {
    conn.query_row(
        "SELECT (SELECT count(*) FROM message_words_docsize),
                (SELECT indexed_up_to FROM search_progress)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// A batch of a few messages is acknowledged without being indexed, and says so through
/// `unindexed`; a search's `Index` job indexes them (and those of its own batch) and clears it.
#[test]
fn messages_wait_for_the_index_until_a_search_asks() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, other) = setup(&dir);
    writer.behind = None;
    writer.unindexed.store(false, Ordering::Release);
    let (a, mut ra) = append(1, 1, "a");
    writer.run_batch(vec![a]);
    assert_eq!(seq_of(&mut ra), (1, false), "acknowledged");
    assert_eq!(indexed(&other), (0, 0), "not indexed yet");
    assert!(writer.unindexed.load(Ordering::Acquire), "and said so");
    let (b, mut rb) = append(1, 2, "b");
    let (reply, mut rindex) = oneshot::channel();
    writer.run_batch(vec![b, WriteJob::Index { reply }]);
    assert_eq!(seq_of(&mut rb), (2, false));
    assert!(rindex.try_recv().unwrap().is_ok());
    assert_eq!(indexed(&other), (2, 2), "both, the asking batch's own too");
    assert!(!writer.unindexed.load(Ordering::Acquire));
    // An empty batch (the pass that came due) with nothing new writes nothing.
    writer.run_batch(Vec::new());
    assert_eq!(indexed(&other), (2, 2));
}

/// When a pass is due: asked for, `INDEX_AFTER` messages waiting (counting the batch's own),
/// or the oldest waiting `INDEX_DELAY`; the clock is the caller's, so no test waits for it.
#[test]
fn the_index_pass_is_due_by_count_or_by_age() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, _other) = setup(&dir);
    let t0 = Instant::now();
    writer.behind = None;
    assert!(!writer.index_due(false, 1, t0));
    assert!(writer.index_due(true, 0, t0));
    assert!(writer.index_due(false, INDEX_AFTER, t0));
    writer.behind = Some((t0, INDEX_AFTER - 10));
    assert!(!writer.index_due(false, 9, t0));
    assert!(writer.index_due(false, 10, t0));
    assert!(!writer.index_due(false, 0, t0 + INDEX_DELAY - Duration::from_millis(1)));
    assert!(writer.index_due(false, 0, t0 + INDEX_DELAY));
}

/// A batch of `INDEX_AFTER` messages is indexed in its own transaction.
#[test]
fn a_large_batch_is_indexed_as_it_commits() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, other) = setup(&dir);
    writer.behind = None;
    let (jobs, _replies): (Vec<_>, Vec<_>) = (0..INDEX_AFTER)
        .map(|i| append(1 + (i % 2) as i64, 1, &format!("m{i}")))
        .unzip();
    writer.run_batch(jobs);
    let n = INDEX_AFTER as i64;
    assert_eq!(indexed(&other), (n, n));
    assert!(!writer.unindexed.load(Ordering::Acquire));
}

/// The thread on its own: an unasked pass comes due while the queue is idle, and what waits
/// when the store stops is indexed before the thread ends.
#[test]
fn the_thread_indexes_when_idle_and_before_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (writer, other) = setup(&dir);
    let unindexed = writer.unindexed.clone();
    let (tx, rx) = mpsc::sync_channel(16);
    let thread = std::thread::spawn(move || writer.run(rx));
    let (a, ra) = append(1, 1, "a");
    tx.send(a).unwrap();
    assert_eq!(ra.blocking_recv().unwrap().unwrap().message.seq, Seq(1));
    // No job follows: the pass comes due on its own (a positive signal, bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    while indexed(&other) != (1, 1) {
        assert!(
            Instant::now() < deadline,
            "never indexed: {:?}",
            indexed(&other)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!unindexed.load(Ordering::Acquire));
    let (b, rb) = append(1, 1, "b");
    tx.send(b).unwrap();
    assert_eq!(rb.blocking_recv().unwrap().unwrap().message.seq, Seq(2));
    drop(tx);
    thread.join().unwrap();
    assert_eq!(indexed(&other), (2, 2), "indexed before the thread ended");
}

/// A pass that cannot commit leaves the indexes behind and is tried again after
/// `INDEX_DELAY`, not at once (the thread would spin on a failing disk).
#[test]
fn a_failed_index_pass_waits_before_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let (mut writer, other) = setup(&dir);
    let long_ago = Instant::now() - Duration::from_secs(5);
    writer.behind = Some((long_ago, 3));
    other.execute_batch("DROP TABLE search_progress").unwrap();
    let before = Instant::now();
    writer.run_batch(Vec::new());
    let (since, waiting) = writer.behind.expect("still behind");
    assert!(since >= before, "the next try is INDEX_DELAY from now");
    assert_eq!(waiting, 3);
    assert!(writer.unindexed.load(Ordering::Acquire));
}

/// A linger long enough that a test relying on it ending early would hang visibly.
const LONG: Linger = Linger {
    after: 4,
    wait: Duration::from_secs(20),
    jobs: 64,
    slice: Duration::from_micros(200),
};

#[test]
fn a_quiet_writer_commits_at_once() {
    // The last batch held one job: the next is what is queued, with no wait for more, even
    // though the sender is still there and the linger is long.
    let (tx, rx) = mpsc::channel();
    let (job, _reply) = append(1, 1, "a");
    let started = Instant::now();
    let batch = gather(&rx, Some(job), 1, LONG);
    assert_eq!(batch.len(), 1);
    assert!(
        started.elapsed() < LONG.wait,
        "a batch after a batch of one waited"
    );
    drop(tx);
}

#[test]
fn a_busy_writer_gathers_what_arrives_up_to_its_limit() {
    // The last batch held 8 jobs: the writer waits for more, and commits as soon as the
    // batch holds `jobs` (here long before the linger ends). The channel has no buffer, so
    // every job after the first arrives while the writer waits, not before it looks.
    let (tx, rx) = mpsc::sync_channel(0);
    let (first, _r) = append(1, 1, "first");
    let sender = std::thread::spawn(move || {
        let mut replies = Vec::new();
        for i in 0..100 {
            let (job, reply) = append(1, 1, &format!("late {i}"));
            if tx.send(job).is_err() {
                break;
            }
            replies.push(reply);
        }
        replies
    });
    let batch = gather(&rx, Some(first), 8, LONG);
    assert_eq!(batch.len(), LONG.jobs, "a busy batch");
    drop(rx);
    sender.join().unwrap();
}

#[test]
fn a_busy_writer_stops_waiting_when_the_store_closes() {
    // Lingering after a batch of 8, with fewer jobs than its limit: the store's sender going
    // away ends the wait, and the batch is what arrived.
    let (tx, rx) = mpsc::sync_channel(0);
    let (first, _r) = append(1, 1, "first");
    let sender = std::thread::spawn(move || {
        let (job, reply) = append(1, 1, "late");
        tx.send(job).unwrap();
        reply
    });
    let batch = gather(&rx, Some(first), 8, LONG);
    assert_eq!(batch.len(), 2);
    let _reply = sender.join().unwrap();
}

#[test]
fn an_index_pass_gathers_nothing() {
    let (tx, rx) = mpsc::channel();
    let (job, _reply) = append(1, 1, "a");
    tx.send(job).unwrap();
    assert!(gather(&rx, None, 8, LONG).is_empty());
}
