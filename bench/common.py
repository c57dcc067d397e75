"""Helpers shared by the benchmarks: free ports, a gateway in its own
process, waiting for a port, another commit's tree (--before), in-process
measurements run per tree with rounds interleaved, percentiles."""

from __future__ import annotations

import json
import os
import signal
import statistics
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
CLIENTTRACK = str(Path(sys.executable).with_name("clienttrack"))
# One sender sends thousands here: lift the hourly limits (their counting still runs).
GATEWAY_ENV = {"CLIENTTRACK_LOG_LEVEL": "WARNING", "CLIENTTRACK_SENDER_HOURLY_LIMIT": "10000000",
               "CLIENTTRACK_FIRM_HOURLY_LIMIT": "10000000"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Until something listens on ``port``; with ``proc``, fail as soon as
    that process has exited instead of waiting out the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode} before port {port} answered")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


@contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """The tree of ``rev`` in a temporary folder (git archive: the
    repository itself is not touched), for a benchmark's --before."""
    with tempfile.TemporaryDirectory(prefix="bench-before-") as folder:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
        yield Path(folder)


def interleaved(script: str, count: int, rounds: int, before: str | None) -> dict[str, list[dict[str, float]]]:
    """Each round, ``script --measure count`` in a fresh process on this
    checkout's code and, with ``before``, on that commit's: the figures
    (the JSON object the script prints) of each round, by tree."""
    with checkout(before) if before else nullcontext() as tree:
        trees = {"now": ROOT, **({f"before ({before})": tree} if tree else {})}
        results: dict[str, list[dict[str, float]]] = {label: [] for label in trees}
        for _ in range(rounds):
            for label, code in trees.items():
                done = subprocess.run([sys.executable, str(Path(script).resolve()), "--measure", str(count)],
                                      env={"PYTHONPATH": str(code), "PATH": "/usr/bin:/bin"}, cwd=code,
                                      check=True, capture_output=True, text=True)
                results[label].append(json.loads(done.stdout))
    return results


def print_medians(results: dict[str, list[dict[str, float]]], heading: str, digits: int,
                  name_width: int, cell_width: int) -> None:
    """``interleaved``'s figures: each one's median (min-max) by tree."""
    print(heading)
    print(" " * name_width + "".join(f"{label:>{cell_width}}" for label in results))
    for name in next(iter(results.values()))[0]:
        cells = []
        for rounds in results.values():
            values = [r[name] for r in rounds]
            cells.append(f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})")
        print(f"{name:{name_width}}" + "".join(f"{cell:>{cell_width}}" for cell in cells))


@contextmanager
def process(args: list[str], port: int, env: dict | None = None, code: Path = ROOT,
            also_path: Path | None = None) -> Iterator[subprocess.Popen]:
    """Start a server process, wait until it listens, stop it afterwards.
    ``clienttrack`` runs the code in ``code`` (this checkout, or another
    commit's tree: bench_end_to_end.py --before), whatever the venv was
    installed from; ``also_path`` goes on its PYTHONPATH too (bench/threadnames)."""
    env = {**os.environ, **(env or {})}
    if args[0] == CLIENTTRACK:
        env["PYTHONPATH"] = os.pathsep.join(str(folder) for folder in (code, also_path) if folder)
        args = [sys.executable, "-m", "gateway.cli", *args[1:]]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=code)
    try:
        wait_for_port(port, timeout=60, proc=proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def gateway(data_dir: Path, smtp_port: int, web_port: int, shape: str = "one process") -> Iterator[None]:
    """`clienttrack serve --demo` in one of three shapes: "one process";
    "two processes" (SMTP and web in one, the runners in the other); or
    "admission only" (SMTP and web, the queue held for runners started later,
    as Postfix's HOLD measures its own acceptance)."""
    serve = [CLIENTTRACK, "serve", "--demo", "--data-dir", str(data_dir),
             "--smtp-port", str(smtp_port), "--web-port", str(web_port)]
    env = GATEWAY_ENV
    if shape == "one process":
        with process(serve, smtp_port, env=env):
            wait_for_port(web_port)
            yield
        return
    if shape == "admission only":
        with process([*serve, "--roles", "smtp,web"], smtp_port, env=env):
            wait_for_port(web_port)
            yield
        return
    with process([*serve, "--roles", "smtp,web"], smtp_port, env=env):
        wait_for_port(web_port)
        runners = subprocess.Popen([*serve, "--roles", "queue,outbox"], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL, env={**os.environ, **env}, cwd=ROOT)
        try:
            yield
        finally:
            runners.send_signal(signal.SIGINT)
            runners.wait(timeout=20)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]
