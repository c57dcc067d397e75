"""docker-compose.yml and the Dockerfile as far as they can be checked here
(no Docker engine runs on this machine): the file parses, the migration
step comes first, every gateway has a health check on /readyz, a
signal-forwarding init and a grace period longer than the stop timeout,
and every command is one `clienttrack` accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from gateway.cli import build_parser
from gateway.core.settings import Settings

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
GATEWAYS = [name for name, service in SERVICES.items() if service.get("build")]


def test_the_migration_step_runs_first_and_every_gateway_waits_for_it():
    assert SERVICES["migrate"]["command"] == ["db", "upgrade"]
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in set(GATEWAYS) - {"migrate"}:
        assert SERVICES[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}, name


def test_every_gateway_has_an_init_a_readiness_check_and_time_to_stop():
    stop_timeout = float(SERVICES["front"]["environment"].get("CLIENTTRACK_STOP_TIMEOUT", Settings.stop_timeout))
    for name in set(GATEWAYS) - {"migrate"}:
        service = SERVICES[name]
        assert service["init"] is True, name
        assert "/readyz" in " ".join(service["healthcheck"]["test"]), name
        assert _seconds(service["stop_grace_period"]) > stop_timeout, name
        roles = service["command"][service["command"].index("--roles") + 1]
        assert "web" in roles, f"{name}: /readyz needs the web role"


def test_every_command_is_one_clienttrack_accepts():
    for name in GATEWAYS:
        args = build_parser().parse_args(SERVICES[name]["command"])
        assert callable(args.run), name
    dockerfile = (ROOT / "Dockerfile").read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (.*)$", dockerfile, re.M).group(1))
    default = json.loads(re.search(r"^CMD (.*)$", dockerfile, re.M).group(1))
    assert entry == ["clienttrack"] and build_parser().parse_args(default).command == "serve"


def test_the_settings_named_are_settings():
    known = {f"CLIENTTRACK_{name.upper()}" for name in Settings.__dataclass_fields__}
    for name in GATEWAYS:
        assert set(SERVICES[name]["environment"]) <= known, name


def test_postgres_answers_its_health_check_before_anything_starts():
    assert SERVICES["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"(\d+)([sm])", text).groups()
    return float(number) * (60 if unit == "m" else 1)
