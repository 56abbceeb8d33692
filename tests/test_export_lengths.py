"""Row lengths in the target model's tokens and prompts trimmed to fit, with the packaged SmolLM2."""

import json
from pathlib import Path

import pytest

from pipeline.export import formats
from pipeline.export.formats import Rated
from pipeline.export.job import ExportConfig, main
from pipeline.export.lengths import TokenCounter, fitted, kto_weights, load_tokenizer
from pipeline.feedback.dynamo import DynamoFeedbackStore
from pipeline.records import Citation
from pipeline.settings import get_settings
from tests.export_factory import SEEDS, Seed, make_pair, store_seeds

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def passage(n: int, chars: int = 1000) -> Citation:
    """Real prose with indented lists, blank lines and trailing spaces: what line-wise counting must get right."""
    start = (n * 1733) % (len(README) - chars)
    return Citation(source=f"doc-{n}.pdf", page=n, passage=README[start : start + chars] + "  \n  end", score=0.5)


def long_pair(answer: str = "Use passages one and two [1][2].", correction: str | None = None, user: str = "uma"):
    turn, feedback = make_pair(Seed(user, "What do the notes require?", answer, 5, SEEDS[0].citation))
    turn = turn.model_copy(update={"citations": [passage(n) for n in range(1, 6)]})
    return turn, feedback.model_copy(update={"correction": correction})


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return load_tokenizer("", tmp_path_factory.mktemp("models"))


def exact(tokenizer, messages: list[dict], generation_prompt: bool) -> int:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt)
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


def test_counts_equal_the_tokenizer_on_whole_renderings(tokenizer):
    counter = TokenCounter(tokenizer)
    turns = [make_pair(seed)[0] for seed in SEEDS] + [long_pair()[0]]
    for turn in turns:
        prompt = formats.prompt(turn)
        completion = formats.completion(turn.answer + "\n\n  - " + README[:300])
        assert counter.prompt_tokens(prompt) == exact(tokenizer, prompt, True)
        assert counter.completion_tokens(prompt, completion) == exact(
            tokenizer, prompt + completion, False
        ) - exact(tokenizer, prompt, True)


def test_the_last_uncited_passages_go_until_the_row_fits(tokenizer):
    counter = TokenCounter(tokenizer)
    rated = Rated(*long_pair())
    full = counter.prompt_tokens(rated.prompt)
    answer = counter.completion_tokens(rated.prompt, formats.completion(rated.turn.answer))
    assert fitted(rated, counter, full + answer) == (rated, 0)

    trimmed, dropped = fitted(rated, counter, full + answer - 1)
    assert dropped == 1 and trimmed.turn.citations == rated.turn.citations[:4]
    assert trimmed.prompt == formats.prompt(rated.turn.model_copy(update={"citations": rated.turn.citations[:4]}))

    two = formats.prompt(rated.turn.model_copy(update={"citations": rated.turn.citations[:2]}))
    trimmed, dropped = fitted(rated, counter, counter.prompt_tokens(two) + answer)
    assert dropped == 3 and len(trimmed.turn.citations) == 2
    assert fitted(rated, counter, counter.prompt_tokens(two) + answer - 1) is None, "[2] is cited: it stays"


def test_the_longest_completion_decides(tokenizer):
    counter = TokenCounter(tokenizer)
    short, long = Rated(*long_pair()), Rated(*long_pair(correction="See [1]. " + README[:2000]))
    limit = counter.prompt_tokens(short.prompt) + 200
    assert fitted(short, counter, limit)[1] == 0
    _, dropped = fitted(long, counter, limit + 300)
    assert dropped > 0


def test_a_tokenizer_that_cannot_be_loaded_is_named(tmp_path):
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="no-such-tokenizer"):
        load_tokenizer(str(tmp_path / "no-such-tokenizer"), tmp_path)


def test_kto_weights_follow_trl():
    assert kto_weights(300, 100) == {
        "desirable": 300,
        "undesirable": 100,
        "desirable_weight": [0.33, 0.44],
        "undesirable_weight": [2.25, 3.0],
    }
    assert kto_weights(10, 10) == {"desirable": 10, "undesirable": 10}


def test_export_fits_rows_to_max_tokens_and_reports_lengths(dynamo_settings, tokenizer, tmp_path):
    store = DynamoFeedbackStore(dynamo_settings)
    store_seeds(store)
    for pair in (long_pair(user="uma"), long_pair(answer="All five [5]. " + README[:3000], user="vic")):
        store.save_turn(pair[0])
        store.save_feedback(pair[1])
    limit = 1024
    result = main(
        ExportConfig(out=str(tmp_path / "out"), mode="all", validation_fraction=0.0, max_tokens=limit), get_settings()
    )
    export, manifest = Path(result.location), result.manifest
    rows = [json.loads(line) for line in (export / "sft" / "train.jsonl").read_text().splitlines()]
    for row in rows:
        assert exact(tokenizer, row["prompt"] + row["completion"], False) <= limit
    [trimmed] = [row for row in rows if row["passages_dropped"]]
    assert trimmed["completion"][0]["content"] == "Use passages one and two [1][2]."
    assert "[1] doc-1.pdf" in trimmed["prompt"][0]["content"] and "[5] doc-5.pdf" not in trimmed["prompt"][0]["content"]

    tokens = manifest["tokens"]
    assert tokens["max_tokens"] == limit and tokens["rows_trimmed"]["sft"] == 1
    assert tokens["passages_dropped"] == trimmed["passages_dropped"]
    assert tokens["rows_too_long"] == {"sft": 1, "kto": 1, "ratings": 1}, "vic's answer cites [5] and cannot fit"
    sft = tokens["lengths"]["sft"]
    assert sft["prompt"]["p50"] <= sft["prompt"]["p95"] <= sft["prompt"]["max"] <= limit
    # alice, carol (the same answer, her own verdict), frank, uma and bob's correction; bob and erin
    assert manifest["kto_balance"]["desirable"] == 5 and manifest["kto_balance"]["undesirable"] == 2
    card = (export / "README.md").read_text()
    assert "| sft |" in card and "passages_dropped" in card and "desirable_weight" in card


def test_rating_pairs_fitted_to_max_tokens_count_what_they_lost(dynamo_settings, tmp_path):
    """uma (5) over wes (1) fits with the passages both cite; uma over vic (1, cites [5]) cannot fit:
    counted as too long, not missing."""
    store = DynamoFeedbackStore(dynamo_settings)
    uma = long_pair(user="uma")
    wes = long_pair(answer="Only the first [1].", user="wes")
    vic = long_pair(answer="All five [5]. " + README[:3000], user="vic")
    for turn, feedback in (uma, (wes[0], wes[1].model_copy(update={"rating": 1})), (vic[0], vic[1].model_copy(update={"rating": 1}))):
        store.save_turn(turn)
        store.save_feedback(feedback)
    result = main(
        ExportConfig(out=str(tmp_path / "out"), mode="all", validation_fraction=0.0, max_tokens=1024), get_settings()
    )
    export, tokens = Path(result.location), result.manifest["tokens"]
    for name in ("preference", "reward"):
        [row] = [json.loads(line) for line in (export / name / "train.jsonl").read_text().splitlines()]
        assert (row["pair"], row["chosen_user"], row["rejected_user"]) == ("rating", "uma", "wes")
        text = json.dumps(row["prompt"] if name == "preference" else row["chosen"][:-1])
        kept = sum(f"[{n}] doc-{n}.pdf" in text for n in range(1, 6))
        assert 2 <= kept < 5 and row["passages_dropped"] == 5 - kept
        assert tokens["rows_trimmed"][name] == 1
        assert tokens["rows_too_long"][name] == 1, "uma over vic"


def test_a_limit_no_row_fits_publishes_nothing_and_keeps_the_watermark(dynamo_settings, tmp_path):
    from pipeline.export.errors import ExportFailed
    from pipeline.export.watermark import Watermarks

    store_seeds(DynamoFeedbackStore(dynamo_settings))
    out = tmp_path / "out"
    with pytest.raises(ExportFailed, match=r"^Nothing was exported: none of the \d+ rows fits --max-tokens 50"):
        main(ExportConfig(out=str(out), settle_seconds=0, max_tokens=50), get_settings())
    assert not any(out.iterdir())
    assert not Watermarks(dynamo_settings)._table.count()
