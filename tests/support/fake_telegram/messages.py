"""Messages, the users' side: sending texts, photos, files, videos and albums, pressing
buttons, and reading the history back."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from telegram import (
    Animation,
    CallbackQuery,
    Chat,
    Document,
    Message,
    Update,
    User,
    Video,
    VideoNote,
)

from tests.support.fake_telegram.common import (
    PHOTO_SIZES,
    Call,
    entities_of,
    shallow,
)
from tests.support.fake_telegram.files import scaled


class Messages:
    """Messages, the users' side (a part of :class:`FakeTelegram`)."""

    async def send_text(
        self, chat: Chat, user: User, text: str, reply_to: Message | None = None
    ) -> Message:
        return await self._user_message(
            chat, user, text=text, entities=entities_of(text), reply_to_message=shallow(reply_to)
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
            self._photo_size(data, width, height) for data, width, height in scaled(image, sizes)
        ]
        return await self._user_message(
            chat,
            user,
            photo=tuple(photo_sizes),
            caption=caption,
            caption_entities=entities_of(caption or ""),
            reply_to_message=shallow(reply_to),
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
            caption_entities=entities_of(caption or ""),
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
            chat, user, video_note=note, reply_to_message=shallow(reply_to)
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
            caption_entities=entities_of(caption or ""),
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
            chat, user, video=video, caption=caption, caption_entities=entities_of(caption or ""),
            reply_to_message=shallow(reply_to),
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
                for data, width, height in scaled(image, PHOTO_SIZES)
            )
            text = caption if n == 0 else None  # Telegram shows an album's caption once
            messages.append(
                await self._user_message(
                    chat,
                    user,
                    photo=sizes,
                    caption=text,
                    caption_entities=entities_of(text or ""),
                    media_group_id=group,
                )  # fmt: skip
            )
        return messages

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

    def reaction(self, message: Message) -> list[str]:
        """The bot's reaction on a message now (empty when none)."""
        return self.state.reactions.get((message.chat.id, message.message_id), [])

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

    def _record(self, message: Message) -> None:
        chat_messages = self.state.history.setdefault(message.chat.id, [])
        for i, old in enumerate(chat_messages):
            if old.message_id == message.message_id:
                chat_messages[i] = message
                return
        chat_messages.append(message)
