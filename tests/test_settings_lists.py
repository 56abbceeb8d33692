"""A list setting (admins, experts, reviewers) given as a bare name says so in one sentence."""

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ConfigError
from pipeline.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_list_setting_that_is_not_json_is_named(monkeypatch):
    monkeypatch.setenv("PLUMB_REVIEWERS", "rita")
    with pytest.raises(ConfigError, match=r'PLUMB_REVIEWERS is not valid JSON: give a list such as \["alice", "bob"\]'):
        get_settings()


def test_the_cli_reports_it_without_a_traceback(monkeypatch):
    monkeypatch.setenv("PLUMB_ADMINS", "adam, eve")
    result = CliRunner().invoke(app, ["judge", "agreement"])
    assert result.exit_code == 1
    assert "PLUMB_ADMINS is not valid JSON" in result.output and "Traceback" not in result.output


def test_a_json_list_still_reads(monkeypatch):
    monkeypatch.setenv("PLUMB_REVIEWERS", '["rita", "sam"]')
    assert get_settings().reviewers == ["rita", "sam"]
