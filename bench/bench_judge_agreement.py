"""The agreement panel's figures on the sample documents' evaluation set, with ratings seeded by rule.

    .venv/bin/python bench/bench_judge_agreement.py                  # the in-process demo judge
    .venv/bin/python bench/bench_judge_agreement.py --vllm-url URL   # a judge served by vLLM as 'smollm2'

Each of the evaluation set's questions (pipeline/samples.py: EVAL_QUESTIONS) gets three answers, each
with the rating a careful user would give it:

- the reference answer itself, rated 5;
- the reference cut to its first clause (before the first ", " or " with "), rated 3: a key fact
  missing (questions whose reference has one clause get no such answer);
- the reference with every digit shifted by three (120 mph -> 453 mph), rated 1: wrong figures; a
  reference without digits is replaced by a refusal ("The documents do not cover this."), also 1,
  and the unanswerable question's wrong answer invents a figure.

The judge scores every answer against the question's reference answer (as an expert-approved answer,
reference kind `sme`), with the reference as the cited passage, and compares the reference answer
with each other answer in both orders. The figures are those of the admin page's panel
(pipeline/judge/agreement.py): exact, within one level, Spearman and quadratic-weighted kappa with the
seeded ratings, and pairwise agreement on non-tied pairs; and the pairwise judge's position
consistency and bias (MT-Bench's counts: pairs whose two orders agreed, pairs where it chose the
answer shown first, or second, in both orders). Results also go to bench/results/judge_agreement.json.
"""

import argparse
import json
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.judge.agreement import agreement, pair_agreement, preferred  # noqa: E402
from pipeline.judge.judge import Judge, JudgeFailed, Reference, make_judge, position_counts  # noqa: E402
from pipeline.records import Citation, Turn  # noqa: E402
from pipeline.samples import EVAL_QUESTIONS  # noqa: E402
from pipeline.settings import get_settings  # noqa: E402

FIGURES = {"0": "3", "1": "4", "2": "5", "3": "6", "4": "7", "5": "8", "6": "9", "7": "0", "8": "1", "9": "2"}


def answers(reference: str) -> list[tuple[str, int]]:
    """(answer, seeded rating) for one question, by the rules in the module's docstring."""
    seeded = [(reference, 5)]
    partial = re.split(r", | with ", reference, maxsplit=1)[0].rstrip(".") + "."
    if partial != reference:
        seeded.append((partial, 3))
    if reference == "The documents do not say.":
        seeded.append(("The emergency generator is rated 500 kW.", 1))
    elif any(c.isdigit() for c in reference):
        seeded.append(("".join(FIGURES.get(c, c) for c in reference), 1))
    else:
        seeded.append(("The documents do not cover this.", 1))
    return seeded


def turn(question: str, source: str, page: int, reference: str, answer: str) -> Turn:
    passage = Citation(source=source or "design-criteria.pdf", page=page or 1, passage=reference, score=0.8)
    return Turn(session_id="bench", user="bench", question=question, condensed_question=question, answer=answer,
                citations=[passage], history=[], generated=True, model_id="bench", prompt_version="bench")


def measure(judge: Judge) -> dict:
    scored: list[tuple[int, float]] = []
    pairs = []
    judged = []
    failed = 0
    started = time.perf_counter()
    for question, reference, source, page, _ in EVAL_QUESTIONS:
        sme = Reference(reference, "sme")
        seeded = answers(reference)
        for answer, rating in seeded:
            try:
                scored.append((rating, judge.score(turn(question, source, page, reference, answer), sme).score))
            except JudgeFailed:
                failed += 1
        best, best_rating = seeded[0]
        citations = [turn(question, source, page, reference, best).citations[0]]
        for other, rating in seeded[1:]:
            try:
                verdicts = judge.verdicts(question, citations, best, other, reference)
            except JudgeFailed:
                failed += 1
                continue
            pairs.append((preferred(best_rating, rating), {"A": "first", "B": "second", "tie": "tie"}[verdicts.outcome]))
            judged.append(verdicts)
    return {
        "judge": judge.model_id,
        "questions": len(EVAL_QUESTIONS),
        "scores": asdict(agreement(judge.model_id, scored)),
        "pairs": asdict(pair_agreement(judge.model_id, pairs)),
        "orders": position_counts(judged),
        "failed": failed,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vllm-url", help="Judge with this running server (serving the model as 'smollm2').")
    args = parser.parse_args()
    settings = get_settings()
    if args.vllm_url:
        settings = settings.model_copy(
            update={"judge_backend": "openai", "judge_base_url": args.vllm_url, "judge_model": "smollm2"}
        )
    result = measure(make_judge(settings))
    scores, pairs = result["scores"], result["pairs"]
    print(f"judge: {result['judge']} ({result['seconds']} s, {result['failed']} failed)")
    print(f"scores vs seeded ratings, {scores['turns']} answers: exact {scores['exact']}, within one "
          f"{scores['within_one']}, Spearman {scores['spearman']}, quadratic kappa {scores['kappa_quadratic']}")
    print("confusion (rows seeded rating 1-5, columns judge level 1-5):")
    for rating, row in enumerate(scores["confusion"], start=1):
        print(f"  {rating}: " + " ".join(f"{n:>3}" for n in row))
    print(f"pairs: {pairs['pairs']}, non-tied {pairs['non_tied']}, agreement {pairs['agreement']}, "
          f"judge ties {pairs['judge_ties']}")
    orders = result["orders"]
    print(f"both orders agreed on {orders['consistent']} of {pairs['pairs']} pairs; the answer shown first chosen "
          f"in both orders {orders['first_position']}, the one shown second {orders['second_position']}")
    out = ROOT / "bench" / "results" / "judge_agreement.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
