"""One member cannot slow a group: a flood of Crop toggles does not delay anyone's photo.

Telegram lets a bot send about 20 messages a minute to one group (the fake server answers 429
beyond that) and python-telegram-bot's rate limiter queues a group's requests first come,
first served: 40 keyboard edits used to hold the next masked photo for a minute.
"""

from __future__ import annotations

import asyncio
import time

from telegram import Message

from bot import texts
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram

TOGGLES = 40


def crop_label(message: Message) -> str:
    markup = message.reply_markup
    assert markup is not None
    buttons = [b for row in markup.inline_keyboard for b in row]
    return next(b.text for b in buttons if (b.callback_data or "").startswith("crop:"))


async def keyboard_in_group(telegram: FakeTelegram, group, user, picture: bytes) -> Message:
    """A photo's keyboard in a group, expanded ("⋯ More") to show the toggles."""
    photo = await telegram.send_photo(group, user, picture)
    await telegram.send_text(group, user, f"/mask@{telegram.bot_user.username}", reply_to=photo)
    compact = await telegram.wait_reply(photo, lambda m: m.reply_markup is not None)
    await telegram.press(user, compact, texts.MORE)
    return await telegram.wait_for(
        lambda: next(
            (m for m in telegram.replies_to(photo) if "crop:" in str(m.reply_markup)), None
        ),
        what="the full keyboard",
    )


async def test_a_toggle_flood_does_not_delay_another_members_photo(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    group = telegram.group("Flooded")
    flooder, other = telegram.user("Flo"), telegram.user("Otto")
    flooded = await keyboard_in_group(telegram, group, flooder, face_jpeg)
    waiting = await keyboard_in_group(telegram, group, other, face_jpeg)
    first_label = crop_label(flooded)
    flood_began = time.monotonic()

    async def flood() -> list[str]:
        queries = []
        for _ in range(TOGGLES):  # 40 taps in 2 s, each on the keyboard as it is shown now
            current = telegram.message(group.id, flooded.message_id)
            queries.append(await telegram.press(flooder, current, crop_label(current)))
            await asyncio.sleep(2.0 / TOGGLES)
        return queries

    flooding = asyncio.create_task(flood())
    await asyncio.sleep(0.5)  # well into the flood
    photo = waiting.reply_to_message
    assert photo is not None
    tapped = time.monotonic()
    await telegram.press(other, waiting, "2 ")
    await telegram.wait_reply(photo, lambda m: bool(m.photo), timeout=60)
    seconds = time.monotonic() - tapped
    queries = await flooding

    assert seconds <= 2.0, f"the other member's photo took {seconds:.1f} s"
    # every toggle was answered at once; the keyboard shows the final state (40: as before)
    answered = await telegram.wait_for(
        lambda: all(q in telegram.state.callback_answers for q in queries), timeout=10
    )
    assert answered
    await telegram.wait_for(
        lambda: crop_label(telegram.message(group.id, flooded.message_id)) == first_label,
        timeout=10,
    )
    edits = [
        c
        for c in telegram.calls("editMessageReplyMarkup")
        if int(c.params["chat_id"]) == group.id
        and int(c.params["message_id"]) == flooded.message_id
        and c.at >= flood_began  # not "⋯ More"'s
    ]
    print(f"toggle flood: the other photo {seconds:.2f} s after its tap; {len(edits)} edits")
    assert 1 <= len(edits) <= 5, f"{len(edits)} edits for {TOGGLES} taps"
    assert not [e for e in getattr(telegram.state, "flood_errors", []) if e[0] == group.id]
