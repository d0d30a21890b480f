"""Users, chats and members: private chats, groups, admins, privacy mode, profile photos."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from telegram import (
    Chat,
    ChatMember,
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    ChatMemberUpdated,
    Message,
    MessageEntity,
    Update,
    User,
    UserProfilePhotos,
)

from tests.support.fake_telegram.common import (
    ApiError,
)
from tests.support.fake_telegram.files import scaled


class Chats:
    """Users, chats and members (a part of :class:`FakeTelegram`)."""

    def user(
        self, first_name: str, username: str | None = None, language_code: str | None = None
    ) -> User:
        """A person; ``language_code`` is what their Telegram app is set to (``"ru"``)."""
        user = User(
            id=1000 + next(self._ids),
            is_bot=False,
            first_name=first_name,
            username=username,
            language_code=language_code,
        )
        self._users[user.id] = user
        return user

    def private_chat(self, user: User) -> Chat:
        chat = Chat(id=user.id, type=Chat.PRIVATE, first_name=user.first_name)
        self.state.chats[chat.id] = chat
        return chat

    def group(
        self,
        title: str,
        *,
        owner: User | None = None,
        admins: tuple[User, ...] = (),
        bot_admin: bool = False,
        reactions: bool = True,
    ) -> Chat:
        """A group the bot is already in; ``reactions=False``: its settings allow none."""
        chat = Chat(id=-(100_000 + next(self._ids)), type=Chat.GROUP, title=title)
        self.state.chats[chat.id] = chat
        self.state.admins[chat.id] = {user.id for user in admins}
        if owner is not None:
            self.state.owners[chat.id] = owner.id
        if bot_admin:
            self.state.admins[chat.id].add(self.bot_user.id)
        if not reactions:
            self.state.no_reactions.add(chat.id)
        return chat

    async def add_bot(self, chat: Chat, by: User, admin: bool = False) -> Message:
        """``by`` adds the bot to the group: a my_chat_member update, then the service message."""
        self.state.chats[chat.id] = chat
        if admin:
            self.state.admins.setdefault(chat.id, set()).add(self.bot_user.id)
        await self._member_changed(chat, by, ChatMemberLeft(self.bot_user))
        return await self._user_message(chat, by, new_chat_members=(self.bot_user,))

    async def set_admin(self, chat: Chat, user: User, admin: bool = True) -> None:
        """Promote or demote someone; for the bot itself Telegram sends a my_chat_member update."""
        was = self._member(chat.id, user)
        admins = self.state.admins.setdefault(chat.id, set())
        if admin:
            admins.add(user.id)
        else:
            admins.discard(user.id)
        if user.id == self.bot_user.id:
            by = self._users.get(self.state.owners.get(chat.id, 0), user)  # the owner, if any
            await self._member_changed(chat, by, was)

    def sees_everything(self, chat_id: int) -> bool:
        """Whether every message in this chat reaches the bot (privacy off, or it is an admin)."""
        is_admin = self.bot_user.id in self.state.admins.get(chat_id, ())
        return chat_id > 0 or not self.privacy or is_admin

    def delivers(self, message: Message) -> bool:
        """Whether Telegram hands this user message to the bot (see the module's docstring)."""
        if self.sees_everything(message.chat.id) or message.new_chat_members:
            return True
        reply = message.reply_to_message
        if reply is not None and reply.from_user and reply.from_user.id == self.bot_user.id:
            return True
        commands = {
            **message.parse_entities([MessageEntity.BOT_COMMAND]),
            **message.parse_caption_entities([MessageEntity.BOT_COMMAND]),
        }
        addressed = f"@{self.bot_user.username}".lower()
        return any(command.lower().endswith(addressed) for command in commands.values())

    def _member(self, chat_id: int, user: User) -> ChatMember:
        if self.state.owners.get(chat_id) == user.id:
            return ChatMemberOwner(user, is_anonymous=False)
        if user.id in self.state.admins.get(chat_id, ()):
            return ChatMemberAdministrator(
                user, can_be_edited=False, is_anonymous=False, can_manage_chat=True,
                can_delete_messages=True, can_manage_video_chats=True,
                can_restrict_members=True, can_promote_members=False, can_change_info=True,
                can_invite_users=True, can_post_stories=False, can_edit_stories=False,
                can_delete_stories=False, can_pin_messages=True,
            )  # fmt: skip
        return ChatMemberMember(user)

    async def _member_changed(self, chat: Chat, by: User, old: ChatMember) -> None:
        new = self._member(chat.id, self.bot_user)
        change = ChatMemberUpdated(chat, by, datetime.now(UTC), old, new)
        await self._push(Update(update_id=next(self._update_ids), my_chat_member=change))

    def _chat(self, chat_id: int) -> Chat:
        if chat_id in self.state.chats:
            return self.state.chats[chat_id]
        messages = self.state.history.get(chat_id)
        if not messages:
            raise ApiError(400, "Bad Request: chat not found")
        return messages[0].chat

    def _m_getchatmember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        self._chat(chat_id)
        user = self._users.get(int(params["user_id"]))
        if user is None:
            raise ApiError(400, "Bad Request: PARTICIPANT_ID_INVALID")
        return self._member(chat_id, user).to_dict()

    def _m_getchatadministrators(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat_id = int(params["chat_id"])
        self._chat(chat_id)
        ids = self.state.admins.get(chat_id, set()) | set(
            [self.state.owners[chat_id]] if chat_id in self.state.owners else []
        )
        return [self._member(chat_id, self._users[user_id]).to_dict() for user_id in sorted(ids)]

    def set_profile_photo(self, user: User, image: bytes | None, hidden: bool = False) -> None:
        """The user's profile photo (None: none); ``hidden``: their privacy hides it from bots."""
        if image is None:
            self.state.profile_photos.pop(user.id, None)
        else:
            self.state.profile_photos[user.id] = tuple(
                self._photo_size(data, width, height)
                for data, width, height in scaled(image, (160, 320, 640))
            )
        if hidden:
            self.state.hidden_profiles.add(user.id)
        else:
            self.state.hidden_profiles.discard(user.id)

    def _m_getuserprofilephotos(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = int(params["user_id"])
        if user_id not in self._users:
            raise ApiError(400, "Bad Request: user not found")
        sizes = self.state.profile_photos.get(user_id)
        if sizes is None or user_id in self.state.hidden_profiles:
            return {"total_count": 0, "photos": []}  # none, or privacy hides it from bots
        return UserProfilePhotos(1, (sizes,)).to_dict()
