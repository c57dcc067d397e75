"""DKIM signing of a client mail: dkimpy's dkim.DKIM.sign (the baseline:
its canonicalization and its pure-Python RSA arithmetic) beside the
outbox's signatures (gateway/outbound/signing.py: the same headers, its own
canonicalization, OpenSSL through `cryptography`), and Ed25519 both ways,
interleaved round by round in one run.

Two figures each: CPU per signature, and the longest the event loop waited
(a 1 ms ticker's worst lateness) while signatures ran one after another in a
worker thread, as the outbox runs them: a step that holds the GIL stalls
SMTP admission in the same loop for that long.

    .venv/bin/python bench/bench_signing.py [--rounds 5] [--signatures 40]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

import dkim

from gateway.core.paths import TEMPLATES_DIR
from gateway.outbound import signing
from gateway.outbound.compose import Composer, to_bytes
from gateway.outbound.dkimkeys import Generation, KeyStore

NOW = datetime(2026, 5, 14, 9, 30, tzinfo=timezone.utc)


def client_mail() -> bytes:
    composer = Composer(TEMPLATES_DIR / "email", hostname="gw.example")
    return to_bytes(composer.client_request(
        firm_name="Demo Accounting", firm_domain="demo.localhost", staff_email="staff@demo.localhost",
        staff_name="Sam", client_email="jane@client.example", title="Invoice 1042", invoice="1042",
        amount="$1,250.00", hint="First pet", link="https://pay.example/r/abc", expires_on="2026-06-13", now=NOW))


def ways(message: bytes, generation: Generation) -> dict[str, callable]:
    def dkimpy(algorithm: bytes, selector: str, key: bytes):
        return lambda: dkim.DKIM(message).sign(
            selector.encode(), b"demo.localhost", key, signature_algorithm=algorithm,
            canonicalize=signing.CANONICALIZE, include_headers=signing.SIGNED_HEADERS)

    def outbox(ed25519: bool):
        return lambda: signing.signatures(*signing.read(message), generation, ed25519=ed25519, signed_at=1)

    return {"RSA, dkimpy's dkim.DKIM.sign (baseline)": dkimpy(b"rsa-sha256", generation.rsa_selector,
                                                              generation.rsa_pem),
            "RSA, the outbox (signing.signatures)": outbox(False),
            "Ed25519, dkimpy (pynacl)": dkimpy(b"ed25519-sha256", generation.ed25519_selector,
                                              generation.ed25519_seed),
            "Ed25519 + RSA, the outbox": outbox(True)}


async def worst_stall(sign, count: int) -> float:
    """The event loop's longest lateness (ms) while ``count`` signatures run in a thread."""
    done = False
    worst = 0.0

    async def ticker():
        nonlocal worst
        while not done:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, (time.perf_counter() - before - 0.001) * 1000)

    tick = asyncio.create_task(ticker())
    for _ in range(count):
        await asyncio.to_thread(sign)
    done = True
    await tick
    return worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--signatures", type=int, default=40)
    args = parser.parse_args()
    message = client_mail()
    generation = KeyStore(Path(tempfile.mkdtemp())).ensure("demo.localhost", date(2026, 5, 14))
    candidates = ways(message, generation)
    cpu = {name: [] for name in candidates}
    stall = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, sign in candidates.items():
            started = time.process_time()
            for _ in range(args.signatures):
                sign()
            cpu[name].append((time.process_time() - started) / args.signatures * 1000)
            stall[name].append(asyncio.run(worst_stall(sign, args.signatures)))
    print(f"a {len(message):,}-byte client mail, {args.rounds} rounds of {args.signatures} signatures (medians)")
    print(f"{'':42} {'CPU ms/signature':>17} {'worst loop stall ms':>20}")
    for name in candidates:
        print(f"{name:42} {statistics.median(cpu[name]):17.2f} {statistics.median(stall[name]):20.1f}")


if __name__ == "__main__":
    main()
