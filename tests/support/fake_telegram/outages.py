"""Outages: Telegram going away and coming back."""

from __future__ import annotations

from aiohttp import web


class Outages:
    """Outages (a part of :class:`FakeTelegram`)."""

    async def go_away(self) -> None:
        """Telegram cannot be reached: new connections are refused, open ones are cut. Users
        may go on sending; their updates wait here, as Telegram keeps them."""
        if self._site is not None:
            await self._site.stop()
            self._site = None
        assert self._runner is not None and self._runner.server is not None
        for connection in list(self._runner.server.connections):
            connection.force_close()

    async def come_back(self) -> None:
        """Reachable again, at the same address."""
        assert self._runner is not None and self._site is None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()
