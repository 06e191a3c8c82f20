//! The cheapest durable commit SQLite makes on this machine: one row per transaction into a
//! one-table WAL database, paced like `natter-bench rooms --rate 500` (a message every 2 ms),
//! and the process's CPU per commit. ADR 0032 sets it beside the floor: a server that stores
//! each message before acknowledging it pays at least this per message on top of the socket
//! work `bench/peers/floor` does.
//!
//! `cargo run --release -p natter-store-sql --example commitfloor -- [--commits 4000]
//! [--rate 500] [--batch 1] [--synchronous full|normal] [--natter-rows [--index]]
//! [--bench-bodies] [--foreign-keys] [--checkpoint-pages 8000] [--dir DIR]`; pin it
//! like the server (`taskset -c 0`). Prints CPU µs per commit and per row (user, system)
//! from `/proc/self/stat`. `--batch N` puts N rows in each commit, as group commit does at
//! load (`--rate` stays commits per second). `--checkpoint-pages` is the WAL's
//! `wal_autocheckpoint`: Natter's writer uses 8,000 (ADR 0035), SQLite's default is 1,000.
//! `--natter-rows` writes what Natter's writer writes for a plain message instead (its
//! `messages` row with the two unique indexes, and the room's `last_seq`), still one
//! transaction per message on one thread: the difference to Natter's own figure is the
//! rest of its path (the hand-offs between threads, the protocol, the search index).
//! `--index` adds that search index (ADR 0036, round 7): the word index of migration 0005
//! (FTS5, `porter unicode61`, over `messages`), filled once per commit with one
//! `INSERT ... SELECT` of the rows since the last pass and its progress row updated, as
//! Natter's writer does (`indexing::index_new_messages`; the trigram index takes only text of
//! scripts written without spaces, which these bodies are not). `--bench-bodies` writes the
//! bodies `natter-bench` sends (`t=<ns>;s=<sender>;n=<counter>;` padded with `x` to 100
//! bytes: a new number, so a new index term, in every message) instead of 64 `x`.
//! `--foreign-keys` declares `messages.room_id` and `sender_id` as references to `rooms` and
//! a `users` table of the 1,000 senders and turns `PRAGMA foreign_keys` on, as Natter's
//! schema and connections do: SQLite then looks both parents up at each insert.

use rusqlite::{params, Connection};
use std::time::{Duration, Instant};

/// The process's user and system CPU so far, in clock ticks (`/proc/self/stat`).
fn cpu_ticks() -> Result<(u64, u64), String> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("no ')' in stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are the 14th and 15th fields of the whole line: 12th and 13th here.
    let get = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .ok_or("short stat")?
            .parse()
            .map_err(|e: std::num::ParseIntError| e.to_string())
    };
    Ok((get(11)?, get(12)?))
}

fn main() -> Result<(), String> {
    let mut commits = 4000u64;
    let mut rate = 500.0f64;
    let mut sync = "FULL".to_string();
    let mut dir: Option<std::path::PathBuf> = None;
    let mut natter_rows = false;
    let mut index = false;
    let mut bench_bodies = false;
    let mut foreign_keys = false;
    let mut batch = 1u64;
    let mut checkpoint_pages = 8000u32;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--commits" => commits = value()?.parse().map_err(|e| format!("--commits: {e}"))?,
            "--rate" => rate = value()?.parse().map_err(|e| format!("--rate: {e}"))?,
            "--synchronous" => sync = value()?.to_uppercase(),
            "--dir" => dir = Some(value()?.into()),
            "--natter-rows" => natter_rows = true,
            "--index" => index = true,
            "--bench-bodies" => bench_bodies = true,
            "--foreign-keys" => foreign_keys = true,
            "--batch" => batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--checkpoint-pages" => {
                checkpoint_pages = value()?
                    .parse()
                    .map_err(|e| format!("--checkpoint-pages: {e}"))?
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if batch == 0 {
        return Err("--batch is at least 1".into());
    }
    if index && !natter_rows {
        return Err("--index needs --natter-rows".into());
    }
    if sync != "FULL" && sync != "NORMAL" {
        return Err("--synchronous is full or normal".into());
    }
    let tmp =
        tempfile::tempdir_in(dir.unwrap_or_else(std::env::temp_dir)).map_err(|e| e.to_string())?;
    let conn = Connection::open(tmp.path().join("c.db")).map_err(|e| e.to_string())?;
    let (fk, room_ref, user_ref) = if foreign_keys {
        ("ON", "REFERENCES rooms(id)", "REFERENCES users(id)")
    } else {
        ("OFF", "", "")
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync};
         PRAGMA wal_autocheckpoint = {checkpoint_pages}; PRAGMA foreign_keys = {fk};
         CREATE TABLE m (id INTEGER PRIMARY KEY, room INTEGER NOT NULL, seq INTEGER NOT NULL,
                         body TEXT NOT NULL);
         CREATE TABLE rooms (id INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL);
         CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
         INSERT INTO users (id, name)
             WITH RECURSIVE u(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM u WHERE i < 999)
             SELECT i, 'user' || i FROM u;
         CREATE TABLE messages (id INTEGER PRIMARY KEY, room_id INTEGER NOT NULL {room_ref},
             seq INTEGER NOT NULL, sender_id INTEGER NOT NULL {user_ref}, body TEXT NOT NULL,
             client_id TEXT NOT NULL, created_at INTEGER NOT NULL,
             UNIQUE (room_id, seq), UNIQUE (sender_id, room_id, client_id));
         INSERT INTO rooms (id, last_seq)
             WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i < 99)
             SELECT i, 0 FROM r;"
    ))
    .map_err(|e| e.to_string())?;
    if index {
        conn.execute_batch(
            "CREATE VIRTUAL TABLE message_words USING fts5(
                 body, content = 'messages', content_rowid = 'id', tokenize = 'porter unicode61');
             CREATE TABLE search_progress (indexed_up_to INTEGER NOT NULL);
             INSERT INTO search_progress VALUES (0);",
        )
        .map_err(|e| e.to_string())?;
    }
    let gap = Duration::from_secs_f64(1.0 / rate);
    let body = |i: u64| {
        if bench_bodies {
            let sender = (i % 100) * 10 + (i / 100) % 10;
            let mut b = format!(
                "t={};s={sender};n={};",
                1_796_000_000_000_000_000 + i * 97,
                i / 1000
            );
            while b.len() < 100 {
                b.push('x');
            }
            b
        } else {
            "x".repeat(64)
        }
    };
    let (u0, s0) = cpu_ticks()?;
    let started = Instant::now();
    for i in 0..commits {
        // Paced: the next commit starts on its schedule, as a message would arrive.
        let due = started + gap.mul_f64(i as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        conn.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| e.to_string())?;
        for row in i * batch..(i + 1) * batch {
            insert(&conn, row, natter_rows, &body(row))?;
        }
        if index {
            index_new(&conn).map_err(|e| e.to_string())?;
        }
        conn.execute_batch("COMMIT").map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed();
    let (u1, s1) = cpu_ticks()?;
    // Clock ticks are 10 ms on Linux (USER_HZ = 100).
    let per = |ticks: u64, n: u64| ticks as f64 * 10_000.0 / n as f64;
    let rows = commits * batch;
    println!(
        "commits {commits} of {batch} row(s) in {:.1} s (synchronous {sync}{}{}{}{}, checkpoint \
         every {checkpoint_pages} pages): CPU {:.1} us per commit, {:.1} us per row (user {:.1}, \
         system {:.1})",
        elapsed.as_secs_f64(),
        if natter_rows { ", Natter's rows" } else { "" },
        if index { ", search index" } else { "" },
        if foreign_keys { ", foreign keys" } else { "" },
        if bench_bodies {
            ", natter-bench bodies"
        } else {
            ""
        },
        per((u1 - u0) + (s1 - s0), commits),
        per((u1 - u0) + (s1 - s0), rows),
        per(u1 - u0, rows),
        per(s1 - s0, rows)
    );
    Ok(())
}

/// The word index pass of Natter's writer (`indexing::index_new_messages`): the rows stored
/// since the last pass, in one statement, and the progress row.
fn index_new(conn: &Connection) -> rusqlite::Result<()> {
    let done: i64 = conn
        .prepare_cached("SELECT indexed_up_to FROM search_progress")?
        .query_row([], |r| r.get(0))?;
    let newest: i64 = conn
        .prepare_cached("SELECT coalesce(max(id), 0) FROM messages")?
        .query_row([], |r| r.get(0))?;
    if newest <= done {
        return Ok(());
    }
    conn.prepare_cached(
        "INSERT INTO message_words (rowid, body) SELECT id, body FROM messages
         WHERE id > ?1 AND id <= ?2",
    )?
    .execute(params![done, newest])?;
    conn.prepare_cached("UPDATE search_progress SET indexed_up_to = ?1")?
        .execute(params![newest])?;
    Ok(())
}

/// Row `i` (of all commits): into room `i % 100`, its seq the room's next.
fn insert(conn: &Connection, i: u64, natter_rows: bool, body: &str) -> Result<(), String> {
    let room = (i % 100) as i64;
    let seq = (i / 100) as i64 + 1;
    if natter_rows {
        // A sender per room member (10 to a room, each room's sends going round them), a
        // client id per message: 1,000 senders, as in `natter-bench rooms --rooms 100
        // --clients 10`. (`i % 10` here, as before ADR 0036, was `room % 10`: one a room.)
        let sender = room * 10 + ((i / 100) % 10) as i64;
        conn.prepare_cached(
            "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 0)
             ON CONFLICT (sender_id, room_id, client_id) DO NOTHING RETURNING id",
        )
        .and_then(|mut s| {
            s.query_row(params![room, seq, sender, body, format!("c-{i}")], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map_err(|e| e.to_string())?;
        conn.prepare_cached("UPDATE rooms SET last_seq = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![room, seq]))
            .map_err(|e| e.to_string())?;
    } else {
        conn.prepare_cached("INSERT INTO m (room, seq, body) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![room, seq, body]))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
