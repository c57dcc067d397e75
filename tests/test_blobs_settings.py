"""CLIENTTRACK_BLOB_URL and the AWS credentials: read once, checked at start,
never printed."""

from __future__ import annotations

import pytest

from gateway.core.settings import SettingsError, load

pytestmark = pytest.mark.no_database  # the PostgreSQL pass leaves these out (tests/testdb.py)


def test_no_url_means_files_under_the_data_dir() -> None:
    settings = load({"data_dir": "/srv/ct"}, environ={})
    assert settings.blob_url == "" and str(settings.blobs_dir) == "/srv/ct/blobs"


def test_s3_url_and_aws_credentials_from_the_usual_variables() -> None:
    settings = load(environ={
        "CLIENTTRACK_BLOB_URL": "s3://docs/clienttrack?endpoint=http://127.0.0.1:9000&region=ca-central-1",
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "very-secret", "AWS_DEFAULT_REGION": "us-west-2",
    })
    assert settings.aws_access_key_id == "AKIAEXAMPLE"
    assert str(settings.aws_secret_access_key) == "very-secret"
    assert "very-secret" not in repr(settings)
    assert settings.aws_region == "us-west-2"


def test_aws_region_wins_over_the_default_region() -> None:
    settings = load(environ={"AWS_REGION": "ca-central-1", "AWS_DEFAULT_REGION": "us-west-2"})
    assert settings.aws_region == "ca-central-1"


@pytest.mark.parametrize("url, says", [
    ("http://bucket/x", "s3://"),
    ("s3:///nobucket", "s3://"),
    ("s3://b/p?endpiont=http://x", "unknown option endpiont"),
    ("s3://b/p?endpoint=ftp://x", "endpoint"),
    ("s3://key:secret@b/p", "AWS_ACCESS_KEY_ID"),
    ("s3://b/p?endpoint=http://[zz]", "endpoint: not a URL"),
    ("s3://b/p?endpoint=http://host:99999", "endpoint: not a URL (Port out of range"),
    ("s3://key:secret@[b/p", "blob_url: not a URL"),
])
def test_wrong_urls_are_named(url: str, says: str) -> None:
    with pytest.raises(SettingsError, match="blob_url") as caught:
        load(environ={"CLIENTTRACK_BLOB_URL": url})
    assert says in str(caught.value)
    assert "secret@" not in str(caught.value)
