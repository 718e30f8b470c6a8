"""Reading webhook bodies: from files, directories, JSON lines, stdin and the store.

Bodies are read as they are sent, one at a time, so memory does not grow with the
input and the first request goes out at once. What can be known before reading
(each file exists and is readable, each directory has bodies) is checked first;
each body is checked as it is read and kept byte for byte, and one that cannot be
used is a Problem naming the input (file, and line for JSON lines). A body larger
than `max_size` is a Problem too, found without reading more of it than that.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from vwh.body_lines import BoundedLines, TooLarge, can_read_ahead, is_json_value
from vwh.errors import InputError, NotFoundError
from vwh.store import CaptureStore
from vwh.webhook import InvalidBody, is_masked, is_secret_name, parse_body

STDIN = "-"
JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
EXPORT_KIND = "vwh.request"  # the "kind" of a `vwh export` record (vwh.export writes them)
MAX_SIZE = 16 * 1024 * 1024  # the largest body (a file, or a line of JSON lines) read

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
    path: str | None = None  # an exported request's path, sent to again (None: --to as given)
    # A kept or exported request's query string as the store kept it: its secrets masked,
    # and masked values are never sent (vwh.replay.url_for leaves them out).
    query: str = ""
    cookies: tuple[tuple[str, str], ...] = ()  # a kept request's cookies, masked ones left out


@dataclass(frozen=True)
class Problem:
    """An input that cannot be sent; `message` names it (and the line, for JSON lines).

    A `fatal` one cannot be skipped: a body too large to read leaves no next body to
    find without reading all of it.
    """

    label: str
    message: str
    fatal: bool = False


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


def check_sources(sources: Sequence[str]) -> list[Problem]:
    """What can be known before reading: each file exists and is readable, each
    directory holds *.json files. Stdin ('-') is always there."""
    problems = []
    for source in sources:
        if source == STDIN:
            continue
        path = Path(source)
        try:
            is_dir = path.is_dir()
            path.stat()
        except FileNotFoundError:
            problems.append(Problem(source, f"{path}: no such file"))
            continue
        except OSError as exc:
            problems.append(Problem(source, f"{path}: cannot read ({exc.strerror})"))
            continue
        if is_dir and not _dir_files(path):
            message = f"{path}: no *.json files in this directory"
            problems.append(Problem(source, message))
        elif not os.access(path, os.R_OK if not is_dir else os.R_OK | os.X_OK):
            problems.append(Problem(source, f"{path}: cannot read (permission denied)"))
    return problems


def iter_sources(
    sources: Sequence[str], stdin: BinaryIO | None = None, *, max_size: int = MAX_SIZE
) -> Iterator[Payload | Problem]:
    """Bodies from files, directories (their *.json), JSON-lines files and '-' (stdin),
    read one at a time, in order, each a Payload or a Problem.

    A file holding one JSON object is one body. JSON lines (one object a line, or a
    .jsonl/.ndjson name) are one body a line. A file or stream whose first line is a
    whole JSON value followed by more lines is JSON lines; from a pipe (stdin, a FIFO),
    which cannot be read ahead without waiting for its writer, a first line that is a
    whole JSON value makes it JSON lines at once.
    """
    for source in sources:
        if source == STDIN:
            yield from _iter_stream(stdin, "<stdin>", max_size=max_size)
            continue
        path = Path(source)
        for file in _dir_files(path) if path.is_dir() else [path]:
            yield from _iter_file(file, max_size)


def load_sources(sources: Sequence[str], stdin: BinaryIO | None = None) -> Loaded:
    """Every body and every problem at once: for a handful of inputs (`vwh sign`)."""
    loaded = Loaded(problems=check_sources(sources))
    failed = {p.label for p in loaded.problems}
    for item in iter_sources([s for s in sources if s not in failed], stdin):
        if isinstance(item, Problem):
            loaded.problems.append(item)
        else:
            loaded.payloads.append(item)
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
                    query=kept.query,
                    cookies=tuple(_replayable_cookies(kept.headers)),
                )
            )
    return loaded


def exported_request(value: dict[str, Any], label: str, where: str) -> Payload | Problem | None:
    """A `vwh export` record as the request it was; None when `value` is not one.

    Like a kept request, the body goes out as it came (not checked), with the
    record's method, path and query; its masked secrets are not sent.
    """
    if value.get("kind") != EXPORT_KIND:
        return None
    method, path, query = value.get("method"), value.get("path"), value.get("query", "")
    headers, token = value.get("headers", []), value.get("token", "")
    if not (
        isinstance(method, str)
        and method.isalpha()
        and isinstance(path, str)
        and path.startswith("/")
        and isinstance(query, str)
        and isinstance(token, str)
        and isinstance(headers, list)
        and all(_is_header(h) for h in headers)
    ):
        return Problem(label, f"{where}: not a usable vwh export record (method, path, query)")
    body: bytes | None = None
    try:
        if isinstance(value.get("body_base64"), str):
            body = base64.b64decode(value["body_base64"], validate=True)
        elif isinstance(value.get("body"), str):
            body = value["body"].encode("utf-8")
    except (binascii.Error, UnicodeEncodeError):
        body = None
    if body is None:
        return Problem(label, f"{where}: the exported request has no body (not kept, or bad)")
    return Payload(
        label,
        body,
        method=method,
        headers=tuple(_replayable([(h[0], h[1]) for h in headers], token)),
        had_token=bool(token),
        path=path,
        query=query,
        cookies=tuple(_replayable_cookies((h[0], h[1]) for h in headers)),
    )


def _is_header(item: object) -> bool:
    return isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)


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


def _dir_files(path: Path) -> list[Path]:
    return sorted(p for p in path.glob("*.json") if p.is_file())


def _iter_file(path: Path, max_size: int) -> Iterator[Payload | Problem]:
    try:
        file = path.open("rb")
    except OSError as exc:
        reason = (
            "no such file"
            if isinstance(exc, FileNotFoundError)
            else f"cannot read ({exc.strerror})"
        )
        yield Problem(str(path), f"{path}: {reason}")
        return
    with file:
        json_lines = path.suffix.lower() in JSON_LINES_SUFFIXES
        yield from _iter_stream(file, str(path), json_lines=json_lines, max_size=max_size)


def _iter_stream(
    stream: BinaryIO | None, name: str, *, json_lines: bool = False, max_size: int = MAX_SIZE
) -> Iterator[Payload | Problem]:
    """One body, or one per line when the text is JSON lines; read errors are Problems."""
    if stream is None:
        yield Problem(name, f"{name}: empty body")
        return
    lines = BoundedLines(stream, name, max_size)
    try:
        if json_lines:
            yield from _json_lines(lines, [])
            return
        head = lines.next_filled()
        if head is None:
            yield Problem(name, f"{name}: empty body")
            return
        if not is_json_value(head[1]):
            yield _one_body(lines.rest(), name, max_size)
            return
        if not can_read_ahead(stream):
            yield from _json_lines(lines, [head])
            return
        following = lines.next_filled()
        if following is None:  # nothing after the first line: the file is the body
            yield _one_body(lines.rest(), name, max_size)
            return
        yield from _json_lines(lines, [head, following])
    except TooLarge as exc:
        yield Problem(name, str(exc), fatal=True)
    except OSError as exc:
        yield Problem(name, f"{name}: cannot read ({exc.strerror or exc})")


def _json_lines(lines: BoundedLines, first: list[tuple[int, bytes]]) -> Iterator[Payload | Problem]:
    name = lines.name
    lines.keep_nothing()
    any_line = False
    pending = iter(first)
    while True:
        got = next(pending, None) or lines.next_filled()
        if got is None:
            break
        number, line = got
        any_line = True
        label = f"{name}:{number}"
        try:
            value = parse_body(line)
        except InvalidBody as exc:
            yield Problem(label, f"{name} line {number}: {exc}")
        else:
            yield exported_request(value, label, f"{name} line {number}") or Payload(label, line)
    if not any_line:
        yield Problem(name, f"{name}: empty body")


def _one_body(raw: bytes, name: str, max_size: int) -> Payload | Problem:
    try:
        value = parse_body(raw)
    except InvalidBody as exc:
        return Problem(name, f"{name}: {exc}")
    return exported_request(value, name, name) or Payload(name, raw)
