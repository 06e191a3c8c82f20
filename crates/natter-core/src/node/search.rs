//! `search` (and `GET /api/search`): the query parsed, the rooms the searcher may read worked
//! out here (authorization lives in core: the store only searches the rooms it is given), and
//! each result's text split into hit and non-hit runs.

use super::Node;
use crate::error::{ChatError, ErrorCode};
use crate::metrics::RateLimitKind;
use crate::model::*;
use crate::protocol::*;
use crate::search;
use crate::store::name_key;

/// The most public rooms a `public: true` search looks in (newest-named first is not a
/// thing: by name); beyond it, `in:` a room names it exactly.
const MAX_PUBLIC_ROOMS_SEARCHED: u32 = 10_000;

fn cursor_of(order: SearchOrder, offset: u32, last: &Message) -> String {
    match order {
        SearchOrder::Newest => format!("t{}.{}", last.ts, last.id.0),
        SearchOrder::Relevance => format!("o{offset}"),
    }
}

fn parse_cursor(order: SearchOrder, cursor: &str) -> Result<SearchPage, ChatError> {
    let bad = || ChatError::invalid("`cursor` must be a `next` from an earlier `search`");
    match (order, cursor.as_bytes().first()) {
        (SearchOrder::Newest, Some(b't')) => {
            let (ts, id) = cursor[1..].split_once('.').ok_or_else(bad)?;
            Ok(SearchPage::Before {
                ts: ts.parse().map_err(|_| bad())?,
                id: MessageId(id.parse().map_err(|_| bad())?),
            })
        }
        (SearchOrder::Relevance, Some(b'o')) => {
            Ok(SearchPage::Offset(cursor[1..].parse().map_err(|_| bad())?))
        }
        _ => Err(bad()),
    }
}

impl Node {
    /// Searches as `user`: their rooms (and public ones with `public`).
    pub async fn search_as(&self, user: &User, args: SearchArgs) -> Result<SearchReply, ChatError> {
        let taken = self
            .searches
            .take(user.id, self.config.search_per_minute)
            .map_err(|wait| ChatError::rate_limited("searching too fast, slow down", wait));
        self.count_refusal(RateLimitKind::Search, taken)?;
        let parsed = search::parse(&args.query)?;
        if parsed.is_empty() {
            return Err(ChatError::invalid(
                "say what to look for: words, a \"phrase\", from:, in:, before: or after:",
            ));
        }
        let limit = args.limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
        if !(1..=MAX_SEARCH_LIMIT).contains(&limit) {
            return Err(ChatError::invalid(format!(
                "`limit` must be 1 to {MAX_SEARCH_LIMIT}"
            )));
        }
        let page = match args.cursor.as_deref() {
            None | Some("") => SearchPage::First,
            Some(c) => parse_cursor(args.order, c)?,
        };
        // The rooms this user may read, as results name them.
        let mut rooms: Vec<RoomRef> = self
            .store
            .rooms_of(user.id)
            .await?
            .into_iter()
            .map(|(r, peer)| RoomRef {
                id: r.id,
                name: r.name,
                kind: r.kind,
                peer,
            })
            .collect();
        // Archived public rooms stay searchable.
        for archived in [false, true].into_iter().filter(|_| args.public) {
            let mut after = String::new();
            loop {
                let batch = self
                    .store
                    .public_rooms_page("", &after, 1000, archived)
                    .await?;
                let Some(last) = batch.last() else {
                    break;
                };
                after = name_key(&last.name);
                let more = batch.len() == 1000;
                for r in batch {
                    if !rooms.iter().any(|m| m.id == r.id) {
                        rooms.push(RoomRef {
                            id: r.id,
                            name: r.name,
                            kind: r.kind,
                            peer: None,
                        });
                    }
                }
                if !more || rooms.len() as u32 >= MAX_PUBLIC_ROOMS_SEARCHED {
                    break;
                }
            }
        }
        if let Some(wanted) = &parsed.room {
            let key = name_key(wanted);
            rooms.retain(|r| match &r.peer {
                Some(peer) => name_key(&peer.name) == key,
                None => name_key(&r.name) == key,
            });
            if rooms.is_empty() {
                return Err(ChatError::new(
                    ErrorCode::UnknownRoom,
                    format!("no room `{wanted}` you can search"),
                ));
            }
        }
        let from = match &parsed.from {
            Some(name) => Some(
                self.store
                    .user_by_name(name)
                    .await?
                    .ok_or_else(|| {
                        ChatError::new(ErrorCode::UnknownUser, format!("no user `{name}`"))
                    })?
                    .id,
            ),
            None => None,
        };
        let offset = match page {
            SearchPage::Offset(n) => n,
            _ => 0,
        };
        let found = self
            .store
            .search(&SearchQuery {
                rooms: rooms.iter().map(|r| r.id).collect(),
                words: parsed.words.clone(),
                substrings: parsed.substrings.clone(),
                from,
                after_ts: parsed.after_ts,
                before_ts: parsed.before_ts,
                order: args.order,
                limit,
                page,
            })
            .await?;
        let next = (found.len() == limit as usize)
            .then(|| {
                found
                    .last()
                    .map(|m| cursor_of(args.order, offset + limit, m))
            })
            .flatten();
        let results = found
            .into_iter()
            .filter_map(|message| {
                let room = rooms.iter().find(|r| r.id == message.room)?.clone();
                let parts = search::parts(&message.body, &parsed)
                    .into_iter()
                    .map(|(text, hit)| TextPart { text, hit })
                    .collect();
                Some(SearchResult {
                    message,
                    room,
                    parts,
                })
            })
            .collect();
        Ok(SearchReply { results, next })
    }
}
