"""GRPO's reward functions, chosen in its config, each turning a completion into a number:

- `reward-model`: the sequence-classification model `plumb train reward` made: its logit is the
  reward, the conversation read as it was trained (`reward.encoder_ids`: a text longer than the
  encoder reads keeps its end), which TRL's own scoring of a model, with no truncation, cannot do;
- `judge`: the AI judge (pipeline/judge) scores the completion 1-5 against the user's correction as
  the reference when the prompt has one (the RLAIF path), reference-free otherwise; the score maps
  to (score - 3) / 2, from -1 to 1;
- `human`: the users' own 1-5 scores, for sets too small to train a reward model on (the pilot's 50
  labels): a completion earns (score - 3) / 2 of the rated answer to its prompt it is most like,
  times that likeness (cosine similarity of the packaged sentence embeddings), so resembling a
  5-rated answer or a correction (counted 5) pays, resembling a 1-rated one costs.

TRL calls a function with the prompts, the completions and the dataset's other columns as lists,
one entry per completion; a None (a judge that gave no valid verdict) is left out of the sum.
"""

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pipeline.prompts import ANSWER_REQUEST, ANSWER_REQUESTS, PROMPT_VERSION, Message
from pipeline.records import Citation, Turn

if TYPE_CHECKING:
    from datasets import Dataset

    from pipeline.embeddings import Embedder
    from pipeline.judge.judge import Judge

RewardFunction = Callable[..., list[float | None]]


def prompts_dataset(ratings: "Dataset", sft: "Dataset | None") -> "Dataset":
    """One row per distinct prompt of the `ratings` rows: `prompt`, `reference` (the user's
    correction from the `sft` rows, "" when none) and the rated answers with their scores (a
    correction counts as a 5)."""
    from datasets import Dataset

    rows: dict[str, dict[str, Any]] = {}
    for row in ratings:
        entry = rows.setdefault(
            _key(row["prompt"]), {"prompt": row["prompt"], "reference": "", "rated_answers": [], "rated_scores": []}
        )
        entry["rated_answers"].append(row["completion"][-1]["content"])
        entry["rated_scores"].append(row["score"])
    for row in sft or []:
        entry = rows.get(_key(row["prompt"]))
        if entry is not None and row["completion_source"] == "correction":
            correction = row["completion"][-1]["content"]
            entry["reference"] = correction
            entry["rated_answers"].append(correction)
            entry["rated_scores"].append(5)
    return Dataset.from_list(list(rows.values()))


def reward_model_reward(model: Any, tokenizer: Any) -> RewardFunction:
    """The trained reward model's logit for prompt + completion, read at most as long as it was trained."""
    import torch

    from pipeline.training.reward import encoder_ids

    max_length = tokenizer.model_max_length

    def reward_model(prompts: list, completions: list, **_: Any) -> list[float | None]:
        ids = [encoder_ids(tokenizer, prompt + completion, max_length)[0] for prompt, completion in zip(prompts, completions, strict=True)]
        batch = tokenizer.pad({"input_ids": ids}, return_tensors="pt")
        with torch.inference_mode():
            return model(**batch).logits[:, 0].tolist()

    return reward_model


def human_reward(embedder: "Embedder") -> RewardFunction:
    """The users' scores as the reward (see the module's docstring)."""
    import numpy as np

    def human_score(completions: list, rated_answers: list, rated_scores: list, **_: Any) -> list[float | None]:
        texts = [_text(completion) for completion in completions]
        vectors = _unit(embedder.encode(texts))
        rewards: list[float | None] = []
        for vector, answers, scores in zip(vectors, rated_answers, rated_scores, strict=True):
            likeness = _unit(embedder.encode(list(answers))) @ vector
            best = int(np.argmax(likeness))
            rewards.append((scores[best] - 3) / 2 * float(likeness[best]))
        return rewards

    return human_score


def judge_reward(judge: "Judge", concurrency: int) -> RewardFunction:
    """The AI judge's score as the reward, `concurrency` requests at a time."""
    from pipeline.judge.judge import NO_REFERENCE, JudgeFailed, Reference

    def score(prompt: list[Message], completion: list[Message], reference: str) -> float | None:
        turn = turn_for(prompt, _text(completion))
        try:
            judgement = judge.score(turn, Reference(reference, "correction") if reference else NO_REFERENCE)
        except JudgeFailed:
            return None
        return (judgement.score - 3) / 2

    def judge_score(prompts: list, completions: list, reference: list, **_: Any) -> list[float | None]:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(score, prompts, completions, reference))

    return judge_score


def turn_for(prompt: list[Message], answer: str) -> Turn:
    """The turn a prompt was built from (question, passages, history), as the judge reads one.

    The export stores the prompt as sent, not its parts, so they are read back from the answer
    prompt's own template (the version of pipeline/prompts.py ANSWER_REQUESTS whose opening the
    message has) and each passage's label from `Citation.label()`'s three forms.
    """
    *earlier, last = prompt
    content = last["content"]
    version, template = next(
        ((name, text) for name, text in ANSWER_REQUESTS.items() if content.startswith(text.split("{context}")[0])),
        (PROMPT_VERSION, ANSWER_REQUEST),
    )
    head, rest = template.split("{context}")
    between = rest.split("{question}")[0]
    context, _, question = content.removeprefix(head).rpartition(between)
    citations = [_citation(block) for block in re.split(r"\n\n(?=\[\d+\] )", context) if block.strip()]
    history = [(asked["content"], answered["content"]) for asked, answered in zip(earlier[::2], earlier[1::2], strict=True)]
    return Turn(
        session_id="grpo",
        user="grpo",
        question=question,
        condensed_question=question,
        answer=answer,
        citations=citations,
        history=history,
        generated=True,
        model_id="grpo-policy",
        prompt_version=version,
    )


_LABELLED_PAGE = re.compile(r"^(?P<source>.+) – page (?P<label>.+) \(PDF page (?P<page>\d+)\)$")
_PAGE = re.compile(r"^(?P<source>.+) – page (?P<page>\d+)$")
_SECTION = re.compile(r"^(?P<source>.+?) – (?P<section>.+)$")


def _citation(block: str) -> Citation:
    """A passage block "[n] label\\npassage" as the Citation whose label() reads the same."""
    heading, _, passage = block.partition("\n")
    label = re.sub(r"^\[\d+\] ", "", heading)
    if match := _LABELLED_PAGE.match(label):
        return Citation(source=match["source"], page=int(match["page"]), page_label=match["label"], passage=passage, score=0.0)
    if match := _PAGE.match(label):
        return Citation(source=match["source"], page=int(match["page"]), passage=passage, score=0.0)
    if match := _SECTION.match(label):
        return Citation(source=match["source"], page=1, section=match["section"], passage=passage, score=0.0)
    return Citation(source=label, page=1, passage=passage, score=0.0)


def _text(completion: list[Message] | str) -> str:
    return completion if isinstance(completion, str) else completion[-1]["content"]


def _key(prompt: list[Message]) -> str:
    return json.dumps(prompt, sort_keys=True, ensure_ascii=False)


def _unit(vectors):
    import numpy as np

    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
