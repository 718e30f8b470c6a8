"""Benchmark `vwh listen` against a bare Starlette app on uvicorn that only answers 200.

Both get the same load from wrk (fresh order ids, the verifier token) at concurrency
1 and 64, in interleaved rounds, and the medians are compared. vwh runs as a user
runs it: store on, token checked, one output line per request into a pipe. Then a
fresh listener takes 50,000 requests to show that its memory stays flat.

    python bench/bench_listen.py [--seconds 4] [--rounds 3]

Concurrency 1 is Vendasta's usual pace, where every answer waits for its own
commit: a request that comes alone is committed on the event loop (a one-row
INSERT), not handed to the writer thread and back (two thread wake-ups per
request, 0.33 of the bare app). At concurrency 64 the writer thread still
group-commits what a loop turn brings. The CPU per request is printed too: on a
shared machine it varies less than requests per second.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import ROOT, Server, free_port, median, python, wrk


def start_bare() -> Server:
    port = free_port()
    return Server([python(), str(ROOT / "bench" / "bare_app.py"), str(port)], port)


def start_vwh(store: Path) -> Server:
    port = free_port()
    args = [python(), "-m", "vwh", "listen", "--port", str(port), "--token", "bench-token",
            "--store", str(store)]  # fmt: skip
    return Server(args, port)


def throughput(seconds: int, rounds: int, tmp: Path) -> None:
    bare, vwh = start_bare(), start_vwh(tmp / "throughput.sqlite3")
    try:
        for connections in (1, 64):
            results: dict[str, list[float]] = {"bare": [], "vwh": []}
            cpu: dict[str, list[float]] = {"bare": [], "vwh": []}
            for r in range(rounds):
                for name, server in (("bare", bare), ("vwh", vwh)):
                    before = server.cpu_seconds()
                    run = wrk(
                        server.url, connections, seconds, "post_unique.lua", f"c{connections}r{r}"
                    )
                    cpu[name].append((server.cpu_seconds() - before) / run["count"] * 1e6)
                    results[name].append(run["rps"])
            b, v = median(results["bare"]), median(results["vwh"])
            print(
                f"concurrency {connections:>2}: bare {b:8.0f} req/s, vwh listen {v:8.0f} req/s,"
                f" ratio {v / b:.2f}   (server CPU per request: bare"
                f" {median(cpu['bare']):.0f} us, vwh {median(cpu['vwh']):.0f} us)"
            )
    finally:
        bare.stop()
        vwh.stop()


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        throughput(args.seconds, args.rounds, Path(tmp))
        if not args.skip_memory:
            memory(Path(tmp))


if __name__ == "__main__":
    main()
