"""Small webhook handlers for `vwh check` to grade: one correct, the others each
with one of the mistakes the suite exists to catch.

Written the way a developer would write them (Starlette, hmac, json), not with vwh's
own helpers, so the suite is tested against independent code.
"""

from __future__ import annotations

import asyncio
import hmac
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "s3cret-verifier-token"
PATH = "/webhooks/vendasta"
KNOWN_FIELDS = {"accountId", "automationId", "entityId", "marketId", "orderId", "partnerId"}


def make_handler(
    *,
    check_token: bool = True,
    bad_json_status: int = 400,
    delay: float = 0.0,
    repeat_status: int = 200,
    strict_fields: bool = False,
    place: tuple[str, str] = ("header", "verifier-token"),
    answer: object = None,
) -> Starlette:
    """A handler at PATH; the defaults make the correct one.

    `place`: where it reads the token (header, query or cookie, and the name);
    `answer`: what a processed delivery gets (a JSON value, or bytes as they are).
    """
    seen: set[bytes] = set()
    kind, name = place
    read = {"header": "headers", "query": "query_params", "cookie": "cookies"}[kind]

    async def hook(request: Request) -> Response:
        given = getattr(request, read).get(name, "")
        if check_token and not hmac.compare_digest(given.encode(), TOKEN.encode()):
            return JSONResponse({"error": "wrong or missing token"}, status_code=401)
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return JSONResponse({"error": "body is not JSON"}, status_code=bad_json_status)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body is not an object"}, status_code=400)
        if strict_fields and set(body) - KNOWN_FIELDS:
            unknown = sorted(set(body) - KNOWN_FIELDS)
            return JSONResponse({"error": f"unknown fields {unknown}"}, status_code=400)
        await asyncio.sleep(delay)  # the real work
        if raw in seen:
            return JSONResponse({"status": "already processed"}, status_code=repeat_status)
        seen.add(raw)
        if isinstance(answer, bytes):
            return Response(answer, media_type="text/plain")
        return JSONResponse({"status": "processed"} if answer is None else answer)

    return Starlette(routes=[Route(PATH, hook, methods=["POST"])])


def correct() -> Starlette:
    return make_handler()


def accepts_any_token() -> Starlette:
    return make_handler(check_token=False)


def crashes_on_bad_json() -> Starlette:
    return make_handler(bad_json_status=500)


def slow(delay: float) -> Starlette:
    return make_handler(delay=delay)


def fails_on_repeat(status: int = 500) -> Starlette:
    return make_handler(repeat_status=status)


def rejects_unknown_fields() -> Starlette:
    return make_handler(strict_fields=True)
