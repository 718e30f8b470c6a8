"""Benchmark `vwh listen` against a bare Starlette app on uvicorn that only answers 200.

Both get the same load from wrk (fresh order ids, the verifier token) at concurrency
1 and 64, in interleaved rounds, and the medians are compared. vwh runs as a user
runs it: store on, token checked, one output line per request into a pipe, the
inspector served. A third contender is the same listener with one live-stream client
subscribed to the inspector (a reader of /api/events, as an open page is), so every
kept request is also published to it. Then a fresh listener takes 50,000 requests to
show that its memory stays flat.

    python bench/bench_listen.py [--seconds 4] [--rounds 3] [--no-stream] [--asgi]

Concurrency 1 is Vendasta's usual pace, where every answer waits for its own
commit: a request that comes alone is committed on the event loop (a one-row
INSERT), not handed to a thread and back (two thread wake-ups per request, 0.33 of
the bare app). At concurrency 64 what a loop turn brings is committed at the end of
the turn, on the loop too, in one transaction. The CPU per request is printed too:
on a shared machine it varies less than requests per second.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
from pathlib import Path

from common import ROOT, Server, free_port, median, python, wrk


def start_bare(kind: str = "starlette") -> Server:
    port = free_port()
    return Server([python(), str(ROOT / "bench" / "bare_app.py"), str(port), kind], port)


UI_SECRET = "bench-ui-secret"


def start_vwh(store: Path, ui_port: int = 0) -> Server:
    port = free_port()
    args = [python(), "-m", "vwh", "listen", "--port", str(port), "--token", "bench-token",
            "--store", str(store), "--ui-port", str(ui_port)]  # fmt: skip
    return Server(args, port, env={**os.environ, "VWH_UI_TOKEN": UI_SECRET})


class StreamClient:
    """One subscriber of the inspector's live stream, reading as fast as it comes."""

    def __init__(self, port: int) -> None:
        self.events = 0
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(
            f"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {UI_SECRET}\r\n\r\n".encode()
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        tail = b""
        while chunk := self.sock.recv(65536):
            data = tail + chunk
            self.events += data.count(b"event: request")
            tail = data[-16:]
            self.events -= tail.count(b"event: request")  # counted again with the next chunk


def throughput(seconds: int, rounds: int, tmp: Path, stream: bool, asgi: bool) -> None:
    servers = {"bare": start_bare(), "vwh": start_vwh(tmp / "throughput.sqlite3")}
    if asgi:  # the fastest ASGI receiver uvicorn runs: no router, no Request object
        servers["bare-asgi"] = start_bare("asgi")
    client = None
    if stream:
        ui_port = free_port()
        servers["vwh+stream"] = start_vwh(tmp / "stream.sqlite3", ui_port)
        client = StreamClient(ui_port)
    try:
        for connections in (1, 64):
            results: dict[str, list[float]] = {name: [] for name in servers}
            cpu: dict[str, list[float]] = {name: [] for name in servers}
            for r in range(rounds):
                for name, server in servers.items():
                    before = server.cpu_seconds()
                    run = wrk(
                        server.url, connections, seconds, "post_unique.lua", f"c{connections}r{r}"
                    )
                    cpu[name].append((server.cpu_seconds() - before) / run["count"] * 1e6)
                    results[name].append(run["rps"])
            b = median(results["bare"])
            line = f"concurrency {connections:>2}: bare {b:8.0f} req/s"
            for name in servers:
                if name != "bare":
                    v = median(results[name])
                    line += f", {name} {v:8.0f} req/s (ratio {v / b:.2f})"
            costs = ", ".join(f"{name} {median(cpu[name]):.0f} us" for name in servers)
            print(f"{line}   (server CPU per request: {costs})")
        if client is not None:
            print(f"live stream: {client.events:,} request events reached the subscriber")
    finally:
        for server in servers.values():
            server.stop()


def memory(tmp: Path) -> None:
    vwh = start_vwh(tmp / "memory.sqlite3")
    try:
        total = 0
        while total < 1_000:  # warm up to about 1,000 requests
            total += int(wrk(vwh.url, 1, 1, "post_unique.lua", f"w{total}")["count"])
        at_1k, count_1k = vwh.rss_mb(), total
        chunk = 0
        while total < 50_000 and chunk < 40:  # bounded: at most 40 chunks of 3 s
            total += int(wrk(vwh.url, 64, 3, "post_unique.lua", f"m{chunk}")["count"])
            chunk += 1
        at_50k = vwh.rss_mb()
        print(
            f"memory: {at_1k:.1f} MB after {count_1k:,} requests, {at_50k:.1f} MB after"
            f" {total:,} (+{at_50k - at_1k:.1f} MB); {vwh.lines:,} lines printed"
        )
    finally:
        vwh.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=4, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per setting")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--no-stream", action="store_true", help="skip the live-stream run")
    parser.add_argument(
        "--asgi", action="store_true", help="also measure a bare ASGI callable on uvicorn"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        throughput(args.seconds, args.rounds, Path(tmp), not args.no_stream, args.asgi)
        if not args.skip_memory:
            memory(Path(tmp))


if __name__ == "__main__":
    main()
