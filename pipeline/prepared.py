"""Folders made once and shared by every process: the local LLM converted from its GGUF file, its
tokenizer, the ONNX export of the embedding model.

A folder is built in a temporary folder beside it and appears by an atomic rename, so its presence
means it is complete; a file lock makes a second process wait for the first instead of building it
twice.
"""

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock


def prepared_folder(target: Path, build: Callable[[Path], None]) -> Path:
    """`target`, made the first time by `build(staging folder)`; returns `target`."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(target.parent / f".{target.name}.lock"):
        if not target.is_dir():
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
            try:
                build(staging)
                staging.rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return target
