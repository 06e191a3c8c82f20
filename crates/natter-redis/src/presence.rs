//! Presence across nodes in Redis: which node has which users, and who is online anywhere.
//! Every change is one Lua script, so the checks and the updates are atomic between nodes.
//!
//! Keys (all under the broker's prefix `P`):
//! - `P node:{node}:alive`: set with an expiry by the node's heartbeat; gone = the node is dead;
//! - `P nodes`: ids of the nodes that registered presence;
//! - `P node:{node}:users`: hash user id -> user JSON, the users with a connection on that node;
//! - `P user:{user}:nodes`: set of nodes where the user has a connection;
//! - `P online`: hash user id -> user JSON, everyone online anywhere.
//!
//! A node whose `alive` key expired is reaped by whichever live node's heartbeat sees it first:
//! its users leave every set, and those left with no node go offline (the reaper publishes
//! `presence` events for them). A node that finds its own `alive` key gone (it was reaped while
//! stalled, or Redis lost its data on a restart), or whose presence updates failed while Redis
//! was unreachable, makes Redis agree with its own list of users again (`sync`).

use redis::Script;

/// Refreshes this node's `alive` key. KEYS: alive, nodes. ARGV: node id, expiry ms.
/// Returns 1 if the key still existed (nothing was lost), 0 if it had to be created.
pub(crate) fn heartbeat() -> Script {
    Script::new(
        r"
        local existed = redis.call('EXISTS', KEYS[1])
        redis.call('SET', KEYS[1], '1', 'PX', ARGV[2])
        redis.call('SADD', KEYS[2], ARGV[1])
        return existed
        ",
    )
}

/// A user gained a connection on this node. KEYS: node users, user nodes, online.
/// ARGV: node id, user id, user JSON. Returns 1 if the user was offline everywhere.
pub(crate) fn up() -> Script {
    Script::new(
        r"
        redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
        local added = redis.call('SADD', KEYS[2], ARGV[1])
        local was_online = redis.call('HEXISTS', KEYS[3], ARGV[2])
        redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
        if added == 1 and was_online == 0 then return 1 end
        return 0
        ",
    )
}

/// A user lost their last connection on this node. KEYS: node users, user nodes, online.
/// ARGV: node id, user id. Returns 1 if the user is now offline everywhere (and was online).
pub(crate) fn down() -> Script {
    Script::new(
        r"
        redis.call('HDEL', KEYS[1], ARGV[2])
        redis.call('SREM', KEYS[2], ARGV[1])
        if redis.call('SCARD', KEYS[2]) == 0 then
            return redis.call('HDEL', KEYS[3], ARGV[2])
        end
        return 0
        ",
    )
}

/// Makes Redis agree with this node's own list of present users (after Redis lost them, or
/// after presence updates failed while Redis was unreachable). KEYS: node users, online.
/// ARGV: node id, prefix, then user id and user JSON pairs. Returns two lists of user JSON:
/// who came online everywhere, and who went offline everywhere.
pub(crate) fn sync() -> Script {
    Script::new(
        r"
        local came, gone, keep = {}, {}, {}
        for i = 3, #ARGV, 2 do
            local uid, json = ARGV[i], ARGV[i + 1]
            keep[uid] = true
            redis.call('HSET', KEYS[1], uid, json)
            redis.call('SADD', ARGV[2] .. 'user:' .. uid .. ':nodes', ARGV[1])
            if redis.call('HSETNX', KEYS[2], uid, json) == 1 then
                table.insert(came, json)
            end
        end
        local had = redis.call('HGETALL', KEYS[1])
        for i = 1, #had, 2 do
            local uid = had[i]
            if not keep[uid] then
                redis.call('HDEL', KEYS[1], uid)
                local nodes_key = ARGV[2] .. 'user:' .. uid .. ':nodes'
                redis.call('SREM', nodes_key, ARGV[1])
                if redis.call('SCARD', nodes_key) == 0 then
                    if redis.call('HDEL', KEYS[2], uid) == 1 then
                        table.insert(gone, had[i + 1])
                    end
                end
            end
        end
        return {came, gone}
        ",
    )
}

/// Reaps dead nodes. KEYS: nodes, online. ARGV: prefix. Returns the JSON of the users who
/// went offline everywhere.
pub(crate) fn reap() -> Script {
    Script::new(
        r"
        local gone = {}
        for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
            if redis.call('EXISTS', ARGV[1] .. 'node:' .. node .. ':alive') == 0 then
                local users_key = ARGV[1] .. 'node:' .. node .. ':users'
                local users = redis.call('HGETALL', users_key)
                for i = 1, #users, 2 do
                    local nodes_key = ARGV[1] .. 'user:' .. users[i] .. ':nodes'
                    redis.call('SREM', nodes_key, node)
                    if redis.call('SCARD', nodes_key) == 0 then
                        if redis.call('HDEL', KEYS[2], users[i]) == 1 then
                            table.insert(gone, users[i + 1])
                        end
                    end
                end
                redis.call('DEL', users_key)
                redis.call('SREM', KEYS[1], node)
            end
        end
        return gone
        ",
    )
}

/// Publishes a presence event only if it still matches the state (so events published by
/// racing nodes cannot leave clients with the wrong last word). KEYS: online.
/// ARGV: channel, user id, payload, "1" for online / "0" for offline.
pub(crate) fn publish_presence() -> Script {
    Script::new(
        r"
        local is_online = redis.call('HEXISTS', KEYS[1], ARGV[2]) == 1
        if is_online == (ARGV[4] == '1') then
            return redis.call('PUBLISH', ARGV[1], ARGV[3])
        end
        return -1
        ",
    )
}
