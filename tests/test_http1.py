"""The wire under the one outbound client: what it writes, and how it bounds an answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from vwh.http1 import NoAnswer, Origin, Pool, Stage, request_bytes

Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def test_the_request_is_the_given_fields_then_content_length() -> None:
    wire = request_bytes("POST", b"/a?b=%2F", [(b"host", b"h:1"), (b"X-\xe9", b"\xff v")], b"{}")
    assert (
        wire
        == b"POST /a?b=%2F HTTP/1.1\r\nhost: h:1\r\nX-\xe9: \xff v\r\nContent-Length: 2\r\n\r\n{}"
    )
    with pytest.raises(NoAnswer, match="line break") as caught:
        request_bytes("POST", b"/", [(b"x", b"a\r\nInjected: 1")], b"")
    assert caught.value.stage is Stage.CONNECT


async def _answer_with(serve: Serve, limit: int, whole: bool) -> bytes:
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Pool(1)
    try:
        request = request_bytes("POST", b"/", [(b"host", b"x")], b"")
        answer = await asyncio.wait_for(
            pool.exchange(
                Origin.of(f"http://127.0.0.1:{port}"),
                request,
                head_only=False,
                limit=limit,
                whole=whole,
                fresh=False,
            ),
            10,
        )
        return answer.body
    finally:
        pool.close()
        server.close()


def _big_answer(size: int) -> Serve:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        try:
            for _ in range(size // 1000):
                writer.write(b"x" * 1000)
            await writer.drain()
        except ConnectionError:
            pass  # the client stopped reading past its limit
        writer.close()

    return serve


def test_an_answer_is_read_to_its_end_and_its_start_kept() -> None:
    body = asyncio.run(_answer_with(_big_answer(100_000), limit=1500, whole=False))
    assert body == b"x" * 1500


def test_a_whole_answer_over_the_limit_is_no_answer() -> None:
    with pytest.raises(NoAnswer, match="the answer is over 1500 bytes") as caught:
        asyncio.run(_answer_with(_big_answer(100_000), limit=1500, whole=True))
    assert caught.value.stage is Stage.BROKEN and not caught.value.stale
    assert asyncio.run(_answer_with(_big_answer(1000), limit=1500, whole=True)) == b"x" * 1000
