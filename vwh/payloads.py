"""Reading webhook bodies: from files, directories, JSON lines, stdin and the store.

Every body is checked before anything is sent and kept byte for byte, so a batch
either goes out whole or names each input it cannot use (file, and line for JSON
lines) in one line a person can act on.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from vwh.errors import InputError, NotFoundError
from vwh.store import CaptureStore
from vwh.webhook import InvalidBody, is_masked, is_secret_name, parse_body

STDIN = "-"
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")

# Headers of a kept request that belong to its connection, not to the delivery.
_TRANSPORT_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "proxy-connection",
    }
)


@dataclass(frozen=True)
class Payload:
    """One body to send, with where it came from (`label`) for every report."""

    label: str
    body: bytes
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()  # kept headers, for --keep-headers
    had_token: bool = False  # a kept request carried a token, which the store masked
    query: str = ""  # a kept request's query string, its masked secrets left out
    cookies: tuple[tuple[str, str], ...] = ()  # a kept request's cookies, likewise


@dataclass(frozen=True)
class Problem:
    """An input that cannot be sent; `message` names it (and the line, for JSON lines)."""

    label: str
    message: str


@dataclass
class Loaded:
    """What the inputs gave: bodies to send, and the inputs that cannot be sent."""

    payloads: list[Payload] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def extend(self, other: Loaded) -> None:
        self.payloads.extend(other.payloads)
        self.problems.extend(other.problems)

    def raise_problems(self) -> None:
        """Refuse the whole batch: InputError with the first problem (and how many more)."""
        if not self.problems:
            return
        first = self.problems[0].message
        more = len(self.problems) - 1
        if more:
            first += f" (and {more} more invalid input{'s' if more > 1 else ''})"
        raise InputError(first)


def read_json_object_file(path: Path) -> bytes:
    """The file's bytes, once checked to hold one JSON object."""
    raw = _read(path)
    try:
        parse_body(raw)
    except InvalidBody as exc:
        raise InputError(f"{path}: {exc}") from None
    return raw


def load_sources(sources: Sequence[str], stdin: BinaryIO | None = None) -> Loaded:
    """Bodies from files, directories (their *.json), JSON-lines files and '-' (stdin).

    A file holding one JSON object is one body. A file of JSON lines (one object a
    line, or a .jsonl/.ndjson name) is one body a line. Problems are collected, not
    raised, so the caller decides between refusing the batch and skipping them.
    """
    loaded = Loaded()
    for source in sources:
        if source == STDIN:
            raw = stdin.read() if stdin is not None else b""
            loaded.extend(_split(raw, "<stdin>", json_lines=False))
            continue
        path = Path(source)
        if path.is_dir():
            loaded.extend(_load_dir(path))
        else:
            loaded.extend(_load_file(path))
    return loaded


def load_history(store_path: Path, ids: Iterable[int]) -> Loaded:
    """Kept requests, as received: their raw body, method and replayable headers.

    The bodies are not checked: a kept request is replayed as it came, even one the
    listener refused. A missing id, or a body too large to have been kept, is a problem.
    """
    try:
        store = CaptureStore.open_existing(store_path)
    except NotFoundError as exc:
        raise InputError(str(exc)) from None  # for replay, unreadable input
    loaded = Loaded()
    with store:
        for request_id in ids:
            label = f"#{request_id}"
            try:
                kept = store.get(request_id)
            except NotFoundError as exc:
                loaded.problems.append(Problem(label, str(exc)))
                continue
            if kept.body is None:
                message = f"request #{request_id}: its body ({kept.body_size} bytes) was not kept"
                loaded.problems.append(Problem(label, message))
                continue
            loaded.payloads.append(
                Payload(
                    label=label,
                    body=kept.body,
                    method=kept.method,
                    headers=tuple(_replayable(kept.headers, kept.token_masked)),
                    had_token=bool(kept.token_masked),
                    query=_replayable_query(kept.query),
                    cookies=tuple(_replayable_cookies(kept.headers)),
                )
            )
    return loaded


def _replayable(headers: Iterable[tuple[str, str]], token_masked: str) -> list[tuple[str, str]]:
    """Kept headers worth sending again: not the connection's, not masked secrets.

    The token header may have had any name; its kept value is the masked token.
    """
    return [
        (name, value)
        for name, value in headers
        if name.lower() not in _TRANSPORT_HEADERS
        and not is_secret_name(name)
        and not (token_masked and value == token_masked)
    ]


def _replayable_query(query: str) -> str:
    """A kept query string without the parameters the store masked (secrets it never kept)."""
    from urllib.parse import unquote_plus

    parts = [p for p in query.split("&") if p]
    return "&".join(p for p in parts if not is_masked(unquote_plus(p.partition("=")[2])))


def _replayable_cookies(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """A kept request's cookies, without those the store masked."""
    cookies = []
    for name, value in headers:
        if name.lower() == "cookie":
            for part in value.split(";"):
                key, eq, val = part.strip().partition("=")
                if eq and key and not is_masked(val):
                    cookies.append((key, val))
    return cookies


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def _load_file(path: Path) -> Loaded:
    try:
        raw = _read(path)
    except InputError as exc:
        return Loaded(problems=[Problem(str(path), str(exc))])
    return _split(raw, str(path), json_lines=path.suffix.lower() in JSON_LINES_SUFFIXES)


def _load_dir(path: Path) -> Loaded:
    files = sorted(p for p in path.glob("*.json") if p.is_file())
    if not files:
        return Loaded(problems=[Problem(str(path), f"{path}: no *.json files in this directory")])
    loaded = Loaded()
    for file in files:
        loaded.extend(_load_file(file))
    return loaded


def _split(raw: bytes, name: str, *, json_lines: bool) -> Loaded:
    """One body, or one per line when the text is JSON lines."""
    if not json_lines:
        try:
            parse_body(raw)
        except InvalidBody as exc:
            if not _looks_like_json_lines(raw):
                return Loaded(problems=[Problem(name, f"{name}: {exc}")])
        else:
            return Loaded(payloads=[Payload(name, raw)])
    loaded = Loaded()
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        label = f"{name}:{number}"
        try:
            parse_body(line)
        except InvalidBody as exc:
            loaded.problems.append(Problem(label, f"{name} line {number}: {exc}"))
        else:
            loaded.payloads.append(Payload(label, line))
    if not loaded.payloads and not loaded.problems:
        loaded.problems.append(Problem(name, f"{name}: empty body"))
    return loaded


def _looks_like_json_lines(raw: bytes) -> bool:
    """True when the text starts with one whole JSON value followed by more on later lines."""
    try:
        text = raw.decode("utf-8")
        json.loads(text)
    except json.JSONDecodeError as exc:
        return exc.msg == "Extra data" and "\n" in text[: exc.pos]
    except (UnicodeDecodeError, ValueError, RecursionError):  # not JSON, or too deep to tell
        return False
    return False
