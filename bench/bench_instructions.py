"""Instructions a payment request costs the gateway, outside Argon2id.

End to end on this machine's two cores swings with its speed from run to
run (one derivation took 25 to 37 ms within an hour), and what the ratio
to the KDF bound depends on is the work a request costs beside the
derivation. This counts that work in instructions, which hold still
whatever else the machine runs: `serve --demo` in one process
(CLIENTTRACK_PROCESSES=1) under valgrind's callgrind, WARM requests to
warm it up, the counters zeroed, then REQUESTS real requests (a 100 KB PDF
each, as bench_end_to_end.py sends them) and the wait for their client
mails; then the counters are read. The derivation's own instructions
(OpenSSL's kdf_argon2_derive, inclusive) are taken out of the total.

What it does not count: the kernel's work (fsync, sockets, page faults)
and time spent waiting; bench_end_to_end.py --threads gives CPU time by
thread for those.

With --before REV the same is measured for the code of REV (`git archive`
into a temporary folder, run with this venv), side by side.

Run: .venv/bin/python bench/bench_instructions.py [--requests 20] [--warm 5] [--before REV]
Needs valgrind (apt-get install valgrind); about two minutes a code.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_end_to_end as e2e  # noqa: E402
from common import GATEWAY_ENV, checkout, free_port, wait_for_port  # noqa: E402

KDF_FUNCTION = "kdf_argon2_derive"
# Under valgrind a request takes a second or more of wall time, and an idle
# runner looks for work every poll_seconds (0.2 s) and a lease is renewed
# every lease_seconds / 3: counted per request, that idle work grew with
# how slowly the machine ran (about 9 M instructions a request on a busy
# one). The runners are woken by the intake and by each request anyway;
# these make the idle polls rare. What still runs on a timer (uvicorn's
# main loop ticks ten times a second, about 1 M instructions a second
# under callgrind) is left in: two runs of the same code differ by up to
# 3 % (46.7-48.4 M outside Argon2id), more on a busy machine.
QUIET = {"CLIENTTRACK_POLL_SECONDS": "30", "CLIENTTRACK_LEASE_SECONDS": "600"}


def instructions(code: Path, requests: int, warm: int, out: Path) -> dict:
    """(all instructions, Argon2id's) a request of the gateway in ``code``."""
    pdf = e2e.pdf_bytes(100_000)
    with tempfile.TemporaryDirectory() as data:
        smtp_port, web_port = free_port(), free_port()
        env = {**os.environ, **GATEWAY_ENV, **QUIET, "PYTHONPATH": str(code), "CLIENTTRACK_PROCESSES": "1"}
        proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p", "--dump-instr=no",
             "--compress-strings=no", "--compress-pos=no",
             sys.executable, "-m", "gateway.cli", "serve", "--demo", "--data-dir", data,
             "--smtp-port", str(smtp_port), "--web-port", str(web_port)],
            env=env, cwd=code, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(web_port, timeout=1800, proc=proc)
            outbox = e2e.Outbox(Path(data) / "outbox")
            e2e.send_all(smtp_port, [e2e.data_payload(e2e.request_message(n, pdf)) for n in range(warm)], 1)
            outbox.wait(warm, timeout=1800)
            time.sleep(2)  # the warm-up's confirmations leave too
            _control("-z", proc.pid)
            payloads = [e2e.data_payload(e2e.request_message(warm + n, pdf)) for n in range(requests)]
            e2e.send_all(smtp_port, payloads, 2)
            outbox.wait(warm + requests, timeout=3600)
            time.sleep(2)  # and these requests' confirmations
            _control("-d", proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=600)
    dump = Path(f"{out}.{proc.pid}.1")
    total, kdf = _read(dump)
    for leftover in glob.glob(f"{out}.{proc.pid}*"):
        os.remove(leftover)
    return {"total": total / requests, "kdf": kdf / requests}


def _control(command: str, pid: int) -> None:
    """callgrind_control -z (zero the counters) or -d (dump them)."""
    subprocess.run(["callgrind_control", command, str(pid)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def _read(dump: Path) -> tuple[int, int]:
    """The dump's total and the derivation's inclusive count."""
    report = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(dump)],
                            check=True, capture_output=True, text=True).stdout
    total = int(re.search(r"^([\d,]+) \S* *PROGRAM TOTALS", report, re.M)[1].replace(",", ""))
    kdf = max((int(found[1].replace(",", "")) for found in
               re.finditer(rf"^\s*([\d,]+) .*:{KDF_FUNCTION}(?:'\d+)? ", report, re.M)), default=0)
    return total, kdf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--warm", type=int, default=5)
    parser.add_argument("--before", default="", help="also count the gateway at this commit (e.g. main)")
    args = parser.parse_args()
    codes = {"gateway": e2e.ROOT}
    with tempfile.TemporaryDirectory() as scratch, \
            (checkout(args.before) if args.before else nullcontext()) as before:
        if before is not None:
            codes[f"gateway at {args.before}"] = before
        print(f"instructions a request (callgrind, serve --demo in one process, {args.requests} requests "
              f"with a 100 KB PDF after {args.warm} to warm up; M = millions)")
        for label, code in codes.items():
            counted = instructions(code, args.requests, args.warm, Path(scratch) / "callgrind.out")
            rest = counted["total"] - counted["kdf"]
            print(f"  {label}: {counted['total'] / 1e6:.1f} M in all; Argon2id {counted['kdf'] / 1e6:.1f} M; "
                  f"the rest {rest / 1e6:.1f} M = {rest / counted['kdf']:.2f} of Argon2id's")


if __name__ == "__main__":
    main()
