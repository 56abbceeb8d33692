"""Hermetic tests: every path and setting points at a temporary directory; real services
(DynamoDB Local, the packaged models) are started or loaded by fixtures in tests/fixtures/."""

import sys

import pytest

from pipeline.settings import get_settings

pytest_plugins = [
    "tests.fixtures.models",
    "tests.fixtures.retrieval",
    "tests.fixtures.dynamo",
    "tests.fixtures.s3",
]


@pytest.fixture(autouse=True)
def hermetic_settings(tmp_path, monkeypatch):
    """Point Plumbline at a fresh data directory and forget any cached settings and app clients
    (a store cached by an earlier test's page would read that test's tables)."""
    for name in ("PLUMB_DYNAMODB_ENDPOINT", "PLUMB_INDEX_BACKEND", "PLUMB_LLM_BACKEND", "PLUMB_ADMINS", "PLUMB_REVIEWERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PLUMB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    _forget_cached_clients()
    yield
    _forget_cached_clients()


def _forget_cached_clients() -> None:
    get_settings.cache_clear()
    if "streamlit" in sys.modules:  # only tests of the app import it; importing it here would slow every test
        import streamlit as st

        st.cache_data.clear()
        st.cache_resource.clear()
