"""Benchmark `vwh listen --forward-to`: sender -> vwh -> handler against sender -> handler.

The handler is the bare Starlette app on uvicorn (bench/bare_app.py). wrk sends the
same load (fresh order ids, the verifier token) at concurrency 16 straight to the
handler and through vwh, in short interleaved rounds whose order alternates, and
the medians are compared: requests per second and their ratio (target: at least
0.6), and the p50 latency added by the extra hop. Then the same at concurrency 1,
where nothing queues: the latency one delivery gains by going through vwh. vwh runs
as a user runs it: token checked, store on, one output line per request into a pipe.

    python bench/bench_forward.py [--seconds 3] [--rounds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import ROOT, Server, free_port, median, python, wrk

TARGET_RATIO = 0.6


def start_handler() -> Server:
    port = free_port()
    return Server([python(), str(ROOT / "bench" / "bare_app.py"), str(port)], port)


def start_vwh(store: Path, handler: Server) -> Server:
    port = free_port()
    args = [python(), "-m", "vwh", "listen", "--port", str(port), "--token", "bench-token",
            "--store", str(store), "--forward-to", f"{handler.url}/hooks/vendasta"]  # fmt: skip
    return Server(args, port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--connections", type=int, default=16, help="wrk concurrency")
    args = parser.parse_args()
    c = args.connections
    with tempfile.TemporaryDirectory() as tmp:
        handler = start_handler()
        vwh = start_vwh(Path(tmp) / "forward.sqlite3", handler)
        try:
            runs: dict[str, list[dict[str, float]]] = {"direct": [], "vwh": []}
            single: dict[str, list[float]] = {"direct": [], "vwh": []}
            cpu: dict[str, list[float]] = {"vwh": [], "handler via vwh": [], "handler": []}
            through_vwh = 0

            def load(server: Server, connections: int, seconds: int, tag: str) -> dict[str, float]:
                nonlocal through_vwh
                run = wrk(server.url, connections, seconds, "post_unique.lua", tag)
                through_vwh += int(run["count"]) if server is vwh else 0
                return run

            for name, server in (("direct", handler), ("vwh", vwh)):  # warm up both paths
                load(server, c, 1, f"warm-{name}")
            for r in range(args.rounds):
                order = (("direct", handler), ("vwh", vwh))
                for name, server in order if r % 2 == 0 else order[::-1]:
                    before = (vwh.cpu_seconds(), handler.cpu_seconds())
                    run = load(server, c, args.seconds, f"{name}{r}")
                    used_vwh = vwh.cpu_seconds() - before[0]
                    used_handler = handler.cpu_seconds() - before[1]
                    runs[name].append(run)
                    if name == "vwh":
                        cpu["vwh"].append(used_vwh / run["count"] * 1e6)
                        cpu["handler via vwh"].append(used_handler / run["count"] * 1e6)
                    else:
                        cpu["handler"].append(used_handler / run["count"] * 1e6)
            for r in range(2):  # concurrency 1: the latency of one delivery, no queueing
                for name, server in (("direct", handler), ("vwh", vwh)):
                    single[name].append(load(server, 1, 2, f"{name}-single{r}")["p50_ms"])
        finally:
            vwh.stop()
            handler.stop()
    rps = {name: median([run["rps"] for run in rs]) for name, rs in runs.items()}
    p50 = {name: median([run["p50_ms"] for run in rs]) for name, rs in runs.items()}
    ratio = rps["vwh"] / rps["direct"]
    print(f"concurrency {c}, {args.rounds} rounds of {args.seconds}s, medians:")
    print(f"  sender -> handler:        {rps['direct']:8.0f} req/s   p50 {p50['direct']:6.2f} ms")
    print(f"  sender -> vwh -> handler: {rps['vwh']:8.0f} req/s   p50 {p50['vwh']:6.2f} ms")
    verdict = "ok" if ratio >= TARGET_RATIO else f"BELOW the {TARGET_RATIO} target"
    print(f"  ratio {ratio:.2f} ({verdict}); p50 added by vwh: {p50['vwh'] - p50['direct']:.2f} ms")
    print(
        f"  CPU per request: vwh {median(cpu['vwh']):.0f} us, handler"
        f" {median(cpu['handler']):.0f} us ({median(cpu['handler via vwh']):.0f} us via vwh)"
    )
    one = {name: median(values) for name, values in single.items()}
    print(
        f"concurrency 1: p50 {one['direct']:.2f} ms direct, {one['vwh']:.2f} ms through vwh"
        f" (+{one['vwh'] - one['direct']:.2f} ms); vwh printed {vwh.lines:,} lines for"
        f" {through_vwh:,} requests"
    )


if __name__ == "__main__":
    main()
