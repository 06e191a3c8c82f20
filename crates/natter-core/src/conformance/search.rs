//! Store rule for `search` (re-exported by `conformance::store`, whose macro runs it).

use crate::model::*;
use crate::store::Store;
use std::sync::Arc;

/// Finds messages by word (case-insensitively), by phrase (whole words; in CJK any substring),
/// by sender and time, only in the rooms given, never deleted ones or change entries, edited ones by their
/// current text only; thread replies too; newest first, paged without overlap.
pub async fn search(store: &Arc<dyn Store>, tag: &str) {
    let ana = store
        .create_user(&format!("se-ana{tag}"), None, false)
        .await
        .expect("user");
    let bob = store
        .create_user(&format!("se-bob{tag}"), None, false)
        .await
        .expect("user");
    let a = store
        .create_room(&format!("search-a{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    let b = store
        .create_room(&format!("search-b{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room");
    super::join(&**store, a.id, &bob).await.expect("join");
    let base: Millis = 1_790_000_000_000;
    let mut n = 0;
    let mut put = |room: RoomId, who: &User, body: &str, thread: Option<Seq>| {
        n += 1;
        NewMessage {
            room,
            sender: who.clone(),
            body: body.into(),
            client_id: format!("s{n}"),
            ts: base + n * 1000,
            thread,
            ..NewMessage::default()
        }
    };
    let mut sent = Vec::new();
    for (room, who, body) in [
        (a.id, &ana, "We DEPLOY on Friday."),
        (a.id, &bob, "deploy failed again"),
        (a.id, &bob, "東京で会いましょう"),
        (a.id, &ana, "Release notes are out"),
        (a.id, &bob, "deploy the secret key"),
        (a.id, &ana, "old words here"),
        (b.id, &ana, "deploy elsewhere"),
        (a.id, &ana, "redeployment is not the word"),
    ] {
        let m = store
            .append(put(room, who, body, None))
            .await
            .expect("append");
        sent.push(m.message);
    }
    let reply = store
        .append(put(a.id, &bob, "deploy from a thread", Some(sent[0].seq)))
        .await
        .expect("reply")
        .message;
    let change = |target: &Message, who: &User, c: Change, body: &str, cid: &str| NewChange {
        room: target.room,
        sender: who.clone(),
        client_id: cid.into(),
        ts: base + 100_000,
        change: c,
        body: body.into(),
        max_reactions: 20,
    };
    store
        .change(change(
            &sent[4],
            &bob,
            Change::Delete {
                target: sent[4].seq,
            },
            "",
            "d1",
        ))
        .await
        .expect("delete");
    store
        .change(change(
            &sent[5],
            &ana,
            Change::Edit {
                target: sent[5].seq,
            },
            "new deploy words",
            "e1",
        ))
        .await
        .expect("edit");
    let run = |q: SearchQuery| async move {
        store
            .search(&q)
            .await
            .expect("search")
            .into_iter()
            .map(|m| m.body)
            .collect::<Vec<_>>()
    };
    let q = |words: &[&str], subs: &[&str]| SearchQuery {
        rooms: vec![a.id],
        words: words.iter().map(|w| w.to_string()).collect(),
        substrings: subs.iter().map(|s| s.to_string()).collect(),
        limit: 50,
        ..SearchQuery::default()
    };
    assert_eq!(
        run(q(&["deploy"], &[])).await,
        vec![
            "deploy from a thread",
            "new deploy words",
            "deploy failed again",
            "We DEPLOY on Friday."
        ],
        "newest first (an edit keeps its message's time); its current text; a thread reply; \
         not the deleted one, not another room, not a word that merely contains it"
    );
    assert!(
        run(q(&["old"], &[])).await.is_empty(),
        "an edited-away word"
    );
    assert!(run(q(&["secret"], &[])).await.is_empty(), "a deleted text");
    assert_eq!(
        run(q(&["friday", "deploy"], &[])).await,
        vec!["We DEPLOY on Friday."]
    );
    assert_eq!(run(q(&[], &["東京"])).await, vec!["東京で会いましょう"]);
    assert_eq!(
        run(q(&[], &["会い"])).await,
        vec!["東京で会いましょう"],
        "a substring"
    );
    assert_eq!(
        run(q(&[], &["release notes"])).await,
        vec!["Release notes are out"]
    );
    assert!(
        run(q(&[], &["notes release"])).await.is_empty(),
        "a phrase keeps its order"
    );
    assert_eq!(
        run(q(&[], &["deploy"])).await,
        vec![
            "deploy from a thread",
            "new deploy words",
            "deploy failed again",
            "We DEPLOY on Friday."
        ],
        "a quoted word is found as a whole word, in any case: not inside \"redeployment\""
    );
    assert_eq!(
        run(q(&["friday"], &["we deploy"])).await,
        vec!["We DEPLOY on Friday."],
        "words and a phrase together"
    );
    assert!(
        run(q(&[], &["eploy"])).await.is_empty(),
        "not the middle of a word"
    );
    let mut by_bob = q(&["deploy"], &[]);
    by_bob.from = Some(bob.id);
    assert_eq!(
        run(by_bob).await,
        vec!["deploy from a thread", "deploy failed again"]
    );
    let mut window = q(&["deploy"], &[]);
    window.after_ts = Some(sent[1].ts);
    window.before_ts = Some(reply.ts);
    assert_eq!(
        run(window).await,
        vec!["new deploy words", "deploy failed again"],
        "after is inclusive, before not"
    );
    let mut both = q(&["deploy"], &[]);
    both.rooms = vec![a.id, b.id];
    assert_eq!(
        run(both.clone()).await.len(),
        5,
        "the rooms given, all of them"
    );
    both.rooms = vec![];
    assert!(run(both).await.is_empty(), "no rooms, no results");
    // Pages: two at a time, by the last result's (ts, id).
    let mut paged = q(&["deploy"], &[]);
    paged.limit = 2;
    let first = store.search(&paged).await.expect("page 1");
    assert_eq!(first.len(), 2);
    let last = &first[1];
    paged.page = SearchPage::Before {
        ts: last.ts,
        id: last.id,
    };
    let second: Vec<String> = store
        .search(&paged)
        .await
        .expect("page 2")
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(second, vec!["deploy failed again", "We DEPLOY on Friday."]);
    let mut ranked = q(&["deploy"], &[]);
    ranked.order = SearchOrder::Relevance;
    let mut got = run(ranked.clone()).await;
    got.sort();
    assert_eq!(got.len(), 4, "relevance finds the same messages");
    ranked.limit = 3;
    let top = store.search(&ranked).await.expect("top");
    ranked.page = SearchPage::Offset(3);
    let rest = store.search(&ranked).await.expect("rest");
    assert_eq!(top.len() + rest.len(), 4, "offset pages add up");
    assert!(
        top.iter().all(|t| rest.iter().all(|r| r.id != t.id)),
        "no overlap"
    );
    let found = store.search(&q(&["friday"], &[])).await.expect("state");
    assert_eq!(found[0].seq, sent[0].seq);
    assert_eq!(found[0].replies, 1, "results come in their current state");
}
