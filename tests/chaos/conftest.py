"""Chaos tests share one event loop per session, like tests/bot (the fake server lives in it)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import pytest_asyncio


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    marker = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if here in Path(item.fspath).parents and pytest_asyncio.is_async_test(item):
            item.add_marker(marker, append=False)


@pytest.fixture(scope="session")
def redis_server_binary() -> str:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    return server
