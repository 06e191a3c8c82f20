import os
import uuid

import socketio

url = os.environ.get("NATTER_URL", "http://127.0.0.1:8080")
token = os.environ["NATTER_TOKEN"]  # from POST /api/login (or /api/register)
last_seq = {}  # room id (a string) -> last seq seen: sent as `resume` on every reconnect

sio = socketio.Client()


@sio.on("auth")  # the first event: the native `auth` reply (user, rooms, online, limits)
def on_auth(welcome):
    print(f"signed in as {welcome['user']['name']}")


@sio.on("message")
def on_message(m):
    last_seq[str(m["room"])] = m["seq"]
    print(f"#{m['room']} {m['sender']['name']}: {m['body']}")


@sio.on("connect_error")
def on_refused(err):
    print("refused:", err["message"])


sio.connect(url, auth=lambda: {"token": token, "resume": last_seq}, wait_timeout=5)
rooms = sio.call("room.list", {"query": "general"})["data"]["rooms"]  # one page, filtered
general = next(r for r in rooms if r["name"] == "general")
reply = sio.call("message.send", {
    "room": general["id"],
    "body": "hello from python-socketio",
    "client_id": str(uuid.uuid4()),  # reuse it if you resend after a reconnect
})
if reply["ok"]:
    print("stored as seq", reply["data"]["message"]["seq"])
else:
    print(reply["error"]["code"], reply["error"]["message"])
sio.disconnect()
