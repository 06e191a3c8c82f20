// Peer for the Natter benchmark (bench/peers/socketio): the Express + Socket.IO 4 tutorial
// chat server, with rooms. Events: `join` (room name, optional ack), `chat` ({room, body}),
// broadcast to the room with io.to(room).emit, the sender included.
// Port from PORT or the first argument (0 = any free port); prints `listening on PORT`.
'use strict';

const http = require('http');
const express = require('express');
const { Server } = require('socket.io');

const app = express();
const server = http.createServer(app);
const io = new Server(server);

app.get('/', (_req, res) => res.send('socket.io peer'));

io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    socket.join(String(room));
    if (typeof ack === 'function') ack({ ok: true });
  });
  socket.on('chat', (msg) => {
    if (!msg || typeof msg.room !== 'string') return;
    io.to(msg.room).emit('chat', { room: msg.room, body: msg.body });
  });
});

const port = Number(process.env.PORT || process.argv[2] || 0);
server.listen(port, '127.0.0.1', () => {
  console.log(`listening on ${server.address().port}`);
});

process.on('SIGTERM', () => process.exit(0));
