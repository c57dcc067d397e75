"""Messages accepted per second by one and by two front processes
(`serve --roles smtp,web`, the queue held for runners not started), on
SQLite and on PostgreSQL, beside a bare aiosmtpd sink, all in the same run.

Every gateway message goes the whole admission path (RCPT check, sender
authentication, sealing, the hourly limits' counts, the durable commit
before 250). PostgreSQL is a throwaway cluster on loopback with fsync on
(tests/pgcluster.py, durable=True), to compare with SQLite at
synchronous=FULL. With two fronts, the client (Postfix's smtp-source, a new
connection per message) sends half the messages, over half the sessions,
to each front at once.

Run: .venv/bin/python bench/bench_fronts.py [--messages 2000] [--sessions 10] [--rounds 3]
Needs smtp-source (apt-get install postfix; its daemon is not started).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CLIENTTRACK, ROOT, free_port, process  # noqa: E402
from tests.pgcluster import Cluster  # noqa: E402

SENDER, GATEWAY = "staff@demo.localhost", "pay@demo.localhost"


def accepted_per_second(ports: list[int], messages: int, sessions: int, size: int) -> float:
    """smtp-source to each port at once, an equal share each; messages answered 250 a second."""
    started = time.perf_counter()
    clients = [subprocess.Popen(["smtp-source", "-s", str(max(1, sessions // len(ports))),
                                 "-m", str(messages // len(ports)), "-l", str(size), "-f", SENDER, "-t", GATEWAY,
                                 f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for port in ports]
    for client in clients:
        if client.wait() != 0:
            raise RuntimeError(f"smtp-source failed: {client.stderr.read().decode()}")
    return (messages // len(ports)) * len(ports) / (time.perf_counter() - started)


def fronts(stack: ExitStack, count: int, data: Path, database_url: str | None) -> list[int]:
    """``count`` front processes on one data directory and database; their SMTP ports."""
    # One process each (not serve's default of one a CPU): this counts front processes.
    env = {"CLIENTTRACK_LOG_LEVEL": "WARNING", "CLIENTTRACK_SENDER_HOURLY_LIMIT": "10000000",
           "CLIENTTRACK_FIRM_HOURLY_LIMIT": "10000000", "CLIENTTRACK_PROCESSES": "1"}
    if database_url:
        env["CLIENTTRACK_DATABASE_URL"] = database_url
    ports = []
    for _ in range(count):  # one after the other: the first makes the key and the schema
        smtp_port, web_port = free_port(), free_port()
        stack.enter_context(process([CLIENTTRACK, "serve", "--demo", "--roles", "smtp,web", "--data-dir", str(data),
                                     "--smtp-port", str(smtp_port), "--web-port", str(web_port)], smtp_port, env=env))
        ports.append(smtp_port)
    return ports


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    shapes = [("sqlite", 1), ("sqlite", 2), ("postgres", 1), ("postgres", 2)]
    rates: dict[str, list[float]] = {"sink": [], **{f"{db} x{n}": [] for db, n in shapes}}
    with Cluster(durable=True) as cluster:
        for round_number in range(args.rounds):
            port = free_port()
            with process([sys.executable, str(ROOT / "bench" / "smtp_sink.py"), str(port)], port):
                rates["sink"].append(accepted_per_second([port], args.messages, args.sessions, args.size))
            for db, count in shapes:
                url = cluster.create_database(f"bench_{round_number}_{count}") if db == "postgres" else None
                with tempfile.TemporaryDirectory() as data, ExitStack() as stack:
                    ports = fronts(stack, count, Path(data), url)
                    rates[f"{db} x{count}"].append(
                        accepted_per_second(ports, args.messages, args.sessions, args.size))
    sink = statistics.median(rates["sink"])
    print(f"Messages accepted per second: {args.messages} messages of {args.size} bytes, {args.sessions} "
          f"sessions, a new connection each (smtp-source); medians of {args.rounds} rounds")
    for shape, label in [("sink", "bare aiosmtpd sink"), *[(f"{db} x{n}", f"{db}, {n} front process{'es' if n > 1 else ''}")
                                                           for db, n in shapes]]:
        median = statistics.median(rates[shape])
        ratio = "" if shape == "sink" else f"  ratio to the sink {median / sink:.2f}"
        print(f"  {label:28s} {median:6.0f} msg/s{ratio}   rounds: {', '.join(f'{r:.0f}' for r in rates[shape])}")


if __name__ == "__main__":
    main()
