"""The real bot in groups, in both privacy modes, through the fake Bot API.

The session's bot runs with privacy mode on (Telegram's default): the fake server hands it only
what Telegram would. A second bot, with privacy off and a short flood window, shows what works
when every message reaches the bot, and takes a burst of 40 requests in one group.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from telegram import Message

from bot import i18n, texts
from masks import catalog
from tests.support.bot_processes import BotProcess
from tests.support.fake_telegram import FakeTelegram, has_keyboard

#: the open bot's flood window: Telegram's 20 messages, in seconds instead of a minute
WINDOW = 4.0
FAKE_LIMIT = 20
BOT_BUDGET = 16  # the bot's own budget stays under Telegram's, as GROUP_MESSAGES=20 does
BURST = 40


def is_photo(message: Message) -> bool:
    return bool(message.photo)


def reactions_on(telegram: FakeTelegram, message: Message) -> list[list[str]]:
    """Every reaction the bot set on a message, in order ([] = taken back)."""
    return [
        [r["emoji"] for r in call.params.get("reaction") or []]
        for call in telegram.calls("setMessageReaction")
        if int(call.params["chat_id"]) == message.chat.id
        and int(call.params["message_id"]) == message.message_id
    ]


# ----------------------------------------------------------------------------- privacy on


async def test_privacy_on_only_what_is_addressed_reaches_the_bot(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    alice = telegram.user("Alice")
    group = telegram.group("Privacy on")
    me = telegram.bot_user.username
    assert "privacy mode is on" in bot.log()

    bare = await telegram.send_photo(group, alice, face_jpeg, caption="/mask")
    mention = await telegram.send_photo(group, alice, face_jpeg, caption=f"@{me} please")
    addressed = await telegram.send_photo(group, alice, face_jpeg, caption=f"/mask@{me}")
    await telegram.wait_reply(addressed, has_keyboard)
    assert bare in telegram.state.withheld and mention in telegram.state.withheld
    assert addressed not in telegram.state.withheld

    # the photo Telegram kept from the bot: a reply addressed to the bot brings it the keyboard
    await telegram.send_text(group, alice, f"/mask@{me}", reply_to=bare)
    await telegram.wait_reply(bare, has_keyboard)
    assert telegram.replies_to(mention) == []

    # /help@bot: exactly what works here; a bare /help never reaches the bot
    asked = await telegram.send_text(group, alice, f"/help@{me}")
    help_text = (await telegram.wait_reply(asked)).text
    assert texts.GROUP_HOW_ADDRESSED.format(bot=me) in help_text
    assert texts.GROUP_HOW_DIRECT.format(bot=me) in help_text
    assert texts.GROUP_PRIVACY_ON in help_text
    assert texts.GROUP_HOW_BARE.format(bot=me) not in help_text
    bare_help = await telegram.send_text(group, alice, "/help")
    assert bare_help in telegram.state.withheld


async def test_where_the_bot_is_admin_bare_commands_and_mentions_work(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    bea = telegram.user("Bea")
    group = telegram.group("Bot is admin", bot_admin=True)
    me = telegram.bot_user.username

    mention = await telegram.send_photo(group, bea, face_jpeg, caption=f"@{me}")
    await telegram.wait_reply(mention, has_keyboard)
    direct = await telegram.send_photo(group, bea, face_jpeg, caption="look /mask 2")
    result = await telegram.wait_reply(direct, is_photo, timeout=60)
    assert catalog.get(2).name in result.caption

    asked = await telegram.send_text(group, bea, "/help")
    help_text = (await telegram.wait_reply(asked)).text
    assert texts.GROUP_HOW_BARE.format(bot=me) in help_text
    assert texts.GROUP_PRIVACY_ON not in help_text
    # an ordinary photo reaches the bot here, and (auto off) gets no answer
    quiet = await telegram.send_photo(group, bea, face_jpeg, caption="holiday")
    await asyncio.sleep(1.0)
    assert quiet not in telegram.state.withheld and telegram.replies_to(quiet) == []


async def test_masks_named_in_the_command_mask_at_once(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    cleo, dima = telegram.user("Cleo"), telegram.user("Dima")
    group = telegram.group("Direct")
    me = telegram.bot_user.username
    photo = await telegram.send_photo(group, cleo, face_jpeg)  # no caption: withheld

    by_name = await telegram.send_text(group, cleo, f"/mask@{me} Villain", reply_to=photo)
    result = await telegram.wait_reply(photo, is_photo, timeout=60)
    assert result.caption.startswith(f"{catalog.get(7).emoji} {catalog.get(7).name} · ")
    assert "face" in result.caption
    assert result.reply_markup is not None  # quiet is off: buttons to try the others
    assert [m for m in telegram.replies_to(photo) if m.text] == []  # no "pick a mask" first
    assert telegram.replies_to(by_name) == []  # the answer goes under the photo

    # a Russian name from someone whose Telegram is in English: the name works, English answer
    await telegram.send_text(group, dima, f"/mask@{me} злодей", reply_to=photo)
    second = await telegram.wait_reply(photo, is_photo, timeout=60, after=1)
    assert catalog.get(7).name in second.caption

    for unknown in ("dragon", "9"):
        asked = await telegram.send_text(group, dima, f"/mask@{me} {unknown}", reply_to=photo)
        answer = (await telegram.wait_reply(asked)).text
        assert answer.startswith(texts.UNKNOWN_MASK_NAME.format(name=unknown))
        assert all(texts.mask_button(mask) in answer for mask in catalog.masks())
    # "/mask 3" with no photo to work on explains itself
    lonely = await telegram.send_text(group, cleo, f"/mask@{me} 3")
    assert (await telegram.wait_reply(lonely)).text == texts.MASK_HINT.format(command=f"/mask@{me}")
    await asyncio.sleep(0.5)
    assert len([m for m in telegram.replies_to(photo) if m.photo]) == 2


async def test_welcome_when_added_to_a_group_in_the_adders_language(
    telegram: FakeTelegram, bot: BotProcess
) -> None:
    me = telegram.bot_user.username
    ed, ivan = telegram.user("Ed"), telegram.user("Ivan", language_code="ru")

    def welcomes(group_id: int) -> list[Message]:
        return [m for m in telegram.from_bot(group_id) if m.text and "😷" in m.text.split("\n")[0]]

    plain = telegram.group("Fresh")
    await telegram.add_bot(plain, ed)
    [welcome] = await telegram.wait_for(lambda: welcomes(plain.id), what="the welcome")
    assert welcome.text.startswith(texts.WELCOME)
    assert texts.GROUP_HOW_ADDRESSED.format(bot=me) in welcome.text
    assert texts.GROUP_PRIVACY_ON in welcome.text

    russian = telegram.group("Свежая")
    await telegram.add_bot(russian, ivan, admin=True)
    [welcome] = await telegram.wait_for(lambda: welcomes(russian.id), what="the welcome")
    ru = i18n.translator("ru")
    assert welcome.text.startswith(ru(texts.WELCOME))
    assert ru(texts.GROUP_HOW_BARE, bot=me) in welcome.text  # an admin sees everything

    # a promotion is not a second hello; the updates reached the bot (allowed_updates)
    await telegram.set_admin(plain, telegram.bot_user)
    await asyncio.sleep(1.0)
    assert len(welcomes(plain.id)) == 1
    assert not [u for u in telegram.state.dropped_updates if "my_chat_member" in u]


async def test_a_reaction_while_masking_and_the_chat_action_where_reactions_are_off(
    telegram: FakeTelegram, bot: BotProcess, face_jpeg: bytes
) -> None:
    fay = telegram.user("Fay")
    me = telegram.bot_user.username
    group = telegram.group("Reactions")
    request = await telegram.send_photo(group, fay, face_jpeg, caption=f"/mask@{me} 1")
    result = await telegram.wait_reply(request, is_photo, timeout=60)
    await telegram.wait_for(lambda: reactions_on(telegram, request)[-1:] == [[]])
    assert reactions_on(telegram, request) == [["👀"], []]  # while masking, then taken back
    assert telegram.reaction(request) == []
    reacted = next(c for c in telegram.calls("setMessageReaction") if c.params.get("reaction"))
    sent = next(c for c in telegram.calls("sendPhoto") if int(c.params["chat_id"]) == group.id)
    assert reacted.at < sent.at and result.caption

    closed = telegram.group("No reactions", reactions=False)
    first = await telegram.send_photo(closed, fay, face_jpeg, caption=f"/mask@{me} 4")
    await telegram.wait_reply(first, is_photo, timeout=60)
    second = await telegram.send_photo(closed, fay, face_jpeg, caption=f"/mask@{me} 5")
    await telegram.wait_reply(second, is_photo, timeout=60)
    asked = [
        c for c in telegram.calls("setMessageReaction") if int(c.params["chat_id"]) == closed.id
    ]
    assert len(asked) == 1  # refused once (REACTION_INVALID), then not asked again
    actions = [c for c in telegram.calls("sendChatAction") if int(c.params["chat_id"]) == closed.id]
    assert actions and actions[0].params["action"] == "upload_photo"
    assert "Traceback" not in bot.log()


# ----------------------------------------------------------------------------- privacy off


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def open_bot(
    model_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[FakeTelegram, BotProcess]]:
    """A bot with privacy off (@BotFather's /setprivacy) and a flood window of seconds."""
    async with FakeTelegram(
        token="555000111:AAOpenBotTokenForTestsOnly_abcdefghij",
        bot_username="facemask_open_bot",
        privacy=False,
        group_messages=FAKE_LIMIT,
        group_window=WINDOW,
    ) as telegram:
        process = BotProcess(
            telegram,
            tmp_path_factory.mktemp("open-bot"),
            WORKERS="1",
            QUEUE_SIZE="64",  # the burst is never refused as busy
            POLL_TIMEOUT="2",
            GROUP_MESSAGES=str(BOT_BUDGET),
            GROUP_WINDOW=str(WINDOW),
            **model_env,
        )
        await process.start()
        yield telegram, process
        assert await process.stop() == 0, process.log()[-3000:]
        process.assert_clean_log()
        assert not telegram.state.unknown_methods


async def test_privacy_off_bare_commands_and_mentions_work_everywhere(
    open_bot: tuple[FakeTelegram, BotProcess], face_jpeg: bytes
) -> None:
    telegram, process = open_bot
    me = telegram.bot_user.username
    assert "privacy mode is off" in process.log()
    gus = telegram.user("Gus")
    group = telegram.group("Open")  # the bot is no admin here
    bare = await telegram.send_photo(group, gus, face_jpeg, caption="/mask")
    mention = await telegram.send_photo(group, gus, face_jpeg, caption=f"hey @{me}")
    await telegram.wait_reply(bare, has_keyboard)
    await telegram.wait_reply(mention, has_keyboard)
    asked = await telegram.send_text(group, gus, "/help")
    help_text = (await telegram.wait_reply(asked)).text
    assert texts.GROUP_HOW_BARE.format(bot=me) in help_text
    assert texts.GROUP_PRIVACY_ON not in help_text
    assert telegram.state.withheld == []


@pytest.mark.slow
async def test_a_burst_of_40_group_requests_is_answered_without_a_flood_error(
    open_bot: tuple[FakeTelegram, BotProcess], face_jpeg: bytes
) -> None:
    """40 photos for the bot in one group at once: every one answered, none refused.

    Telegram (the fake) takes 20 messages per WINDOW seconds into a group and answers 429
    beyond. 30 of the photos ask for the keyboard (answered at once, no worker), 10 name a
    mask: the answers are ready far faster than Telegram takes them, and the bot's limiter
    queues them within its own budget instead of meeting the flood limit.
    """
    telegram, process = open_bot
    group = telegram.group("Burst")
    people = [telegram.user(f"Member {n}") for n in range(8)]
    started = time.monotonic()
    masks = {n: n % 7 + 1 for n in range(0, BURST, 4)}  # request number -> the mask it names
    requests = [
        await telegram.send_photo(
            group, people[n % 8], face_jpeg, caption=f"/mask {masks[n]}" if n in masks else "/mask"
        )
        for n in range(BURST)
    ]
    sending = time.monotonic() - started

    def answer(n: int) -> Message | None:
        wanted = is_photo if n in masks else has_keyboard
        return next((m for m in telegram.replies_to(requests[n]) if wanted(m)), None)

    await telegram.wait_for(
        lambda: all(answer(n) for n in range(BURST)), timeout=55, what="40 answers"
    )
    seconds = time.monotonic() - started
    for n, mask_id in masks.items():
        assert catalog.get(mask_id).name in answer(n).caption
    assert all(len(telegram.replies_to(r)) == 1 for r in requests)  # no "busy", no errors
    assert telegram.state.flood_errors == []
    log = process.log().lower()
    assert "flood" not in log and "retry after" not in log

    # the requests came within a second or two; the limiter spread the answers out
    sent = sorted(
        c.at
        for c in telegram.calls()
        if c.method in ("sendmessage", "sendphoto") and int(c.params["chat_id"]) == group.id
    )
    spread = sent[-1] - sent[0]
    print(  # noqa: T201
        f"burst: {BURST} requests sent in {sending:.1f} s, answered in {seconds:.1f} s, "
        f"answers spread over {spread:.1f} s"
    )
    assert len(sent) == BURST and sending < 5.0
    assert spread >= (BURST - BOT_BUDGET) * WINDOW / BOT_BUDGET * 0.8
