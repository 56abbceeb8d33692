"""Judging each new turn in the background as it is stored (PLUMB_JUDGE_ONLINE), never delaying the
answer: the chat hands the stored turn over and returns; one worker thread judges turns in the order
they came and writes each judgement through the never-lost store.

At answer time no user has corrected the answer yet, so online judgements are reference-free; a
later `plumb judge` run with a new judge prompt version scores against corrections. A turn that
cannot be judged (no valid verdict, the endpoint down) is logged and left for `plumb judge`, which
finds it unjudged.
"""

import logging
import queue
import threading

from pipeline.errors import PlumbError
from pipeline.judge.judge import Judge
from pipeline.records import Turn

log = logging.getLogger(__name__)


class OnlineJudge:
    """A queue of turns and the thread that judges them; `submit` never blocks."""

    def __init__(self, judge: Judge, store) -> None:
        self._judge = judge
        self._store = store
        self._turns: queue.SimpleQueue[Turn | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, name="online-judge", daemon=True)
        self._worker.start()

    def submit(self, turn: Turn) -> None:
        """Queue a stored turn for judging; turns with no model-written answer are not judged."""
        if turn.generated and turn.answer.strip():
            self._turns.put(turn)

    def close(self) -> None:
        """Judge what is queued, then stop the worker."""
        self._turns.put(None)
        self._worker.join()

    def _run(self) -> None:
        while (turn := self._turns.get()) is not None:
            try:
                self._store.save_judgement(self._judge.score(turn))
            except PlumbError as error:
                log.warning("Turn %s was not judged online (%s); `plumb judge` will judge it.", turn.turn_id, error)
            except Exception:  # a bug must not end the thread and leave later turns unjudged
                log.exception("Judging turn %s online failed", turn.turn_id)
