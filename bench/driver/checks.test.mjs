// bench/driver/checks.test.mjs: the driver's delivery checks against deliberately faulty
// servers (as crates/natter-bench/tests/checks.rs does for natter-bench): a server speaking the
// plain-ws peer's protocol that drops, duplicates or reorders frames must be caught, and a
// correct one must pass clean. Real sockets, port 0; run with `node --test` in bench/driver.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { WebSocketServer, WebSocket } from 'ws';

const DRIVER = fileURLToPath(new URL('./driver.mjs', import.meta.url));

/** The ws peer's protocol with a fault on the deliveries: none, drop, dup or reorder. */
function faultyServer(fault) {
  return new Promise((resolve) => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    const rooms = new Map();
    let k = 0;
    const held = new Map();
    const deliver = (peer, frame, sender) => {
      if (peer.readyState !== WebSocket.OPEN) return;
      k++;
      if (fault === 'drop' && k % 7 === 0) return;
      if (fault === 'dup' && k % 5 === 0) peer.send(frame);
      if (fault === 'reorder') {
        // Hold a frame back until the same sender's next one has gone to that peer.
        if (!held.has(peer)) held.set(peer, new Map());
        const mine = held.get(peer);
        const earlier = mine.get(sender);
        if (earlier) {
          mine.delete(sender);
          peer.send(frame);
          peer.send(earlier);
          return;
        }
        if (k % 6 === 0) {
          mine.set(sender, frame);
          return;
        }
      }
      peer.send(frame);
    };
    wss.on('connection', (ws) => {
      ws.on('message', (data) => {
        const msg = JSON.parse(data);
        if (msg.type === 'join') {
          if (!rooms.has(msg.room)) rooms.set(msg.room, new Set());
          rooms.get(msg.room).add(ws);
          ws.send(JSON.stringify({ type: 'joined', room: msg.room, ref: msg.ref }));
        } else if (msg.type === 'chat') {
          const frame = JSON.stringify({ type: 'chat', room: msg.room, body: msg.body });
          const sender = /;s=(\d+);/.exec(msg.body)?.[1];
          for (const peer of rooms.get(msg.room) ?? []) deliver(peer, frame, sender);
        }
      });
    });
    wss.on('listening', () => resolve(wss));
  });
}

/** Runs the driver against `wss`; resolves with its exit code and result. */
function drive(wss) {
  const url = `http://127.0.0.1:${wss.address().port}`;
  const args = [DRIVER, '--target', 'ws-peer', '--url', url, '--scenario', 'rooms', '--rooms', '2',
    '--clients', '3', '--rate', '60', '--duration-secs', '1', '--warmup-secs', '0', '--drain-secs', '3'];
  return new Promise((resolve) => {
    execFile(process.execPath, args, (error, stdout) => {
      resolve({ code: error ? error.code : 0, result: JSON.parse(stdout) });
    });
  });
}

for (const [fault, field] of [['drop', 'lost'], ['dup', 'duplicated'], ['reorder', 'out_of_order']]) {
  test(`a server that faults with ${fault} is caught (${field})`, async () => {
    const wss = await faultyServer(fault);
    try {
      const { code, result } = await drive(wss);
      assert.equal(code, 1, 'the driver fails the run');
      assert.ok(result[field] > 0, `${field} counted: ${JSON.stringify(result)}`);
      assert.equal(result.ok, false);
    } finally {
      wss.close();
    }
  });
}

test('a correct server passes clean, every delivery counted', async () => {
  const wss = await faultyServer('none');
  try {
    const { code, result } = await drive(wss);
    assert.equal(code, 0);
    assert.equal(result.ok, true);
    assert.deepEqual([result.lost, result.duplicated, result.out_of_order, result.misrouted], [0, 0, 0, 0]);
    assert.equal(result.expected_deliveries, result.sent * 3);
    assert.equal(result.distinct, result.expected_deliveries);
    assert.ok(result.latency.count > 0 && result.latency.p99_ms >= result.latency.p50_ms);
  } finally {
    wss.close();
  }
});
