"""CLIENTTRACK_LOG_FORMAT=json: one JSON object a line."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.core import logs, settings as settings_module

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


def test_json_logs_are_one_object_a_line_with_the_traceback(capsys):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        logs.configure("INFO", settings_module.load({}, environ={"CLIENTTRACK_LOG_FORMAT": "json"}).log_format)
        try:
            raise ValueError("no such firm")
        except ValueError:
            logging.getLogger("clienttrack.test").exception("could not queue %s", "R12")
        logging.getLogger("clienttrack.test").debug("not at INFO")
    finally:
        root.handlers[:] = handlers  # as pytest had them
        root.setLevel(level)
    [line] = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"], record["message"]) == ("ERROR", "clienttrack.test", "could not queue R12")
    assert "ValueError: no such firm" in record["exception"] and record["time"].endswith("+00:00")


def test_a_wrong_log_format_is_named():
    import pytest
    with pytest.raises(settings_module.SettingsError, match="log_format"):
        settings_module.load({}, environ={"CLIENTTRACK_LOG_FORMAT": "xml"})
