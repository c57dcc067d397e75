"""S3 for the tests: moto's server (moto[server], a dev dependency) on a
loopback ephemeral port, in a child process of its own so its Werkzeug
threads never share the GIL with the gateway under test. It keeps
everything in memory and ends when the test run closes its stdin (even a
killed run: the pipe closes with it).

A pytest plugin: test modules name it in pytest_plugins. Each test gets a
bucket of its own, so tests share the server but nothing in it."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import sys
import urllib.request
from typing import Iterator

import pytest

_SERVE = (
    "import sys\n"
    "from moto.server import ThreadedMotoServer\n"
    "server = ThreadedMotoServer('127.0.0.1', 0, verbose=False)\n"
    "server.start()\n"
    "print(server.get_host_and_port()[1], flush=True)\n"
    "sys.stdin.read()\n"
)
# moto checks no signature; any credentials will do, but some must be given.
CREDENTIALS = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret", "aws_region": "us-east-1"}


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto on 127.0.0.1; yields its endpoint URL."""
    child = subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)
    try:
        line = child.stdout.readline() if child.stdout else b""
        if not line.strip().isdigit():
            raise RuntimeError("moto's server did not start (is moto[server] installed? make .venv/bin/clienttrack)")
        yield f"http://127.0.0.1:{int(line)}"
    finally:
        if child.stdin:
            child.stdin.close()
        try:
            child.wait(5)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def new_bucket(endpoint: str) -> str:
    """A fresh, empty bucket (moto takes an unsigned PUT)."""
    name = f"test-{secrets.token_hex(6)}"
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{name}", method="PUT"), timeout=10).close()
    return name


def blob_url(endpoint: str, prefix: str = "sealed") -> str:
    return f"s3://{new_bucket(endpoint)}/{prefix}?endpoint={endpoint}"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def s3_options(moto_endpoint: str) -> dict:
    """Settings options that put the gateway's sealed files in a fresh bucket."""
    return {"blob_url": blob_url(moto_endpoint), **CREDENTIALS}
