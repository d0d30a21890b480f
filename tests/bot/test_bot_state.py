"""The bot's typed state and its persistence, over real pickle files."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

from telegram.ext import PersistenceInput

from bot.state import KEEP_PHOTOS, ChatState, PhotoRequest, StatePersistence, UserState
from core.results import Mode


def persistence(path: Path) -> StatePersistence:
    return StatePersistence(path, store_data=PersistenceInput(bot_data=False, callback_data=False))


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
    path = tmp_path / "facemask-bot.pickle"
    write_previous_version_file(path, now)
    store = persistence(path)
    users, chats = await store.get_user_data(), await store.get_chat_data()
    assert users == {7: UserState([now - 5, now - 1]), 8: UserState()}
    assert chats == {
        5: ChatState(
            {12: PhotoRequest("AgAD-12", True, Mode.WHOLE), 13: PhotoRequest("AgAD-13", False)}
        ),
        6: ChatState(),
    }


async def test_typed_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "facemask-bot.pickle"
    store = persistence(path)
    await store.get_chat_data()
    chat = ChatState()
    chat.remember(12, PhotoRequest("AgAD-12", False)).toggle_mode()
    await store.update_chat_data(5, chat)
    await store.update_user_data(7, UserState([1.5]))
    await store.flush()

    again = persistence(path)
    assert await again.get_chat_data() == {
        5: ChatState({12: PhotoRequest("AgAD-12", False, Mode.WHOLE)})
    }
    assert await again.get_user_data() == {7: UserState([1.5])}


async def test_an_unreadable_file_is_set_aside_and_the_bot_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "facemask-bot.pickle"
    path.write_bytes(b"not a pickle at all")
    store = persistence(path)
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
