"""A small HTTP forward proxy on 127.0.0.1 that asks for a password, for tests of
``TELEGRAM_PROXY`` (plain HTTP: the fake Telegram server speaks no TLS)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import quote

from aiohttp import ClientSession, web

HOP_BY_HOP = {"host", "connection", "keep-alive", "proxy-authorization", "proxy-connection",
              "transfer-encoding", "te", "trailer", "upgrade"}  # fmt: skip


@dataclass
class Proxy:
    user: str
    password: str
    port: int = 0
    seen: list[str] = field(default_factory=list)  # "METHOD URL" of each request it forwarded

    @property
    def url(self) -> str:
        """The proxy's URL with its credentials (the password percent-encoded where needed)."""
        credentials = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"http://{credentials}@127.0.0.1:{self.port}"

    @property
    def authorization(self) -> str:
        """What a client sends in Proxy-Authorization: base64 of user:password."""
        return base64.b64encode(f"{self.user}:{self.password}".encode()).decode()


@asynccontextmanager
async def http_proxy(user: str = "bot", password: str = "proxy-pass-4321") -> AsyncIterator[Proxy]:
    proxy = Proxy(user, password)
    expected = f"Basic {proxy.authorization}"
    async with ClientSession(auto_decompress=False) as upstream:

        async def forward(request: web.BaseRequest) -> web.StreamResponse:
            if request.headers.get("Proxy-Authorization") != expected:
                return web.Response(status=407)
            proxy.seen.append(f"{request.method} {request.url}")
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            body = await request.read()
            async with upstream.request(
                request.method, request.url, headers=headers, data=body
            ) as answer:
                payload = await answer.read()
                kept = {k: v for k, v in answer.headers.items() if k.lower() == "content-type"}
                return web.Response(status=answer.status, body=payload, headers=kept)

        runner = web.ServerRunner(web.Server(forward), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        proxy.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            yield proxy
        finally:
            await runner.cleanup()
