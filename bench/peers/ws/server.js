// Peer for the Natter benchmark (bench/peers/ws): a plain `ws` server with rooms and JSON
// frames. {"type":"join","room":R,"ref":X} -> {"type":"joined","room":R,"ref":X};
// {"type":"chat","room":R,"body":B} is broadcast to every client in R (sender included),
// serialized once. Port from PORT or the first argument (0 = any free port); prints
// `listening on PORT`.
'use strict';

const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.env.PORT || process.argv[2] || 0);
const wss = new WebSocketServer({ host: '127.0.0.1', port });
/** room name -> Set of sockets */
const rooms = new Map();

wss.on('connection', (ws) => {
  const joined = new Set();
  ws.on('message', (data) => {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg.type === 'join' && typeof msg.room === 'string') {
      let members = rooms.get(msg.room);
      if (!members) rooms.set(msg.room, (members = new Set()));
      members.add(ws);
      joined.add(msg.room);
      ws.send(JSON.stringify({ type: 'joined', room: msg.room, ref: msg.ref }));
    } else if (msg.type === 'chat' && typeof msg.room === 'string') {
      const members = rooms.get(msg.room);
      if (!members) return;
      const frame = Buffer.from(JSON.stringify({ type: 'chat', room: msg.room, body: msg.body }));
      for (const peer of members) {
        if (peer.readyState === WebSocket.OPEN) peer.send(frame, { binary: false });
      }
    }
  });
  ws.on('close', () => {
    for (const room of joined) {
      const members = rooms.get(room);
      if (!members) continue;
      members.delete(ws);
      if (members.size === 0) rooms.delete(room);
    }
  });
});

wss.on('listening', () => console.log(`listening on ${wss.address().port}`));
process.on('SIGTERM', () => process.exit(0));
