// Run by crates/natter-server/tests/socketio.rs (node_clients_see_io_server_disconnect_at_shutdown):
// one socket.io-client over WebSocket and one over long-polling, signed in; prints "ready", then,
// once the server has shut down, the reason each one's `disconnect` gave and the code of the
// `close` event before it, as JSON.

import { io } from "socket.io-client";
import { register, URL } from "./helpers.mjs";

const { token } = await register("bye");
const reasons = {};
const closes = {};
const ended = await Promise.all(["websocket", "polling"].map(async (transport) => {
  const socket = io(URL, { auth: { token }, transports: [transport], reconnection: false, forceNew: true });
  socket.on("close", (close) => {
    closes[transport] = close.code;
  });
  const disconnected = new Promise((resolve) => {
    socket.once("disconnect", (reason) => {
      reasons[transport] = reason;
      resolve();
    });
  });
  await new Promise((resolve, reject) => {
    socket.once("auth", resolve);
    socket.once("connect_error", reject);
  });
  // Wrapped: an async function returning a promise would wait for it.
  return { disconnected };
}));
console.log("ready");
await Promise.all(ended.map((e) => e.disconnected));
console.log(JSON.stringify({ reasons, closes }));
process.exit(0);
