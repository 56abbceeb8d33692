"""`plumb eval compare`: two configurations of the chain (two models or adapters, two prompt
versions, two index settings) on the same questions.

Each side is the settings with its own overrides (`--a KEY=VALUE`, `--b KEY=VALUE`). Both sides'
answers are measured with one embedder (the base settings') so that SAS is comparable, scored by the
judge, and compared pairwise in both orders (`Judge.verdicts`: a win only when both orders agree).
Win/tie/loss is B's, the candidate's, against A; the sign test and the bootstrap intervals of the
paired differences (B - A) say whether the difference could be chance. How often the two orders
agreed, and how often the judge chose one place in both, say whether its ties mean "as good" or
"cannot tell" (a judge that always picks the answer shown first gives only ties).
"""

from dataclasses import dataclass

from pipeline.errors import PlumbError
from pipeline.evaluation.stats import Spread, sign_test, spread
from pipeline.evaluation.evaluate import CaseResult
from pipeline.judge.judge import Judge, JudgeFailed, PairVerdicts, position_counts
from pipeline.judge.prompts import score_messages
from pipeline.judge.verdicts import ScoreVerdict
from pipeline.records import Citation
from pipeline.settings import Settings

OUTCOMES = {"A": "loss", "B": "win", "tie": "tie"}  # the pairwise judge's answer, as B's result


@dataclass
class ComparedCase:
    """One question: both answers, their SAS and judge scores (None when the judge failed), B's
    result against A (`win`, `tie`, `loss`; None when the pairwise judge failed) and the side the
    pairwise judge preferred in each order ("A", "B" or "tie"), first with A's answer shown first,
    then with B's (None when it failed): ("B", "B") is a win, ("A", "B") the answer shown first
    both times."""

    question: str
    reference: str
    answer_a: str
    answer_b: str
    similarity_a: float
    similarity_b: float
    judge_a: float | None
    judge_b: float | None
    outcome: str | None
    verdicts: tuple[str, str] | None

    @property
    def orders(self) -> str:
        """The verdicts for a table: "B, B" (B's answer in both orders), "A, B" (the answer shown
        first both times), "failed"."""
        return "failed" if self.verdicts is None else ", ".join(self.verdicts)


@dataclass
class Side:
    """One configuration: the overrides it was given, the model id that answered, its SAS and
    judge scores over the questions."""

    overrides: dict[str, str]
    model_id: str
    similarity: Spread | None
    judge: Spread | None


@dataclass
class CompareReport:
    cases: int
    judge_model: str
    a: Side
    b: Side
    wins: int
    ties: int
    losses: int
    failed: int
    consistent: int  # pairs whose two orders agreed
    first_position: int  # pairs where the judge chose the answer shown first in both orders
    second_position: int  # ... the answer shown second in both orders; the other pairs judged had a tie in one order
    sign_test_p: float | None
    similarity_difference: Spread | None
    judge_difference: Spread | None
    results: list[ComparedCase]

    def consistency(self) -> str:
        """The pairs judged by kind: consistent, or biased toward the first or the second place (the
        MT-Bench study's position-bias counts, Zheng et al. 2023), or a tie in one order only; with a
        warning when most went by the place shown: then its ties mean it could not tell, not a draw."""
        judged = self.cases - self.failed
        if not judged:
            return "The pairwise judge gave no verdict."
        by_place = self.first_position + self.second_position
        sentence = (
            f"Of {judged} pairs judged, the two orders agreed on {self.consistent}; the judge chose the answer shown "
            f"first in both orders on {self.first_position}, the one shown second on {self.second_position}, and "
            f"called a tie in one order only on {judged - self.consistent - by_place}."
        )
        if by_place * 2 > judged:
            sentence += " Most verdicts went by the place shown, not the answers: its ties say it could not tell them apart."
        return sentence


def side_settings(base: Settings, pairs: list[str]) -> tuple[Settings, dict[str, str]]:
    """`base` with the overrides `pairs` ("KEY=VALUE"; KEY a setting's name, with or without
    PLUMB_, in any case) and the overrides as a dict. PlumbError in one sentence for a pair that is
    not KEY=VALUE, an unknown setting or a bad value."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        name = key.strip().lower().removeprefix("plumb_")
        if not sep or name not in Settings.model_fields:
            raise PlumbError(f"{pair!r} is not KEY=VALUE with a setting as KEY (`plumb settings` lists them).")
        if name in overrides:
            raise PlumbError(f"{key.strip()} is given twice for one side: give each setting once.")
        overrides[name] = value
    try:
        return Settings(**{**base.model_dump(), **overrides}), overrides
    except ValueError as exc:
        raise PlumbError(f"The overrides {', '.join(pairs)} are not valid settings: {exc.errors()[0]['msg']}.") from exc


def compare(
    results_a: list[CaseResult], results_b: list[CaseResult], sides: tuple[Side, Side], judge: Judge
) -> CompareReport:
    """Judge the two sides' answers to the same questions (in the same order). `sides` come with
    their overrides and model ids; their spreads are filled in here."""
    judged = [_compare_one(a, b, judge) for a, b in zip(results_a, results_b, strict=True)]
    compared = [case for case, _ in judged]
    a, b = sides
    a.similarity, b.similarity = spread([c.similarity_a for c in compared]), spread([c.similarity_b for c in compared])
    a.judge = spread([c.judge_a for c in compared if c.judge_a is not None])
    b.judge = spread([c.judge_b for c in compared if c.judge_b is not None])
    outcomes = [c.outcome for c in compared]
    wins, losses = outcomes.count("win"), outcomes.count("loss")
    return CompareReport(
        cases=len(compared),
        judge_model=judge.model_id,
        a=a,
        b=b,
        wins=wins,
        ties=outcomes.count("tie"),
        losses=losses,
        failed=outcomes.count(None),
        **position_counts(verdicts for _, verdicts in judged if verdicts),
        sign_test_p=sign_test(wins, losses),
        similarity_difference=spread([round(c.similarity_b - c.similarity_a, 4) for c in compared]),
        judge_difference=spread(
            [c.judge_b - c.judge_a for c in compared if c.judge_a is not None and c.judge_b is not None]
        ),
        results=compared,
    )


def _compare_one(a: CaseResult, b: CaseResult, judge: Judge) -> tuple[ComparedCase, PairVerdicts | None]:
    """One question compared, with the pairwise verdicts as said (None when the judge failed)."""
    if a.question != b.question:
        raise ValueError("the two sides' results are not of the same questions, in the same order")
    citations = _union(a.citations, b.citations)
    try:
        verdicts: PairVerdicts | None = judge.verdicts(a.question, citations, a.answer, b.answer, a.reference)
    except JudgeFailed:
        verdicts = None
    return ComparedCase(
        question=a.question,
        reference=a.reference,
        answer_a=a.answer,
        answer_b=b.answer,
        similarity_a=a.similarity,
        similarity_b=b.similarity,
        judge_a=_score(judge, a),
        judge_b=_score(judge, b),
        outcome=OUTCOMES[verdicts.outcome] if verdicts else None,
        verdicts=verdicts.sides if verdicts else None,
    ), verdicts


def _score(judge: Judge, result: CaseResult) -> float | None:
    """The judge's 1-5 score of one side's answer against the reference; None when it failed."""
    citations = [Citation(**c) for c in result.citations]
    messages = score_messages(result.question, citations, result.answer, result.reference, "sme")
    try:
        return judge.ask(messages, ScoreVerdict).score
    except JudgeFailed:
        return None


def _union(first: list[dict], second: list[dict]) -> list[Citation]:
    """Both sides' passages, each once (by chunk id), A's first: two index settings retrieve
    different passages, and the pairwise judge should see what each answer was given."""
    seen: dict[str, dict] = {}
    for citation in [*first, *second]:
        seen.setdefault(citation["chunk_id"], citation)
    return [Citation(**c) for c in seen.values()]
