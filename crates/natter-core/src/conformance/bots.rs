//! The `Store`'s bots, API tokens and webhooks (`crate::bots`, migration 0011), stamped for
//! every backend by `store_conformance!`.

use crate::bots::{NewApiToken, TokenId, TokensOf};
use crate::error::StoreError;
use crate::model::*;
use crate::store::Store;
use std::sync::Arc;

fn token(
    bot: UserId,
    by: UserId,
    hash: &str,
    rooms: Vec<RoomId>,
    hook: Option<RoomId>,
) -> NewApiToken {
    NewApiToken {
        bot,
        name: format!("t-{hash}"),
        token_hash: hash.as_bytes().to_vec(),
        rooms,
        hook_room: hook,
        created_by: by,
        created_at: 1_000,
    }
}

/// A bot is a user with an owner: listed by owner (or all, by id), found by id, and no
/// longer one once removed (its user row stays). A user is a bot once.
pub async fn bots_and_owners(store: &Arc<dyn Store>, tag: &str) {
    let ana = store
        .create_user(&format!("bana{tag}"), Some("h"), false)
        .await
        .expect("ana");
    let bob = store
        .create_user(&format!("bbob{tag}"), Some("h"), false)
        .await
        .expect("bob");
    let one = store
        .create_user(&format!("bone{tag}"), None, false)
        .await
        .expect("bot");
    let two = store
        .create_user(&format!("btwo{tag}"), None, false)
        .await
        .expect("bot");
    store.add_bot(one.id, ana.id, 10).await.expect("add");
    store.add_bot(two.id, bob.id, 20).await.expect("add");
    // Every User of a bot read from the store says so from now on.
    let one = User { bot: true, ..one };
    assert_eq!(
        store.user_by_name(&one.name).await.expect("user"),
        Some(one.clone())
    );
    assert!(
        !store
            .user_by_name(&ana.name)
            .await
            .expect("user")
            .expect("ana")
            .bot
    );
    assert!(
        matches!(
            store.add_bot(one.id, bob.id, 30).await,
            Err(StoreError::Conflict(_))
        ),
        "a user is a bot once"
    );
    let anas = store.bots(Some(ana.id)).await.expect("bots");
    assert_eq!(anas.len(), 1);
    assert_eq!(anas[0].user, one);
    assert_eq!(anas[0].owner, ana.id);
    assert_eq!(anas[0].created_at, 10);
    let all: Vec<UserId> = store
        .bots(None)
        .await
        .expect("all")
        .iter()
        .map(|b| b.user.id)
        .collect();
    let mut ours: Vec<UserId> = all
        .into_iter()
        .filter(|id| *id == one.id || *id == two.id)
        .collect();
    ours.dedup();
    assert_eq!(ours, vec![one.id, two.id], "all bots, by id");
    assert_eq!(
        store.bot(two.id).await.expect("bot").map(|b| b.owner),
        Some(bob.id)
    );
    assert!(
        store.bot(ana.id).await.expect("bot").is_none(),
        "a person is no bot"
    );
    // A profile says whether its user is a bot, alone and in a member list.
    let room = store
        .create_room(&format!("broom{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room")
        .id;
    super::join(&**store, room, &one).await.expect("join");
    let mut members: Vec<(UserId, bool)> = store
        .member_profiles(room)
        .await
        .expect("members")
        .into_iter()
        .map(|(p, _)| (p.user.id, p.bot))
        .collect();
    members.sort();
    assert_eq!(members, vec![(ana.id, false), (one.id, true)]);
    assert!(profile_says_bot(store, one.id).await);
    assert!(!profile_says_bot(store, ana.id).await);
    // Its messages and its place in member lists carry it too.
    let sent = store
        .append(NewMessage {
            room,
            sender: one.clone(),
            body: "beep".into(),
            client_id: format!("beep{tag}"),
            ts: 1,
            ..NewMessage::default()
        })
        .await
        .expect("append");
    let stored = store
        .messages_after(room, Seq::ZERO, 10)
        .await
        .expect("read");
    let beep = stored.iter().find(|m| m.body == "beep").expect("beep");
    assert!(beep.sender.bot && sent.message.sender.bot);
    let listed = store.members(room).await.expect("members");
    assert!(listed.iter().any(|u| u.id == one.id && u.bot));
    assert!(store.remove_bot(one.id).await.expect("remove"));
    assert!(!store.remove_bot(one.id).await.expect("again"));
    assert!(store.bot(one.id).await.expect("bot").is_none());
    // What it wrote was a bot's: the flag stays with the user row.
    assert!(
        profile_says_bot(store, one.id).await,
        "still shown as a bot"
    );
    assert!(
        store.user_by_name(&one.name).await.expect("user").is_some(),
        "the user row stays"
    );
}

/// Whether `user`'s stored profile says it is a bot.
async fn profile_says_bot(store: &Arc<dyn Store>, user: UserId) -> bool {
    store
        .profile(user)
        .await
        .expect("profile")
        .expect("a profile")
        .bot
}

/// Tokens are found by hash with their bot (scope and hook room as stored); a hash is used
/// once; a bot's tokens and a room's webhooks are listed apart, by id; a touch records the
/// last use; a delete returns the token once; removing a bot deletes its tokens and webhooks.
pub async fn api_tokens_and_webhooks(store: &Arc<dyn Store>, tag: &str) {
    let ana = store
        .create_user(&format!("tana{tag}"), Some("h"), false)
        .await
        .expect("ana");
    let bot = store
        .create_user(&format!("tbot{tag}"), None, false)
        .await
        .expect("bot");
    store.add_bot(bot.id, ana.id, 1).await.expect("add");
    let bot = User { bot: true, ..bot };
    let room = store
        .create_room(&format!("troom{tag}"), ana.id, RoomKind::Public)
        .await
        .expect("room")
        .id;
    let a = store
        .create_api_token(token(
            bot.id,
            ana.id,
            &format!("a{tag}"),
            vec![room, RoomId(room.0 + 1000)],
            None,
        ))
        .await
        .expect("token");
    let b = store
        .create_api_token(token(bot.id, ana.id, &format!("b{tag}"), vec![], None))
        .await
        .expect("token");
    let hook = store
        .create_api_token(token(
            bot.id,
            ana.id,
            &format!("h{tag}"),
            vec![room],
            Some(room),
        ))
        .await
        .expect("hook");
    assert!(
        matches!(
            store
                .create_api_token(token(bot.id, ana.id, &format!("a{tag}"), vec![], None))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "a hash is used once"
    );
    assert_eq!(a.rooms, vec![room, RoomId(room.0 + 1000)]);
    assert!(a.last_used_at.is_none());
    let (found, user) = store
        .api_token(format!("a{tag}").as_bytes())
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(found, a);
    assert_eq!(user, bot);
    assert!(store.api_token(b"nothing").await.expect("lookup").is_none());

    let tokens = store
        .api_tokens(TokensOf::Bot(bot.id))
        .await
        .expect("tokens");
    assert_eq!(
        tokens.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    let hooks = store
        .api_tokens(TokensOf::Hooks(room))
        .await
        .expect("hooks");
    assert_eq!(hooks, vec![hook.clone()]);
    assert_eq!(hooks[0].hook_room, Some(room));

    store.touch_api_token(b.id, 5_000).await.expect("touch");
    let (touched, _) = store
        .api_token(format!("b{tag}").as_bytes())
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(touched.last_used_at, Some(5_000));

    assert_eq!(
        store
            .delete_api_token(a.id)
            .await
            .expect("delete")
            .map(|t| t.id),
        Some(a.id)
    );
    assert!(store.delete_api_token(a.id).await.expect("again").is_none());
    assert!(store
        .api_token(format!("a{tag}").as_bytes())
        .await
        .expect("lookup")
        .is_none());
    assert!(store
        .delete_api_token(TokenId(i64::MAX))
        .await
        .expect("none")
        .is_none());

    assert!(store.remove_bot(bot.id).await.expect("remove"));
    assert!(store
        .api_tokens(TokensOf::Bot(bot.id))
        .await
        .expect("tokens")
        .is_empty());
    assert!(store
        .api_tokens(TokensOf::Hooks(room))
        .await
        .expect("hooks")
        .is_empty());
    assert!(store
        .api_token(format!("h{tag}").as_bytes())
        .await
        .expect("lookup")
        .is_none());
}
