"""Shared test machinery: free ports, real servers, and running the real CLI."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


class ThreadedServer:
    """A real uvicorn server for an ASGI app, in a thread, on a free loopback port."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            log_level="critical",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def vwh_env(**extra: str) -> dict[str, str]:
    """The environment a CLI subprocess runs with: isolated, no colour, fixed width."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VWH_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "100", "PYTHONUNBUFFERED": "1"})
    for key in (
        "VWH_STORE",
        "VWH_CACHE_DIR",
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "HOME",
    ):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(extra)
    return env


def run_vwh(
    *args: str,
    input: bytes | str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the real `vwh` in a subprocess, the way a user does."""
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.run(
        [sys.executable, "-m", "vwh", *args],
        input=data,
        capture_output=True,
        env=env or vwh_env(),
        timeout=timeout,
    )
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def invoke(*args: str, input: str = "") -> CliResult:
    """Run the CLI in-process through its real entry point (fast; no subprocess)."""
    from vwh.cli.app import main

    out, err = io.StringIO(), io.StringIO()
    old = sys.argv, sys.stdin
    sys.argv, sys.stdin = ["vwh", *args], io.StringIO(input)
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv, sys.stdin = old
    return CliResult(code, out.getvalue(), err.getvalue())


class ListenerProcess:
    """`vwh listen` as a real subprocess on a free port; stdout and stderr are captured."""

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        port: int | None = None,
        preexec_fn: Any = None,  # run in the child before vwh starts (resource limits)
    ):
        self.port = port or free_port()
        self.preexec_fn = preexec_fn
        self.args = ["listen", "--port", str(self.port), *args]
        self.env = env or vwh_env()
        self.proc: subprocess.Popen[bytes] | None = None
        self.stdout = ""
        self.stderr = ""
        self.stdout_bytes = b""  # exactly what it wrote, for checks that decoding would hide
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._readers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 15) -> ListenerProcess:
        """Start it and wait until it says it is ready (its signal handlers are in place)."""
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vwh", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            preexec_fn=self.preexec_fn,
        )
        for stream, sink in ((self.proc.stdout, self._out), (self.proc.stderr, self._err)):
            reader = threading.Thread(target=_drain, args=(stream, sink), daemon=True)
            reader.start()
            self._readers.append(reader)
        deadline = time.monotonic() + ready_timeout
        while b"ready: Ctrl-C to stop" not in b"".join(self._err):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"listener did not start: {self.stderr}")
            time.sleep(0.02)
        return self

    def stderr_so_far(self) -> str:
        """What it printed on stderr until now, while it still runs."""
        return b"".join(self._err).decode(errors="replace")

    def stop(self, sig: int | None = None, timeout: float = 15) -> int:
        """Stop it (SIGINT by default, as Ctrl-C does) and collect its output."""
        import signal as _signal

        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig if sig is not None else _signal.SIGINT)
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        self.stdout_bytes = b"".join(self._out)
        self.stdout = self.stdout_bytes.decode(errors="replace")
        self.stderr = b"".join(self._err).decode(errors="replace")
        return code

    def __enter__(self) -> ListenerProcess:
        return self.start()

    def output_so_far(self) -> tuple[bytes, bytes]:
        """stdout and stderr as written until now, while it runs (a line may be unfinished)."""
        return b"".join(self._out), b"".join(self._err)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.stop()


def _drain(stream: Any, sink: list[bytes]) -> None:
    with stream:
        for chunk in iter(lambda: stream.read1(65536), b""):
            sink.append(chunk)


@contextlib.contextmanager
def listener(*args: str, **kw: Any) -> Iterator[ListenerProcess]:
    with ListenerProcess(*args, **kw) as proc:
        yield proc


def run_receiver(store_path: Path, settings: Any, scenario: Any) -> list[Any]:
    """Run `scenario(client)` against the listener app in-process (ASGI transport).

    Returns every kept request, oldest first, and checks that the display callback
    saw each request this run kept, in order.
    """
    import asyncio

    import httpx

    from vwh.receiver import create_app
    from vwh.store import BatchWriter, CapturedRequest, CaptureStore

    store = CaptureStore(store_path)
    seen: list[CapturedRequest] = []
    writer = BatchWriter(store_path, on_commit=seen.extend)
    app = create_app(settings, writer, store)

    async def go() -> None:
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://vwh") as client:
                await scenario(client)
        finally:
            await app.aclose()  # the handler connections, when it forwards

    try:
        asyncio.run(go())
    finally:
        writer.close()
    kept = list(store.iter_all())
    store.close()
    assert [r.id for r in seen] == [r.id for r in kept[len(kept) - len(seen) :]]
    return kept


@dataclass
class ServedReceiver:
    """The listener app under a real uvicorn server in a thread, and what it showed."""

    url: str
    port: int
    shown: list[Any]


@contextlib.contextmanager
def served_receiver(store_path: Path, settings: Any) -> Iterator[ServedReceiver]:
    """The listener's app on a free loopback port, served as `vwh listen` serves it (its
    own protocol, vwh.http_exchange): real HTTP, raw sockets welcome."""
    from vwh.receiver import create_app
    from vwh.server import bind_socket, make_server, serve
    from vwh.store import BatchWriter, CaptureStore

    store = CaptureStore(store_path)
    shown: list[Any] = []
    writer = BatchWriter(store_path, on_commit=shown.extend)
    app = create_app(settings, writer, store)
    sock = bind_socket("127.0.0.1", 0)
    port = int(sock.getsockname()[1])
    server = make_server(app)

    async def run() -> None:
        try:
            await serve(server, sock)
        finally:
            await app.aclose()  # in the server's loop, which owns the handler connections

    thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("receiver did not start")
            time.sleep(0.01)
        yield ServedReceiver(f"http://127.0.0.1:{port}", port, shown)
    finally:
        server.should_exit = True
        thread.join(10)
        writer.close()
        store.close()


def raw_exchange(
    port: int, data: bytes, *, close_after: float | None = None, until_closed: bool = False
) -> bytes:
    """Send raw bytes; with `close_after`, close that many seconds later without reading.

    Otherwise read the answer until it is complete (with `until_closed`, every answer
    until the server closes), or the server closes, or 10 s pass without a byte.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        if close_after is not None:
            time.sleep(close_after)
            return b""
        chunks: list[bytes] = []
        with contextlib.suppress(TimeoutError, ConnectionError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if not until_closed and whole_message(b"".join(chunks), without_length=False):
                    break
        return b"".join(chunks)


def whole_message(data: bytes, *, without_length: bool) -> bool:
    """True once `data` holds an HTTP message's head and its Content-Length of body;
    a head without Content-Length is whole as `without_length` says."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return without_length


def read_request(conn: socket.socket) -> bytes:
    """What a client sent: one whole request, or what came before it hung up."""
    data = b""
    while not whole_message(data, without_length=True):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


RawServerT = TypeVar("RawServerT", bound="RawSocketServer")


class RawSocketServer:
    """A loopback server on raw sockets, for answers no ASGI server can be made to give.

    Subclasses say what to do with each connection (`handle`); connections are served
    one at a time, each with a `conn_timeout`.
    """

    conn_timeout = 10.0

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0), backlog=16)
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(self.conn_timeout)
                self.handle(conn)

    def __enter__(self: RawServerT) -> RawServerT:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._sock.close()


class RawCapture(RawSocketServer):
    """A loopback server that keeps each request's exact bytes and answers 200 `{}`.

    For tests that compare what two commands put on the wire, byte for byte.
    """

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[bytes] = []

    def handle(self, conn: socket.socket) -> None:
        self.requests.append(read_request(conn))
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
        )


class TerminalListener:
    """A real `vwh listen` whose stdout is a pseudo-terminal of a given size, as a
    person runs it: the live table, drawn by Rich. Stopped with SIGINT on exit."""

    def __init__(self, *args: str, rows: int, columns: int, env: dict[str, str]) -> None:
        import fcntl
        import pty
        import struct
        import termios

        self.port = free_port()
        self.screen = b""
        self.stderr = ""
        self._leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {**env, "TERM": "xterm"}
        env.pop("COLUMNS", None)  # the terminal's own size decides
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vwh", "listen", "--port", str(self.port), *args],
            stdout=follower, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        os.close(follower)

    def __enter__(self) -> TerminalListener:
        try:
            wait_for_port(self.port)
        except BaseException:
            self.__exit__()
            raise
        return self

    def read_until(self, needle: bytes | None, timeout: float) -> bytes:
        """Add what the terminal shows until `needle` is on it, it goes quiet (no
        needle), or time is up; the whole screen so far."""
        import select

        deadline = time.monotonic() + timeout
        while (needle is None or needle not in self.screen) and time.monotonic() < deadline:
            if not select.select([self._leader], [], [], 0.2)[0]:
                if needle is None:
                    break
                continue
            try:
                chunk = os.read(self._leader, 65536)
            except OSError:  # the other side closed
                break
            if not chunk:
                break
            self.screen += chunk
        return self.screen

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=15)
        self.stderr = err.decode(errors="replace")
        self.read_until(None, 2)  # the last frame, drawn as it stopped
        os.close(self._leader)

    @property
    def text(self) -> str:
        return self.screen.decode(errors="replace")
