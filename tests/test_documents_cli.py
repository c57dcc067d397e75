"""`clienttrack firm retention` and `clienttrack blobs migrate`, run as an
operator would run them."""

from __future__ import annotations

from tests.test_cli import run


def test_firm_retention_sets_and_shows_the_period(tmp_path):
    assert run(tmp_path, "firm", "add", "smith-cpa.example", "--name", "Smith CPA").returncode == 0
    changed = run(tmp_path, "firm", "retention", "smith-cpa.example", "--documents", "30d")
    assert changed.returncode == 0 and "deleted 30 days after" in changed.stdout
    wrong = run(tmp_path, "firm", "retention", "smith-cpa.example", "--documents", "3 months")
    assert wrong.returncode == 2 and "like 90d" in wrong.stderr


def test_blobs_migrate_on_a_fresh_install_has_nothing_to_move(tmp_path):
    moved = run(tmp_path, "blobs", "migrate")
    assert moved.returncode == 0, moved.stderr
    assert "Moved 0 files" in moved.stdout and f"{tmp_path}/blobs" in moved.stderr
