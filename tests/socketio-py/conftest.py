"""Helpers for the python-socketio suite: accounts over the HTTP API, Socket.IO clients
(python-socketio's `socketio.Client`) and native /ws clients (websocket-client), each with an
inbox of the events it received. The server's URL comes from NATTER_URL (the Rust harness in
crates/natter-server/tests/socketio.rs starts a server and sets it)."""

import itertools
import json
import os
import threading
import time

import pytest
import requests
import socketio
import websocket

URL = os.environ.get("NATTER_URL", "")
WAIT = 5.0
_counter = itertools.count()


def unique(prefix):
    return f"{prefix}{os.getpid() % 10000}x{int(time.time() * 1000) % 1000000}x{next(_counter)}"


def register(prefix="u"):
    """A new account: {"token", "user"}."""
    resp = requests.post(
        f"{URL}/api/register",
        json={"username": unique(prefix), "password": "correct horse"},
        timeout=WAIT,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def logout(token):
    return requests.post(
        f"{URL}/api/logout", headers={"Authorization": f"Bearer {token}"}, timeout=WAIT
    )


class Inbox:
    """Events received, in order, and waits for the ones a test expects."""

    def __init__(self):
        self.items = []
        self.cond = threading.Condition()

    def push(self, name, data):
        with self.cond:
            self.items.append((name, data))
            self.cond.notify_all()

    def _find(self, name, pred):
        for i, (n, d) in enumerate(self.items):
            if n == name and pred(d):
                return i
        return -1

    def take(self, name, pred=lambda _: True, wait=WAIT):
        """The first `name` event matching `pred`, removed from the inbox."""
        deadline = time.monotonic() + wait
        with self.cond:
            while True:
                i = self._find(name, pred)
                if i >= 0:
                    return self.items.pop(i)[1]
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = ", ".join(n for n, _ in self.items)
                    raise AssertionError(f"no `{name}` event in {wait} s (inbox: {seen})")
                self.cond.wait(left)

    def none(self, name, pred=lambda _: True, wait=0.5):
        """Fails if a matching event arrives within `wait`."""
        time.sleep(wait)
        with self.cond:
            i = self._find(name, pred)
            assert i < 0, f"unexpected `{name}` event: {self.items[i][1]}"


class Sio:
    """A python-socketio client with an inbox. `auth` defaults to {"token": token}."""

    def __init__(self, token, transports=None, auth=None, reconnection=False):
        self.token = token
        self.inbox = Inbox()
        self.client = socketio.Client(reconnection=reconnection, reconnection_delay=0.1)
        self.client.on("*", self.inbox.push)
        self.client.on("disconnect", lambda reason=None: self.inbox.push("disconnect", reason))
        self.client.connect(
            URL,
            auth=auth if auth is not None else {"token": token},
            transports=transports,
            wait_timeout=WAIT,
        )
        self.welcome = self.inbox.take("auth")
        self.user = self.welcome["user"]

    def request(self, name, data=None):
        """Emits with an acknowledgement and returns it: {"ok", "data"|"error"}."""
        return self.client.call(name, data, timeout=WAIT)

    def ok(self, name, data=None):
        reply = self.request(name, data)
        assert reply["ok"] is True, f"{name} {data}: {reply}"
        return reply["data"]

    def close(self):
        self.client.disconnect()


class Native:
    """A native /ws client, authenticated, with an inbox of events."""

    def __init__(self, token):
        self.ws = websocket.create_connection(URL.replace("http", "ws", 1) + "/ws", timeout=WAIT)
        self.inbox = Inbox()
        self.replies = Inbox()
        self.refs = itertools.count(1)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.welcome = self.ok("auth", {"token": token})
        self.user = self.welcome["user"]

    def _read(self):
        while True:
            try:
                frame = json.loads(self.ws.recv())
            except Exception:  # closed
                return
            if frame["type"] in ("ok", "error") and frame.get("ref") is not None:
                self.replies.push(frame["ref"], frame)
            else:
                self.inbox.push(frame["type"], frame.get("data"))

    def request(self, kind, data=None):
        ref = str(next(self.refs))
        self.ws.send(json.dumps({"type": kind, "ref": ref, "data": data}))
        return self.replies.take(ref)

    def ok(self, kind, data=None):
        frame = self.request(kind, data)
        assert frame["type"] == "ok", f"{kind}: {frame}"
        return frame["data"]

    def close(self):
        self.ws.close()


def new_room(client, prefix="r"):
    return client.ok("room.create", {"name": unique(prefix)})["room"]


def send(client, room, body):
    return client.ok("message.send", {"room": room, "body": body, "client_id": unique("c")})


@pytest.fixture(autouse=True, scope="session")
def server_url():
    assert URL, "set NATTER_URL to a running natter server (http://127.0.0.1:PORT)"
    return URL
