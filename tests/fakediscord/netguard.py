"""A pytest plugin that makes any network connection outside 127.0.0.1 fail the test loudly.

Tests must never reach discord.com, Hypereal or anything else: a stray call raises
``NetworkBlocked`` at connect time (and at name resolution, which aiohttp does in a thread).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

ALLOWED_HOSTS = {"127.0.0.1", "localhost"}


class NetworkBlocked(RuntimeError):
    """A test tried to reach the network."""


def _host_of(address: Any) -> str | None:
    if isinstance(address, tuple) and address:
        return str(address[0])
    return None  # unix sockets and the like


def _check(host: str | None) -> None:
    if host is not None and host not in ALLOWED_HOSTS:
        raise NetworkBlocked(f"tests may only connect to 127.0.0.1, not {host!r}")


@pytest.fixture(autouse=True, scope="session")
def _block_network() -> Iterator[None]:
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(_host_of(address))
        return original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(_host_of(address))
        return original_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            _check(host.decode() if isinstance(host, bytes) else str(host))
        return original_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = original_getaddrinfo
