//! Search load generator and latency measurement (issue 19 item 4; figures in ADR 0021,
//! "Measurements").
//!
//! Fill: `cargo run --release -p natter-store-sql --example searchgen -- --store
//! sqlite:PATH|postgres://... --messages 1000000 --rooms 1000` makes users and rooms through
//! the store (so migrations run), then inserts the messages in big batches straight into
//! `messages` (then, for SQLite, the store's own per-batch indexing; for PostgreSQL, GIN
//! maintenance): English chat lines
//! with Zipf word frequencies over function words, work words and a rare tail, and ~10%
//! Chinese/Japanese lines.
//!
//! Measure: the same with `--measure [--queries 200] [--rooms-per-user 50]` times
//! `Store::search` (limit 20, newest first, or `--order relevance`) for each kind of query,
//! each over a random set of rooms, and prints p50/p95/p99 per kind.

mod text;

use natter_core::model::*;
use natter_core::{Store, StoreError};
use natter_store_sql::{PostgresStore, SqliteStore, Synchronous};
use std::sync::Arc;
use std::time::{Duration, Instant};
use text::{Rng, Words};

/// Messages per insert transaction (SQLite) or statement (PostgreSQL).
const BATCH: usize = 10_000;
/// The first message's time (2026-01-01) and the gap between messages.
const START_TS: i64 = 1_767_225_600_000;
const GAP_MS: i64 = 30_000;
const USERS: usize = 1_000;

struct Args {
    store: String,
    messages: usize,
    rooms: usize,
    measure: bool,
    queries: usize,
    rooms_per_user: usize,
    order: SearchOrder,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        store: String::new(),
        messages: 1_000_000,
        rooms: 1_000,
        measure: false,
        queries: 200,
        rooms_per_user: 50,
        order: SearchOrder::Newest,
        seed: 19,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{v}: {e}"));
        match flag.as_str() {
            "--store" => args.store = value()?,
            "--messages" => args.messages = number(value()?)?,
            "--rooms" => args.rooms = number(value()?)?,
            "--queries" => args.queries = number(value()?)?,
            "--rooms-per-user" => args.rooms_per_user = number(value()?)?,
            "--seed" => args.seed = number(value()?)? as u64,
            "--measure" => args.measure = true,
            "--order" => {
                args.order = match value()?.as_str() {
                    "newest" => SearchOrder::Newest,
                    "relevance" => SearchOrder::Relevance,
                    other => return Err(format!("--order newest|relevance, not {other}")),
                }
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.store.is_empty() {
        return Err("--store sqlite:PATH or --store postgres://... is required".into());
    }
    Ok(args)
}

/// The store named by `--store`.
async fn open(spec: &str) -> Result<Arc<dyn Store>, StoreError> {
    if let Some(path) = spec.strip_prefix("sqlite:") {
        Ok(Arc::new(SqliteStore::open(path, Synchronous::Normal)?))
    } else {
        Ok(Arc::new(PostgresStore::connect(spec, 4).await?))
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// One generated message: (room index, sender index, body).
type Row = (usize, usize, String);

async fn fill(args: &Args) -> Result<(), String> {
    let store = open(&args.store).await.map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut users = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let user = store.create_user(&format!("gen{i}"), None, false).await;
        users.push(user.map_err(|e| format!("user {i} (is the database empty?): {e}"))?);
    }
    let mut rooms = Vec::with_capacity(args.rooms);
    for i in 0..args.rooms {
        let room = store
            .create_room(
                &format!("room{i}"),
                users[i % USERS].id,
                natter_core::RoomKind::Public,
            )
            .await;
        rooms.push(room.map_err(|e| e.to_string())?);
    }
    store.shutdown().await;
    drop(store);
    let user_ids: Vec<i64> = users.iter().map(|u| u.id.0).collect();
    let room_ids: Vec<i64> = rooms.iter().map(|r| r.id.0).collect();
    let words = Words::new();
    let mut rng = Rng::new(args.seed);
    // Rooms by Zipf too: a few busy rooms, many quiet ones.
    let room_zipf = text::Zipf::new(args.rooms, 0.6);
    let mut seqs = vec![0i64; args.rooms];
    let mut made = 0;
    let mut sink = Sink::open(&args.store).await?;
    while made < args.messages {
        let n = BATCH.min(args.messages - made);
        let batch: Vec<Row> = (0..n)
            .map(|_| {
                (
                    room_zipf.pick(&mut rng),
                    rng.below(USERS),
                    words.body(&mut rng),
                )
            })
            .collect();
        sink.insert(made, &batch, &mut seqs, &room_ids, &user_ids)
            .await?;
        made += n;
        if made % 100_000 == 0 || made == args.messages {
            eprintln!(
                "{made} messages, {:.0} s, load {}",
                started.elapsed().as_secs_f64(),
                load_average()
            );
        }
    }
    sink.finish(&room_ids, &seqs).await?;
    println!(
        "filled {} messages over {} rooms in {:.0} s",
        args.messages,
        args.rooms,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A batch as columns (PostgreSQL takes each as an array): room, seq, sender, body,
/// client id, time.
type Columns = (
    Vec<i64>,
    Vec<i64>,
    Vec<i64>,
    Vec<String>,
    Vec<String>,
    Vec<i64>,
);

/// Where generated messages go: a raw connection of either backend.
enum Sink {
    Sqlite(rusqlite::Connection),
    Postgres(tokio_postgres::Client),
}

impl Sink {
    async fn open(spec: &str) -> Result<Sink, String> {
        if let Some(path) = spec.strip_prefix("sqlite:") {
            let conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
            natter_store_sql::sqlite_add_functions(&conn).map_err(|e| e.to_string())?;
            conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -200000")
                .map_err(|e| e.to_string())?;
            return Ok(Sink::Sqlite(conn));
        }
        let (client, conn) = tokio_postgres::connect(spec, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        client
            .batch_execute("SET synchronous_commit = off")
            .await
            .map_err(|e| e.to_string())?;
        Ok(Sink::Postgres(client))
    }

    async fn insert(
        &mut self,
        first: usize,
        batch: &[Row],
        seqs: &mut [i64],
        rooms: &[i64],
        users: &[i64],
    ) -> Result<(), String> {
        let mut cols = Columns::default();
        for (i, (room, user, body)) in batch.iter().enumerate() {
            seqs[*room] += 1;
            let n = (first + i) as i64;
            cols.0.push(rooms[*room]);
            cols.1.push(seqs[*room]);
            cols.2.push(users[*user]);
            cols.3.push(body.clone());
            cols.4.push(format!("gen-{n}"));
            cols.5.push(START_TS + n * GAP_MS);
        }
        match self {
            Sink::Sqlite(conn) => {
                let tx = conn.transaction().map_err(|e| e.to_string())?;
                {
                    let mut stmt = tx
                        .prepare_cached(
                            "INSERT INTO messages (room_id, seq, sender_id, body, client_id,
                             created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        )
                        .map_err(|e| e.to_string())?;
                    for i in 0..batch.len() {
                        stmt.execute(rusqlite::params![
                            cols.0[i], cols.1[i], cols.2[i], cols.3[i], cols.4[i], cols.5[i]
                        ])
                        .map_err(|e| e.to_string())?;
                    }
                }
                // What the store's writer does before each COMMIT (migration 0007).
                natter_store_sql::sqlite_index_new_messages(&tx).map_err(|e| e.to_string())?;
                tx.commit().map_err(|e| e.to_string())
            }
            Sink::Postgres(client) => client
                .execute(
                    "INSERT INTO messages (room_id, seq, sender_id, body, client_id, created_at)
                     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[],
                                          $4::text[], $5::text[], $6::bigint[])",
                    &[&cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5],
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        }
    }

    /// Sets each room's `last_seq` to what was inserted, and refreshes the planner's stats.
    async fn finish(&mut self, rooms: &[i64], seqs: &[i64]) -> Result<(), String> {
        match self {
            Sink::Sqlite(conn) => {
                let tx = conn.transaction().map_err(|e| e.to_string())?;
                for (room, seq) in rooms.iter().zip(seqs) {
                    tx.execute(
                        "UPDATE rooms SET last_seq = ?2 WHERE id = ?1",
                        rusqlite::params![room, seq],
                    )
                    .map_err(|e| e.to_string())?;
                }
                tx.commit().map_err(|e| e.to_string())?;
                conn.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE)")
                    .map_err(|e| e.to_string())
            }
            Sink::Postgres(client) => {
                client
                    .execute(
                        "UPDATE rooms SET last_seq = s.seq
                         FROM unnest($1::bigint[], $2::bigint[]) AS s(id, seq)
                         WHERE rooms.id = s.id",
                        &[&rooms, &seqs],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                client
                    .batch_execute("VACUUM ANALYZE messages")
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// The kinds of query measured, each making its query text from the RNG.
const KINDS: &[&str] = &[
    "common word",
    "rare word",
    "two words",
    "CJK 2 chars",
    "CJK 3 chars",
    "phrase",
];

/// Lower-cased words of an English line, punctuation stripped.
fn words_of(line: &str) -> Vec<String> {
    line.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// `n` characters at a random place of a generated Chinese/Japanese line.
fn cjk_window(words: &Words, rng: &mut Rng, n: usize) -> String {
    loop {
        let line: Vec<char> = words
            .cjk_sentence(rng)
            .chars()
            .filter(|c| *c != '。')
            .collect();
        if line.len() >= n {
            let at = rng.below(line.len() - n + 1);
            return line[at..at + n].iter().collect();
        }
    }
}

/// (words, substrings) of one query of `kind`.
fn make_query(kind: &str, words: &Words, rng: &mut Rng) -> (Vec<String>, Vec<String>) {
    let common = |rng: &mut Rng, spread: usize| {
        words.english[words.common_start + 20 + rng.below(spread)].clone()
    };
    match kind {
        "common word" => (vec![common(rng, 150)], vec![]),
        "rare word" => {
            let tail = words.english.len() - words.tail_start;
            let at = words.tail_start + tail / 2 + rng.below(tail / 2);
            (vec![words.english[at].clone()], vec![])
        }
        "two words" => (vec![common(rng, 150), common(rng, 300)], vec![]),
        "CJK 2 chars" => (vec![], vec![cjk_window(words, rng, 2)]),
        "CJK 3 chars" => (vec![], vec![cjk_window(words, rng, 3)]),
        _ => loop {
            // Two neighbouring words of a line, one of them not a function word.
            let line = words_of(&words.english_sentence(rng));
            let at = rng.below(line.len() - 1);
            let function = &words.english[..words.common_start];
            if !function.contains(&line[at]) || !function.contains(&line[at + 1]) {
                break (vec![], vec![format!("{} {}", line[at], line[at + 1])]);
            }
        },
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at].as_secs_f64() * 1000.0
}

async fn measure(args: &Args) -> Result<(), String> {
    let store = open(&args.store).await.map_err(|e| e.to_string())?;
    let rooms: Vec<RoomId> = store
        .public_rooms()
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|r| r.id)
        .collect();
    if rooms.len() < args.rooms_per_user {
        return Err(format!("only {} rooms: fill first", rooms.len()));
    }
    let words = Words::new();
    let mut rng = Rng::new(args.seed ^ 0x5EA2C4);
    println!(
        "store {}, {} queries per kind over {} of {} rooms, order {:?}, load {}",
        args.store.split('?').next().unwrap_or_default(),
        args.queries,
        args.rooms_per_user,
        rooms.len(),
        args.order,
        load_average()
    );
    println!("| query | p50 ms | p95 ms | p99 ms | mean results |");
    println!("|---|---:|---:|---:|---:|");
    for kind in KINDS {
        let mut times = Vec::with_capacity(args.queries);
        let mut results = 0usize;
        // A few untimed first, so each kind starts from a warm cache like a running server.
        for i in 0..args.queries + 10 {
            let mut picked = rooms.clone();
            for j in 0..args.rooms_per_user {
                let k = j + rng.below(picked.len() - j);
                picked.swap(j, k);
            }
            picked.truncate(args.rooms_per_user);
            let (w, s) = make_query(kind, &words, &mut rng);
            let q = SearchQuery {
                rooms: picked,
                words: w,
                substrings: s,
                order: args.order,
                limit: 20,
                ..SearchQuery::default()
            };
            let started = Instant::now();
            let found = store.search(&q).await.map_err(|e| e.to_string())?;
            if i >= 10 {
                times.push(started.elapsed());
                results += found.len();
            }
        }
        times.sort();
        println!(
            "| {kind} | {:.1} | {:.1} | {:.1} | {:.1} |",
            percentile(&times, 0.50),
            percentile(&times, 0.95),
            percentile(&times, 0.99),
            results as f64 / args.queries as f64
        );
    }
    println!("load after: {}", load_average());
    store.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() {
    let outcome = match parse_args() {
        Ok(args) if args.measure => measure(&args).await,
        Ok(args) => fill(&args).await,
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        eprintln!("searchgen: {e}");
        std::process::exit(2);
    }
}
