//! Profiles: `profile.get` (anyone's, by name: display name, status, avatar, online or last
//! seen) and `profile.update` (one's own). Avatars are image uploads of their owner's; any
//! signed-in user may fetch a file that is someone's avatar (`files.rs`).

use super::Node;
use crate::error::{ChatError, ErrorCode, Refusal, StoreError};
use crate::files::FileId;
use crate::model::*;
use crate::protocol::*;
use crate::session::SessionHandle;
use serde_json::Value;

/// Checks a display name or status: at most `max` characters, no control characters.
fn check_line(field: &str, text: &str, max: usize) -> Result<String, ChatError> {
    let text = text.trim();
    if text.chars().count() > max {
        return Err(ChatError::invalid(format!(
            "`{field}` is at most {max} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(ChatError::invalid(format!(
            "`{field}` is one line without control characters"
        )));
    }
    Ok(text.to_string())
}

/// A stored profile as clients see it, given its avatar's record (looked up by the caller:
/// one at a time, or a member list's all at once): "last seen" only for someone offline.
pub(crate) fn member_view(
    profile: Profile,
    online: bool,
    avatar: Option<crate::files::StoredFile>,
) -> MemberView {
    MemberView {
        online,
        display_name: profile.display_name,
        status: profile.status,
        avatar: avatar.map(|f| f.info()),
        last_seen: (!online).then_some(profile.last_active),
        role: None,
        bot: profile.bot,
        user: profile.user,
    }
}

impl Node {
    /// A stored profile as clients see it: the avatar's file info, and "last seen" only for
    /// someone offline.
    pub(crate) async fn profile_view(
        &self,
        profile: Profile,
        online: bool,
    ) -> Result<MemberView, ChatError> {
        let avatar = match &profile.avatar {
            Some(id) => self.store.file(id).await?,
            None => None,
        };
        Ok(member_view(profile, online, avatar))
    }

    async fn is_online(&self, user: UserId) -> Result<bool, ChatError> {
        Ok(self
            .broker
            .online_users()
            .await?
            .iter()
            .any(|u| u.id == user))
    }

    pub(crate) async fn profile_get(&self, name: &str) -> Result<Reply, ChatError> {
        let user = self.named_user(name).await?;
        let profile = self
            .store
            .profile(user.id)
            .await?
            .ok_or_else(|| ChatError::new(ErrorCode::UnknownUser, "no user of that name"))?;
        let online = self.is_online(user.id).await?;
        Ok(ProfileReply {
            profile: self.profile_view(profile, online).await?,
        }
        .into())
    }

    pub(crate) async fn profile_update(
        &self,
        session: &SessionHandle,
        args: ProfileArgs,
    ) -> Result<Reply, ChatError> {
        let display_name = args
            .display_name
            .map(|n| check_line("display_name", &n, MAX_DISPLAY_NAME_CHARS))
            .transpose()?;
        let status = args
            .status
            .map(|s| check_line("status", &s, MAX_STATUS_CHARS))
            .transpose()?;
        let avatar = match args.avatar {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(id)) if FileId::is_valid(&id) => Some(Some(FileId(id))),
            Some(Value::String(_)) => {
                return Err(ChatError::new(ErrorCode::UnknownFile, "no such file"))
            }
            Some(_) => return Err(ChatError::invalid("`avatar` is a file id or null")),
        };
        let update = ProfileUpdate {
            display_name,
            status,
            avatar,
        };
        let profile = match self.store.set_profile(session.user.id, update).await {
            Ok(Some(profile)) => profile,
            Ok(None) => return Err(ChatError::internal()),
            Err(StoreError::Refused(Refusal::UnknownFile)) => {
                return Err(ChatError::new(
                    ErrorCode::UnknownFile,
                    "an avatar is one of your own image uploads",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(ProfileReply {
            profile: self.profile_view(profile, true).await?,
        }
        .into())
    }
}
