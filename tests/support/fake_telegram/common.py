"""What every part of the fake Telegram shares: constants, its state, and small helpers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from telegram import (
    BotCommand,
    Chat,
    Message,
    MessageEntity,
    PhotoSize,
)

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

ENTITY = re.compile(r"(?<!\S)(/[A-Za-z0-9_]+(?:@[A-Za-z0-9_]+)?|@[A-Za-z0-9_]{3,})")


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
class Webhook:
    url: str = ""
    secret: str | None = None


@dataclass
class State:
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


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


def api_error(code: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=code)


def commands_key(params: dict[str, Any]) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return scope["type"], params.get("language_code") or ""


async def read_params(request: web.Request) -> dict[str, Any]:
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


def shallow(message: Message | None) -> Message | None:
    """A message as it appears inside another one: Telegram nests replies one level only."""
    if message is None:
        return None
    data = message.to_dict()
    data.pop("reply_to_message", None)
    return Message.de_json(data, None)


def without_edit_date(message: Message) -> dict[str, Any]:
    data = message.to_dict()
    data.pop("edit_date", None)
    return data


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def entities_of(text: str) -> tuple[MessageEntity, ...]:
    """The /commands and @mentions Telegram would mark in a text or caption."""
    entities = []
    for match in ENTITY.finditer(text):
        kind = MessageEntity.BOT_COMMAND if match.group().startswith("/") else MessageEntity.MENTION
        offset = utf16_length(text[: match.start()])
        entities.append(MessageEntity(kind, offset, utf16_length(match.group())))
    return tuple(entities)
