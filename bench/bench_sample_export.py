"""The sample documents' questions answered, rated by simulated users, exported: the datasets' sizes and
their prompt and completion lengths in the target model's tokens.

    .venv/bin/python bench/bench_sample_export.py [--max-new-tokens 128] [--max-tokens N]

The sample documents are ingested into a fresh embedded index; the packaged SmolLM2 answers every
evaluation question of `plumb samples`, each conversation two questions long so the second is a
follow-up answered with the first as history. A simulated user rates each answer by its semantic
similarity (cosine of all-MiniLM-L6-v2 embeddings) to the reference answer: >= 0.80 -> 5, >= 0.65 -> 4,
>= 0.50 -> 3, >= 0.35 -> 2, else 1, and corrects every answer rated 3 or lower with the reference
answer. Turns and feedback are stored in an in-memory DynamoDB Local and exported with `plumb export
--mode all`. Prints the manifest's counts, exclusions and length table; writes bench/results/sample_export.json.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.chain import RagChain  # noqa: E402
from pipeline.documents import find_files  # noqa: E402
from pipeline.embeddings import Embedder, default_model_path  # noqa: E402
from pipeline.export.job import ExportConfig, main as export_main  # noqa: E402
from pipeline.feedback.dynamo import DynamoFeedbackStore, create_tables  # noqa: E402
from pipeline.feedback.local_dynamo import LocalDynamo  # noqa: E402
from pipeline.index.embedded import EmbeddedIndex  # noqa: E402
from pipeline.ingest import ingest_files, make_splitter  # noqa: E402
from pipeline.llm.local_chat import LocalChatModel  # noqa: E402
from pipeline.llm.local_model import LOCAL_MODEL_NAME, prepare_local_model  # noqa: E402
from pipeline.records import Feedback, Turn  # noqa: E402
from pipeline.retriever import IndexRetriever  # noqa: E402
from pipeline.samples import EVAL_QUESTIONS, write_samples  # noqa: E402
from pipeline.settings import Settings  # noqa: E402

THRESHOLDS = ((0.80, 5), (0.65, 4), (0.50, 3), (0.35, 2))


def simulated_rating(similarity: float) -> int:
    """The simulated user's verdict: the first threshold the answer's similarity reaches."""
    return next((rating for floor, rating in THRESHOLDS if similarity >= floor), 1)


def answer_all(folder: Path, max_new_tokens: int) -> list[tuple[Turn, str]]:
    """Every evaluation question answered, in conversations of two; (turn, reference) each."""
    embedder = Embedder(default_model_path())
    index = EmbeddedIndex(folder / "index", embedder.dimension)
    ingest_files(find_files(write_samples(folder / "samples")), index, embedder, make_splitter(embedder, 200, 40))
    llm = LocalChatModel.load(
        prepare_local_model(folder / "models"), model_name=LOCAL_MODEL_NAME, max_new_tokens=max_new_tokens,
        temperature=0.0,
    )
    chain = RagChain(llm, IndexRetriever(index=index, embedder=embedder, k=5), LOCAL_MODEL_NAME, 0.3)
    answered = []
    for start in range(0, len(EVAL_QUESTIONS), 2):
        session, history = f"sample-{start // 2}", []
        for question, reference, *_ in EVAL_QUESTIONS[start : start + 2]:
            answer = chain.invoke(question, history)
            turn = Turn(session_id=session, user=f"user-{start // 2}", **answer.model_dump())
            history.append((question, answer.answer))
            answered.append((turn, reference))
    index.close()
    return answered


def feedback_for(turn: Turn, reference: str, embedder: Embedder) -> Feedback:
    vectors = embedder.encode([turn.answer, reference])
    rating = simulated_rating(float(np.dot(vectors[0], vectors[1])))
    return Feedback(
        session_id=turn.session_id,
        turn_id=turn.turn_id,
        user=turn.user,
        rating=rating,
        correction=reference if rating <= 3 else None,
    )


def run(max_new_tokens: int, max_tokens: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch, LocalDynamo() as local:
        folder = Path(scratch)
        started = time.perf_counter()
        answered = answer_all(folder, max_new_tokens)
        answer_seconds = time.perf_counter() - started
        settings = Settings(dynamodb_endpoint=local.endpoint, table_prefix="sample-", data_dir=folder / "data")
        create_tables(settings)
        store, embedder = DynamoFeedbackStore(settings), Embedder(default_model_path())
        for turn, reference in answered:
            store.save_turn(turn)
            store.save_feedback(feedback_for(turn, reference, embedder))
        config = ExportConfig(out=str(folder / "exports"), mode="all", max_tokens=max_tokens)
        manifest = export_main(config, settings).manifest
    return {"turns": len(answered), "answer_seconds": round(answer_seconds, 1), "manifest": manifest}


def report(result: dict) -> None:
    manifest = result["manifest"]
    print(f"{result['turns']} turns answered in {result['answer_seconds']} s; {manifest['items']} feedback items exported")
    print("rows:", json.dumps(manifest["counts"]))
    print("left out:", json.dumps(manifest.get("excluded", {})))
    tokens = manifest["tokens"]
    print(f"lengths in tokens of {tokens['tokenizer']} (max_tokens {tokens['max_tokens']}):")
    print("\n| dataset | field | p50 | p95 | max |\n|---|---|---|---|---|")
    for dataset, fields in tokens["lengths"].items():
        for name, stats in fields.items():
            print(f"| {dataset} | {name} | {stats['p50']} | {stats['p95']} | {stats['max']} |")
    print(f"\nrows trimmed {json.dumps(tokens['rows_trimmed'])}, passages dropped {tokens['passages_dropped']}, "
          f"rows too long {json.dumps(tokens['rows_too_long'])}; KTO balance {json.dumps(manifest['kto_balance'])}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--max-tokens", type=int, default=0, help="Fit rows to this many tokens; 0: no limit.")
    args = parser.parse_args()
    outcome = run(args.max_new_tokens, args.max_tokens)
    report(outcome)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "sample_export.json").write_text(json.dumps(outcome, indent=2, default=str), encoding="utf-8")
