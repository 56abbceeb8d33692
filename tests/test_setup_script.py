"""scripts/setup.sh checks what a machine needs before installing anything, one clear message each."""

import os
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[1] / "scripts" / "setup.sh"


def fake(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


def run_setup(tmp_path: Path, *args: str, python: str = "", java: str = "") -> subprocess.CompletedProcess:
    """setup.sh with fake python3/java first on PATH (the real ones where not faked)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if python:
        fake(bin_dir, "python3", python)
    if java:
        fake(bin_dir, "java", java)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run(["bash", str(SETUP), *args], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("python", "java", "message"),
    [
        ('[ "$1" = "-V" ] && echo "Python 3.10.12"; exit 1', "", "Python 3.11 or newer is needed; python3 is Python 3.10.12."),
        ('case "$2" in *venv*) exit 1;; esac; exit 0', "", "Python's venv module is missing (Debian: apt-get install python3-venv)."),
        ("", "echo 'openjdk version \"11.0.22\" 2024-01-16' >&2", "DynamoDB Local needs Java 17 or newer; java is version 11."),
    ],
)
def test_what_the_machine_lacks_is_one_clear_message(tmp_path, python, java, message):
    result = run_setup(tmp_path, "run", python=python, java=java)
    assert result.returncode == 1 and result.stderr.strip() == f"Error: {message}"


def test_an_unknown_mode_installs_nothing(tmp_path):
    result = run_setup(tmp_path, "everything")
    assert result.returncode == 2 and "usage:" in result.stderr
