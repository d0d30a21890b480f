"""The server itself: its life, the Bot API endpoint, getUpdates and webhooks, the bot's profile."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from typing import Any

from aiohttp import ClientSession, web
from telegram import (
    BotCommand,
    Update,
    User,
    WebhookInfo,
)
from telegram.constants import (
    FloodLimit,
)

from tests.support.fake_telegram.chats import Chats
from tests.support.fake_telegram.common import (
    DEFAULT_TOKEN,
    NOT_BY_DEFAULT,
    ApiError,
    Call,
    State,
    Webhook,
    api_error,
    commands_key,
    read_params,
)
from tests.support.fake_telegram.files import Files
from tests.support.fake_telegram.inline import Inline
from tests.support.fake_telegram.limits import RateLimits, check_lengths
from tests.support.fake_telegram.media import Media
from tests.support.fake_telegram.messages import Messages
from tests.support.fake_telegram.outages import Outages
from tests.support.fake_telegram.stickers import Stickers

logger = logging.getLogger(__name__)


class FakeTelegram(Outages, Chats, Files, Messages, Media, Stickers, Inline, RateLimits):
    """One bot's view of Telegram, plus the users who talk to it (this package's parts)."""

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
        self.state = State()
        self.webhook = Webhook()
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

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return api_error(401, "Unauthorized")
        method = request.match_info["method"].lower()
        params = await read_params(request)
        self.state.calls.append(Call(method, params, time.monotonic()))
        try:
            if method in self.fail_next:
                raise ApiError(*self.fail_next.pop(method))
            check_lengths(method, params)
            if method == "getupdates":
                result: Any = await self._get_updates(params)
            else:
                handler = getattr(self, f"_m_{method}", None)
                if handler is None:
                    self.state.unknown_methods.append(method)
                    return api_error(404, "Not Found: method not found")
                result = handler(params)
        except ApiError as error:
            if error.code == 429:
                self.state.flood_errors.append((int(params.get("chat_id") or 0), method))
            return api_error(error.code, error.description, error.retry_after)
        finally:
            if method != "getupdates":
                await self._notify()
        return web.json_response({"ok": True, "result": result})

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

    def _m_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        # /setprivacy changes what getMe says from then on
        return {**self.bot_user.to_dict(), "can_read_all_group_messages": not self.privacy}

    def _m_deletewebhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self.state.updates.clear()
        self.webhook = Webhook()
        return True

    def _m_setwebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = Webhook(params["url"], params.get("secret_token"))
        return True

    def _m_getwebhookinfo(self, params: dict[str, Any]) -> dict[str, Any]:
        info = WebhookInfo(self.webhook.url, False, len(self.state.updates))
        return info.to_dict()

    def _m_setmycommands(self, params: dict[str, Any]) -> bool:
        commands = [BotCommand(c["command"], c["description"]) for c in params["commands"]]
        key = commands_key(params)
        self.state.command_lists[key] = commands
        if key == ("default", ""):
            self.state.commands = commands
        return True

    def _m_getmycommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return [c.to_dict() for c in self.state.command_lists.get(commands_key(params), [])]

    def _m_setmydescription(self, params: dict[str, Any]) -> bool:
        self.state.descriptions[params.get("language_code") or ""] = params.get("description", "")
        return True

    def _m_setmyshortdescription(self, params: dict[str, Any]) -> bool:
        language = params.get("language_code") or ""
        self.state.short_descriptions[language] = params.get("short_description", "")
        return True

    def _m_close(self, params: dict[str, Any]) -> bool:
        return True

    def _m_logout(self, params: dict[str, Any]) -> bool:
        return True
