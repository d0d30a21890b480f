"""The bot's typed state, its stored form (versioned JSON, only bot.state's classes), and the
conversion of what earlier versions stored."""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import pytest

from bot.persistence import STATE_DB_NAME, SQLitePersistence
from bot.state import (
    KEEP_PHOTOS,
    AlbumRequest,
    AvatarMasks,
    ChatState,
    PhotoRequest,
    StateFormatError,
    UserState,
    VideoRequest,
    decode_state,
    encode_state,
)
from core.results import Mode


def write_previous_version_file(path: Path, now: float) -> None:
    """What the bot stored before its state was typed: dicts with string keys."""
    data = {
        "user_data": {7: {"recent_jobs": [now - 5, now - 1]}, 8: {}},
        "chat_data": {
            5: {
                "photos": {
                    12: {"file_id": "AgAD-12", "as_file": True, "crop": False},
                    13: {"file_id": "AgAD-13", "as_file": False, "crop": True},
                    14: {"nothing": "useful"},
                }
            },
            6: {},
        },
        "bot_data": {},
        "callback_data": None,
        "conversations": {},
    }
    path.write_bytes(pickle.dumps(data))


async def test_previous_versions_dicts_become_typed_state(tmp_path: Path) -> None:
    now = time.time()
    write_previous_version_file(tmp_path / "facemask-bot.pickle", now)
    store = SQLitePersistence(tmp_path / STATE_DB_NAME)
    users, chats = await store.get_user_data(), await store.get_chat_data()
    assert users == {7: UserState([now - 5, now - 1]), 8: UserState()}
    assert chats == {
        5: ChatState(
            {12: PhotoRequest("AgAD-12", True, Mode.WHOLE), 13: PhotoRequest("AgAD-13", False)}
        ),
        6: ChatState(),
    }


def full_chat() -> ChatState:
    chat = ChatState()
    chat.remember(12, PhotoRequest("AgAD-12", False)).toggle_mode()
    chat.remember_album(20, AlbumRequest([20, 21, 22], Mode.WHOLE))
    chat.remember_video(30, VideoRequest("BAAD-30", "video_note", 4.5, 240, 240, 90_000))
    chat.settings.language, chat.settings.quiet = "de", True
    return chat


def full_user() -> UserState:
    user = UserState([1.5, 2.0], sticker_set="masks_by_bot")
    user.share("AgAD-shared", 3)
    user.avatar = AvatarMasks("unique-1", {1: "AgAD-a1", 7: "AgAD-a7"}, 1_700_000.5)
    return user


def test_every_state_class_survives_its_stored_form() -> None:
    for state in (full_chat(), full_user(), ChatState(), UserState()):
        data = encode_state(state)
        assert json.loads(data)["v"] == 1  # plain JSON with a version
        back = decode_state(data, type(state))
        assert back == state and type(back) is type(state)
    photo = decode_state(encode_state(full_chat()), ChatState).photos[12]
    assert photo.mode is Mode.WHOLE and photo.toggle_mode() is Mode.FACES  # its keyboard works


def test_a_field_the_stored_state_lacks_gets_its_default() -> None:
    stored = {
        "v": 1,
        "type": "ChatState",
        "fields": {"photos": {"12": {"file_id": "A", "as_file": False}}},
    }
    chat = decode_state(json.dumps(stored).encode(), ChatState)
    assert chat.photos[12].mode is Mode.FACES and chat.settings.language is None


@pytest.mark.parametrize(
    "stored",
    [
        b"\x80\x04not json",
        b"[]",
        b'{"v": 2, "type": "ChatState", "fields": {}}',  # a newer release's
        b'{"v": 1, "type": "UserState", "fields": {}}',  # a user where a chat belongs
        b'{"v": 1, "type": "ChatState", "fields": {"photos": {"x": {}}}}',
        b'{"v": 1, "type": "ChatState", "fields": {"photos": {"1": {"file_id": 5, '
        b'"as_file": false}}}}',
        b'{"v": 1, "type": "ChatState", "fields": {"photos": {"1": {"as_file": false}}}}',
        b'{"v": 1, "type": "ChatState", "fields": {"settings": {"mode": "sideways"}}}',
        b'{"v": 1, "type": "ChatState", "fields": {"settings": {"quiet": 1}}}',
        b"[" * 100_000,
    ],
)
def test_what_is_not_a_stored_state_is_refused(stored: bytes) -> None:
    with pytest.raises(StateFormatError):
        decode_state(stored, ChatState)


def test_only_the_bots_own_classes_are_written() -> None:
    chat = ChatState()
    chat.photos[1] = object()  # type: ignore[assignment]
    with pytest.raises(TypeError):
        encode_state(chat)


async def test_an_unreadable_file_is_set_aside_and_the_bot_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "facemask-bot.pickle"
    path.write_bytes(b"not a pickle at all")
    store = SQLitePersistence(tmp_path / STATE_DB_NAME)
    assert await store.get_user_data() == {}
    assert await store.get_chat_data() == {}
    [aside] = tmp_path.glob("facemask-bot.pickle.unreadable-*")
    assert aside.read_bytes() == b"not a pickle at all"  # kept for whoever wants to look


def test_a_chat_remembers_its_latest_photos_and_the_first_request_for_each() -> None:
    chat = ChatState()
    first = chat.remember(1, PhotoRequest("a", False))
    first.toggle_mode()
    assert chat.remember(1, PhotoRequest("b", True)) is first and first.mode is Mode.WHOLE
    for photo_id in range(2, KEEP_PHOTOS + 6):
        chat.remember(photo_id, PhotoRequest(str(photo_id), False))
    assert len(chat.photos) == KEEP_PHOTOS and 1 not in chat.photos
    assert max(chat.photos) == KEEP_PHOTOS + 5


def test_throttle_counts_jobs_within_the_window() -> None:
    user = UserState()
    assert [user.throttle(jobs=2, seconds=60) for _ in range(2)] == [0, 0]
    wait = user.throttle(jobs=2, seconds=60)
    assert 55 <= wait <= 60 and len(user.recent_jobs) == 2  # refused taps are not counted
    user.recent_jobs = [time.time() - 61] * 2  # a minute later
    assert user.throttle(jobs=2, seconds=60) == 0
