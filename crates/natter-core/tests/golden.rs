//! The contract as written: docs/protocol.md section 10 holds one complete example of every
//! request, reply and event. Each request example must parse into that request; each reply
//! and event the server's own types build from the same values must serialize to exactly the
//! example. Section 4's request headings and section 5's event table must name the same set.

use natter_core::model::*;
use natter_core::protocol::*;
use natter_core::{ChatError, ErrorCode, FileId, FileInfo};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const PROTOCOL_MD: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/protocol.md"
));

/// Section 10's examples: (subsection, name) -> the JSON text.
fn examples() -> BTreeMap<(String, String), String> {
    let start = PROTOCOL_MD
        .find("## 10. One example of every frame")
        .expect("protocol.md has section 10");
    let mut out = BTreeMap::new();
    let mut section = String::new();
    let mut name = String::new();
    let mut lines = PROTOCOL_MD[start..].lines();
    while let Some(line) = lines.next() {
        if let Some(s) = line.strip_prefix("### ") {
            section = s.trim().to_lowercase();
        } else if let Some(n) = line.strip_prefix("#### ") {
            name = n.trim().trim_matches('`').to_string();
        } else if line.trim() == "```json" {
            let mut json = String::new();
            for l in lines.by_ref() {
                if l.trim() == "```" {
                    break;
                }
                json.push_str(l);
                json.push('\n');
            }
            let key = (section.clone(), name.clone());
            assert!(
                out.insert(key.clone(), json).is_none(),
                "two examples of {key:?}"
            );
        }
    }
    out
}

fn example(section: &str, name: &str) -> String {
    examples()
        .remove(&(section.to_string(), name.to_string()))
        .unwrap_or_else(|| panic!("protocol.md section 10 has no {section} example `{name}`"))
}

/// Numbers compare by value (`20` and `20.0` are the same JSON number to a client).
fn normalized(v: Value) -> Value {
    match v {
        Value::Number(n) => Value::from(n.as_f64().expect("a finite number")),
        Value::Array(a) => Value::Array(a.into_iter().map(normalized).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, normalized(v))).collect()),
        other => other,
    }
}

fn json(text: &str) -> Value {
    normalized(serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}")))
}

fn bytes_json(bytes: &[u8]) -> Value {
    normalized(serde_json::from_slice(bytes).expect("JSON"))
}

fn user(id: i64, name: &str) -> User {
    User {
        id: UserId(id),
        name: name.into(),
        guest: false,
        bot: false,
    }
}

fn ana() -> User {
    user(12, "ana")
}

fn bob() -> User {
    user(13, "bob")
}

fn public_room(id: i64, name: &str, members: u32, last: i64, joined: bool) -> RoomView {
    RoomView {
        id: RoomId(id),
        name: name.into(),
        kind: RoomKind::Public,
        member_count: members,
        last_seq: Seq(last),
        joined,
        topic: String::new(),
        description: String::new(),
        archived: false,
        role: None,
        muted_until: None,
        peer: None,
        peers: Vec::new(),
        unread: None,
        mentions: None,
        notify: None,
    }
}

/// A room as a member's own views give it (`room.create`, `room.join`, `room_added`).
fn with_role(mut room: RoomView, role: RoomRole) -> RoomView {
    room.role = Some(role);
    room
}

fn general() -> RoomView {
    public_room(1, "general", 3, 41, true)
}

/// A room as the `auth` reply gives it: with the member's own counts and level.
fn mine(mut room: RoomView, unread: u32, mentions: u32, notify: NotifyLevel) -> RoomView {
    if room.kind != RoomKind::Dm {
        room.role = Some(RoomRole::Member);
    }
    room.unread = Some(unread);
    room.mentions = Some(mentions);
    room.notify = Some(notify);
    room
}

/// A group DM of ana's with these others, new.
fn group_room(peers: Vec<User>) -> RoomView {
    RoomView {
        id: RoomId(11),
        name: "group".into(),
        kind: RoomKind::Group,
        member_count: 3,
        last_seq: Seq(0),
        peer: None,
        peers,
        ..dm_with_bob()
    }
}

fn dm_with_bob() -> RoomView {
    RoomView {
        id: RoomId(7),
        name: "dm".into(),
        kind: RoomKind::Dm,
        member_count: 2,
        last_seq: Seq(3),
        joined: true,
        topic: String::new(),
        description: String::new(),
        archived: false,
        role: None,
        muted_until: None,
        peer: Some(bob()),
        peers: Vec::new(),
        unread: None,
        mentions: None,
        notify: None,
    }
}

fn hello() -> Message {
    Message {
        id: MessageId(907),
        room: RoomId(1),
        seq: Seq(42),
        sender: ana(),
        body: "hello".into(),
        ts: 1795698788123,
        client_id: "c-1f3a".into(),
        ..Message::default()
    }
}

/// A change entry of room 1 by ana, targeting message 42.
fn change_entry(seq: i64, client_id: &str, body: &str, change: Change) -> Message {
    Message {
        id: MessageId(seq + 865),
        room: RoomId(1),
        seq: Seq(seq),
        sender: ana(),
        body: body.into(),
        ts: 1795698790000 + seq,
        client_id: client_id.into(),
        change: Some(change),
        ..Message::default()
    }
}

fn edited() -> Message {
    change_entry(
        43,
        "e-9c1",
        "hello, world",
        Change::Edit { target: Seq(42) },
    )
}

fn deleted() -> Message {
    change_entry(44, "d-4b2", "", Change::Delete { target: Seq(42) })
}

fn reacted() -> Message {
    change_entry(
        45,
        "r-7d0",
        "",
        Change::React {
            target: Seq(42),
            emoji: "👍".into(),
            add: true,
        },
    )
}

/// A room event of room 5 by ana (its owner): bob banned.
fn banned() -> Message {
    Message {
        id: MessageId(951),
        room: RoomId(5),
        seq: Seq(7),
        sender: ana(),
        ts: 1795698792000,
        client_id: "m-51a".into(),
        change: Some(Change::Ban {
            user: bob(),
            reason: "spam".into(),
        }),
        ..Message::default()
    }
}

/// The reply the server's types build for each request's example, by request name.
fn replies() -> Vec<(&'static str, Reply)> {
    vec![
        (
            "auth",
            AuthReply {
                user: ana(),
                rooms: vec![
                    mine(general(), 1, 0, NotifyLevel::Mentions),
                    mine(dm_with_bob(), 0, 0, NotifyLevel::All),
                ],
                read: [(RoomId(1), Seq(40)), (RoomId(7), Seq(3))].into(),
                reset: vec![],
                online: vec![ana()],
                limits: Limits {
                    max_message_chars: 4000,
                    max_frame_bytes: 65536,
                    rate_per_sec: 20.0,
                    rate_burst: 40.0,
                },
            }
            .into(),
        ),
        (
            "room.list",
            RoomsReply {
                rooms: vec![general(), public_room(5, "rust-fans", 1, 0, false)],
                next: Some("rust-fans".into()),
            }
            .into(),
        ),
        (
            "room.create",
            RoomReply {
                room: with_role(public_room(5, "rust-fans", 1, 0, true), RoomRole::Owner),
            }
            .into(),
        ),
        (
            "room.join",
            RoomReply {
                room: with_role(public_room(5, "rust-fans", 2, 0, true), RoomRole::Member),
            }
            .into(),
        ),
        ("room.leave", Empty {}.into()),
        (
            "room.members",
            MembersReply {
                members: vec![
                    MemberView {
                        user: ana(),
                        online: true,
                        display_name: "Ana Lima".into(),
                        status: "in Lisbon this week".into(),
                        role: Some(RoomRole::Owner),
                        ..MemberView::default()
                    },
                    MemberView {
                        user: bob(),
                        online: false,
                        last_seen: Some(1795698700000),
                        role: Some(RoomRole::Member),
                        ..MemberView::default()
                    },
                ],
            }
            .into(),
        ),
        (
            "room.read",
            ReadMarker {
                room: RoomId(1),
                read_seq: Seq(41),
                unread: Some(0),
                mentions: Some(0),
            }
            .into(),
        ),
        (
            "dm.open",
            RoomReply {
                room: dm_with_bob(),
            }
            .into(),
        ),
        (
            "message.send",
            SentReply {
                message: hello(),
                duplicate: false,
            }
            .into(),
        ),
        (
            "history",
            HistoryReply {
                messages: vec![Message {
                    id: MessageId(906),
                    room: RoomId(1),
                    seq: Seq(41),
                    sender: bob(),
                    body: "hi @ana, thoughts?".into(),
                    ts: 1795698781000,
                    client_id: "c-77".into(),
                    mentions: vec![UserId(12)],
                    edited_at: Some(1795698782000),
                    reactions: vec![Reaction {
                        emoji: "👍".into(),
                        users: vec![ana(), bob()],
                    }],
                    replies: 2,
                    last_reply_ts: Some(1795698785000),
                    files: vec![FileInfo {
                        id: FileId("f_Jq3vX9aLm2Pz7Rt0Wc5Yb1".into()),
                        name: "shot.png".into(),
                        size: 48213,
                        kind: "image/png".into(),
                        width: Some(800),
                        height: Some(600),
                        url: "/api/files/f_Jq3vX9aLm2Pz7Rt0Wc5Yb1".into(),
                        thumb_url: Some("/api/files/f_Jq3vX9aLm2Pz7Rt0Wc5Yb1/thumb".into()),
                    }],
                    ..Message::default()
                }],
                has_more: true,
                has_newer: None,
                parent: None,
            }
            .into(),
        ),
        (
            "message.edit",
            ChangeReply {
                entry: Some(edited()),
                duplicate: false,
            }
            .into(),
        ),
        (
            "message.delete",
            ChangeReply {
                entry: Some(deleted()),
                duplicate: false,
            }
            .into(),
        ),
        (
            "message.edits",
            VersionsReply {
                versions: vec![
                    Version {
                        body: "hello".into(),
                        ts: 1795698788123,
                    },
                    Version {
                        body: "hello, world".into(),
                        ts: 1795698790043,
                    },
                ],
            }
            .into(),
        ),
        (
            "reaction.add",
            ChangeReply {
                entry: Some(reacted()),
                duplicate: false,
            }
            .into(),
        ),
        (
            "reaction.remove",
            ChangeReply {
                entry: None,
                duplicate: false,
            }
            .into(),
        ),
        (
            "room.notify",
            NotifyReply {
                room: RoomId(1),
                notify: NotifyLevel::All,
            }
            .into(),
        ),
        (
            "search",
            SearchReply {
                results: vec![SearchResult {
                    message: Message {
                        id: MessageId(906),
                        room: RoomId(1),
                        seq: Seq(41),
                        sender: bob(),
                        body: "deploy failed again".into(),
                        ts: 1795698781000,
                        client_id: "c-77".into(),
                        ..Message::default()
                    },
                    room: RoomRef {
                        id: RoomId(1),
                        name: "general".into(),
                        kind: RoomKind::Public,
                        peer: None,
                    },
                    parts: vec![
                        TextPart {
                            text: "deploy".into(),
                            hit: true,
                        },
                        TextPart {
                            text: " failed again".into(),
                            hit: false,
                        },
                    ],
                }],
                next: Some("t1795698781000.906".into()),
            }
            .into(),
        ),
        ("typing", Empty {}.into()),
        (
            "presence.list",
            OnlineReply {
                online: vec![ana()],
            }
            .into(),
        ),
        ("ping", Empty {}.into()),
        ("room.invite", Empty {}.into()),
        (
            "profile.get",
            ProfileReply {
                profile: MemberView {
                    user: bob(),
                    online: false,
                    display_name: "Bob Stone".into(),
                    avatar: Some(FileInfo {
                        id: FileId("f_Av4tarBob0000000000000".into()),
                        name: "bob.png".into(),
                        size: 5120,
                        kind: "image/png".into(),
                        width: Some(256),
                        height: Some(256),
                        url: "/api/files/f_Av4tarBob0000000000000".into(),
                        thumb_url: Some("/api/files/f_Av4tarBob0000000000000/thumb".into()),
                    }),
                    last_seen: Some(1795698700000),
                    ..MemberView::default()
                },
            }
            .into(),
        ),
        (
            "profile.update",
            ProfileReply {
                profile: MemberView {
                    user: ana(),
                    online: true,
                    display_name: "Ana Lima".into(),
                    status: "in Lisbon this week".into(),
                    ..MemberView::default()
                },
            }
            .into(),
        ),
        (
            "group.open",
            RoomReply {
                room: group_room(vec![bob(), user(14, "carol")]),
            }
            .into(),
        ),
        (
            "group.add",
            RoomReply {
                room: RoomView {
                    id: RoomId(12),
                    member_count: 4,
                    ..group_room(vec![bob(), user(14, "carol"), user(15, "dave")])
                },
            }
            .into(),
        ),
        (
            "invite.list",
            InvitesReply {
                invites: vec![Invite {
                    room: RoomId(9),
                    name: "launch".into(),
                    by: ana(),
                    ts: 1795698791000,
                }],
            }
            .into(),
        ),
        ("invite.decline", Empty {}.into()),
        (
            "room.update",
            ChangeReply {
                entry: Some(Message {
                    id: MessageId(950),
                    seq: Seq(6),
                    client_id: "m-50f".into(),
                    change: Some(Change::Settings {
                        name: None,
                        topic: Some("Ship it on Friday".into()),
                        description: None,
                        archived: None,
                    }),
                    ts: 1795698791500,
                    ..banned()
                }),
                duplicate: false,
            }
            .into(),
        ),
        (
            "room.kick",
            ChangeReply {
                entry: Some(Message {
                    id: MessageId(952),
                    seq: Seq(8),
                    client_id: "m-52b".into(),
                    change: Some(Change::Kick {
                        user: bob(),
                        reason: String::new(),
                    }),
                    ..banned()
                }),
                duplicate: false,
            }
            .into(),
        ),
        (
            "room.ban",
            ChangeReply {
                entry: Some(banned()),
                duplicate: false,
            }
            .into(),
        ),
        (
            "room.unban",
            ChangeReply {
                entry: None,
                duplicate: false,
            }
            .into(),
        ),
        (
            "room.mute",
            ChangeReply {
                entry: Some(Message {
                    id: MessageId(953),
                    seq: Seq(9),
                    client_id: "m-53c".into(),
                    change: Some(Change::Mute {
                        user: bob(),
                        until: 1795699392000,
                    }),
                    ..banned()
                }),
                duplicate: false,
            }
            .into(),
        ),
        (
            "room.unmute",
            ChangeReply {
                entry: Some(Message {
                    id: MessageId(954),
                    seq: Seq(10),
                    client_id: "m-54d".into(),
                    change: Some(Change::Unmute { user: bob() }),
                    ..banned()
                }),
                duplicate: false,
            }
            .into(),
        ),
        (
            "room.role",
            ChangeReply {
                entry: Some(Message {
                    id: MessageId(955),
                    seq: Seq(11),
                    client_id: "m-55e".into(),
                    change: Some(Change::Role {
                        user: bob(),
                        role: RoomRole::Moderator,
                    }),
                    ..banned()
                }),
                duplicate: false,
            }
            .into(),
        ),
        (
            "room.bans",
            BansReply {
                bans: vec![Ban {
                    user: bob(),
                    by: ana(),
                    reason: "spam".into(),
                    ts: 1795698792000,
                }],
            }
            .into(),
        ),
        (
            "admin.audit",
            AuditReply {
                entries: vec![AuditEntry {
                    id: 31,
                    ts: 1795698792000,
                    actor: ana(),
                    action: "ban".into(),
                    room: Some(RoomId(5)),
                    target: Some(bob()),
                    detail: r#"{"op":"ban","user":{"id":13,"name":"bob","guest":false},"reason":"spam"}"#.into(),
                }],
                next: Some(31),
            }
            .into(),
        ),
        ("admin.set_admin", Empty {}.into()),
        ("admin.deactivate", Empty {}.into()),
    ]
}

/// Every event the server's types build, one per variant.
fn events() -> Vec<Event> {
    let every = vec![
        Event::Message(hello()),
        Event::Message(edited()),
        Event::Message(deleted()),
        Event::Message(reacted()),
        Event::MemberJoined(MemberEvent {
            room: RoomId(5),
            user: bob(),
            member_count: 2,
        }),
        Event::MemberLeft(MemberEvent {
            room: RoomId(5),
            user: bob(),
            member_count: 1,
        }),
        Event::Typing(TypingEvent {
            room: RoomId(1),
            user: ana(),
            active: true,
        }),
        Event::Presence(PresenceEvent {
            user: bob(),
            online: false,
        }),
        Event::PresenceReset(PresenceResetEvent {
            online: vec![ana()],
        }),
        Event::RoomAdded(RoomAddedEvent {
            room: with_role(public_room(5, "rust-fans", 2, 0, true), RoomRole::Member),
        }),
        Event::RoomRemoved(RoomRemovedEvent { room: RoomId(5) }),
        Event::RoomRead(ReadMarker {
            room: RoomId(1),
            read_seq: Seq(41),
            unread: Some(0),
            mentions: Some(0),
        }),
        Event::RoomNotify(NotifyReply {
            room: RoomId(1),
            notify: NotifyLevel::All,
        }),
        Event::Message(banned()),
        Event::RoomInvited(Invite {
            room: RoomId(9),
            name: "launch".into(),
            by: ana(),
            ts: 1795698791000,
        }),
    ];
    // Adding an `Event` variant fails to compile here until it has an example above.
    for event in &every {
        match event {
            Event::Message(_)
            | Event::MemberJoined(_)
            | Event::MemberLeft(_)
            | Event::Typing(_)
            | Event::Presence(_)
            | Event::PresenceReset(_)
            | Event::RoomAdded(_)
            | Event::RoomRemoved(_)
            | Event::RoomRead(_)
            | Event::RoomNotify(_)
            | Event::RoomInvited(_) => {}
        }
    }
    every
}

/// Names in the examples of one subsection.
fn example_names(section: &str) -> BTreeSet<String> {
    examples()
        .into_keys()
        .filter(|(s, _)| s == section)
        .map(|(_, n)| n)
        .collect()
}

#[test]
fn every_request_example_parses_into_its_request() {
    let documented = example_names("requests");
    let known: BTreeSet<String> = Request::NAMES.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        documented, known,
        "section 10's requests are the server's requests"
    );
    for name in Request::NAMES {
        let text = example("requests", name);
        let (reference, request) = parse_frame(text.trim())
            .unwrap_or_else(|e| panic!("`{name}` example does not parse: {:?}", e.error));
        assert_eq!(request.name(), *name);
        assert!(!reference.is_empty());
    }
}

#[test]
fn section_4_documents_every_request() {
    let headings: BTreeSet<String> = PROTOCOL_MD
        .lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.split('`').next())
        .map(String::from)
        .collect();
    for name in Request::NAMES {
        assert!(
            headings.contains(*name),
            "section 4 has no heading for `{name}`"
        );
    }
}

#[test]
fn every_reply_serializes_to_its_example() {
    let replies = replies();
    let names: BTreeSet<String> = replies.iter().map(|(n, _)| n.to_string()).collect();
    let documented: BTreeSet<String> = example_names("replies")
        .into_iter()
        .filter(|n| n != "an error")
        .collect();
    assert_eq!(names, documented, "one reply example per request");
    let requests: BTreeSet<String> = Request::NAMES.iter().map(|n| n.to_string()).collect();
    assert_eq!(names, requests, "a reply for every request");
    for (name, reply) in replies {
        let (reference, _) = parse_frame(example("requests", name).trim()).expect("request");
        let encoded = encode_ok(&reference, &reply);
        assert_eq!(
            bytes_json(&encoded),
            json(&example("replies", name)),
            "the `{name}` reply differs from protocol.md"
        );
    }
}

#[test]
fn an_error_reply_is_its_example() {
    let mut error = ChatError::new(ErrorCode::RateLimited, "too many requests, slow down");
    error.retry_after_ms = Some(50);
    assert_eq!(
        bytes_json(&encode_error(Some("9"), &error)),
        json(&example("replies", "an error"))
    );
}

#[test]
fn every_event_serializes_to_its_example() {
    let events = events();
    let names: BTreeSet<String> = events.iter().map(|e| e.name().to_string()).collect();
    assert_eq!(names, example_names("events"), "one example per event");
    for event in events {
        let expected = json(&example("events", event.name()));
        let encoded = event.encode();
        assert_eq!(encoded.name, event.name());
        assert_eq!(
            bytes_json(&encoded.frame),
            expected,
            "`{}` frame",
            event.name()
        );
        assert_eq!(
            bytes_json(&encoded.data),
            expected["data"],
            "`{}` data (the Socket.IO argument)",
            event.name()
        );
        assert_eq!(
            normalized(serde_json::to_value(&event).expect("serializes")),
            expected
        );
    }
}

#[test]
fn section_5_lists_every_event() {
    let start = PROTOCOL_MD.find("## 5. Events").expect("section 5");
    let end = PROTOCOL_MD.find("## 6.").expect("section 6");
    let listed: BTreeSet<String> = PROTOCOL_MD[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|name| *name != "type")
        .map(String::from)
        .collect();
    let known: BTreeSet<String> = events().iter().map(|e| e.name().to_string()).collect();
    assert_eq!(listed, known);
}

#[test]
fn section_8_lists_every_websocket_error_code() {
    let start = PROTOCOL_MD.find("## 8. Error codes").expect("section 8");
    let end = PROTOCOL_MD.find("## 9.").expect("section 9");
    let listed: BTreeSet<String> = PROTOCOL_MD[start..end]
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(String::from)
        .collect();
    for code in [
        ErrorCode::BadJson,
        ErrorCode::UnknownType,
        ErrorCode::InvalidRequest,
        ErrorCode::BinaryUnsupported,
        ErrorCode::Unauthenticated,
        ErrorCode::AlreadyAuthenticated,
        ErrorCode::RateLimited,
        ErrorCode::EmptyMessage,
        ErrorCode::MessageTooLong,
        ErrorCode::UnknownRoom,
        ErrorCode::NotMember,
        ErrorCode::Forbidden,
        ErrorCode::InvalidName,
        ErrorCode::NameTaken,
        ErrorCode::UnknownUser,
        ErrorCode::Internal,
        ErrorCode::LimitReached,
        ErrorCode::UnknownMessage,
        ErrorCode::MessageDeleted,
        ErrorCode::InvalidThread,
        ErrorCode::InvalidEmoji,
        ErrorCode::TooManyReactions,
        ErrorCode::UnknownFile,
        ErrorCode::Banned,
        ErrorCode::Muted,
        ErrorCode::RoomArchived,
        ErrorCode::AccountDeactivated,
    ] {
        assert!(
            listed.contains(code.as_str()),
            "section 8 lacks `{}`",
            code.as_str()
        );
    }
}

#[test]
fn close_codes_have_their_documented_reasons() {
    let start = PROTOCOL_MD.find("### Close codes").expect("close codes");
    let table = &PROTOCOL_MD[start..];
    for code in [
        close::NORMAL,
        close::GOING_AWAY,
        close::PROTOCOL_ERROR,
        close::BAD_DATA,
        close::TOO_BIG,
        close::INTERNAL,
        close::UNAUTHENTICATED,
        close::REVOKED,
        close::SLOW_CONSUMER,
    ] {
        assert!(
            table.contains(&format!("| `{code}` |")),
            "close code {code} is not documented"
        );
        if code != close::NORMAL {
            assert!(
                !close::reason(code).is_empty(),
                "close code {code} has no reason"
            );
        }
    }
}
