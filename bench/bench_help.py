"""Time `vwh --help` against `python -c "import typer"`, the floor of any Typer CLI.

Interleaved runs, medians; the target is at most 1.25 times the bare import.

    python bench/bench_help.py [--runs 20]
"""

from __future__ import annotations

import argparse
import subprocess
import time

from common import median, python


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    commands = {
        "import typer": [python(), "-c", "import typer"],
        "vwh --help": [python(), "-m", "vwh", "--help"],
        "vwh listen --help": [python(), "-m", "vwh", "listen", "--help"],
    }
    for args in commands.values():  # warm the file cache
        timed(args)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, args in commands.items():
            times[name].append(timed(args))
    base = median(times["import typer"])
    for name, values in times.items():
        print(f"{name:>18}: {median(values) * 1000:6.1f} ms  ratio {median(values) / base:.2f}")


if __name__ == "__main__":
    main()
