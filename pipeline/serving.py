"""What `plumb serve` and the other commands need to run in development mode without surprises:
one DynamoDB Local shared by every `plumb` command, the Streamlit command line that keeps dev mode
on this machine, and a clean stop on SIGTERM as on Ctrl-C."""

import ipaddress
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.feedback.local_dynamo import dev_dynamo, responds
from pipeline.settings import Settings, get_settings

LOOPBACK = "127.0.0.1"


def endpoint_file(settings: Settings) -> Path:
    """Where a running `plumb serve` writes the address of the DynamoDB Local it started."""
    return settings.data_dir / "dynamodb" / "endpoint"


@contextmanager
def advertised(settings: Settings, endpoint: str) -> Iterator[None]:
    """Tell other `plumb` commands in this data folder where DynamoDB Local runs, while it runs."""
    path = endpoint_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(endpoint)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


@contextmanager
def dev_store_endpoint() -> Iterator[None]:
    """In dev mode without PLUMB_DYNAMODB_ENDPOINT, point this process at the DynamoDB Local that
    `plumb serve` started (when it answers), else start one on the same data for as long as the
    command runs; otherwise change nothing. Without this, dev mode's empty endpoint means AWS itself."""
    settings = get_settings()
    if not settings.dev_mode or settings.dynamodb_endpoint:
        yield
        return
    path = endpoint_file(settings)
    running = path.read_text().strip() if path.exists() else ""
    if running and responds(running):
        with _endpoint(running):
            yield
        return
    with dev_dynamo(settings) as local, _endpoint(local.endpoint):
        yield


@contextmanager
def _endpoint(endpoint: str) -> Iterator[None]:
    os.environ["PLUMB_DYNAMODB_ENDPOINT"] = endpoint
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.pop("PLUMB_DYNAMODB_ENDPOINT", None)
        get_settings.cache_clear()


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_address(settings: Settings, address: str) -> None:
    """Dev mode lets anyone type any name, so it serves only this machine unless
    PLUMB_DEV_MODE_ON_NETWORK says otherwise; ConfigError in one sentence."""
    if settings.dev_mode and not is_loopback(address) and not settings.dev_mode_on_network:
        raise ConfigError(
            f"Development mode (anyone types any name) is for this machine only, not {address}: serve on "
            f"{LOOPBACK}, or set PLUMB_DEV_MODE=false with a sign-in, or PLUMB_DEV_MODE_ON_NETWORK=true if you mean it."
        )


def check_port(address: str, port: int) -> None:
    """Refuse a port something already listens on, before anything is started: otherwise the
    Streamlit server exits saying only "Port N is not available" after DynamoDB Local and the model
    were started for nothing. The probe binds as the server will (SO_REUSEADDR, so a port left in
    TIME_WAIT by a server just stopped counts as free); ConfigError in one sentence."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            raise ConfigError(
                f"Port {port} on {address} is in use (another `plumb serve`, or another app): stop it, or choose "
                f"another port with --port ({exc.strerror})."
            ) from exc


def streamlit_command(python: str, main: str, port: int, address: str, dev_mode: bool) -> list[str]:
    """The Streamlit server's command line. Outside dev mode the toolbar is "minimal": no Deploy
    button and no developer menu (rerun, settings, clear cache) for users."""
    return [python, "-m", "streamlit", "run", main, "--server.port", str(port), "--server.address", address,
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "developer" if dev_mode else "minimal"]


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM stops the process as Ctrl-C does (KeyboardInterrupt), so every
    `with` unwinds and what it started (DynamoDB Local, the Streamlit server) is stopped; by default
    SIGTERM ends Python at once and leaves them running, holding their ports."""

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_until_stopped(command: list[str]) -> None:
    """Run the server until it exits; when interrupted (Ctrl-C, or SIGTERM in `sigterm_as_interrupt`)
    it is stopped (SIGTERM, then SIGKILL after 20 s) before the interruption goes on."""
    process = subprocess.Popen(command)
    try:
        process.wait()
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
