"""Row lengths in the target model's tokens, and prompts trimmed to fit the trainer.

TRL's trainers cut an example at `max_length` tokens, counted on the chat template's rendering:
the prompt with the generation prompt, and prompt plus completion (see TRL's SFTTrainer). So the
counts here are of that rendering, with the target model's tokenizer and chat template (default the
packaged SmolLM2; `--tokenizer` names another, e.g. Mistral's).

Tokenizing every prompt whole costs about 1 ms per 1,000 characters (the byte-level pre-tokenizer),
more than the whole export may spend per item. But prompts are made of the same few texts again and
again (a passage is retrieved for many questions; the instructions never change), so a rendering is
counted as the chat template's own text between messages (rendered once per message layout) plus
each message line by line, with a cache of counts per line. Line ends are where byte-level
tokenizers split anyway, so for the packaged tokenizer the sum is the count of the whole text (a
test checks it); a tokenizer that merges across a line end would be counted a token or so high per
line.
"""

import re
from array import array
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.export.formats import Message, Rated, completion, prompt
from pipeline.llm.local_model import GGUF_FILE, LOCAL_MODEL_FOLDER, packaged_gguf_folder
from pipeline.prepared import prepared_folder

_CITATION = re.compile(r"\[(\d+)\]")
_SLOT = re.compile("\ue000(\\d+)\ue001")  # private-use marks where a message's content goes
_LINE_CACHE = 1 << 16  # counts of distinct lines kept: passages, questions, answers
_TEXT_CACHE = 4096  # whole message texts: answer prompts of recent questions come back (up to tens of MB)


def load_tokenizer(name: str, models_dir: Path):
    """The target model's tokenizer: `name` (a folder, or a model id the Hugging Face cache or hub
    has), or for "" the packaged SmolLM2's, taken from its prepared folder or extracted once from
    its GGUF file into `models_dir`. Each is loaded once per process."""
    return _load(name) if name else _packaged(models_dir)


@cache
def _load(name: str):
    """The fast (Rust) tokenizer class itself rather than AutoTokenizer, whose module imports torch:
    300 MB more for the export, which only counts tokens."""
    from transformers import PreTrainedTokenizerFast

    try:
        # Only what is on disk: a folder, or a model id already in the Hugging Face cache (no hub lookups).
        return PreTrainedTokenizerFast.from_pretrained(name, local_files_only=True)
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"Export not started: the tokenizer {name!r} cannot be loaded: give --tokenizer a folder holding the "
            "model's tokenizer.json and chat template, or a model id already in the Hugging Face cache."
        ) from error


def _packaged(models_dir: Path):
    """The packaged tokenizer is the same wherever it was prepared, so it is loaded once per
    process, from the models directory of the first export that needs it."""
    if not _PACKAGED:
        prepared = models_dir / LOCAL_MODEL_FOLDER
        _PACKAGED.append(_load(str(prepared if prepared.is_dir() else _packaged_tokenizer(models_dir))))
    return _PACKAGED[0]


_PACKAGED: list = []


def _packaged_tokenizer(models_dir: Path) -> Path:
    """Reading the tokenizer out of the GGUF file takes seconds, so it is saved as a folder once;
    the folder appears by an atomic rename, so its presence means it is complete."""

    def extract(staging: Path) -> None:
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(packaged_gguf_folder(), gguf_file=GGUF_FILE).save_pretrained(staging)

    return prepared_folder(models_dir / f"{LOCAL_MODEL_FOLDER}-tokenizer", extract)


class TokenCounter:
    """Counts tokens of conversations as the chat template renders them (see the module doc)."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer
        self._backend = tokenizer.backend_tokenizer
        self._layouts: dict[tuple[tuple[str, ...], bool], tuple[int, list[int]]] = {}
        self._line = lru_cache(maxsize=_LINE_CACHE)(self._count)
        # Whole message texts too: an item's prompt and answer come back in several of its rows.
        self._text = lru_cache(maxsize=_TEXT_CACHE)(self._count_lines)

    def prompt_tokens(self, messages: list[Message]) -> int:
        """Tokens of the prompt as the trainer renders it: with the generation prompt."""
        fixed, slots = self._layout(tuple(m["role"] for m in messages), generation_prompt=True)
        return fixed + self._content(messages, slots)

    def completion_tokens(self, prompt_messages: list[Message], completion: list[Message]) -> int:
        """Tokens the completion adds to its prompt (its end-of-turn marks included)."""
        roles = tuple(m["role"] for m in prompt_messages)
        fixed, slots = self._layout(roles, generation_prompt=True)
        full_fixed, full_slots = self._layout(roles + tuple(m["role"] for m in completion), generation_prompt=False)
        messages = prompt_messages + completion
        if full_slots[: len(slots)] != slots:  # a template that lays the prompt out otherwise before an answer
            return full_fixed + self._content(messages, full_slots) - self.prompt_tokens(prompt_messages)
        return full_fixed - fixed + self._content(messages, full_slots[len(slots) :])

    def _content(self, messages: list[Message], slots: list[int]) -> int:
        return sum(self._text(messages[slot]["content"]) for slot in slots)

    def _count_lines(self, text: str) -> int:
        return sum(self._line(line) for line in _lines(text))

    def _layout(self, roles: tuple[str, ...], generation_prompt: bool) -> tuple[int, list[int]]:
        """Tokens of the template's own text for these roles, and which message's content goes where."""
        layout = (roles, generation_prompt)
        if layout not in self._layouts:
            marked = [{"role": role, "content": f"\ue000{n}\ue001"} for n, role in enumerate(roles)]
            rendered = self._tokenizer.apply_chat_template(
                marked, tokenize=False, add_generation_prompt=generation_prompt
            )
            parts = _SLOT.split(rendered)
            self._layouts[layout] = (sum(self._count(part) for part in parts[::2]), [int(n) for n in parts[1::2]])
        return self._layouts[layout]

    def _count(self, text: str) -> int:
        # The batch call of one text, which skips the character offsets `encode` computes: a fifth
        # less CPU per text, the same ids.
        return len(self._backend.encode_batch_fast([text], add_special_tokens=False)[0])


def _lines(text: str) -> list[str]:
    """`text` cut where a line ends: after its last visible character, so each piece but the first
    starts with the whole run of white space that holds the line break, as the byte-level
    pre-tokenizer takes it. (A regular expression with look-arounds does this ten times slower.)"""
    if "\n" not in text:
        return [text] if text else []
    pieces, start, end = [], 0, text.find("\n")
    while end != -1:
        cut = start + len(text[start:end].rstrip())
        if cut > start:
            pieces.append(text[start:cut])
            start = cut
        end = text.find("\n", end + 1)
    return [*pieces, text[start:]] if start < len(text) else pieces


def fitted(rated: Rated, counter: TokenCounter, max_tokens: int) -> tuple[Rated, int] | None:
    """`rated` with its last-numbered passages dropped until its prompt and its longest completion
    (the answer, or the correction) fit in `max_tokens`, and how many were dropped; None when even
    the passages the completions cite (with [n]) leave no room. The completion is never cut, and
    only passages after the last cited one go, so no citation changes its number."""
    answers = [text for text in (rated.turn.answer, rated.feedback.correction) if text]
    full = rated.prompt
    longest = max((counter.completion_tokens(full, completion(text)) for text in answers), default=0)
    citations = rated.turn.citations
    needed = min(max(map(cited, answers), default=0), len(citations))
    for keep in range(len(citations), needed - 1, -1):
        turn = rated.turn if keep == len(citations) else rated.turn.model_copy(update={"citations": citations[:keep]})
        messages = full if keep == len(citations) else prompt(turn)
        if counter.prompt_tokens(messages) + longest <= max_tokens:
            return (rated, 0) if keep == len(citations) else (Rated(turn, rated.feedback), len(citations) - keep)
    return None


def cited(text: str) -> int:
    """The highest passage number `text` cites with [n]; 0 when it cites none."""
    return max((int(n) for n in _CITATION.findall(text)), default=0)


class Lengths:
    """Prompt and completion lengths of every row written, per dataset, in compact arrays."""

    def __init__(self, counter: TokenCounter) -> None:
        self._counter = counter
        self._prompts: dict[str, array] = {}
        self._completions: dict[str, array] = {}
        # The last prompt counted, its count and its completions' counts: an item's rows share them.
        self._prompt: list[Message] | None = None
        self._prompt_count = 0
        self._completion_counts: dict[str, int] = {}

    def add(self, dataset: str, row: dict[str, Any]) -> None:
        """Record a row in TRL's columns: prompt + completion, prompt + chosen/rejected, or reward's
        chosen/rejected with the prompt inside both."""
        completions = [row[c] for c in ("completion", "chosen", "rejected") if c in row]
        prompt_messages = row["prompt"] if "prompt" in row else row["chosen"][:-1]
        if prompt_messages is not self._prompt and prompt_messages != self._prompt:
            self._prompt = prompt_messages
            self._prompt_count = self._counter.prompt_tokens(prompt_messages)
            self._completion_counts = {}
        self._prompts.setdefault(dataset, array("I")).append(self._prompt_count)
        self._completions.setdefault(dataset, array("I")).extend(
            self._completion_tokens(prompt_messages, completion[-1:]) for completion in completions
        )

    def _completion_tokens(self, prompt_messages: list[Message], completion: list[Message]) -> int:
        text = completion[0]["content"]
        if text not in self._completion_counts:
            self._completion_counts[text] = self._counter.completion_tokens(prompt_messages, completion)
        return self._completion_counts[text]

    def summary(self) -> dict[str, dict[str, dict[str, int]]]:
        """{dataset: {"prompt": {"p50", "p95", "max"}, "completion": {...}}} in tokens."""
        return {
            name: {"prompt": _percentiles(self._prompts[name]), "completion": _percentiles(self._completions[name])}
            for name in self._prompts
        }


def _percentiles(values: array) -> dict[str, int]:
    import numpy as np

    data = np.frombuffer(values, dtype=np.uint32)
    p50, p95 = np.percentile(data, [50, 95], method="higher")
    return {"p50": int(p50), "p95": int(p95), "max": int(data.max())}


def kto_weights(desirable: int, undesirable: int) -> dict[str, Any]:
    """The KTO balance and the weights TRL's KTOTrainer suggests for it (from Eq. 8 of the KTO paper):
    desirable_weight * desirable / (undesirable_weight * undesirable) in [1, 4/3]. Either weight is
    set, the other left at 1, as TRL's warning says."""
    suggestion: dict[str, Any] = {"desirable": desirable, "undesirable": undesirable}
    if desirable and undesirable and desirable != undesirable:
        suggestion["desirable_weight"] = [round(undesirable / desirable, 2), round(undesirable / desirable * 4 / 3, 2)]
        ratio = desirable / undesirable
        suggestion["undesirable_weight"] = [round(ratio * 3 / 4, 2), round(ratio, 2)]
    return suggestion
