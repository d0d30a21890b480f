"""A fake Telegram Bot API server on 127.0.0.1, for tests and load runs of the real bot.

The bot talks to it over real HTTP (point ``TELEGRAM_BASE_URL``/``TELEGRAM_BASE_FILE_URL`` at
:attr:`FakeTelegram.base_url`/:attr:`FakeTelegram.base_file_url`); every reply is built from
python-telegram-bot's own classes (``Message(...).to_dict()``), so the bot sees what Telegram
would send. The other side is for people: users and chats, sending photos (Telegram-style, in
several sizes), files and text, pressing buttons that exist, and a history to read back.

Groups behave as Telegram's documented rules say. With privacy mode on (``privacy=True``,
Telegram's default; getMe's ``can_read_all_group_messages`` is then false) a group message
reaches the bot only if it is a command addressed to it (``/cmd@bot``, in a text or a caption),
a reply to one of the bot's messages, or a service message; a bare ``/cmd`` is never passed on
(Telegram passes it only when this bot was the last bot to write there). In groups where the bot
is an admin, and with privacy off, everything reaches it. Bots get about 20 messages a minute into
one group (``group_messages`` per ``group_window`` seconds, with Telegram's burst allowance); past
that the Bot API answers 429 with ``retry_after``. Texts, captions, alerts, button data and the
bot's profile are held to Telegram's lengths.

Albums go both ways (users send them with :meth:`FakeTelegram.send_album`; sendMediaGroup takes
2-10 photos or files, never mixed). Sticker sets follow Telegram's rules: only users who have
written to the bot in private may own one (else ``PEER_ID_INVALID``), names end in
``_by_<bot>``, a static set holds 120 stickers (then ``STICKERS_TOO_MUCH``), and uploads must be
512 px WebP/PNG. Users may have a profile photo, or hide it from bots; tests send inline queries
(:meth:`FakeTelegram.inline_query`) and read the bot's answer (:meth:`FakeTelegram.inline_answer`).

Moving pictures: users send video notes, animations (GIFs, which Telegram delivers as MP4 with
both ``animation`` and ``document`` set), videos and video files, each with the duration, size
and file_size Telegram reports; the bot answers with sendVideoNote (a square of at most 640 px),
sendAnimation and sendVideo, whose files are read with PyAV for their size and length, at most
50 MB (Telegram's upload limit for bots); deleteMessage removes a message. getFile refuses files
over 20 MB ("file is too big"), as Telegram does.

Never used by the running bot. Needs aiohttp (the ``dev`` extra).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import itertools
import json
import logging
import math
import mimetypes
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import ClientSession, web
from PIL import Image
from telegram import (
    Animation,
    BotCommand,
    CallbackQuery,
    Chat,
    ChatMember,
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    ChatMemberUpdated,
    Document,
    File,
    InlineKeyboardMarkup,
    InlineQuery,
    Message,
    MessageEntity,
    PhotoSize,
    Sticker,
    StickerSet,
    Update,
    User,
    UserProfilePhotos,
    Video,
    VideoNote,
    WebhookInfo,
)
from telegram.constants import (
    BotCommandLimit,
    BotDescriptionLimit,
    CallbackQueryLimit,
    FloodLimit,
    InlineKeyboardButtonLimit,
    InlineQueryLimit,
    MediaGroupLimit,
    MessageLimit,
    ReactionEmoji,
)

logger = logging.getLogger(__name__)

DEFAULT_TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijkl"
PHOTO_SIZES = (90, 320, 800, 1280)  # the longest sides Telegram makes of a photo
JSON_PARAMS = {
    "reply_markup", "reply_parameters", "allowed_updates", "commands", "media", "reaction", "scope",
    "stickers", "sticker", "results", "button",
}  # fmt: skip
#: stickers a static sticker set may hold; addStickerToSet beyond it: STICKERS_TOO_MUCH
STATIC_SET_LIMIT = 120
#: getFile hands bots files up to 20 MB; bots upload files up to 50 MB
DOWNLOAD_LIMIT = 20 * 1024 * 1024
UPLOAD_LIMIT = 50 * 1024 * 1024
#: video notes are squares of at most this many pixels
VIDEO_NOTE_MAX_SIDE = 640
#: Telegram's update types that getUpdates leaves out unless asked for by name
NOT_BY_DEFAULT = {"chat_member", "message_reaction", "message_reaction_count"}
_ENTITY = re.compile(r"(?<!\S)(/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?|@[A-Za-z0-9_]{3,})")


@dataclass(frozen=True)
class Call:
    """One Bot API request the bot made."""

    method: str
    params: dict[str, Any]
    at: float


@dataclass
class StoredFile:
    data: bytes
    path: str
    unique_id: str


@dataclass
class _Webhook:
    url: str = ""
    secret: str | None = None


@dataclass
class _State:
    updates: list[dict[str, Any]] = field(default_factory=list)
    history: dict[int, list[Message]] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    callback_answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    commands: list[BotCommand] = field(default_factory=list)
    unknown_methods: list[str] = field(default_factory=list)
    #: every chat the users' side made, by id (a group may have no message yet)
    chats: dict[int, Chat] = field(default_factory=dict)
    #: group id -> ids of its admins (the bot's own id when it is one) and its owner
    admins: dict[int, set[int]] = field(default_factory=dict)
    owners: dict[int, int] = field(default_factory=dict)
    #: groups whose settings allow no reactions
    no_reactions: set[int] = field(default_factory=set)
    #: (chat id, message id) -> the bot's reaction on that message now
    reactions: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    #: (scope type, language code or "") -> the command list setMyCommands gave for them
    command_lists: dict[tuple[str, str], list[BotCommand]] = field(default_factory=dict)
    #: language code or "" -> setMyDescription's / setMyShortDescription's text
    descriptions: dict[str, str] = field(default_factory=dict)
    short_descriptions: dict[str, str] = field(default_factory=dict)
    #: user messages Telegram kept from the bot (privacy mode), and updates it dropped
    #: because the bot's allowed_updates did not name their type
    withheld: list[Message] = field(default_factory=list)
    dropped_updates: list[dict[str, Any]] = field(default_factory=list)
    #: group id -> (messages in the flood bucket, when it was last filled)
    flood: dict[int, tuple[float, float]] = field(default_factory=dict)
    #: the 429 answers given: (chat id, method)
    flood_errors: list[tuple[int, str]] = field(default_factory=list)
    #: users who have started the bot (written to it in private): only they may own stickers
    started: set[int] = field(default_factory=set)
    #: sticker set name -> the set (createNewStickerSet, addStickerToSet)
    sticker_sets: dict[str, StickerSetState] = field(default_factory=dict)
    #: user id -> their profile photo's sizes, smallest first; users who hide it from bots
    profile_photos: dict[int, tuple[PhotoSize, ...]] = field(default_factory=dict)
    hidden_profiles: set[int] = field(default_factory=set)
    #: inline query id -> answerInlineQuery's parameters
    inline_answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (chat id, message id) of every message deleteMessage removed
    deleted: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class StickerSetState:
    owner: int
    title: str
    stickers: list[str] = field(default_factory=list)  # the stickers' file ids


def has_keyboard(message: Message) -> bool:
    """A reply with buttons (``wait_reply``'s predicate for a keyboard)."""
    return message.reply_markup is not None


class FakeTelegram:
    """One bot's view of Telegram, plus the users who talk to it."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        bot_username: str = "facemask_test_bot",
        *,
        privacy: bool = True,
        group_messages: int = FloodLimit.MESSAGES_PER_MINUTE_PER_GROUP,
        group_window: float = 60.0,
    ):
        self.token = token
        #: @BotFather's /setprivacy: on, the bot sees only what is addressed to it in groups
        self.privacy = privacy
        self.group_messages = group_messages
        self.group_window = group_window
        self.bot_user = User(
            id=int(token.split(":")[0]),
            is_bot=True,
            first_name="Facemask",
            username=bot_username,
            can_join_groups=True,
            can_read_all_group_messages=not privacy,
            supports_inline_queries=False,
        )
        self.state = _State()
        self.webhook = _Webhook()
        #: method -> (error_code, description): the next call of that method fails like this
        self.fail_next: dict[str, tuple[int, str]] = {}
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._users: dict[int, User] = {self.bot_user.id: self.bot_user}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._http: ClientSession | None = None
        self.port = 0

    # ------------------------------------------------------------------ server life

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def env(self) -> dict[str, str]:
        """The settings that point a bot at this server."""
        return {
            "TELEGRAM_BOT_TOKEN": self.token,
            "TELEGRAM_BASE_URL": self.base_url,
            "TELEGRAM_BASE_FILE_URL": self.base_file_url,
        }

    async def start(self) -> None:
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await self._site.start()
        self.port = self._site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ outages

    async def go_away(self) -> None:
        """Telegram cannot be reached: new connections are refused, open ones are cut. Users
        may go on sending; their updates wait here, as Telegram keeps them."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        assert self._runner is not None and self._runner.server is not None
        for connection in list(self._runner.server.connections):
            connection.force_close()

    async def come_back(self) -> None:
        """Reachable again, at the same address."""
        assert self._runner is not None and self._site is None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()

    # ------------------------------------------------------------------ the users' side

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

    def reaction(self, message: Message) -> list[str]:
        """The bot's reaction on a message now (empty when none)."""
        return self.state.reactions.get((message.chat.id, message.message_id), [])

    async def send_text(
        self, chat: Chat, user: User, text: str, reply_to: Message | None = None
    ) -> Message:
        return await self._user_message(
            chat, user, text=text, entities=_entities(text), reply_to_message=_shallow(reply_to)
        )

    async def send_photo(
        self,
        chat: Chat,
        user: User,
        image: bytes,
        caption: str | None = None,
        reply_to: Message | None = None,
        sizes: tuple[int, ...] = PHOTO_SIZES,
    ) -> Message:
        """A compressed photo, stored like Telegram does: several sizes, largest last."""
        photo_sizes = [
            self._photo_size(data, width, height) for data, width, height in _scaled(image, sizes)
        ]
        return await self._user_message(
            chat,
            user,
            photo=tuple(photo_sizes),
            caption=caption,
            caption_entities=_entities(caption or ""),
            reply_to_message=_shallow(reply_to),
        )

    async def send_document(
        self,
        chat: Chat,
        user: User,
        data: bytes,
        file_name: str,
        mime_type: str,
        caption: str | None = None,
        file_size: int | None = None,
    ) -> Message:
        """A file sent uncompressed; ``file_size`` can claim a size the data does not have."""
        document = self._document(data, file_name, mime_type, file_size)
        return await self._user_message(
            chat,
            user,
            document=document,
            caption=caption,
            caption_entities=_entities(caption or ""),
        )

    async def send_video_note(
        self,
        chat: Chat,
        user: User,
        data: bytes,
        duration: int,
        length: int,
        file_size: int | None = None,
        reply_to: Message | None = None,
    ) -> Message:
        """A round video note (no caption possible); ``file_size`` may claim another size."""
        file_id, stored = self._store(data, "video_notes", "mp4")
        note = VideoNote(
            file_id, stored.unique_id, length, duration,
            file_size=file_size if file_size is not None else len(data),
        )  # fmt: skip
        return await self._user_message(
            chat, user, video_note=note, reply_to_message=_shallow(reply_to)
        )

    async def send_animation(
        self,
        chat: Chat,
        user: User,
        data: bytes,
        width: int,
        height: int,
        duration: int,
        caption: str | None = None,
        file_name: str = "animation.gif.mp4",
        file_size: int | None = None,
    ) -> Message:
        """A GIF as Telegram delivers it: an MP4 ``animation``, with ``document`` set too."""
        size = file_size if file_size is not None else len(data)
        file_id, stored = self._store(data, "animations", "mp4")
        animation = Animation(
            file_id, stored.unique_id, width, height, duration,
            file_name=file_name, mime_type="video/mp4", file_size=size,
        )  # fmt: skip
        document = Document(
            file_id, stored.unique_id, file_name=file_name, mime_type="video/mp4", file_size=size
        )
        return await self._user_message(
            chat, user, animation=animation, document=document, caption=caption,
            caption_entities=_entities(caption or ""),
        )  # fmt: skip

    async def send_video(
        self,
        chat: Chat,
        user: User,
        data: bytes,
        width: int,
        height: int,
        duration: int,
        caption: str | None = None,
        file_size: int | None = None,
        reply_to: Message | None = None,
    ) -> Message:
        """A video (sent as a video, not as a file); ``file_size`` may claim another size."""
        file_id, stored = self._store(data, "videos", "mp4")
        video = Video(
            file_id, stored.unique_id, width, height, duration, mime_type="video/mp4",
            file_size=file_size if file_size is not None else len(data),
        )  # fmt: skip
        return await self._user_message(
            chat, user, video=video, caption=caption, caption_entities=_entities(caption or ""),
            reply_to_message=_shallow(reply_to),
        )  # fmt: skip

    async def send_album(
        self, chat: Chat, user: User, images: list[bytes], caption: str | None = None
    ) -> list[Message]:
        """Photos sent together as one album: one message (and update) each, one media group."""
        group = f"album-{next(self._ids)}"
        messages = []
        for n, image in enumerate(images):
            sizes = tuple(
                self._photo_size(data, width, height)
                for data, width, height in _scaled(image, PHOTO_SIZES)
            )
            text = caption if n == 0 else None  # Telegram shows an album's caption once
            messages.append(
                await self._user_message(
                    chat,
                    user,
                    photo=sizes,
                    caption=text,
                    caption_entities=_entities(text or ""),
                    media_group_id=group,
                )  # fmt: skip
            )
        return messages

    def set_profile_photo(self, user: User, image: bytes | None, hidden: bool = False) -> None:
        """The user's profile photo (None: none); ``hidden``: their privacy hides it from bots."""
        if image is None:
            self.state.profile_photos.pop(user.id, None)
        else:
            self.state.profile_photos[user.id] = tuple(
                self._photo_size(data, width, height)
                for data, width, height in _scaled(image, (160, 320, 640))
            )
        if hidden:
            self.state.hidden_profiles.add(user.id)
        else:
            self.state.hidden_profiles.discard(user.id)

    def fill_sticker_set(self, user: User, name: str, count: int) -> None:
        """A set of ``user``'s that already holds ``count`` stickers."""
        stickers = [self._store(b"RIFF-webp", "stickers", "webp")[0] for _ in range(count)]
        self.state.sticker_sets[name] = StickerSetState(user.id, "Earlier stickers", stickers)

    async def inline_query(self, user: User, query: str = "") -> str:
        """``user`` types ``@bot query`` somewhere: an inline query; its id."""
        query_id = str(next(self._ids))
        inline = InlineQuery(query_id, user, query, "", chat_type="sender")
        await self._push(Update(update_id=next(self._update_ids), inline_query=inline))
        return query_id

    async def inline_answer(self, query_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """answerInlineQuery's parameters for that query, once the bot has answered."""
        return await self.wait_for(
            lambda: self.state.inline_answers.get(query_id), timeout, "an inline answer"
        )

    async def press(self, user: User, message: Message, button_text: str) -> str:
        """Press the button whose text starts with ``button_text`` on the message as it is now."""
        current = self.message(message.chat.id, message.message_id)
        markup = current.reply_markup
        buttons = [b for row in (markup.inline_keyboard if markup else ()) for b in row]
        matching = [b for b in buttons if b.text.startswith(button_text)]
        if not matching:
            labels = [b.text for b in buttons]
            raise LookupError(f"no button starting with {button_text!r}; there are {labels}")
        query_id = str(next(self._ids))
        query = CallbackQuery(
            id=query_id,
            from_user=user,
            chat_instance=str(current.chat.id),
            message=current,
            data=matching[0].callback_data,
        )
        await self._push(Update(update_id=next(self._update_ids), callback_query=query))
        return query_id

    def message(self, chat_id: int, message_id: int) -> Message:
        for message in self.state.history.get(chat_id, []):
            if message.message_id == message_id:
                return message
        raise KeyError(f"no message {message_id} in chat {chat_id}")

    def history(self, chat: Chat | int) -> list[Message]:
        """Every message in a chat, users' and bot's, oldest first (edits applied)."""
        return list(self.state.history.get(chat if isinstance(chat, int) else chat.id, []))

    def from_bot(self, chat: Chat | int) -> list[Message]:
        return [m for m in self.history(chat) if m.from_user and m.from_user.id == self.bot_user.id]

    def replies_to(self, message: Message) -> list[Message]:
        """The bot's replies to one message."""
        return [
            m
            for m in self.from_bot(message.chat.id)
            if m.reply_to_message and m.reply_to_message.message_id == message.message_id
        ]

    def calls(self, method: str | None = None) -> list[Call]:
        return [c for c in self.state.calls if method is None or c.method == method.lower()]

    async def wait_for(
        self, check: Callable[[], Any], timeout: float = 30.0, what: str = "the bot"
    ) -> Any:
        """Wait until ``check()`` returns something truthy (re-checked on every bot request)."""
        deadline = time.monotonic() + timeout
        async with self._changed:
            while not (result := check()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"waited {timeout:.0f} s for {what}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)
            return result

    async def wait_reply(
        self,
        message: Message,
        check: Callable[[Message], bool] = lambda m: True,
        timeout: float = 30.0,
        after: int = 0,
    ) -> Message:
        """The bot's first reply to ``message``, past the first ``after``, that passes ``check``."""

        def found() -> Message | None:
            return next((m for m in self.replies_to(message)[after:] if check(m)), None)

        return await self.wait_for(found, timeout, f"a reply to message {message.message_id}")

    # ------------------------------------------------------------------ helpers

    def _new_message_id(self, chat_id: int) -> int:
        return next(self._message_ids.setdefault(chat_id, itertools.count(1)))

    async def _user_message(self, chat: Chat, user: User, **fields: Any) -> Message:
        message = Message(
            message_id=self._new_message_id(chat.id),
            date=datetime.now(UTC),
            chat=chat,
            from_user=user,
            **{k: v for k, v in fields.items() if v not in (None, ())},
        )
        self._record(message)
        if chat.type == Chat.PRIVATE:
            self.state.started.add(user.id)
        if self.delivers(message):
            await self._push(Update(update_id=next(self._update_ids), message=message))
        else:
            self.state.withheld.append(message)
        return message

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

    def _record(self, message: Message) -> None:
        chat_messages = self.state.history.setdefault(message.chat.id, [])
        for i, old in enumerate(chat_messages):
            if old.message_id == message.message_id:
                chat_messages[i] = message
                return
        chat_messages.append(message)

    async def _push(self, update: Update) -> None:
        if self.webhook.url:
            asyncio.create_task(self._post_to_webhook(update.to_dict()))
            return
        self.state.updates.append(update.to_dict())
        await self._notify()

    async def _post_to_webhook(self, payload: dict[str, Any]) -> None:
        if self._http is None:
            self._http = ClientSession()
        headers = {"X-Telegram-Bot-Api-Secret-Token": self.webhook.secret or ""}
        for _ in range(50):
            try:
                async with self._http.post(self.webhook.url, json=payload, headers=headers) as r:
                    if r.status < 500:
                        return
            except OSError:
                pass
            await asyncio.sleep(0.2)
        logger.warning("webhook %s never took update %s", self.webhook.url, payload["update_id"])

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _store(self, data: bytes, folder: str, extension: str) -> tuple[str, StoredFile]:
        n = next(self._ids)
        file_id = f"file-{n}-{len(data)}"
        stored = StoredFile(data, f"{folder}/file_{n}.{extension}", f"u{n}")
        self.state.files[file_id] = stored
        return file_id, stored

    def _photo_size(self, data: bytes, width: int, height: int) -> PhotoSize:
        file_id, stored = self._store(data, "photos", "jpg")
        return PhotoSize(file_id, stored.unique_id, width, height, file_size=len(data))

    def _document(
        self, data: bytes, file_name: str, mime_type: str, file_size: int | None = None
    ) -> Document:
        extension = file_name.rpartition(".")[2] or "bin"
        file_id, stored = self._store(data, "documents", extension)
        return Document(
            file_id,
            stored.unique_id,
            file_name=file_name,
            mime_type=mime_type,
            file_size=file_size if file_size is not None else len(data),
        )

    def _bot_message(
        self, chat_id: int, params: dict[str, Any], counted: bool = False, **fields: Any
    ) -> Message:
        chat = self._chat(chat_id)
        _check_markup(params.get("reply_markup"))
        if not counted:  # an album's messages are counted together, before any is sent
            self._count_group_message(chat_id)
        reply_to = None
        reply_id = (params.get("reply_parameters") or {}).get("message_id") or params.get(
            "reply_to_message_id"
        )
        if reply_id:
            with contextlib.suppress(KeyError):
                reply_to = _shallow(self.message(chat_id, int(reply_id)))
        markup = params.get("reply_markup")
        message = Message(
            message_id=self._new_message_id(chat_id),
            date=datetime.now(UTC),
            chat=chat,
            from_user=self.bot_user,
            reply_to_message=reply_to,
            reply_markup=InlineKeyboardMarkup.de_json(markup, None) if markup else None,
            **{k: v for k, v in fields.items() if v is not None},
        )
        self._record(message)
        return message

    def _chat(self, chat_id: int) -> Chat:
        if chat_id in self.state.chats:
            return self.state.chats[chat_id]
        messages = self.state.history.get(chat_id)
        if not messages:
            raise _ApiError(400, "Bad Request: chat not found")
        return messages[0].chat

    def _count_group_message(self, chat_id: int, count: int = 1) -> None:
        """Telegram's flood control for one group: a bucket of ``group_messages`` that empties
        over ``group_window`` seconds; a message that would overflow it is refused with 429."""
        if chat_id >= 0 or not self.group_messages:
            return
        now = time.monotonic()
        level, then = self.state.flood.get(chat_id, (0.0, now))
        level = max(0.0, level - (now - then) * self.group_messages / self.group_window)
        if level + count > self.group_messages + 1e-9:
            self.state.flood[chat_id] = (level, now)
            wait = (level + count - self.group_messages) * self.group_window / self.group_messages
            retry_after = max(1, math.ceil(wait))
            raise _ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)
        self.state.flood[chat_id] = (level + count, now)

    def _edit(self, params: dict[str, Any], **changes: Any) -> Message:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        try:
            old = self.message(chat_id, message_id)
        except KeyError:
            raise _ApiError(400, "Bad Request: message to edit not found") from None
        data = old.to_dict()
        data.update(changes)
        data["edit_date"] = int(time.time())
        new = Message.de_json(data, None)
        if _without_edit_date(new) == _without_edit_date(old):
            raise _ApiError(400, "Bad Request: message is not modified")
        self._record(new)
        return new

    def _upload(self, value: Any, params: dict[str, Any], folder: str, extension: str) -> Any:
        """An uploaded file's bytes, or the stored file a ``file_id``/``attach://`` names."""
        if isinstance(value, str) and value.startswith("attach://"):
            value = params[value.removeprefix("attach://")]
        if isinstance(value, bytes):
            return value
        if isinstance(value, str) and value in self.state.files:
            return self.state.files[value].data
        raise _ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    # ------------------------------------------------------------------ the bot's side

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"].lower()
        params = await _read_params(request)
        self.state.calls.append(Call(method, params, time.monotonic()))
        try:
            if method in self.fail_next:
                raise _ApiError(*self.fail_next.pop(method))
            _check_lengths(method, params)
            if method == "getupdates":
                result: Any = await self._get_updates(params)
            else:
                handler = getattr(self, f"_m_{method}", None)
                if handler is None:
                    self.state.unknown_methods.append(method)
                    return _error(404, "Not Found: method not found")
                result = handler(params)
        except _ApiError as error:
            if error.code == 429:
                self.state.flood_errors.append((int(params.get("chat_id") or 0), method))
            return _error(error.code, error.description, error.retry_after)
        finally:
            if method != "getupdates":
                await self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for stored in self.state.files.values():
            if stored.path == path:
                return web.Response(body=stored.data)
        return web.Response(status=404)

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = min(float(params.get("timeout") or 0), 30.0)
        limit = int(params.get("limit") or 100)
        # updates below offset are confirmed: Telegram forgets them
        self.state.updates = [u for u in self.state.updates if u["update_id"] >= offset]
        self._drop_unwanted(params.get("allowed_updates"))
        if not self.state.updates and timeout:
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        self._changed.wait_for(lambda: bool(self.state.updates)), timeout
                    )
        self._drop_unwanted(params.get("allowed_updates"))
        return self.state.updates[:limit]

    def _drop_unwanted(self, allowed: list[str] | None) -> None:
        """Telegram never delivers update types the bot's allowed_updates leaves out."""
        wanted = set(allowed) if allowed else None
        kept = []
        for update in self.state.updates:
            kind = next(key for key in update if key != "update_id")
            if (kind in wanted) if wanted is not None else (kind not in NOT_BY_DEFAULT):
                kept.append(update)
            else:
                self.state.dropped_updates.append(update)
        self.state.updates = kept

    def _m_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        # /setprivacy changes what getMe says from then on
        return {**self.bot_user.to_dict(), "can_read_all_group_messages": not self.privacy}

    def _m_deletewebhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self.state.updates.clear()
        self.webhook = _Webhook()
        return True

    def _m_setwebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = _Webhook(params["url"], params.get("secret_token"))
        return True

    def _m_getwebhookinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        info = WebhookInfo(self.webhook.url, False, len(self.state.updates))
        return info.to_dict()

    def _m_setmycommands(self, params: dict[str, Any]) -> bool:
        commands = [BotCommand(c["command"], c["description"]) for c in params["commands"]]
        key = _commands_key(params)
        self.state.command_lists[key] = commands
        if key == ("default", ""):
            self.state.commands = commands
        return True

    def _m_getmycommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.state.command_lists.get(_commands_key(params), [])]

    def _m_setmydescription(self, params: dict[str, Any]) -> bool:
        self.state.descriptions[params.get("language_code") or ""] = params.get("description", "")
        return True

    def _m_setmyshortdescription(self, params: dict[str, Any]) -> bool:
        language = params.get("language_code") or ""
        self.state.short_descriptions[language] = params.get("short_description", "")
        return True

    def _m_getchatmember(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        self._chat(chat_id)
        user = self._users.get(int(params["user_id"]))
        if user is None:
            raise _ApiError(400, "Bad Request: PARTICIPANT_ID_INVALID")
        return self._member(chat_id, user).to_dict()

    def _m_getchatadministrators(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat_id = int(params["chat_id"])
        self._chat(chat_id)
        ids = self.state.admins.get(chat_id, set()) | set(
            [self.state.owners[chat_id]] if chat_id in self.state.owners else []
        )
        return [self._member(chat_id, self._users[user_id]).to_dict() for user_id in sorted(ids)]

    def _m_setmessagereaction(self, params: dict[str, Any]) -> bool:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        self._chat(chat_id)
        try:
            self.message(chat_id, message_id)
        except KeyError:
            raise _ApiError(400, "Bad Request: MESSAGE_ID_INVALID") from None
        emoji = [r.get("emoji") for r in params.get("reaction") or []]
        if len(emoji) > 1:  # bots set one reaction at most
            raise _ApiError(400, "Bad Request: REACTIONS_TOO_MANY")
        allowed = {str(e) for e in ReactionEmoji}
        if emoji and (chat_id in self.state.no_reactions or not set(emoji) <= allowed):
            raise _ApiError(400, "Bad Request: REACTION_INVALID")
        self.state.reactions[(chat_id, message_id)] = emoji
        return True

    def _m_sendchataction(self, params: dict[str, Any]) -> bool:
        self._chat(int(params["chat_id"]))
        return True

    def _m_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        text = params["text"]
        return self._bot_message(int(params["chat_id"]), params, text=text).to_dict()

    def _m_sendphoto(self, params: dict[str, Any]) -> dict[str, Any]:
        data = self._upload(params["photo"], params, "photos", "jpg")
        try:
            with Image.open(io.BytesIO(data)) as picture:
                width, height = picture.size
        except OSError:
            raise _ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED") from None
        photo = (self._photo_size(data, width, height),)
        return self._bot_message(
            int(params["chat_id"]), params, photo=photo, caption=params.get("caption")
        ).to_dict()

    def _m_senddocument(self, params: dict[str, Any]) -> dict[str, Any]:
        upload = params["document"]
        data = self._upload(upload, params, "documents", "bin")
        name = params.get("document:filename") or "file"
        mime_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        document = self._document(data, name, mime_type)
        return self._bot_message(
            int(params["chat_id"]), params, document=document, caption=params.get("caption")
        ).to_dict()

    def _uploaded_video(self, params: dict[str, Any], field_name: str) -> tuple[str, int, int, int]:
        """An uploaded MP4, stored: its file id, width, height and whole seconds (read by PyAV)."""
        data = self._upload(params[field_name], params, "videos", "mp4")
        if len(data) > UPLOAD_LIMIT:
            raise _ApiError(413, "Request Entity Too Large")
        try:
            width, height, seconds = _probe_video(data)
        except Exception:
            raise _ApiError(400, "Bad Request: wrong file type of the video") from None
        file_id, _ = self._store(data, "videos", "mp4")
        return file_id, width, height, seconds

    def _m_sendvideonote(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id, width, height, seconds = self._uploaded_video(params, "video_note")
        if width != height or width > VIDEO_NOTE_MAX_SIDE:
            raise _ApiError(400, "Bad Request: VIDEO_NOTE_INVALID")  # a round video is a square
        stored = self.state.files[file_id]
        note = VideoNote(file_id, stored.unique_id, width, seconds, file_size=len(stored.data))
        return self._bot_message(int(params["chat_id"]), params, video_note=note).to_dict()

    def _m_sendanimation(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id, width, height, seconds = self._uploaded_video(params, "animation")
        stored = self.state.files[file_id]
        name = params.get("animation:filename") or "animation.mp4"
        animation = Animation(
            file_id, stored.unique_id, width, height, seconds, file_name=name,
            mime_type="video/mp4", file_size=len(stored.data),
        )  # fmt: skip
        document = Document(file_id, stored.unique_id, file_name=name, mime_type="video/mp4")
        return self._bot_message(
            int(params["chat_id"]), params, animation=animation, document=document,
            caption=params.get("caption"),
        ).to_dict()  # fmt: skip

    def _m_sendvideo(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id, width, height, seconds = self._uploaded_video(params, "video")
        stored = self.state.files[file_id]
        video = Video(
            file_id, stored.unique_id, width, height, seconds, mime_type="video/mp4",
            file_size=len(stored.data),
        )  # fmt: skip
        return self._bot_message(
            int(params["chat_id"]), params, video=video, caption=params.get("caption")
        ).to_dict()

    def _m_deletemessage(self, params: dict[str, Any]) -> bool:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        messages = self.state.history.get(chat_id, [])
        kept = [m for m in messages if m.message_id != message_id]
        if len(kept) == len(messages):
            raise _ApiError(400, "Bad Request: message to delete not found")
        self.state.history[chat_id] = kept
        self.state.deleted.append((chat_id, message_id))
        return True

    def _m_getfile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params["file_id"]
        stored = self.state.files.get(file_id)
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        if len(stored.data) > DOWNLOAD_LIMIT:
            raise _ApiError(400, "Bad Request: file is too big")
        return File(file_id, stored.unique_id, len(stored.data), stored.path).to_dict()

    def _m_answercallbackquery(self, params: dict[str, Any]) -> bool:
        query_id = params["callback_query_id"]
        if query_id in self.state.callback_answers:
            raise _ApiError(400, "Bad Request: query is too old or query ID is invalid")
        self.state.callback_answers[query_id] = params
        return True

    def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._edit(params, reply_markup=params.get("reply_markup")).to_dict()

    def _m_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        changes = {"text": params["text"], "reply_markup": params.get("reply_markup")}
        return self._edit(params, **changes).to_dict()

    def _m_editmessagecaption(self, params: dict[str, Any]) -> dict[str, Any]:
        changes = {"caption": params.get("caption"), "reply_markup": params.get("reply_markup")}
        return self._edit(params, **changes).to_dict()

    def _m_editmessagemedia(self, params: dict[str, Any]) -> dict[str, Any]:
        media = params["media"]
        data = self._upload(media["media"], params, "photos", "jpg")
        with Image.open(io.BytesIO(data)) as picture:
            width, height = picture.size
        changes: dict[str, Any] = {
            "photo": [self._photo_size(data, width, height).to_dict()],
            "caption": media.get("caption"),
            "reply_markup": params.get("reply_markup"),
        }
        return self._edit(params, **changes).to_dict()

    def _m_sendmediagroup(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        chat_id = int(params["chat_id"])
        self._chat(chat_id)
        media = params["media"]
        if not MediaGroupLimit.MIN_MEDIA_LENGTH <= len(media) <= MediaGroupLimit.MAX_MEDIA_LENGTH:
            raise _ApiError(400, "Bad Request: wrong number of media in the album (2-10)")
        kinds = {item["type"] for item in media}
        if not kinds <= {"photo", "document"} or len(kinds) > 1:
            raise _ApiError(400, "Bad Request: documents can't be mixed with other media types")
        for item in media:
            if _utf16_length(item.get("caption") or "") > MessageLimit.CAPTION_LENGTH:
                raise _ApiError(400, "Bad Request: message caption is too long")
        self._count_group_message(chat_id, len(media))  # the whole album, or none of it
        group = f"sent-{next(self._ids)}"
        sent = []
        for item in media:
            if item["type"] == "photo":
                data = self._upload(item["media"], params, "photos", "jpg")
                with Image.open(io.BytesIO(data)) as picture:
                    width, height = picture.size
                fields: dict[str, Any] = {"photo": (self._photo_size(data, width, height),)}
            else:
                data = self._upload(item["media"], params, "documents", "bin")
                upload = str(item["media"]).removeprefix("attach://")
                name = params.get(f"{upload}:filename") or "file"
                mime_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
                fields = {"document": self._document(data, name, mime_type)}
            message = self._bot_message(
                chat_id, params, counted=True, caption=item.get("caption"),
                media_group_id=group, **fields,
            )  # fmt: skip
            sent.append(message.to_dict())
        return sent

    def _started(self, params: dict[str, Any]) -> int:
        """The user a sticker call names; Telegram refuses users who never started the bot."""
        user_id = int(params["user_id"])
        if user_id not in self.state.started:
            raise _ApiError(400, "Bad Request: PEER_ID_INVALID")
        return user_id

    def _m_uploadstickerfile(self, params: dict[str, Any]) -> dict[str, Any]:
        self._started(params)
        if params.get("sticker_format") != "static":
            raise _ApiError(400, "Bad Request: STICKER_FORMAT_INVALID")
        data = params["sticker"]
        if not isinstance(data, bytes):
            raise _ApiError(400, "Bad Request: STICKER_FILE_INVALID")
        if len(data) > 512 * 1024:
            raise _ApiError(400, "Bad Request: file is too big")
        try:
            with Image.open(io.BytesIO(data)) as picture:
                kind, size = picture.format, picture.size
        except OSError:
            raise _ApiError(400, "Bad Request: STICKER_FILE_INVALID") from None
        # a static sticker: WebP or PNG, 512 px on one side, at most 512 on the other
        if kind not in ("WEBP", "PNG") or max(size) != 512:
            raise _ApiError(400, "Bad Request: STICKER_PNG_DIMENSIONS")
        file_id, stored = self._store(data, "stickers", "webp")
        return File(file_id, stored.unique_id, len(data), stored.path).to_dict()

    def _sticker_file(self, sticker: dict[str, Any], params: dict[str, Any]) -> str:
        file_id = sticker.get("sticker")
        if isinstance(file_id, str) and file_id.startswith("attach://"):
            data = self._upload(file_id, params, "stickers", "webp")
            file_id, _ = self._store(data, "stickers", "webp")
        if file_id not in self.state.files or not sticker.get("emoji_list"):
            raise _ApiError(400, "Bad Request: STICKER_FILE_INVALID")
        return file_id

    def _m_createnewstickerset(self, params: dict[str, Any]) -> bool:
        user_id = self._started(params)
        name = str(params["name"])
        suffix = f"_by_{self.bot_user.username}".lower()
        valid = re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", name) and "__" not in name
        if not valid or not name.lower().endswith(suffix):
            raise _ApiError(400, "Bad Request: invalid sticker set name is specified")
        if not 1 <= len(params.get("title") or "") <= 64:
            raise _ApiError(400, "Bad Request: invalid sticker set title is specified")
        if name.lower() in (known.lower() for known in self.state.sticker_sets):
            raise _ApiError(400, "Bad Request: sticker set name is already occupied")
        stickers = params.get("stickers") or []
        if not 1 <= len(stickers) <= 50:
            raise _ApiError(400, "Bad Request: STICKERS_EMPTY")
        files = [self._sticker_file(sticker, params) for sticker in stickers]
        self.state.sticker_sets[name] = StickerSetState(user_id, params["title"], files)
        return True

    def _m_addstickertoset(self, params: dict[str, Any]) -> bool:
        user_id = self._started(params)
        found = self.state.sticker_sets.get(str(params["name"]))
        if found is None or found.owner != user_id:
            raise _ApiError(400, "Bad Request: STICKERSET_INVALID")
        if len(found.stickers) >= STATIC_SET_LIMIT:
            raise _ApiError(400, "Bad Request: STICKERS_TOO_MUCH")
        found.stickers.append(self._sticker_file(params["sticker"], params))
        return True

    def _m_getstickerset(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self.state.sticker_sets.get(str(params["name"]))
        if found is None:
            raise _ApiError(400, "Bad Request: STICKERSET_INVALID")
        stickers = [
            Sticker(file_id, self.state.files[file_id].unique_id, 512, 512, False, False,
                    Sticker.REGULAR, emoji="😷")
            for file_id in found.stickers
        ]  # fmt: skip
        return StickerSet(params["name"], found.title, tuple(stickers), Sticker.REGULAR).to_dict()

    def _m_getuserprofilephotos(self, params: dict[str, Any]) -> dict[str, Any]:
        user_id = int(params["user_id"])
        if user_id not in self._users:
            raise _ApiError(400, "Bad Request: user not found")
        sizes = self.state.profile_photos.get(user_id)
        if sizes is None or user_id in self.state.hidden_profiles:
            return {"total_count": 0, "photos": []}  # none, or privacy hides it from bots
        return UserProfilePhotos(1, (sizes,)).to_dict()

    def _m_answerinlinequery(self, params: dict[str, Any]) -> bool:
        query_id = params["inline_query_id"]
        if query_id in self.state.inline_answers:
            raise _ApiError(400, "Bad Request: query is too old and response timeout expired")
        results = params.get("results") or []
        ids = [str(result.get("id", "")) for result in results]
        if len(results) > InlineQueryLimit.RESULTS or len(set(ids)) < len(ids):
            raise _ApiError(400, "Bad Request: RESULT_ID_DUPLICATE")
        if any(not 1 <= len(i.encode()) <= 64 for i in ids):
            raise _ApiError(400, "Bad Request: RESULT_ID_INVALID")
        for result in results:
            if result.get("photo_file_id") not in self.state.files:
                raise _ApiError(400, "Bad Request: PHOTO_INVALID")
        start = (params.get("button") or {}).get("start_parameter")
        if start is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", start):
            raise _ApiError(400, "Bad Request: START_PARAM_INVALID")
        self.state.inline_answers[query_id] = params
        return True

    def _m_close(self, params: dict[str, Any]) -> bool:
        return True

    def _m_logout(self, params: dict[str, Any]) -> bool:
        return True


class _ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


def _error(code: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=code)


def _commands_key(params: dict[str, Any]) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return scope["type"], params.get("language_code") or ""


#: what Telegram refuses as too long, per parameter: (limit in UTF-16 units, its error)
_LENGTHS = {
    "text": (MessageLimit.MAX_TEXT_LENGTH, "Bad Request: message is too long"),
    "caption": (MessageLimit.CAPTION_LENGTH, "Bad Request: message caption is too long"),
    "description": (BotDescriptionLimit.MAX_DESCRIPTION_LENGTH, "Bad Request: BOT_ABOUT_INVALID"),
    "short_description": (
        BotDescriptionLimit.MAX_SHORT_DESCRIPTION_LENGTH, "Bad Request: BOT_ABOUT_INVALID"
    ),
}  # fmt: skip


def _check_lengths(method: str, params: dict[str, Any]) -> None:
    if method == "answercallbackquery":
        limit = CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH
        if _utf16_length(params.get("text") or "") > limit:
            raise _ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        return
    for name, (limit, error) in _LENGTHS.items():
        if isinstance(params.get(name), str) and _utf16_length(params[name]) > limit:
            raise _ApiError(400, error)
    for command in params.get("commands") or []:
        if not 1 <= len(command["description"]) <= BotCommandLimit.MAX_DESCRIPTION:
            raise _ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
    if method.startswith("edit"):
        _check_markup(params.get("reply_markup"))


def _check_markup(markup: dict[str, Any] | None) -> None:
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not (
                1 <= len(data.encode()) <= InlineKeyboardButtonLimit.MAX_CALLBACK_DATA
            ):
                raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Bot API parameters as python-telegram-bot sends them: a form, multipart, or JSON."""
    if request.content_type == "application/json":
        return await request.json()
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.body_exists:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = value.file.read()
                params[f"{key}:filename"] = value.filename
            else:
                params[key] = value
    for key in JSON_PARAMS & params.keys():
        if isinstance(params[key], str):
            params[key] = json.loads(params[key])
    return params


def _shallow(message: Message | None) -> Message | None:
    """A message as it appears inside another one: Telegram nests replies one level only."""
    if message is None:
        return None
    data = message.to_dict()
    data.pop("reply_to_message", None)
    return Message.de_json(data, None)


@functools.lru_cache(maxsize=16)  # load runs send the same few photos again and again
def _scaled(image: bytes, sizes: tuple[int, ...]) -> tuple[tuple[bytes, int, int], ...]:
    """The JPEG versions Telegram keeps of a photo: smaller sides first, then the original."""
    with Image.open(io.BytesIO(image)) as picture:
        picture = picture.convert("RGB")
    longest = max(picture.size)
    versions = []
    for side in [s for s in sizes if s < longest] + [longest]:
        scaled = picture.copy()
        scaled.thumbnail((side, side))
        out = io.BytesIO()
        scaled.save(out, format="JPEG", quality=87)
        versions.append((out.getvalue(), scaled.width, scaled.height))
    return tuple(versions)


def _probe_video(data: bytes) -> tuple[int, int, int]:
    """An MP4's width, height and length in whole seconds, as Telegram reads an upload."""
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        seconds = container.duration / av.time_base if container.duration else 0.0
        return stream.width, stream.height, round(seconds)


def _without_edit_date(message: Message) -> dict[str, Any]:
    data = message.to_dict()
    data.pop("edit_date", None)
    return data


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _entities(text: str) -> tuple[MessageEntity, ...]:
    """The /commands and @mentions Telegram would mark in a text or caption."""
    entities = []
    for match in _ENTITY.finditer(text):
        kind = MessageEntity.BOT_COMMAND if match.group().startswith("/") else MessageEntity.MENTION
        offset = _utf16_length(text[: match.start()])
        entities.append(MessageEntity(kind, offset, _utf16_length(match.group())))
    return tuple(entities)
