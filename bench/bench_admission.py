"""Admission throughput and 250-to-client-mail latency.

1. Messages accepted per second through the gateway's full admission path
   (RCPT check against the firm table, sealing, durable commit before 250),
   beside a bare aiosmtpd sink driven by the same client (Postfix's
   smtp-source, a new connection per message) in the same run. Target: the
   gateway at least half the sink's rate.
2. Time from the 250 reply to the client's mail appearing in the outbox
   Maildir, for real payment requests with a PDF attached (p50, p99).

Run: .venv/bin/python bench/bench_admission.py [--messages 2000] [--requests 200]
Needs smtp-source (apt-get install postfix; its daemon is not started).
"""

from __future__ import annotations

import argparse
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, free_port, gateway, percentile, process  # noqa: E402

SENDER, GATEWAY = "staff@demo.localhost", "pay@demo.localhost"


def smtp_source(port: int, messages: int, sessions: int, size: int) -> float:
    """Messages per second that smtp-source got answered 250."""
    started = time.perf_counter()
    subprocess.run(
        ["smtp-source", "-s", str(sessions), "-m", str(messages), "-l", str(size),
         "-f", SENDER, "-t", GATEWAY, f"127.0.0.1:{port}"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    return messages / (time.perf_counter() - started)


def throughput(messages: int, sessions: int, size: int, rounds: int) -> dict[str, list[float]]:
    rates: dict[str, list[float]] = {"sink": [], "admission only": [], "one process": [], "two processes": []}
    for _ in range(rounds):
        port = free_port()
        with process([sys.executable, str(ROOT / "bench" / "smtp_sink.py"), str(port)], port):
            rates["sink"].append(smtp_source(port, messages, sessions, size))
        for shape in ("admission only", "one process", "two processes"):
            with tempfile.TemporaryDirectory() as data:
                smtp_port, web_port = free_port(), free_port()
                with gateway(Path(data), smtp_port, web_port, shape):
                    rates[shape].append(smtp_source(smtp_port, messages, sessions, size))
    return rates


def latency(requests: int, shape: str) -> list[float]:
    pdf = (ROOT / "tests" / "data" / "invoice-1042.pdf").read_bytes()
    delays = []
    with tempfile.TemporaryDirectory() as data:
        smtp_port, web_port = free_port(), free_port()
        outbox = Path(data) / "outbox" / "new"
        with gateway(Path(data), smtp_port, web_port, shape), smtplib.SMTP("127.0.0.1", smtp_port) as client:
            for n in range(requests):
                message = EmailMessage()
                message["From"], message["To"] = SENDER, GATEWAY
                message["Subject"] = f"Invoice {n} $1,250.00 to=client{n}@client.example pw=Blue42 hint=Sky"
                message.set_content("Hello, your invoice is attached.")
                message.add_attachment(pdf, maintype="application", subtype="pdf", filename="invoice.pdf")
                seen_before = set(outbox.glob("*.eml")) if outbox.exists() else set()
                client.send_message(message)
                accepted = time.perf_counter()
                delays.append(wait_for_client_mail(outbox, seen_before, f"client{n}@client.example") - accepted)
    return delays


def wait_for_client_mail(outbox: Path, seen_before: set[Path], client: str, timeout: float = 30) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if outbox.exists():
            for path in set(outbox.glob("*.eml")) - seen_before:
                if f"To: {client}".encode() in path.read_bytes():
                    return time.perf_counter()
        time.sleep(0.001)
    raise RuntimeError(f"no mail to {client} within {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    if shutil.which("smtp-source") is None:
        sys.exit("smtp-source not found: apt-get install postfix (the daemon need not run)")

    rates = throughput(args.messages, args.sessions, args.size, args.rounds)
    sink = statistics.median(rates["sink"])
    print(f"admission: smtp-source -s {args.sessions} -m {args.messages} -l {args.size}, "
          f"{args.rounds} rounds (median)")
    for shape, label in (("sink", "bare aiosmtpd sink"), ("admission only", "gateway admission, queue held"),
                         ("one process", "gateway, runners working alongside"),
                         ("two processes", "gateway, smtp+web | queue+outbox")):
        median = statistics.median(rates[shape])
        verdict = "" if shape == "sink" else f"  ratio {median / sink:.2f} (target >= 0.50)"
        print(f"  {label:34s} {median:6.0f} msg/s{verdict}   rounds: {', '.join(f'{r:.0f}' for r in rates[shape])}")

    print(f"250 reply -> client mail in the outbox, {args.requests} requests with a PDF, one at a time:")
    for shape in ("one process", "two processes"):
        delays = latency(args.requests, shape)
        print(f"  {shape:14s} p50 {percentile(delays, 50) * 1000:4.0f} ms   p99 {percentile(delays, 99) * 1000:4.0f} ms"
              f"   max {max(delays) * 1000:4.0f} ms")


if __name__ == "__main__":
    main()
