"""Chaos tests need a redis-server; their async tests share the session loop (tests/conftest)."""

from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def redis_server_binary() -> str:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    return server
