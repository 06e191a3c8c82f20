//! Setting a workload up: accounts (Natter), rooms, then every connection of the layout
//! opened, joined and started; failures are counted, not fatal.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use tokio::sync::Semaphore;

use crate::accounts;
use crate::clock;
use crate::conn::{Conn, LiveConn, ReceiverCtx, Shared};
use crate::error::BenchError;
use crate::nodes::{node_of, NodeIndex};
use crate::proto::Request;
use crate::stats::Latency;
use crate::target::{Account, RoomRef, Target, WireRoom};

use super::plan::{BuildOptions, Layout, Member, SetupReport};
use super::{Publisher, Workload};

impl Workload {
    /// Signs in, creates rooms, opens and joins every connection, and starts them.
    pub async fn build(
        target: &Target,
        layout: &Layout,
        opts: &BuildOptions,
        body_bytes: usize,
    ) -> Result<Workload, BenchError> {
        Ok(Workload::prepare(target, layout, opts, body_bytes)
            .await?
            .connect()
            .await)
    }

    /// The first half of [`Workload::build`]: accounts and rooms, no load connection yet.
    pub async fn prepare(
        target: &Target,
        layout: &Layout,
        opts: &BuildOptions,
        body_bytes: usize,
    ) -> Result<Prepared, BenchError> {
        let started = Instant::now();
        let accounts = if target.kind.is_natter() {
            let users = users_needed(layout, opts.conns_per_user) + 1;
            accounts::ensure(target, users, opts.users_file.as_deref(), 4, &opts.run_id).await?
        } else {
            Vec::new()
        };
        let accounts_s = started.elapsed().as_secs_f64();
        let rooms = make_rooms(target, layout.rooms, &accounts, opts).await?;
        Ok(Prepared {
            target: target.clone(),
            layout: layout.clone(),
            opts: opts.clone(),
            body_bytes,
            accounts,
            accounts_s,
            rooms,
        })
    }
}

/// Accounts and rooms made; connections not yet opened.
pub struct Prepared {
    target: Target,
    layout: Layout,
    opts: BuildOptions,
    body_bytes: usize,
    pub accounts: Vec<Account>,
    accounts_s: f64,
    pub rooms: Vec<RoomRef>,
}

impl Prepared {
    /// Opens and joins every connection of the layout (failures are counted, not fatal).
    pub async fn connect(self) -> Workload {
        let Prepared {
            target,
            layout,
            opts,
            body_bytes,
            accounts,
            accounts_s,
            rooms,
        } = self;
        let mut setup = SetupReport {
            accounts: accounts.len(),
            accounts_s,
            ..SetupReport::default()
        };
        let sender_rooms = Arc::new(
            layout
                .members
                .iter()
                .filter(|m| m.publishes)
                .map(|m| m.room)
                .collect::<Vec<u32>>(),
        );
        // With several nodes, each connection's node, and each sender's (for the split of
        // delivery latency into same-node and cross-node).
        let nodes = if opts.nodes.is_empty() {
            vec![target.clone()]
        } else {
            opts.nodes.clone()
        };
        let sender_nodes = Arc::new(if nodes.len() > 1 {
            layout
                .members
                .iter()
                .enumerate()
                .filter(|(_, m)| m.publishes)
                .map(|(i, _)| node_of(i, nodes.len()))
                .collect::<Vec<NodeIndex>>()
        } else {
            Vec::new()
        });
        let shared = Arc::new(Shared::default());
        let tokens = assign_tokens(&layout, &accounts, opts.conns_per_user);
        let started = Instant::now();
        let opened: Vec<(Member, u64, OpenResult)> =
            stream::iter(layout.members.iter().enumerate())
                .map(|(i, member)| {
                    let room = rooms[member.room as usize].clone();
                    let node = node_of(i, nodes.len());
                    let ctx = ReceiverCtx {
                        rooms: vec![room.clone()],
                        sender_rooms: Arc::clone(&sender_rooms),
                        node,
                        sender_nodes: Arc::clone(&sender_nodes),
                        shared: Arc::clone(&shared),
                        window: None,
                    };
                    let window = opts.window.filter(|_| member.publishes);
                    let token = tokens.get(i).cloned();
                    let target = &nodes[node as usize];
                    let timeout = opts.timeout;
                    async move {
                        let t0 = clock::now_ns();
                        let result = open_member(target, token, room, ctx, window, timeout).await;
                        (*member, clock::now_ns().saturating_sub(t0), result)
                    }
                })
                .buffered(opts.concurrency.max(1))
                .collect()
                .await;
        setup.connect_s = started.elapsed().as_secs_f64();

        let mut connect_latency = Latency::new();
        let mut conns = Vec::new();
        let mut publishers = Vec::new();
        let mut room_sizes = vec![0u64; layout.rooms as usize];
        let mut sender = 0u32;
        for (member, took_ns, result) in opened {
            let this_sender = sender;
            if member.publishes {
                sender += 1;
            }
            match result {
                Ok((live, window)) => {
                    connect_latency.record_ns(took_ns);
                    room_sizes[member.room as usize] += 1;
                    if member.publishes {
                        publishers.push(Publisher {
                            conn: conns.len(),
                            sender: this_sender,
                            room: rooms[member.room as usize].clone(),
                            counter: 0,
                            window,
                            changes: Default::default(),
                        });
                    }
                    conns.push(live);
                }
                Err(e) => {
                    setup.connections_failed += 1;
                    if setup.connection_errors.len() < 5 {
                        setup.connection_errors.push(e.to_string());
                    }
                }
            }
        }
        setup.connections = conns.len();
        setup.connect_latency = connect_latency.summary();
        Workload {
            target,
            rooms,
            conns,
            publishers,
            room_sizes,
            shared,
            body_bytes,
            setup,
            accounts,
        }
    }
}

/// Users a layout needs: each user's connections share one room.
fn users_needed(layout: &Layout, conns_per_user: usize) -> usize {
    let mut per_room = vec![0usize; layout.rooms as usize];
    for m in &layout.members {
        per_room[m.room as usize] += 1;
    }
    per_room
        .iter()
        .map(|n| n.div_ceil(conns_per_user.max(1)))
        .sum()
}

/// Token per member: account 0 is the setup account (it created the rooms, so it is a member of
/// all of them and holds no load connection); the rest are dealt out room by room.
fn assign_tokens(layout: &Layout, accounts: &[Account], conns_per_user: usize) -> Vec<String> {
    if accounts.is_empty() {
        return Vec::new();
    }
    let mut next_user = 1usize;
    let mut room_user: Vec<Option<(usize, usize)>> = vec![None; layout.rooms as usize];
    layout
        .members
        .iter()
        .map(|m| {
            let slot = &mut room_user[m.room as usize];
            let (user, used) = match *slot {
                Some((user, used)) if used < conns_per_user.max(1) => (user, used),
                _ => {
                    next_user += 1;
                    (next_user - 1, 0)
                }
            };
            *slot = Some((user, used + 1));
            accounts[user.min(accounts.len() - 1)].token.clone()
        })
        .collect()
}

async fn make_rooms(
    target: &Target,
    count: u32,
    accounts: &[Account],
    opts: &BuildOptions,
) -> Result<Vec<RoomRef>, BenchError> {
    let names: Vec<String> = (0..count)
        .map(|i| format!("nb{}r{i}", opts.run_id))
        .collect();
    if !target.kind.is_natter() {
        return Ok(names
            .into_iter()
            .enumerate()
            .map(|(i, name)| RoomRef {
                key: i as u32,
                wire: WireRoom::Name(name),
            })
            .collect());
    }
    let setup_account = accounts
        .first()
        .ok_or_else(|| BenchError::Config("no setup account".into()))?;
    let mut conn = Conn::open(target, Some(&setup_account.token), opts.timeout).await?;
    let mut rooms = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let reply = conn.request(Request::CreateRoom { name }).await?;
        let id = reply
            .room_id
            .ok_or_else(|| BenchError::Protocol("room.create reply without a room id".into()))?;
        rooms.push(RoomRef {
            key: i as u32,
            wire: WireRoom::Id(id),
        });
    }
    Ok(rooms)
}

async fn open_member(
    target: &Target,
    token: Option<String>,
    room: RoomRef,
    mut ctx: ReceiverCtx,
    window: Option<usize>,
    timeout: Duration,
) -> OpenResult {
    let mut conn = Conn::open(target, token.as_deref(), timeout).await?;
    conn.request(Request::Join { room: &room }).await?;
    let window = window.map(|w| Arc::new(Semaphore::new(w)));
    ctx.window = window.clone();
    Ok((conn.start(ctx), window))
}

/// A started connection and its send window (window mode).
type OpenResult = Result<(LiveConn, Option<Arc<Semaphore>>), BenchError>;
