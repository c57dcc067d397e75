"""Settings, read once at start and validated.

Precedence, lowest first: built-in defaults, an optional TOML file
(``--config`` or ``CLIENTTRACK_CONFIG``), ``CLIENTTRACK_*`` environment
variables, command-line options. Secrets are wrapped in Starlette's
``Secret`` so that printing the settings never shows them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.datastructures import Secret

from gateway.core import datadir

ENV_PREFIX = "CLIENTTRACK_"
DEFAULT_MAX_MESSAGE_SIZE = 25 * 1024 * 1024
ROLES = ("smtp", "web", "queue", "outbox")
# The object store's credentials come from the names every AWS tool reads.
AWS_ENVIRON = {
    "AWS_ACCESS_KEY_ID": "aws_access_key_id",
    "AWS_SECRET_ACCESS_KEY": "aws_secret_access_key",
    "AWS_SESSION_TOKEN": "aws_session_token",
    "AWS_REGION": "aws_region",
    "AWS_DEFAULT_REGION": "aws_region",
}
BLOB_URL_OPTIONS = ("endpoint", "region")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, which a container's
    cpuset limits), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names it."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    database_url: str = ""
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 2525
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    base_url: str = ""
    hostname: str = "clienttrack.localhost"
    relay_url: Secret | None = None
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    # The most a client's reply (its text and files together) may carry.
    reply_max_size: int = DEFAULT_MAX_MESSAGE_SIZE
    # A message larger than this is large: its body goes to the blob store
    # while it arrives and is processed in pieces, never held whole.
    large_message_bytes: int = 1024 * 1024
    # Large messages in transfer at once, per process: a MAIL FROM that
    # declares a large SIZE when all are taken gets 452; DATA that grows
    # large waits for one (LARGE_WAIT_SECONDS), then gets 421.
    large_sessions: int = 8
    demo: bool = False
    payments: str = ""
    stripe_secret_key: Secret | None = None
    stripe_webhook_secret: Secret | None = None
    stripe_api_base: str = ""
    stripe_publishable_key: str = ""
    stripe_connect_webhook_secret: Secret | None = None
    # The card fee a `+fee` request passes on, and the platform's own fee
    # (off by default; a firm's first requests are free of it).
    card_fee_rate: str = "0.029"
    card_fee_fixed_minor: int = 50
    application_fee_rate: str = "0"
    application_fee_fixed_minor: int = 0
    application_fee_free_requests: int = 5
    trusted_authserv_ids: tuple[str, ...] = ()
    # The resolvers the DKIM key look-ups ask ("host" or "host:port", IP
    # addresses); none: the system's (resolv.conf).
    dns_nameservers: tuple[str, ...] = ()
    # A signed message acts only while its signed Date is this recent, so
    # a message the firm's staff once sent cannot be sent again later.
    message_max_age_hours: int = 48
    # Outbound mail: a second DKIM signature, Ed25519 (RFC 8463), beside the RSA one.
    dkim_ed25519: bool = False
    # Web: the addresses (or networks) of reverse proxies whose
    # X-Forwarded-For is believed; none by default, so the client address
    # is the connection's.
    trusted_proxies: tuple[str, ...] = ()
    # Web: a client must send a request's headers within this many seconds
    # (a connection that trickles them in would otherwise be held forever).
    web_header_timeout: float = 10.0
    # Which parts this process runs; split them over processes to use more cores.
    roles: tuple[str, ...] = ROLES
    # `serve` runs that many worker processes, each with the roles above, on
    # the same SMTP and web ports (gateway/workers.py); 1: everything in
    # this one process. 0 (the default): see worker_processes.
    processes: int = 0
    queue_workers: int = 2
    # Messages accepted an hour, beyond which SMTP answers 451 (try later).
    sender_hourly_limit: int = 200
    firm_hourly_limit: int = 2000
    # How often idle runners look for work another process queued.
    poll_seconds: float = 0.2
    outbox_max_attempts: int = 8
    # How long a runner's claim on a queue row lasts unless renewed (it is,
    # every third of it, while the process lives): after a crash, how soon
    # another process takes the row over.
    lease_seconds: float = 15.0
    # On SIGTERM or SIGINT: how long SMTP sessions in DATA and the runners
    # may take to finish before the process exits anyway.
    stop_timeout: float = 30.0
    # /readyz is red when the oldest message waiting in a queue is older.
    ready_max_queue_age: float = 300.0
    # "json": one JSON object a log line (for a log collector); else plain text.
    log_format: str = "text"
    outbox_retry_base_seconds: float = 60.0
    request_ttl_days: int = 30
    # Where sealed files go: DATA_DIR/blobs/ unless s3://bucket/prefix?endpoint=...
    blob_url: str = ""
    aws_access_key_id: str = ""
    aws_secret_access_key: Secret | None = None
    aws_session_token: Secret | None = None
    aws_region: str = ""
    kdf_memory_kib: int = 19 * 1024
    kdf_iterations: int = 2
    log_level: str = "INFO"
    # Apply pending migrations when `serve` starts (under a lock), instead
    # of refusing to start on a database that is behind.
    upgrade_on_start: bool = False

    @property
    def worker_processes(self) -> int:
        """How many processes `serve` runs: as many as asked, else one for
        each CPU this process may run on, whatever the roles. A front alone
        (smtp,web) too: since its intakes take turns at SQLite's write lock,
        two fronts on two cores accept about a fifth more messages a second
        than one, at ~8 % more CPU a message (BENCHMARKS.md, issue 18,
        "Two front processes by default")."""
        return self.processes or usable_cpus()

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite://{self.data_dir / 'clienttrack.db'}"

    @property
    def public_base_url(self) -> str:
        return (self.base_url or f"http://{self.web_host_for_url}:{self.web_port}").rstrip("/")

    @property
    def web_host_for_url(self) -> str:
        return "localhost" if self.web_host in ("127.0.0.1", "0.0.0.0", "::", "::1") else self.web_host

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / datadir.BLOBS

    @property
    def master_key_path(self) -> Path:
        return self.data_dir / "master.key"

    @property
    def payment_provider(self) -> str:
        """'sandbox', 'stripe' or 'none': never a test checkout by accident."""
        if self.payments:
            return self.payments
        if self.stripe_secret_key is not None:
            return "stripe"
        return "sandbox" if self.demo else "none"


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name}: expected true or false, got {value!r}")


def _as_int(name: str, value: Any, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: expected a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise SettingsError(f"{name}: {number} is outside {low}..{high}")
    return number


def _as_rate(name: str, value: Any) -> str:
    """A fraction like "0.029", kept as text for Decimal: never a float."""
    try:
        rate = Decimal(str(value).strip())
    except InvalidOperation:
        raise SettingsError(f"{name}: expected a decimal fraction like 0.029, got {value!r}") from None
    if not Decimal(0) <= rate < Decimal("0.5"):
        raise SettingsError(f"{name}: {rate} is outside 0..0.5 (write 2.9% as 0.029)")
    return str(rate)


def _as_list(value: Any) -> tuple[str, ...]:
    """A comma-separated string (environment) or a list (TOML)."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(str(i).strip() for i in items if str(i).strip())


def _nameserver(name: str, item: str) -> str:
    """An IP address with an optional port: ``192.0.2.53``, ``127.0.0.1:5353``,
    ``2001:db8::53`` or ``[2001:db8::53]:5353``. Kept as written."""
    host, port = split_host_port(item)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise SettingsError(f"{name}: {item!r} is not an IP address (with an optional :port)") from None
    if port is not None and not 1 <= port <= 65535:
        raise SettingsError(f"{name}: {item!r} has a port that is not a number in 1..65535")
    return item


def split_host_port(item: str) -> tuple[str, int | None]:
    """(host, port or None) of a nameserver as :func:`_nameserver` accepts it
    (port -1 when it is not a number)."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
    elif item.count(":") == 1:
        host, port = item.split(":")
    else:
        host, port = item, None
    try:
        return host, int(port) if port is not None else None
    except ValueError:
        return host, -1


def _network(name: str, item: str) -> str:
    try:
        return str(ipaddress.ip_network(item, strict=False))
    except ValueError:
        raise SettingsError(f"{name}: {item!r} is not an IP address or network") from None


def _as_secret(value: Any) -> Secret | None:
    if value is None or value == "" or isinstance(value, Secret):
        return value or None
    return Secret(str(value))


def _check_url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    if not value:
        return value
    try:
        # urlsplit refuses a bad [IPv6] literal at once; a bad port only when .port is read.
        url = urlsplit(value)
        url.port
    except ValueError as exc:
        # The URL itself is not echoed: it may hold a password (relay_url).
        raise SettingsError(f"{name}: not a URL ({exc})") from None
    if url.scheme not in schemes:
        raise SettingsError(f"{name}: expected a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return value


def _converted(raw: Mapping[str, Any]) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SettingsError(f"unknown setting: {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if key == "data_dir":
            out[key] = Path(value)
        elif key in ("smtp_port", "web_port"):
            out[key] = _as_int(key, value, 0, 65535)
        elif key in ("max_message_size", "reply_max_size", "large_message_bytes"):
            out[key] = _as_int(key, value, 1024, 1024**3)
        elif key == "large_sessions":
            out[key] = _as_int(key, value, 1, 10_000)
        elif key == "processes":
            out[key] = _as_int(key, value, 0, 1024)
        elif key in ("queue_workers", "outbox_max_attempts", "request_ttl_days", "kdf_iterations"):
            out[key] = _as_int(key, value, 1, 10_000)
        elif key in ("sender_hourly_limit", "firm_hourly_limit"):
            out[key] = _as_int(key, value, 1, 100_000_000)
        elif key == "kdf_memory_kib":
            out[key] = _as_int(key, value, 19 * 1024, 4 * 1024 * 1024)
        elif key == "message_max_age_hours":
            out[key] = _as_int(key, value, 1, 24 * 365)
        elif key in ("outbox_retry_base_seconds", "poll_seconds", "web_header_timeout", "lease_seconds", "stop_timeout", "ready_max_queue_age"):
            try:
                out[key] = float(value)
            except ValueError:
                raise SettingsError(f"{key}: expected a number of seconds, got {value!r}") from None
        elif key in ("demo", "upgrade_on_start", "dkim_ed25519"):
            out[key] = _as_bool(key, value)
        elif key in ("card_fee_fixed_minor", "application_fee_fixed_minor", "application_fee_free_requests"):
            out[key] = _as_int(key, value, 0, 10_000_000)
        elif key in ("card_fee_rate", "application_fee_rate"):
            out[key] = _as_rate(key, value)
        elif key in ("relay_url", "stripe_secret_key", "stripe_webhook_secret", "stripe_connect_webhook_secret",
                     "aws_secret_access_key", "aws_session_token"):
            out[key] = _as_secret(value)
        elif key == "roles":
            items = value.split(",") if isinstance(value, str) else value
            out[key] = tuple(i.strip().lower() for i in items if i.strip())
            wrong = sorted(set(out[key]) - set(ROLES))
            if wrong or not out[key]:
                raise SettingsError(f"roles: expected some of {', '.join(ROLES)}, got {value!r}")
        elif key == "trusted_authserv_ids":
            out[key] = _as_list(value)
        elif key == "dns_nameservers":
            out[key] = tuple(_nameserver(key, item) for item in _as_list(value))
        elif key == "trusted_proxies":
            out[key] = tuple(_network(key, item) for item in _as_list(value))
        else:
            out[key] = str(value)
    return out


def _check_blob_url(value: str) -> None:
    """s3://bucket[/prefix][?endpoint=http(s)://host:port&region=R], or nothing."""
    if not value:
        return
    _check_url("blob_url", value, ("s3",))
    url = urlsplit(value)
    if url.scheme != "s3" or not url.hostname:
        raise SettingsError("blob_url: expected s3://bucket/prefix (or nothing, for DATA_DIR/blobs/)")
    options = parse_qs(url.query, keep_blank_values=True)
    unknown = sorted(set(options) - set(BLOB_URL_OPTIONS))
    if unknown:
        raise SettingsError(f"blob_url: unknown option {', '.join(unknown)} (known: {', '.join(BLOB_URL_OPTIONS)})")
    if url.username or url.password:
        raise SettingsError("blob_url: credentials go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, not the URL")
    for endpoint in options.get("endpoint", []):
        _check_url("blob_url endpoint", endpoint or "-", ("http", "https"))


def _validate(s: Settings) -> Settings:
    _check_url("base_url", s.base_url, ("http", "https"))
    _check_url("database_url", s.database_url, ("sqlite", "postgres", "asyncpg", "psycopg"))
    if s.relay_url is not None:
        _check_url("relay_url", str(s.relay_url), ("smtp", "smtps"))
    _check_blob_url(s.blob_url)
    if s.payments not in ("", "sandbox", "stripe", "none"):
        raise SettingsError(f"payments: expected sandbox, stripe or none, got {s.payments!r}")
    if s.payments == "stripe" and s.stripe_secret_key is None:
        raise SettingsError("payments: stripe needs CLIENTTRACK_STRIPE_SECRET_KEY")
    if not 0 < s.web_header_timeout <= 3600:
        raise SettingsError(f"web_header_timeout: {s.web_header_timeout} is outside 0..3600 seconds")
    if s.log_format not in ("text", "json"):
        raise SettingsError(f"log_format: expected text or json, got {s.log_format!r}")
    if s.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise SettingsError(f"log_level: expected DEBUG, INFO, WARNING or ERROR, got {s.log_level!r}")
    return s


def load(
    options: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | os.PathLike | None = None,
) -> Settings:
    """Build validated settings from a TOML file, the environment and options."""
    environ = os.environ if environ is None else environ
    options = {k: v for k, v in (options or {}).items() if v is not None}
    config_file = options.pop("config", None) or config_file or environ.get(ENV_PREFIX + "CONFIG")
    merged: dict[str, Any] = {}
    for variable, name in AWS_ENVIRON.items():
        if environ.get(variable) and not merged.get(name):
            merged[name] = environ[variable]
    if config_file:
        try:
            with open(config_file, "rb") as fh:
                merged.update(tomllib.load(fh))
        except FileNotFoundError:
            raise SettingsError(f"config file not found: {config_file}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {config_file}: {exc}") from None
    known = {f.name for f in dataclasses.fields(Settings)}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and key != ENV_PREFIX + "CONFIG":
            name = key[len(ENV_PREFIX):].lower()
            if name in known:
                merged[name] = value
    merged.update(options)
    return _validate(Settings(**_converted(merged)))


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"unknown timezone: {name!r}") from None
