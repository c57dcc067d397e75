"""The gateway against its two limits, in one run, rounds interleaved:

1. Acceptance. `smtp-source -s 10 -m 2000 -l 4096` (a new connection per
   message) against: Postfix accepting into its durable queue (a private
   instance on loopback, every message put on HOLD: bench/private_postfix.py;
   skipped where Postfix or root is missing), the bare aiosmtpd sink
   (bench/smtp_sink.py), the gateway's admission path (`serve --demo
   --roles smtp,web`: the queue held, as Postfix's HOLD measures its own
   acceptance; as `serve` runs it, a front process a CPU, and with one
   front process) and the whole gateway (`serve --demo`). Messages a second
   and CPU milliseconds a message (each server's process tree, from /proc),
   as ratios to Postfix.

2. End to end. 300 real payment requests (a 100 KB PDF each) from 10
   senders at once into `serve --demo`, timed from the first connection to
   the 300th client mail in the outbox (Maildir), beside the bound the
   password hashing sets, measured in the same run: cores / one Argon2id
   derivation (m=19 MiB, t=2, p=1). Also CPU per request (the gateway's
   whole process tree) beside one derivation's CPU, which holds still when
   other work shares the machine. And the ceiling under that ratio,
   sampled between the rounds (bench/ceiling.py): the rate the cores
   reach, one process a core, deriving and nothing else, and doing each
   request's native work (the derivation, the file's sealing and base64,
   two DKIM signatures) and nothing else; with what that leaves of a
   request's core time for everything else at the target, 0.7 of the
   bound, beside what everything else costs the gateway.

3. Memory. One 25 MB message (an 18 MB PDF, base64) into `serve --demo`:
   the growth of each gateway process's high-water mark (VmHWM) above its
   idle size, at the 250 and once the client mail is out, as a multiple
   of the message's size; the bare sink's growth for the same message
   beside it. Then five such messages at once: the processes' high-water
   marks added up.

The gateway runs as `serve` does by default: a worker process for each
CPU (CLIENTTRACK_PROCESSES; gateway/workers.py), whose CPU is counted
with the supervising process's; the end-to-end lines say how many
processes each gateway had.

With --before REV (a commit, e.g. main), every gateway figure is measured
again in the same run, interleaved, with the code of REV (`git archive`
into a temporary folder, run with this venv): the change beside what it
changed.

With --threads, the end-to-end lines also give the CPU and the context
switches a request (all, and those forced by the scheduler) by kind of
thread (the crypto pool, asyncio's pool, aiosqlite's thread, the intake,
the event loops), read from /proc with the gateway's threads named by
bench/threadnames/sitecustomize.py on its PYTHONPATH.

With --database postgres (or sqlite,postgres, rounds interleaved), the
end-to-end rounds run the gateway on PostgreSQL: a throwaway cluster on
loopback (tests/pgcluster.py) with fsync on, as SQLite runs at
synchronous=FULL, a new database each round; CPU a request then counts
the PostgreSQL server's processes with the gateway's.

Run: .venv/bin/python bench/bench_end_to_end.py [--rounds 3] [--parts acceptance,end-to-end,memory] [--before REV] [--threads]
Needs smtp-source (apt-get install postfix; its daemon is not started).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager, nullcontext
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import ceiling  # noqa: E402
import private_postfix  # noqa: E402
import procstat  # noqa: E402
from common import CLIENTTRACK, GATEWAY_ENV, ROOT, checkout, free_port, process, wait_for_port  # noqa: E402

from gateway import vault  # noqa: E402

SENDER, GATEWAY = "staff@demo.localhost", "pay@demo.localhost"
KDF_MEMORY_KIB, KDF_ITERATIONS = 19 * 1024, 2


# -- servers ---------------------------------------------------------------------------------------------

# The code the gateway runs: this checkout, or (--before) another commit's.
CODE: dict[str, Path] = {"now": ROOT}


# With --threads: a sitecustomize.py on the gateway's path that names its OS threads.
THREAD_NAMES = Path(__file__).resolve().parent / "threadnames"


@contextmanager
def gateway(data: Path, roles: str | None = None, extra_env: dict | None = None,
            code: str = "now", named_threads: bool = False) -> Iterator[tuple[int, int]]:
    """`clienttrack serve --demo` on ``data`` with CODE[code]; yields (its pid, its SMTP port)."""
    smtp_port, web_port = free_port(), free_port()
    args = [CLIENTTRACK, "serve", "--demo", "--data-dir", str(data), "--smtp-port", str(smtp_port),
            "--web-port", str(web_port)]
    if roles:
        args += ["--roles", roles]
    with process(args, smtp_port, env={**GATEWAY_ENV, **(extra_env or {})}, code=CODE[code],
                 also_path=THREAD_NAMES if named_threads else None) as proc:
        wait_for_port(web_port, timeout=60, proc=proc)
        yield proc.pid, smtp_port


@contextmanager
def sink() -> Iterator[tuple[int, int]]:
    port = free_port()
    with process([sys.executable, str(ROOT / "bench" / "smtp_sink.py"), str(port)], port) as proc:
        yield proc.pid, port


@contextmanager
def postfix() -> Iterator[tuple[int, int]]:
    port = free_port()
    with private_postfix.private_postfix(port) as root:
        wait_for_port(port)
        pid = private_postfix.master_pid(root)
        assert pid is not None
        yield pid, port
        held = private_postfix.held(root)
        if held == 0:
            raise RuntimeError("Postfix held no message: its figure would not be a durable queue's")


def settle(pid: int, seconds: float = 0.3) -> None:
    """Let a fresh server finish starting (its CPU is not the round's)."""
    time.sleep(seconds)


# -- 1. acceptance ----------------------------------------------------------------------------------------

def smtp_source(port: int, messages: int, sessions: int, size: int) -> float:
    started = time.perf_counter()
    subprocess.run(["smtp-source", "-s", str(sessions), "-m", str(messages), "-l", str(size), "-f", SENDER,
                    "-t", GATEWAY, f"127.0.0.1:{port}"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)
    return time.perf_counter() - started


# Beside serve's default for the admission path (a front process a CPU,
# gateway/core/settings.py, worker_processes): one front process; and for a
# baseline from before that default (one front), a front process a CPU.
CORES = len(os.sched_getaffinity(0))
ONE_FRONT = {"CLIENTTRACK_PROCESSES": "1"}
FRONTS = {"CLIENTTRACK_PROCESSES": str(CORES)}

ACCEPTORS = {
    "postfix": ("Postfix, durable queue (HOLD)", lambda data: postfix()),
    "sink": ("bare aiosmtpd sink", lambda data: sink()),
    "admission": ("gateway admission path (smtp,web)", lambda data: gateway(data, roles="smtp,web")),
    "admission-one-front": ("admission path, 1 front process",
                            lambda data: gateway(data, roles="smtp,web", extra_env=ONE_FRONT)),
    "gateway": ("whole gateway (serve --demo)", lambda data: gateway(data)),
    "admission-before": ("admission path, before", lambda data: gateway(data, roles="smtp,web", code="before")),
    "admission-fronts-before": (f"admission path, {CORES} fronts, before",
                                lambda data: gateway(data, roles="smtp,web", extra_env=FRONTS, code="before")),
    "gateway-before": ("whole gateway, before", lambda data: gateway(data, code="before")),
}


def acceptance(rounds: int, messages: int, sessions: int, size: int) -> None:
    shapes = [name for name in ACCEPTORS if (name != "postfix" or private_postfix.available() is None)
              and (not name.endswith("-before") or "before" in CODE)]
    if "postfix" not in shapes:
        print(f"  (no Postfix anchor: {private_postfix.available()})")
    rates: dict[str, list[float]] = {name: [] for name in shapes}
    cpu: dict[str, list[float]] = {name: [] for name in shapes}
    for round_number in range(rounds):
        # Each round in a different order, so no shape always follows the same one.
        order = shapes[round_number % len(shapes):] + shapes[:round_number % len(shapes)]
        for name in order:
            with tempfile.TemporaryDirectory() as data, ACCEPTORS[name][1](Path(data)) as (pid, port):
                settle(pid)
                before = procstat.tree_cpu(pid)
                seconds = smtp_source(port, messages, sessions, size)
                spent = procstat.tree_cpu(pid) - before
            rates[name].append(messages / seconds)
            cpu[name].append(spent / messages * 1000)
    anchor = "postfix" if "postfix" in shapes else "sink"
    anchor_rate = statistics.median(rates[anchor])
    anchor_cpu = statistics.median(cpu[anchor])
    print(f"acceptance: smtp-source -s {sessions} -m {messages} -l {size}, medians of {rounds} rounds, "
          f"ratios to {ACCEPTORS[anchor][0]}")
    for name in shapes:
        rate, ms = statistics.median(rates[name]), statistics.median(cpu[name])
        print(f"  {ACCEPTORS[name][0]:36s} {rate:6.0f} msg/s  ratio {rate / anchor_rate:4.2f}   "
              f"CPU {ms:5.2f} ms/msg  ratio {ms / anchor_cpu:4.2f}   "
              f"rounds: {' '.join(f'{r:.0f}' for r in rates[name])}")


# -- 2. end to end ---------------------------------------------------------------------------------------

def pdf_bytes(size: int, seed: int = 1042) -> bytes:
    """A PDF of about ``size`` bytes: one page whose content stream is
    incompressible filler (an invoice scan is mostly image data)."""
    filler = random.Random(seed).randbytes(size)
    head = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
            b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
            b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >> endobj\n"
            b"4 0 obj << /Length " + str(len(filler)).encode() + b" >> stream\n")
    return head + filler + b"\nendstream endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def request_message(n: int, pdf: bytes, tag: str = "client") -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = SENDER, GATEWAY
    message["Subject"] = f"Invoice {n} $1,250.00 to={tag}{n}@client.example pw=Blue42 hint=Sky"
    message["Message-ID"] = f"<bench-{tag}-{n}-{random.getrandbits(64):x}@demo.localhost>"
    message.set_content("Hello, your invoice is attached.")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"invoice-{n}.pdf")
    return message.as_bytes(policy=SMTP_POLICY)


def data_payload(raw: bytes) -> bytes:
    """What DATA sends for ``raw``: dot-stuffed and ended, as smtplib's
    data() makes it. Made before the clock starts, as an MTA's queue file
    is written before it sends: smtplib would run its regular expression
    over each 140 KB message while the gateway works, on the same cores."""
    stuffed = re.sub(rb"(?m)^\.", b"..", raw)
    return stuffed + (b"" if stuffed.endswith(b"\r\n") else b"\r\n") + b".\r\n"


def send_all(port: int, payloads: list[bytes], senders: int) -> None:
    """``senders`` clients at once, each over one connection, the messages
    (data_payload's) shared out."""
    errors: list[BaseException] = []

    def send(share: list[bytes]) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
                client.ehlo()
                for payload in share:
                    client.mail(SENDER)
                    client.rcpt(GATEWAY)
                    client.putcmd("data")
                    if client.getreply()[0] != 354:
                        raise smtplib.SMTPDataError(0, b"DATA not accepted")
                    client.send(payload)
                    code, answer = client.getreply()
                    if code != 250:
                        raise smtplib.SMTPDataError(code, answer)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(payloads[i::senders],)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"a sender failed: {errors[0]!r}")


class Outbox:
    """Counts the client mails that reach the Maildir (only new names are read).

    Listing a folder of 600 mails costs 0.36 ms of this process's CPU, on
    the cores the gateway is using: the folder is listed again only when its
    modification time has changed, or every RELIST seconds (a file added in
    the same clock tick as the last listing leaves the time as it was)."""

    RELIST = 0.05

    def __init__(self, path: Path, marker: bytes = b"@client.example") -> None:
        self.new = path / "new"
        self.marker = marker
        self.seen: set[str] = set()
        self.clients = 0
        self._listed = (0, 0.0)  # the folder's mtime_ns and the clock when last listed

    def poll(self) -> int:
        try:
            changed = os.stat(self.new).st_mtime_ns
            now = time.perf_counter()
            if changed == self._listed[0] and now - self._listed[1] < self.RELIST:
                return self.clients
            names = os.listdir(self.new)
        except FileNotFoundError:
            return self.clients
        self._listed = (changed, now)
        for name in names:
            if name not in self.seen:
                self.seen.add(name)
                with open(self.new / name, "rb") as handle:
                    head = handle.read(4096)
                if b"\nTo: " in head and self.marker in head.split(b"\nTo: ", 1)[1].split(b"\n", 1)[0]:
                    self.clients += 1
        return self.clients

    def wait(self, count: int, timeout: float) -> float:
        deadline = time.perf_counter() + timeout
        while self.poll() < count:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"only {self.clients} of {count} client mails within {timeout:.0f}s")
            time.sleep(0.01)
        return time.perf_counter()


def derivation() -> tuple[float, float]:
    """One Argon2id derivation as requests make them: (wall s, CPU s)."""
    params = vault.new_kdf_params(KDF_MEMORY_KIB, KDF_ITERATIONS)
    wall, cpu = time.perf_counter(), time.thread_time()
    vault.derive_kek("Blue42", params)
    return time.perf_counter() - wall, time.thread_time() - cpu


def kdf_samples(count: int) -> list[tuple[float, float]]:
    return [derivation() for _ in range(count)]


def end_to_end_round(requests: int, senders: int, pdf: bytes, extra_env: dict | None = None,
                     profile: str = "", code: str = "now", threads: bool = False,
                     database: "Database | None" = None) -> dict:
    """One round; with ``database`` (PostgreSQL) the gateway runs on a fresh
    database of that cluster, and the server's CPU counts with the gateway's."""
    payloads = [data_payload(request_message(n, pdf)) for n in range(requests)]
    env = {**(extra_env or {}), **(database.next_url() if database else {})}
    with tempfile.TemporaryDirectory() as data, \
            gateway(Path(data), extra_env=env, code=code, named_threads=threads) as (pid, port):
        settle(pid, 1.0)
        spy = profiled(pid, profile) if profile else nullcontext()
        spy.__enter__()
        outbox = Outbox(Path(data) / "outbox")
        server_cpu = (lambda: procstat.tree_cpu(database.cluster.server_pid)) if database else (lambda: 0.0)
        before = procstat.tree_cpu(pid) + server_cpu()
        threads_before = procstat.thread_cpu(pid) if threads else {}
        load_before = _own_cpu()
        started = time.perf_counter()
        sender = threading.Thread(target=send_all, args=(port, payloads, senders))
        sender.start()
        processes = len(procstat.tree(pid))  # serve's own and its workers (CLIENTTRACK_PROCESSES)
        sender.join()
        accepted = time.perf_counter() - started
        done = outbox.wait(requests, timeout=600) - started
        spent = procstat.tree_cpu(pid) + server_cpu() - before
        load_spent = _own_cpu() - load_before
        by_thread = procstat.cpu_by_kind(threads_before, procstat.thread_cpu(pid)) if threads else {}
        spy.__exit__(None, None, None)
    return {"accepted": accepted, "done": done, "rate": requests / done, "cpu_ms": spent / requests * 1000,
            "load_cpu_ms": load_spent / requests * 1000, "processes": processes,
            "threads_ms": {kind: spent[0] / requests * 1000 for kind, spent in by_thread.items()},
            "threads_switches": {kind: (spent[1] + spent[2]) / requests for kind, spent in by_thread.items()},
            "threads_forced": {kind: spent[2] / requests for kind, spent in by_thread.items()}}


class Database:
    """A throwaway PostgreSQL cluster (fsync on, as SQLite's synchronous=FULL)
    for --database postgres: a new database for each round."""

    def __init__(self, cluster) -> None:
        self.cluster = cluster
        self.made = 0

    def next_url(self) -> dict:
        self.made += 1
        return {"CLIENTTRACK_DATABASE_URL": self.cluster.create_database(f"bench_e2e_{self.made}")}


def _own_cpu() -> float:
    """This process's CPU seconds (the senders and the outbox's poll: the
    load's own cost, on the cores the gateway runs on)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def profiled(pid: int, out: str) -> Iterator[None]:
    """py-spy sampling the gateway's processes (collapsed stacks into ``out``)."""
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
                            "--rate", "250", "--threads", "--gil", "--output", out], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def end_to_end(rounds: int, requests: int, senders: int, pdf_size: int, kdf_count: int = 10,
               profile: str = "", threads: bool = False, databases: tuple[str, ...] = ("sqlite",)) -> None:
    with ExitStack() as stack:
        postgres = None
        if "postgres" in databases:
            from tests.pgcluster import Cluster
            postgres = Database(stack.enter_context(Cluster(durable=True)))
        shapes = [(code, db) for db in databases for code in CODE]
        pdf = pdf_bytes(pdf_size)
        cores = os.cpu_count() or 1
        kdf: list[tuple[float, float]] = kdf_samples(kdf_count)
        ceilings = [ceiling.sample(KDF_MEMORY_KIB, KDF_ITERATIONS, pdf)]
        runs: dict[tuple[str, str], list[dict]] = {shape: [] for shape in shapes}
        for round_number in range(rounds):
            for code, db in shapes if round_number % 2 == 0 else list(reversed(shapes)):
                runs[code, db].append(end_to_end_round(
                    requests, senders, pdf, profile=profile if code == "now" else "", code=code, threads=threads,
                    database=postgres if db == "postgres" else None))
                kdf += kdf_samples(kdf_count)
            ceilings.append(ceiling.sample(KDF_MEMORY_KIB, KDF_ITERATIONS, pdf))
    one = statistics.median(wall for wall, _ in kdf)
    one_cpu = statistics.median(cpu for _, cpu in kdf)
    bound = cores / one
    print(f"end to end: {requests} requests with a {pdf_size // 1000} KB PDF, {senders} senders at once, "
          f"serve --demo; medians of {rounds} rounds, KDF sampled between them")
    print(f"  one Argon2id derivation (m=19 MiB, t=2, p=1): {one * 1000:.1f} ms wall, {one_cpu * 1000:.1f} ms CPU; "
          f"KDF bound {cores} cores / {one * 1000:.1f} ms = {bound:.0f} requests/s")
    deriving, native_ms = print_ceiling(ceilings, bound, cores)
    for (code, db), done in runs.items():
        rate = statistics.median(run["rate"] for run in done)
        cpu_ms = statistics.median(run["cpu_ms"] for run in done)
        load_ms = statistics.median(run["load_cpu_ms"] for run in done)
        listed = {key: " ".join(f"{run[key]:.1f}" for run in done) for key in ("rate", "accepted", "done")}
        label = "gateway" if code == "now" else "gateway, before"
        label += f" ({max(run['processes'] for run in done)} processes"
        label += ", PostgreSQL)" if db == "postgres" else ")"
        whose = "all gateway processes and the PostgreSQL server" if db == "postgres" else "all gateway processes"
        print(f"  {label}: {rate:.1f} requests/s  ratio to the KDF bound {rate / bound:.2f} "
              f"({rate / deriving:.2f} of what the cores reach deriving only)   rounds: {listed['rate']}")
        print(f"    all accepted after {listed['accepted']} s; the last client mail after {listed['done']} s")
        print(f"    CPU a request ({whose}) {cpu_ms:.1f} ms; one derivation's CPU is "
              f"{one_cpu / (cpu_ms / 1000):.2f} of it (the ratio the cores would allow, the machine to itself)")
        print(f"    the load's own CPU (senders, outbox poll) {load_ms:.1f} ms a request, on the same cores")
        print(f"    everything beside the native work: {cpu_ms - native_ms:.1f} ms a request (CPU a request less the "
              f"native work's core time)")
        if threads:
            print_threads(done)


TARGET = 0.7  # of the KDF bound: issue 18's end-to-end target


def print_ceiling(ceilings: list[tuple[ceiling.Measured, ceiling.Measured]], bound: float,
                  cores: int) -> tuple[float, float]:
    """The ceiling's lines; returns (derivations a second, every core deriving;
    the CPU of a request's native work, ms)."""
    deriving = statistics.median(only.rate for only, _ in ceilings)
    native = statistics.median(work.rate for _, work in ceilings)
    derivation_ms = statistics.median(only.cpu_ms for only, _ in ceilings)
    native_ms = statistics.median(work.cpu_ms for _, work in ceilings)
    target_ms = cores * 1000 / (TARGET * bound)
    print(f"  the ceiling, every core busy (one process a core, medians of {len(ceilings)} samples): deriving only "
          f"{deriving:.0f}/s = {deriving / bound:.2f} of the bound, {derivation_ms:.1f} ms CPU a derivation; a "
          f"request's native work only (the derivation, the file's sealing and base64, "
          f"{ceiling.SIGNATURES_A_REQUEST} DKIM signatures) {native:.0f}/s = {native / bound:.2f}, {native_ms:.1f} ms CPU")
    print(f"    at {TARGET} of the bound a request may take {target_ms:.1f} ms of core time: the native work's "
          f"{native_ms:.1f} ms and {target_ms - native_ms:.1f} ms for everything else")
    return deriving, native_ms


def print_threads(done: list[dict]) -> None:
    """CPU and context switches a request by kind of thread, medians of the rounds (--threads)."""
    for key, what, unit, least in (("threads_ms", "ms a request", "{:.1f}", 0.05),
                                   ("threads_switches", "context switches a request", "{:.0f}", 0.5),
                                   ("threads_forced", "of them forced (preempted)", "{:.0f}", 0.5)):
        kinds = {kind for run in done for kind in run[key]}
        medians = {kind: statistics.median(run[key].get(kind, 0.0) for run in done) for kind in kinds}
        total = statistics.median(sum(run[key].values()) for run in done)
        print(f"    by thread ({what}, all {unit.format(total)}): " + ", ".join(
            f"{kind} {unit.format(value)}" for kind, value in sorted(medians.items(), key=lambda item: -item[1])
            if value >= least))


# -- 3. memory ---------------------------------------------------------------------------------------------

MB = 1_000_000


def send_one(port: int, raw: bytes, answers: list) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
        client.sendmail(SENDER, [GATEWAY], raw)
        answers.append(time.perf_counter())


def memory_round(pids_of, port: int, messages: list[bytes], outbox: Outbox | None) -> dict:
    """Send ``messages`` at once; each process's high-water mark above its
    idle size at the last 250 and (with an outbox) once every client mail
    is out."""
    pids = pids_of()
    idle = {pid: procstat.rss(pid) for pid in pids}
    for pid in pids:
        procstat.reset_high_water(pid)
    answers: list[float] = []
    threads = [threading.Thread(target=send_one, args=(port, raw, answers)) for raw in messages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(answers) != len(messages):
        raise RuntimeError("a large message was not accepted")
    at_250 = {pid: procstat.high_water(pid) for pid in pids}
    if outbox is not None:
        outbox.wait(len(messages), timeout=600)
    peak = {pid: procstat.high_water(pid) for pid in pids_of() if pid in idle}
    return {"idle": sum(idle.values()), "growth_250": max(at_250[p] - idle[p] for p in pids),
            "growth": max(peak[p] - idle[p] for p in peak), "total": sum(peak.values()),
            "processes": len(pids)}


def memory(pdf_mb: int, at_once: int) -> None:
    pdf = pdf_bytes(pdf_mb * MB)
    one = request_message(0, pdf, tag="large")
    many = [request_message(n, pdf, tag="large") for n in range(at_once)]
    size = len(one)
    with sink() as (pid, port):
        settle(pid)
        bare = memory_round(lambda: [pid], port, [one], None)
    single, five = {}, {}
    for code in CODE:
        with tempfile.TemporaryDirectory() as data, gateway(Path(data), code=code) as (pid, port):
            settle(pid, 1.0)
            single[code] = memory_round(lambda: procstat.tree(pid), port, [one],
                                        Outbox(Path(data) / "outbox", marker=b"@client.example"))
        with tempfile.TemporaryDirectory() as data, gateway(Path(data), code=code) as (pid, port):
            settle(pid, 1.0)
            five[code] = memory_round(lambda: procstat.tree(pid), port, many, Outbox(Path(data) / "outbox"))
    print(f"memory: a {size / MB:.1f} MB message ({pdf_mb} MB PDF, base64) into serve --demo; growth of the "
          f"process's high-water mark (VmHWM) above its idle size, as a multiple of the message")
    print(f"  bare aiosmtpd sink, at the 250           {bare['growth_250'] / MB:6.0f} MB  {bare['growth_250'] / size:5.1f} x")
    for code in CODE:
        label = "gateway" if code == "now" else "gateway, before"
        one_run, five_run = single[code], five[code]
        print(f"  {label + ', at the 250':40s} {one_run['growth_250'] / MB:6.0f} MB  "
              f"{one_run['growth_250'] / size:5.1f} x")
        print(f"  {label + ', the client mail out':40s} {one_run['growth'] / MB:6.0f} MB  "
              f"{one_run['growth'] / size:5.1f} x   (target <= 3 x; idle {one_run['idle'] / MB:.0f} MB in "
              f"{one_run['processes']} process(es))")
        print(f"  {label + f', {at_once} at once':40s} high-water marks added up {five_run['total'] / MB:6.0f} MB "
              f"(target < 1000 MB); growth {five_run['growth'] / MB:.0f} MB = {five_run['growth'] / size:.1f} x one message")


# -- main ------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="acceptance,end-to-end,memory")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--pdf-kb", type=int, default=100)
    parser.add_argument("--profile", default="", help="py-spy's collapsed stacks of the end-to-end run into this file")
    parser.add_argument("--threads", action="store_true",
                        help="end to end: CPU and context switches a request by kind of thread "
                             "(the gateway's threads named for it)")
    parser.add_argument("--large-mb", type=int, default=18, help="the large message's PDF, in MB")
    parser.add_argument("--at-once", type=int, default=5)
    parser.add_argument("--database", default="sqlite", choices=["sqlite", "postgres", "sqlite,postgres"],
                        help="end to end: the database the gateway runs on (postgres: a throwaway cluster, "
                             "fsync on, its server's CPU counted with the gateway's)")
    parser.add_argument("--before", default="", help="also measure the gateway at this commit (e.g. main), interleaved")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", flush=True)
    with checkout(args.before) if args.before else nullcontext() as before:
        if before is not None:
            CODE["before"] = before
        run_parts(args, parts)
    print(f"uptime: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")


def run_parts(args: argparse.Namespace, parts: set[str]) -> None:
    if "acceptance" in parts:
        if shutil.which("smtp-source") is None:
            sys.exit("smtp-source not found: apt-get install postfix (the daemon need not run)")
        acceptance(args.rounds, args.messages, args.sessions, args.size)
    if "end-to-end" in parts:
        end_to_end(args.rounds, args.requests, args.senders, args.pdf_kb * 1000, profile=args.profile,
                   threads=args.threads, databases=tuple(args.database.split(",")))
    if "memory" in parts:
        memory(args.large_mb, args.at_once)


if __name__ == "__main__":
    main()
