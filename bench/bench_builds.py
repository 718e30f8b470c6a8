"""Compare `vwh listen` as built at another git revision with the working tree's, in pairs.

On a shared host the bare app's speed drifts by a quarter within minutes, so the
ratio of two builds' medians can hide a 10% change. Here both listeners get wrk's
load in paired rounds (the order alternates, each round back to back), and the
figure is the median of the per-round ratios: the drift that moves a round moves
both halves of it.

    python bench/bench_builds.py REV [--rounds 12] [--seconds 3] [--concurrency 64]

REV is checked out into a temporary git worktree, which is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

from common import ROOT, Server, free_port, median, python, wrk


def start_listener(code: Path, store: Path) -> Server:
    """`vwh listen` as bench_listen.py runs it, importing vwh from `code`.

    It runs in the store's directory: `python -m` puts the current directory before
    PYTHONPATH, so started from the checkout it would import the working tree's vwh.
    """
    env = {**os.environ, "PYTHONPATH": str(code), "VWH_UI_TOKEN": "bench-ui-secret"}
    imported = subprocess.run(
        [python(), "-c", "import vwh; print(vwh.__file__)"],
        env=env,
        cwd=store.parent,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(imported).is_relative_to(code):
        raise SystemExit(f"the listener for {code} would import vwh from {imported}")
    port = free_port()
    args = [python(), "-m", "vwh", "listen", "--port", str(port), "--token", "bench-token",
            "--store", str(store), "--ui-port", "0"]  # fmt: skip
    return Server(args, port, env=env, cwd=store.parent)


def compare(old: Path, rounds: int, seconds: int, connections: int, tmp: Path) -> list[float]:
    """Per-round ratios of the working tree's req/s to the old build's."""
    servers = {
        "old": start_listener(old, tmp / "old.sqlite3"),
        "new": start_listener(ROOT, tmp / "new.sqlite3"),
    }
    ratios = []
    try:
        for r in range(rounds):
            order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
            rps = {
                name: wrk(servers[name].url, connections, seconds, "post_unique.lua", f"{name}{r}")[
                    "rps"
                ]
                for name in order
            }
            ratios.append(rps["new"] / rps["old"])
            print(f"round {r + 1}: old {rps['old']:8.0f} req/s, new {rps['new']:8.0f} req/s")
    finally:
        for server in servers.values():
            server.stop()
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="the git revision to compare with (e.g. HEAD~3)")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=int, default=3, help="length of each wrk run")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(old), args.rev],
            check=True,
        )
        try:
            ratios = compare(old, args.rounds, args.seconds, args.concurrency, Path(tmp))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False
            )
    print(
        f"concurrency {args.concurrency}: working tree / {args.rev} = {median(ratios):.3f}"
        f" (median of {len(ratios)} paired rounds; {min(ratios):.2f}-{max(ratios):.2f})"
    )


if __name__ == "__main__":
    main()
