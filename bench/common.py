"""Helpers shared by the benchmarks: free ports, a gateway in its own
process, waiting for a port, another commit's tree (--before), percentiles."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
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
