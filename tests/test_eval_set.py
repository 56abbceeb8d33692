"""`plumb eval build-set`: cases from an export's validation split, with the cited source and page,
and a real check that no training question enters the set."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import PlumbError
from pipeline.evaluation.build_set import build_eval_set, overlapping
from pipeline.evaluation.evaluate import EvalCase, load_cases
from pipeline.export.writers import sha256_of
from pipeline.prompts import answer_messages
from pipeline.records import Citation

SLOPE = Citation(source="design-criteria.pdf", page=21, page_label="19", passage="Ramps: slope 1:12 at most.", score=0.8, chunk_id="a")
CURING = Citation(
    source="specs/concrete-spec.md", page=1, section="Part 3 - Execution of the concrete works and their inspection › 3.2 Curing",
    passage="Wet cure for 14 days.", score=0.7, chunk_id="b",
)
WIND = Citation(source="design-criteria.pdf", page=3, passage="Basic wind speed 120 mph.\n[3] a line of the passage, not a header", score=0.9, chunk_id="c")


def row(question: str, completion: str, citations: list[Citation], source: str = "correction", history=()) -> dict:
    return {
        "prompt": answer_messages(list(history), citations, question),
        "completion": [{"role": "assistant", "content": completion}],
        "completion_source": source,
        "turn_id": "t",
    }


def write_export(folder: Path, train: list[dict], validation: list[dict]) -> Path:
    """An export folder as `plumb export` writes it: sft/{train,validation}.jsonl and the manifest
    listing each file's sha256."""
    files = {}
    for split, rows in (("train", train), ("validation", validation)):
        path = folder / "sft" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        files[f"sft/{split}.jsonl"] = {"rows": len(rows), "bytes": path.stat().st_size, "sha256": sha256_of(path)}
    (folder / "manifest.json").write_text(json.dumps({"export_id": folder.name, "files": files}), encoding="utf-8")
    return folder


VALIDATION = [
    row("What is the maximum ramp slope?", "1:12 at most [2].", [WIND, SLOPE]),
    row("How long is concrete wet cured?", "14 days [1].", [CURING]),
    row("How long is concrete wet cured?", "Fourteen days [1].", [CURING]),  # asked again
    row("What is the basic wind speed?", "120 mph [1].", [WIND], source="model"),  # not corrected
    row("And for the roof?", "Also 120 mph [1].", [WIND], history=[("What is the wind speed?", "120 mph.")]),
    row("Who signs the submittals?", "The engineer of record.", [WIND]),  # cites no passage
]


def test_cases_take_the_question_the_correction_and_the_place_of_the_first_passage_it_cites(tmp_path, embedder):
    export = write_export(tmp_path / "e1", [row("How many bolts per flange?", "Eight [1].", [WIND])], VALIDATION)
    built = build_eval_set([export], embedder)
    assert built.cases == [
        # the PDF's printed label 19 is its 21st page: the case gives the page's place in the file
        EvalCase(question="What is the maximum ramp slope?", reference="1:12 at most [2].", source="design-criteria.pdf", page=21),
        # a section path shortened with "…" in the prompt gives its inner part, which `within` matches
        EvalCase(question="How long is concrete wet cured?", reference="14 days [1].", source="specs/concrete-spec.md",
                 section="3.2 Curing"),
    ]
    assert built.left_out == {
        "question already taken": 1, "answer not corrected": 1, "follow-up question": 1, "correction cites no passage": 1,
    }
    assert built.train_questions == 1


def test_a_validation_question_that_is_a_training_question_refuses_the_set(tmp_path, embedder):
    trained = "what is the MAXIMUM ramp slope"  # equal once normalised
    export = write_export(tmp_path / "e1", [row(trained, "1:12 [1].", [SLOPE])], VALIDATION[:1])
    with pytest.raises(PlumbError, match=r"1 validation questions are training questions too .*no eval set was written"):
        build_eval_set([export], embedder)


def test_the_overlap_check_applies_the_exports_rule_for_questions_with_numbers(embedder):
    trained = ["What's the max slope of ramp R2?", "What is the width of ramp R3?"]
    # same numbers, near-identical wording: one group; same numbers, another question: apart
    assert overlapping(["What is the maximum slope of ramp R2?"], trained, embedder) == [
        ("What is the maximum slope of ramp R2?", "What's the max slope of ramp R2?")
    ]
    assert overlapping(["Who inspects ramp R2?", "What is the max slope of ramp R4?"], trained, embedder) == []


def test_a_training_question_of_a_second_export_is_checked_too(tmp_path, embedder):
    first = write_export(tmp_path / "e1", [], VALIDATION[:1])
    second = write_export(tmp_path / "e2", [row("What is the maximum ramp slope?", "1:12 [1].", [SLOPE])], [])
    with pytest.raises(PlumbError, match="training questions too"):
        build_eval_set([first, second], embedder)


def test_a_file_changed_since_the_export_or_a_folder_without_manifest_is_refused(tmp_path, embedder):
    export = write_export(tmp_path / "e1", [], VALIDATION)
    with (export / "sft" / "validation.jsonl").open("a") as handle:
        handle.write("{}\n")
    with pytest.raises(PlumbError, match="differs from the file the export's manifest lists"):
        build_eval_set([export], embedder)
    with pytest.raises(PlumbError, match="is not an export: it has no readable manifest.json"):
        build_eval_set([tmp_path], embedder)


def test_cli_writes_an_eval_file_that_plumb_eval_reads(tmp_path):
    write_export(tmp_path / "e1", [row("How many bolts per flange?", "Eight [1].", [WIND])], VALIDATION)
    result = CliRunner().invoke(app, ["eval", "build-set", "e1", "--out", "set.jsonl"])
    assert result.exit_code == 0, result.output
    assert "Wrote 2 questions to set.jsonl, none of them among the 1 training questions" in result.output
    assert [case.source for case in load_cases(tmp_path / "set.jsonl")] == ["design-criteria.pdf", "specs/concrete-spec.md"]
    result = CliRunner().invoke(app, ["eval", "build-set", "nowhere"])
    assert result.exit_code == 1 and "nowhere is not an export" in result.output and "Traceback" not in result.output
