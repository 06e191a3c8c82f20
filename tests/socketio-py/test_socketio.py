"""Natter over Socket.IO with python-socketio (docs/socketio.md): handshake auth, requests
with acknowledgements, events, both Engine.IO transports, resume, and interplay with native
/ws clients in the same rooms."""

import os
import subprocess
import sys

import pytest
import socketio

from conftest import URL, WAIT, Native, Sio, logout, new_room, register, send, unique


def test_connects_with_a_good_token_and_gets_the_auth_event():
    account = register("ana")
    c = Sio(account["token"])
    try:
        assert c.user == account["user"]
        assert any(r["name"] == "general" and r["joined"] for r in c.welcome["rooms"])
        assert c.welcome["limits"]["rate_burst"] == 40
    finally:
        c.close()


@pytest.mark.parametrize("auth", [{"token": "not-a-token"}, {}])
def test_refuses_a_bad_token_with_a_readable_connect_error(auth):
    errors = []
    client = socketio.Client(reconnection=False)
    client.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(URL, auth=auth, wait_timeout=WAIT)
    assert len(errors) == 1
    assert errors[0]["message"].startswith("unauthenticated: "), errors


def test_sends_with_an_acknowledgement():
    c = Sio(register("ana")["token"])
    try:
        room = new_room(c)
        sent = {"room": room["id"], "body": "hello", "client_id": unique("c")}
        reply = c.request("message.send", sent)
        assert reply["ok"] is True
        assert reply["data"]["duplicate"] is False
        message = reply["data"]["message"]
        assert message["body"] == "hello" and message["seq"] == 1
        assert c.inbox.take("message", lambda m: m["room"] == room["id"]) == message
        assert c.request("message.send", sent) == {
            "ok": True,
            "data": {"message": message, "duplicate": True},
        }
        c.inbox.none("message", lambda m: m["room"] == room["id"])
    finally:
        c.close()


def test_joins_a_room():
    a = Sio(register("ana")["token"])
    b = Sio(register("bob")["token"])
    try:
        room = new_room(a)
        joined = b.ok("room.join", {"room": room["id"]})
        assert joined["room"]["joined"] is True and joined["room"]["member_count"] == 2
        for c in (a, b):
            c.inbox.take(
                "member_joined",
                lambda e: e["room"] == room["id"] and e["user"]["id"] == b.user["id"],
            )
        assert b.ok("room.leave", {"room": room["id"]}) == {}
        a.inbox.take("member_left", lambda e: e["user"]["id"] == b.user["id"])
    finally:
        a.close()
        b.close()


def test_messages_cross_between_native_and_socketio():
    s = Sio(register("sio")["token"])
    n = Native(register("nat")["token"])
    try:
        room = new_room(s)
        n.ok("room.join", {"room": room["id"]})
        from_native = send(n, room["id"], "from native")["message"]
        assert s.inbox.take("message", lambda m: m["room"] == room["id"]) == from_native
        from_sio = send(s, room["id"], "from python")["message"]
        assert n.inbox.take("message", lambda m: m["body"] == "from python") == from_sio
    finally:
        s.close()
        n.close()


def test_long_polling_alone():
    s = Sio(register("poll")["token"], transports=["polling"])
    n = Native(register("nat")["token"])
    try:
        assert s.client.transport() == "polling"
        room = new_room(s)
        n.ok("room.join", {"room": room["id"]})
        mine = send(s, room["id"], "polled")["message"]
        assert n.inbox.take("message", lambda m: m["room"] == room["id"]) == mine
        theirs = send(n, room["id"], "to the poller")["message"]
        assert s.inbox.take("message", lambda m: m["id"] == theirs["id"]) == theirs
        assert s.client.transport() == "polling"
    finally:
        s.close()
        n.close()


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
def test_reconnect_resumes_without_gap_or_duplicate(transports):
    token = register("res")["token"]
    last_seq = {}
    s = Sio(token, transports=transports, auth=lambda: {"token": token, "resume": last_seq})

    def track(m):
        last_seq[str(m["room"])] = m["seq"]
        s.inbox.push("message", m)

    s.client.on("message", track)  # replaces the catch-all for `message`
    n = Native(register("nat")["token"])
    try:
        room = new_room(s)
        n.ok("room.join", {"room": room["id"]})
        first = send(n, room["id"], "before")["message"]
        s.inbox.take("message", lambda m: m["id"] == first["id"])

        s.client.disconnect()
        missed = [send(n, room["id"], f"while away {i}")["message"] for i in range(5)]
        s.client.connect(
            URL,
            auth=lambda: {"token": token, "resume": last_seq},
            transports=transports,
            wait_timeout=WAIT,
        )
        s.inbox.take("auth")
        after = send(n, room["id"], "after")["message"]
        got = [s.inbox.take("message", lambda m: m["room"] == room["id"]) for _ in range(6)]
        assert got == missed + [after]
        s.inbox.none("message", lambda m: m["room"] == room["id"])
    finally:
        s.close()
        n.close()


def test_bad_payloads_get_error_acknowledgements():
    c = Sio(register("bad")["token"])
    try:
        room = new_room(c)
        cases = [
            ("message.send", "not an object", "invalid_request"),
            ("message.send", {"room": room["id"]}, "invalid_request"),
            ("message.send", {"room": room["id"], "body": " ", "client_id": "y"}, "empty_message"),
            ("message.send", {"room": room["id"], "body": b"bin", "client_id": "y"}, "binary_unsupported"),
            ("history", {"room": 999999}, "unknown_room"),
            ("no.such.request", {}, "unknown_type"),
        ]
        for name, data, code in cases:
            reply = c.request(name, data)
            assert reply["ok"] is False, (name, data)
            assert reply["error"]["code"] == code, (name, data, reply)
        assert c.request("ping") == {"ok": True, "data": {}}
        assert c.client.connected
    finally:
        c.close()


def test_a_failure_without_acknowledgement_is_an_error_event():
    c = Sio(register("noack")["token"])
    try:
        c.client.emit("typing", {"room": 999999, "active": True})
        event = c.inbox.take("error")
        assert event["event"] == "typing"
        assert event["error"]["code"] == "unknown_room"
    finally:
        c.close()


def test_presence_typing_join_and_leave_cross_transports():
    n = Native(register("nat")["token"])
    s = Sio(register("sio")["token"])
    try:
        n.inbox.take("presence", lambda p: p["user"]["id"] == s.user["id"] and p["online"])
        room = new_room(n)
        s.ok("room.join", {"room": room["id"]})
        n.inbox.take("member_joined", lambda e: e["user"]["id"] == s.user["id"])
        s.ok("typing", {"room": room["id"], "active": True})
        typing = n.inbox.take("typing", lambda t: t["room"] == room["id"])
        assert typing == {"room": room["id"], "user": s.user, "active": True}
        n.ok("typing", {"room": room["id"], "active": True})
        typing = s.inbox.take("typing", lambda t: t["room"] == room["id"])
        assert typing == {"room": room["id"], "user": n.user, "active": True}
        s.ok("room.leave", {"room": room["id"]})
        n.inbox.take("member_left", lambda e: e["user"]["id"] == s.user["id"])
        s.close()
        n.inbox.take("presence", lambda p: p["user"]["id"] == s.user["id"] and not p["online"])
    finally:
        s.close()
        n.close()


def test_signing_out_sends_close_then_disconnects():
    account = register("out")
    c = Sio(account["token"])
    assert logout(account["token"]).status_code == 204
    assert c.inbox.take("close") == {"code": 4003, "reason": "session revoked"}
    c.inbox.take("disconnect")


def test_the_documented_example_runs():
    account = register("example")
    env = dict(os.environ, NATTER_URL=URL, NATTER_TOKEN=account["token"])
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run(
        [sys.executable, os.path.join(here, "example.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT * 3,
        check=True,
    ).stdout
    assert f"signed in as {account['user']['name']}" in out
    assert "stored as seq" in out
