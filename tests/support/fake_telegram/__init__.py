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

The fake is a package, one file per concern, each a part of :class:`FakeTelegram`:
``server`` (its life, the endpoint, getUpdates, webhooks, the profile), ``chats`` (users, chats
and members), ``messages`` (the users' side) and ``media`` (the bot's sends and edits), ``files``,
``stickers``, ``inline``, ``limits`` (flood and lengths) and ``outages``; ``common`` holds the
state and helpers they share.
"""

from tests.support.fake_telegram.common import (
    DEFAULT_TOKEN,
    DOWNLOAD_LIMIT,
    PHOTO_SIZES,
    STATIC_SET_LIMIT,
    UPLOAD_LIMIT,
    VIDEO_NOTE_MAX_SIDE,
    Call,
    StickerSetState,
    StoredFile,
    has_keyboard,
)
from tests.support.fake_telegram.server import FakeTelegram

__all__ = [
    "DEFAULT_TOKEN",
    "DOWNLOAD_LIMIT",
    "PHOTO_SIZES",
    "STATIC_SET_LIMIT",
    "UPLOAD_LIMIT",
    "VIDEO_NOTE_MAX_SIDE",
    "Call",
    "FakeTelegram",
    "StickerSetState",
    "StoredFile",
    "has_keyboard",
]
