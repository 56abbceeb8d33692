"""Stopping a long job by SIGTERM (`timeout`, `docker stop`, AWS Batch ending a job) as by Ctrl-C."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stopped_by_sigterm() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt as Ctrl-C does. By default it ends Python at
    once, skipping every `finally`: a training job's MLflow run would stay RUNNING forever and its
    staging folder, checkpoints and all, would stay on disk; an ingest could not say where it stopped.
    Signal handlers belong to the main thread; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
