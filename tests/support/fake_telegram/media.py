"""Messages, the bot's side: sendMessage, photos, documents, videos, media groups, edits,
deletions, reactions, chat actions and callback answers."""

from __future__ import annotations

import contextlib
import io
import mimetypes
import time
from datetime import UTC, datetime
from typing import Any

from PIL import Image
from telegram import (
    Animation,
    Document,
    InlineKeyboardMarkup,
    Message,
    Video,
    VideoNote,
)
from telegram.constants import (
    MediaGroupLimit,
    MessageLimit,
    ReactionEmoji,
)

from tests.support.fake_telegram.common import (
    VIDEO_NOTE_MAX_SIDE,
    ApiError,
    shallow,
    utf16_length,
    without_edit_date,
)
from tests.support.fake_telegram.limits import check_markup


class Media:
    """Messages, the bot's side (a part of :class:`FakeTelegram`)."""

    def _bot_message(
        self, chat_id: int, params: dict[str, Any], counted: bool = False, **fields: Any
    ) -> Message:
        chat = self._chat(chat_id)
        check_markup(params.get("reply_markup"))
        if not counted:  # an album's messages are counted together, before any is sent
            self._count_group_message(chat_id)
        reply_to = None
        reply_id = (params.get("reply_parameters") or {}).get("message_id") or params.get(
            "reply_to_message_id"
        )
        if reply_id:
            with contextlib.suppress(KeyError):
                reply_to = shallow(self.message(chat_id, int(reply_id)))
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

    def _edit(self, params: dict[str, Any], **changes: Any) -> Message:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        try:
            old = self.message(chat_id, message_id)
        except KeyError:
            raise ApiError(400, "Bad Request: message to edit not found") from None
        data = old.to_dict()
        data.update(changes)
        data["edit_date"] = int(time.time())
        new = Message.de_json(data, None)
        if without_edit_date(new) == without_edit_date(old):
            raise ApiError(400, "Bad Request: message is not modified")
        self._record(new)
        return new

    def _m_setmessagereaction(self, params: dict[str, Any]) -> bool:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        self._chat(chat_id)
        try:
            self.message(chat_id, message_id)
        except KeyError:
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID") from None
        emoji = [r.get("emoji") for r in params.get("reaction") or []]
        if len(emoji) > 1:  # bots set one reaction at most
            raise ApiError(400, "Bad Request: REACTIONS_TOO_MANY")
        allowed = {str(e) for e in ReactionEmoji}
        if emoji and (chat_id in self.state.no_reactions or not set(emoji) <= allowed):
            raise ApiError(400, "Bad Request: REACTION_INVALID")
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
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED") from None
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

    def _m_sendvideonote(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id, width, height, seconds = self._uploaded_video(params, "video_note")
        if width != height or width > VIDEO_NOTE_MAX_SIDE:
            raise ApiError(400, "Bad Request: VIDEO_NOTE_INVALID")  # a round video is a square
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
            raise ApiError(400, "Bad Request: message to delete not found")
        self.state.history[chat_id] = kept
        self.state.deleted.append((chat_id, message_id))
        return True

    def _m_answercallbackquery(self, params: dict[str, Any]) -> bool:
        query_id = params["callback_query_id"]
        if query_id in self.state.callback_answers:
            raise ApiError(400, "Bad Request: query is too old or query ID is invalid")
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
            raise ApiError(400, "Bad Request: wrong number of media in the album (2-10)")
        kinds = {item["type"] for item in media}
        if not kinds <= {"photo", "document"} or len(kinds) > 1:
            raise ApiError(400, "Bad Request: documents can't be mixed with other media types")
        for item in media:
            if utf16_length(item.get("caption") or "") > MessageLimit.CAPTION_LENGTH:
                raise ApiError(400, "Bad Request: message caption is too long")
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
