"""How fast `vwh replay` delivers, next to a load generator on the same receiver.

Starts a fast local receiver (uvicorn + httptools, in a subprocess), then, in turns,
runs wrk and vwh's delivery path against it at concurrency 64 and 1, and prints the
median requests per second of each and their ratio. Rounds alternate so that a noisy
machine slows both sides alike. Bounded: about a minute with the defaults.

    python bench/bench_replay.py                 # the figures for the README
    python bench/bench_replay.py --receiver asgi # a bare ASGI receiver: wrk gets faster

The receiver and wrk's script (fresh order ids per request) are those of
bench_listen.py. Before vwh.outbound became the one client, the same delivery code
over httpx's stock pool measured 0.03-0.04 of wrk at concurrency 64, and over
httpx-aiohttp's transport 0.16-0.19, against aiohttp's 0.28-0.40. Since forwarding
needed a cheaper client (bench_forward.py), all webhook traffic goes through vwh.http1,
an HTTP/1.1 client of our own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import Server, free_port, median, need_wrk, python, wrk  # noqa: E402

from vwh.delivery import (  # noqa: E402
    DeliveryOutcome,
    OutgoingRequest,
    ResendPolicy,
    build_request,
)
from vwh.replay import deliver_all  # noqa: E402
from vwh.samples import SampleOptions, sample_body  # noqa: E402

TOKEN = "bench-token"
POLICY = ResendPolicy(attempts=1, timeout=30)


def start_receiver(receiver: str) -> Server:
    """The same bare receiver as bench_listen.py's baseline (or a bare ASGI one)."""
    port = free_port()
    return Server([python(), str(ROOT / "bench" / "bare_app.py"), str(port), receiver], port)


# The two sides


def payloads(count: int) -> list[bytes]:
    """Small bodies in Vendasta's shape, compact, each with its own ids."""
    return [
        json.dumps(sample_body("order", SampleOptions(seed=i)), separators=(",", ":")).encode()
        for i in range(count)
    ]


def wrk_rate(base_url: str, concurrency: int, seconds: int) -> float:
    """wrk posting order bodies of the same shape and size, fresh ids each."""
    return wrk(base_url, concurrency, seconds, "post_unique.lua", f"c{concurrency}")["rps"]


def requests_for(url: str, bodies: Sequence[bytes]) -> list[OutgoingRequest]:
    return [build_request(url, b, token=TOKEN, label=str(i)) for i, b in enumerate(bodies)]


def vwh(requests: Sequence[OutgoingRequest], concurrency: int) -> float:
    """vwh's delivery path, as `vwh replay` runs it (streamed, vwh.outbound, Vendasta's rules)."""
    started = time.perf_counter()
    outcomes = deliver_all(requests, POLICY, concurrency=concurrency)
    return _rate(outcomes, started)


def vwh_cli(url: str, bodies: Sequence[bytes], concurrency: int) -> float:
    """The whole command, process start to exit: read a JSON-lines file, send, print."""
    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as f:
        f.write(b"\n".join(bodies) + b"\n")
    env = {**os.environ, "VWH_TOKEN": TOKEN}
    command = [sys.executable, "-m", "vwh", "replay", f.name, "--to", url, "--no-retry"]
    try:
        started = time.perf_counter()
        done = subprocess.run(
            [*command, "--concurrency", str(concurrency), "--json"],
            capture_output=True,
            env=env,
            timeout=120,
            cwd=ROOT,
        )
        elapsed = time.perf_counter() - started
    finally:
        os.unlink(f.name)
    delivered = done.stdout.count(b'"outcome": "delivered"')
    if done.returncode != 0 or delivered != len(bodies):
        raise SystemExit(f"vwh replay failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return len(bodies) / elapsed


def _rate(outcomes: Sequence[DeliveryOutcome], started: float) -> float:
    elapsed = time.perf_counter() - started
    failed = [o for o in outcomes if o.last.status != 200]
    if failed:
        raise SystemExit(f"{len(failed)} deliveries failed, e.g. {failed[0].last.describe()}")
    return len(outcomes) / elapsed


def rounds(n: int, sides: dict[str, Callable[[], float]]) -> dict[str, float]:
    """Median of n alternating runs of each side."""
    seen: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(n):
        for name, run in sides.items():
            seen[name].append(run())
    for name, values in seen.items():
        print(f"    {name:>18}: {', '.join(f'{v:,.0f}' for v in values)}", flush=True)
    return {name: median(values) for name, values in seen.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receiver", choices=("starlette", "asgi"), default="starlette")
    parser.add_argument("--count", type=int, default=5000, help="payloads per vwh run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3, help="length of each wrk run")
    args = parser.parse_args()
    need_wrk()
    bodies = payloads(args.count)
    receiver = start_receiver(args.receiver)
    url = receiver.url + "/hooks/vendasta"
    try:
        print(f"receiver: {args.receiver} app on uvicorn + httptools, {url}")
        print(f"vwh: {args.count:,} payloads per run, {len(bodies[0])} bytes each")
        wrk_rate(receiver.url, 64, 1)  # warm up
        wrk_rates: dict[int, float] = {}
        for concurrency, count in ((64, args.count), (1, args.count // 2)):
            requests = requests_for(url, bodies[:count])
            sides: dict[str, Callable[[], float]] = {
                "wrk": lambda c=concurrency: wrk_rate(receiver.url, c, args.seconds),
                "vwh": lambda c=concurrency, r=requests: vwh(r, c),
            }
            print(f"concurrency {concurrency}, req/s in each round:", flush=True)
            medians = rounds(args.rounds, sides)
            wrk_rates[concurrency] = medians["wrk"]
            print("  median:")
            for name, rate in medians.items():
                ratio = rate / medians["wrk"]
                print(f"    {name:>18}: {rate:8,.0f} req/s   ratio to wrk {ratio:.2f}")
        cli = vwh_cli(url, bodies, 64)
        print(f"vwh replay, the whole command ({args.count:,} payloads in a JSONL file, c=64):")
        print(f"    {'vwh replay':>18}: {cli:8,.0f} req/s   ratio to wrk {cli / wrk_rates[64]:.2f}")
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
