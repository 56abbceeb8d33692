"""What a user types on the command line: bytes that are not UTF-8 end in one clear sentence."""

import subprocess
import sys


def test_ask_with_bytes_that_are_not_utf8_says_so_without_a_traceback():
    """A real process, so the question reaches `plumb ask` as the OS hands over a Latin-1 terminal's bytes."""
    result = subprocess.run(
        [sys.executable, "-c", "from pipeline.cli import app; app()", "ask", b"Men\xfc of the caf\xe9?"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "The question holds bytes that are not UTF-8 text" in result.stdout
