"""Shared pieces of the benchmarks: processes on free loopback ports, wrk, medians."""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on port {port}")


class Server:
    """A server process whose stdout is drained (a pipe, as a user's `| tee` would be)."""

    def __init__(
        self,
        args: list[str],
        port: int,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env or os.environ.copy(),
            cwd=cwd,
        )
        self.lines = 0
        threading.Thread(target=self._drain, daemon=True).start()
        wait_for_port(port)
        time.sleep(0.3)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for chunk in iter(lambda: self.proc.stdout.read1(65536), b""):  # type: ignore[union-attr]
            self.lines += chunk.count(b"\n")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


def need_wrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return wrk


def wrk(url: str, connections: int, seconds: int, script: str, *args: str) -> dict[str, float]:
    """Run wrk once; requests per second, request count, p50 and p99 latency in ms."""
    out = subprocess.run(
        [
            need_wrk(),
            "-t1",
            f"-c{connections}",
            f"-d{max(1, int(seconds))}s",
            "--latency",
            "-s",
            str(BENCH / script),
            url,
            "--",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def percentile(p: int) -> float:
        found = re.search(rf"{p}%\s+([\d.]+)(us|ms|s)", out)
        return float(found.group(1)) * scale[found.group(2)] if found else float("nan")

    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx answers from {url}:\n{out}")
    return {"rps": rps, "count": count, "p50_ms": percentile(50), "p99_ms": percentile(99)}


def median(values: list[float]) -> float:
    return statistics.median(values)


def python() -> str:
    return sys.executable
