import { io } from "socket.io-client";

const url = process.env.NATTER_URL ?? "http://127.0.0.1:8080";
const token = process.env.NATTER_TOKEN; // from POST /api/login (or /api/register)

const lastSeq = {}; // room id -> last seq seen: sent as `resume` on every reconnect
const socket = io(url, { auth: (cb) => cb({ token, resume: lastSeq }) });

socket.on("connect_error", (err) => console.error("refused:", err.message));
socket.on("message", (m) => {
  lastSeq[m.room] = m.seq;
  console.log(`#${m.room} ${m.sender.name}: ${m.body}`);
});
socket.on("error", ({ event, error }) => console.error(event, "failed:", error.code));

// The first event after connecting: the native `auth` reply (user, rooms, online, limits).
socket.once("auth", async ({ user, rooms }) => {
  console.log(`signed in as ${user.name}`);
  const general = rooms.find((r) => r.name === "general");
  const reply = await socket.emitWithAck("message.send", {
    room: general.id,
    body: "hello from socket.io",
    client_id: crypto.randomUUID(), // reuse it if you resend after a reconnect
  });
  if (reply.ok) console.log("stored as seq", reply.data.message.seq);
  else console.error(reply.error.code, reply.error.message);
  socket.close();
});
