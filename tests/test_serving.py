"""`plumb serve` and friends in dev mode: SIGTERM stops everything it started, other commands use its
DynamoDB Local, dev mode stays on loopback, users get no developer toolbar."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ConfigError
from pipeline.feedback.local_dynamo import free_port
from pipeline.serving import advertised, check_address, check_port, dev_store_endpoint, endpoint_file, streamlit_command
from pipeline.settings import Settings, get_settings
from tests.test_browser import wait_until_responds
from tests.test_llm_endpoint_errors import endpoint  # noqa: F401 - the fixture

PLUMB = "import sys; from pipeline.cli import app; sys.argv[0] = 'plumb'; app()"


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigterm_stops_the_app_and_dynamodb_local(endpoint, tmp_path):
    """The model is an OpenAI-compatible endpoint (a local stub), so only serving itself is timed."""
    port = free_port()
    env = {**os.environ, "PLUMB_DATA_DIR": str(get_settings().data_dir), "PYTHONPATH": str(Path(__file__).parents[1]),
           "PLUMB_LLM_BACKEND": "openai", "PLUMB_LLM_BASE_URL": f"{endpoint}/v1", "PLUMB_LLM_MODEL": "served-model"}
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen([sys.executable, "-c", PLUMB, "serve", "--no-samples", "--port", str(port)], env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        try:
            wait_until_responds(f"http://127.0.0.1:{port}/_stcore/health", serve, timeout=300)
        except RuntimeError:
            raise AssertionError((tmp_path / "serve.log").read_text()[-3000:]) from None
        children = descendants(serve.pid)
        assert len(children) >= 2, "the app and DynamoDB Local run as children"
        assert endpoint_file(get_settings()).exists()
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in children if alive(pid)], "no child outlives plumb serve"
        assert not endpoint_file(get_settings()).exists()
    finally:
        if serve.poll() is None:
            serve.kill()


def test_other_commands_use_the_dynamodb_local_that_serve_runs(dynamo_local, monkeypatch):
    monkeypatch.delenv("PLUMB_DYNAMODB_ENDPOINT", raising=False)
    monkeypatch.setenv("PLUMB_TABLE_PREFIX", "served-")
    get_settings.cache_clear()
    with advertised(get_settings(), dynamo_local.endpoint):
        result = CliRunner().invoke(app, ["db", "init"])
    assert result.exit_code == 0, result.output
    assert f"Tables ready (served-*, {dynamo_local.endpoint})" in result.output
    assert "PLUMB_DYNAMODB_ENDPOINT" not in os.environ, "the process is left as it was"


def test_model_commands_read_the_live_version_from_the_dynamodb_local_that_serve_runs(dynamo_local, monkeypatch):
    """`plumb model`, `ask` and `eval` read (and `model promote` writes) the live version in DynamoDB:
    in dev mode that is the served DynamoDB Local, never AWS by accident."""
    monkeypatch.delenv("PLUMB_DYNAMODB_ENDPOINT", raising=False)
    monkeypatch.setenv("PLUMB_TABLE_PREFIX", "served-models-")
    get_settings.cache_clear()
    with advertised(get_settings(), dynamo_local.endpoint):
        assert CliRunner().invoke(app, ["db", "init"]).exit_code == 0
        result = CliRunner().invoke(app, ["model", "list"])
    assert result.exit_code == 0, result.output
    assert "No version is registered" in result.output


@pytest.mark.slow
def test_without_a_running_serve_a_command_starts_its_own(dynamo_local, monkeypatch):
    monkeypatch.delenv("PLUMB_DYNAMODB_ENDPOINT", raising=False)
    get_settings.cache_clear()
    stale = f"http://127.0.0.1:{free_port()}"
    with advertised(get_settings(), stale), dev_store_endpoint():
        endpoint = get_settings().dynamodb_endpoint
        assert endpoint.startswith("http://127.0.0.1:") and endpoint not in (stale, dynamo_local.endpoint)


def test_outside_dev_mode_the_endpoint_is_left_alone(monkeypatch):
    monkeypatch.setenv("PLUMB_DEV_MODE", "false")
    monkeypatch.delenv("PLUMB_DYNAMODB_ENDPOINT", raising=False)
    get_settings.cache_clear()
    with dev_store_endpoint():
        assert get_settings().dynamodb_endpoint == ""


@pytest.mark.parametrize("address", ["127.0.0.1", "localhost", "::1", "127.0.1.1"])
def test_dev_mode_serves_loopback(address):
    check_address(Settings(_env_file=None), address)


@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.20", "::", "example.org"])
def test_dev_mode_on_the_network_is_refused_unless_asked_for(address):
    with pytest.raises(ConfigError, match="for this machine only"):
        check_address(Settings(_env_file=None), address)
    check_address(Settings(_env_file=None, dev_mode_on_network=True), address)
    check_address(Settings(_env_file=None, dev_mode=False), address)


def test_serve_refuses_dev_mode_on_the_network_in_one_line():
    result = CliRunner().invoke(app, ["serve", "--address", "0.0.0.0"])
    assert result.exit_code == 1 and "Error: Development mode" in result.output and "Traceback" not in result.output


def test_users_get_no_deploy_button_or_developer_menu_outside_dev_mode():
    def mode(dev_mode: bool) -> str:
        command = streamlit_command("python", "main.py", 8501, "127.0.0.1", dev_mode)
        return command[command.index("--client.toolbarMode") + 1]

    assert (mode(False), mode(True)) == ("minimal", "developer")


def test_serve_on_a_port_in_use_says_so_in_one_line_and_starts_nothing(tmp_path, monkeypatch):
    """Without the check the Streamlit server exits with "Port N is not available" after DynamoDB
    Local and the model were started."""
    monkeypatch.setenv("PLUMB_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PLUMB_DYNAMODB_ENDPOINT", raising=False)
    get_settings.cache_clear()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--port", str(port)])
    get_settings.cache_clear()
    assert result.exit_code == 1 and f"Error: Port {port} on 127.0.0.1 is in use" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "dynamodb").exists(), "nothing was started"


def test_a_free_port_passes(tmp_path):
    check_port("127.0.0.1", free_port())
