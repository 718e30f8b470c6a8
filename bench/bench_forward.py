"""Benchmark `vwh listen --forward-to`: sender -> vwh -> handler against sender -> handler.

The handler is the bare Starlette app on uvicorn (bench/bare_app.py). wrk sends the
same load (fresh order ids, the verifier token) straight to the handler and through
vwh, in short interleaved rounds whose order alternates, at concurrency 16 and then at
concurrency 1 (where nothing queues: what one delivery gains by going through vwh).
It reports the medians: requests per second and their ratio (target at c=16: at least
0.6), and the p50 and p99 latency vwh adds, each taken round by round (through vwh
minus direct in the same round) with the spread over the rounds (goal: at most 1 ms
added at p50 at c=1). vwh runs as a user runs it: token checked, store on, one output
line per request into a pipe.

Forwarding goes through vwh.outbound, the one webhook client. aiohttp's client under
it was measured here against the HTTP/1.1 client of our own (vwh.http1), on the same
loaded 2-core machine, 3 runs each: aiohttp added 1.29/1.46/2.20 ms at p50 at c=1 and
vwh used ~800 us of CPU per forwarded request (ratio 0.17-0.22 at c=16); our own
client 1.01/1.08/1.62 ms and ~450 us (ratio 0.25-0.38). aiohttp alone, no rule of
ours over it, used ~300 us of CPU per request, more than our whole forwarder (~220).

    python bench/bench_forward.py [--seconds 3] [--rounds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import ROOT, Server, free_port, median, python, wrk

TARGET_RATIO = 0.6
GOAL_ADDED_P50_C1_MS = 1.0


def start_handler() -> Server:
    port = free_port()
    return Server([python(), str(ROOT / "bench" / "bare_app.py"), str(port)], port)


def start_vwh(store: Path, handler: Server) -> Server:
    port = free_port()
    args = [python(), "-m", "vwh", "listen", "--port", str(port), "--token", "bench-token",
            "--store", str(store), "--forward-to", f"{handler.url}/hooks/vendasta"]  # fmt: skip
    return Server(args, port)


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}..{max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=3, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--connections", type=int, default=16, help="wrk concurrency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        handler = start_handler()
        vwh = start_vwh(Path(tmp) / "forward.sqlite3", handler)
        servers = {"direct": handler, "vwh": vwh}
        cpu: dict[str, list[float]] = {"vwh": [], "handler via vwh": [], "handler": []}
        runs: dict[int, dict[str, list[dict[str, float]]]] = {}
        through_vwh = 0
        try:
            for c in (args.connections, 1):
                runs[c] = {"direct": [], "vwh": []}
                for name, server in servers.items():  # warm up both paths
                    warm = wrk(server.url, c, 1, "post_unique.lua", f"warm{c}-{name}")
                    through_vwh += int(warm["count"]) if name == "vwh" else 0
                for r in range(args.rounds):
                    order = list(servers.items())
                    for name, server in order if r % 2 == 0 else order[::-1]:
                        before = (vwh.cpu_seconds(), handler.cpu_seconds())
                        run = wrk(server.url, c, args.seconds, "post_unique.lua", f"c{c}{name}{r}")
                        runs[c][name].append(run)
                        through_vwh += int(run["count"]) if name == "vwh" else 0
                        if c != args.connections:
                            continue
                        used_vwh = (vwh.cpu_seconds() - before[0]) / run["count"] * 1e6
                        used_handler = (handler.cpu_seconds() - before[1]) / run["count"] * 1e6
                        if name == "vwh":
                            cpu["vwh"].append(used_vwh)
                            cpu["handler via vwh"].append(used_handler)
                        else:
                            cpu["handler"].append(used_handler)
        finally:
            vwh.stop()
            handler.stop()
    print(f"{args.rounds} interleaved rounds of {args.seconds}s, medians")
    for c, by_name in runs.items():
        rps = {name: median([run["rps"] for run in rs]) for name, rs in by_name.items()}
        added = {
            p: [v[p] - d[p] for d, v in zip(by_name["direct"], by_name["vwh"], strict=True)]
            for p in ("p50_ms", "p99_ms")
        }
        ratio = rps["vwh"] / rps["direct"]
        print(f"concurrency {c}:")
        labels = {"direct": "sender -> handler:       ", "vwh": "sender -> vwh -> handler:"}
        for name, label in labels.items():
            p50, p99 = (median([x[p] for x in by_name[name]]) for p in ("p50_ms", "p99_ms"))
            print(f"  {label} {rps[name]:8.0f} req/s   p50 {p50:6.2f} ms   p99 {p99:6.2f} ms")
        verdict = ""
        if c == args.connections:
            verdict = " ok" if ratio >= TARGET_RATIO else f" BELOW the {TARGET_RATIO} target"
        p50_added = median(added["p50_ms"])
        goal = ""
        if c == 1:
            goal = " (goal met)" if p50_added <= GOAL_ADDED_P50_C1_MS else " (ABOVE the 1 ms goal)"
        print(
            f"  ratio {ratio:.2f}{verdict}; added by vwh: p50 +{p50_added:.2f} ms"
            f" [{spread(added['p50_ms'])}]{goal}, p99 +{median(added['p99_ms']):.2f} ms"
            f" [{spread(added['p99_ms'])}]"
        )
    print(
        f"CPU per request at c={args.connections}: vwh {median(cpu['vwh']):.0f} us, handler"
        f" {median(cpu['handler']):.0f} us ({median(cpu['handler via vwh']):.0f} us via vwh);"
        f" vwh printed {vwh.lines:,} lines for {through_vwh:,} requests"
    )


if __name__ == "__main__":
    main()
