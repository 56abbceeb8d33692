"""Model versions: the registry in a local MLflow store, the live record in DynamoDB Local, and the
promoted adapter answering through the in-process model, with every turn naming the version."""

import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ConfigError, ModelUnavailable, PlumbError
from pipeline.models import register_version
from pipeline.models.errors import BadVersionFolder, LiveConflict, UnknownVersion
from pipeline.models.live import LiveRecord, LiveVersions, LiveWatch
from pipeline.models.promotion import promote, rollback
from pipeline.models.registry import get_version, list_versions
from pipeline.models.serving import LiveChain, load_version, make_live_chain, version_model_id
from pipeline.settings import Settings, get_settings
from tests.version_factory import (  # noqa: F401 - fixtures
    empty_mlflow_db,
    manifest,
    mlflow_store,
    tiny_adapter,
    version_folder,
)

BASE_ID = "SmolLM2-135M-Instruct"


@pytest.fixture
def versions_root(dynamo_settings: Settings, mlflow_store: Path) -> Path:
    return dynamo_settings.data_dir / "model-versions"


@pytest.fixture
def chat_version(versions_root: Path, tiny_adapter: Path):
    """Make a chat version folder; the registry numbers them in the order registered."""
    return lambda **overrides: version_folder(versions_root, tiny_adapter, **overrides)


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


# --- the registry -------------------------------------------------------------------------------


def test_versions_are_numbered_per_registered_model_with_lineage_and_metrics(dynamo_settings, chat_version, versions_root):
    first = chat_version()
    second = chat_version(job="dpo", export_id="export-2", metrics={"rewards/accuracies": 0.75})
    reward = version_folder(versions_root, None, job="reward")

    names = [register_version(folder, dynamo_settings) for folder in (first, second, reward)]

    assert names == ["plumb-chat/1", "plumb-chat/2", "plumb-reward/1"]
    assert dynamo_settings.mlflow_uri == f"sqlite:///{(dynamo_settings.data_dir / 'mlflow.db').resolve()}"
    listed = {version.name: version for version in list_versions(dynamo_settings)}
    assert list(listed) == ["plumb-chat/2", "plumb-chat/1", "plumb-reward/1"]
    dpo = listed["plumb-chat/2"]
    assert (dpo.job, dpo.export_id, dpo.base_model, dpo.folder) == ("dpo", "export-2", "smollm2-135m-instruct", second)
    assert dpo.metrics == {"rewards/accuracies": 0.75}
    assert dpo.config == manifest()["config"] and dpo.is_chat and not listed["plumb-reward/1"].is_chat


def test_the_mlflow_version_carries_the_lineage_as_tags(dynamo_settings, chat_version):
    from mlflow import MlflowClient

    register_version(chat_version(), dynamo_settings)

    uri = dynamo_settings.mlflow_uri
    stored = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version("plumb-chat", "1")
    assert stored.run_id == "0123456789abcdef"
    assert stored.tags["export_id"] == "export-20261130-120000" and stored.tags["job"] == "sft"
    assert json.loads(stored.tags["data_hashes"]) == {"train": "a" * 64, "validation": "b" * 64}
    assert json.loads(stored.tags["metrics"]) == {"train_loss": 1.25, "eval_loss": 1.5}


def test_a_version_trained_without_validation_rows_registers(dynamo_settings, chat_version):
    """`plumb export --validation-fraction 0` writes no validation file: the trainer records its hash
    as None, and the version must still register (the loop benchmark trains on such exports)."""
    from mlflow import MlflowClient

    register_version(chat_version(data_hashes={"train": "a" * 64, "validation": None}), dynamo_settings)

    uri = dynamo_settings.mlflow_uri
    stored = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version("plumb-chat", "1")
    assert json.loads(stored.tags["data_hashes"]) == {"train": "a" * 64, "validation": None}


def test_registering_a_folder_again_gives_its_name_back(dynamo_settings, chat_version):
    folder = chat_version()
    assert register_version(folder, dynamo_settings) == "plumb-chat/1"
    assert register_version(folder, dynamo_settings) == "plumb-chat/1"
    assert [version.name for version in list_versions(dynamo_settings)] == ["plumb-chat/1"]


def test_the_tracking_uri_setting_names_the_store(tmp_path, monkeypatch, chat_version):
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("PLUMB_MLFLOW_TRACKING_URI", uri)
    get_settings.cache_clear()

    assert get_settings().mlflow_uri == uri
    register_version(chat_version(), get_settings())
    assert [version.name for version in list_versions(get_settings())] == ["plumb-chat/1"]
    monkeypatch.delenv("PLUMB_MLFLOW_TRACKING_URI")
    get_settings.cache_clear()
    assert list_versions(get_settings()) == [], "the default store holds nothing"


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda f: (f / "plumb_model.json").unlink(), "has no plumb_model.json: it is not a trained version folder"),
        (lambda f: (f / "plumb_model.json").write_text("{not json"), "plumb_model.json is not valid JSON"),
        (lambda f: (f / "plumb_model.json").write_text("[]"), "holds list, not a JSON object"),
        (lambda f: _rewrite(f, schema="plumb-model-v9"), "has schema 'plumb-model-v9'; this Plumbline reads 'plumb-model-v1' only"),
        (lambda f: _rewrite(f, job="ppo"), "job input should be 'sft', 'dpo', 'kto', 'grpo' or 'reward'"),
        (lambda f: _rewrite(f, metrics={"loss": "low"}), "metrics.loss input should be a valid number"),
        (lambda f: _rewrite(f, export_id=None), "export_id input should be a valid string"),
        (lambda f: (f / "adapter" / "adapter_config.json").unlink(), "is a sft version without adapter/adapter_config.json"),
    ],
)
def test_a_folder_that_is_not_a_version_is_refused_in_one_sentence(dynamo_settings, chat_version, spoil, message):
    folder = chat_version()
    spoil(folder)

    with pytest.raises(BadVersionFolder, match=message):
        register_version(folder, dynamo_settings)
    result = cli("model", "register", str(folder))
    assert result.exit_code == 1 and message.split(":")[0] in " ".join(result.output.split())
    assert result.output.startswith("Error:") and "Traceback" not in result.output
    assert list_versions(dynamo_settings) == [], "nothing is registered"


def _rewrite(folder: Path, **changes) -> None:
    data = json.loads((folder / "plumb_model.json").read_text())
    data.update(changes)
    (folder / "plumb_model.json").write_text(json.dumps(data))


def test_a_missing_folder_is_refused(dynamo_settings, tmp_path):
    with pytest.raises(BadVersionFolder, match=f"{tmp_path / 'nowhere'} is not a folder"):
        register_version(tmp_path / "nowhere", dynamo_settings)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("plumb-chat/9", "No version plumb-chat/9 is registered in sqlite:///.*`plumb model list` shows those that are"),
        ("chat-3", "'chat-3' is not a version name: versions are named like 'plumb-chat/3'"),
        ("plumb-chat/0", "'plumb-chat/0' is not a version name"),
    ],
)
def test_an_unknown_version_is_refused(dynamo_settings, chat_version, name, message):
    register_version(chat_version(), dynamo_settings)

    with pytest.raises(UnknownVersion, match=message):
        get_version(name, dynamo_settings)
    result = cli("model", "promote", name)
    assert result.exit_code == 1 and result.output.startswith("Error:") and "Traceback" not in result.output
    assert LiveVersions(dynamo_settings).read() == LiveRecord(None, [])


def test_a_reward_model_cannot_be_promoted(dynamo_settings, versions_root):
    register_version(version_folder(versions_root, None, job="reward"), dynamo_settings)

    with pytest.raises(UnknownVersion, match="plumb-reward/1 is a reward model; only chat versions"):
        promote("plumb-reward/1", dynamo_settings)


# --- the live record ----------------------------------------------------------------------------


@pytest.fixture
def two_versions(dynamo_settings, chat_version, prepared_models) -> tuple[str, str]:
    return register_version(chat_version(), dynamo_settings), register_version(chat_version(), dynamo_settings)


def test_promote_and_rollback_walk_the_live_record_in_dynamodb(dynamo_settings, two_versions, dynamo_items):
    first, second = two_versions
    store = LiveVersions(dynamo_settings)

    assert promote(first, dynamo_settings).live.version == first
    record = promote(second, dynamo_settings)
    assert (record.live.version, [v.version for v in record.previous]) == (second, [first])
    assert record.live.adapter == str(get_version(second, dynamo_settings).adapter)
    (item,) = dynamo_items("models")
    assert item["name"] == {"S": "plumb-chat"} and item["live"]["M"]["version"] == {"S": second}

    assert rollback(dynamo_settings).live.version == first
    assert rollback(dynamo_settings).live is None
    assert store.read() == LiveRecord(None, [])
    with pytest.raises(LiveConflict, match="The base model is live: plumb-chat has no promoted version to roll back"):
        rollback(dynamo_settings)


def test_promoting_the_live_version_again_is_refused(dynamo_settings):
    LiveVersions(dynamo_settings).promote("plumb-chat/1", "/versions/1/adapter", "base")
    with pytest.raises(LiveConflict, match="plumb-chat/1 is already live"):
        LiveVersions(dynamo_settings).promote("plumb-chat/1", "/versions/1/adapter", "base")


def test_the_cli_promotes_lists_and_rolls_back(dynamo_settings, two_versions):
    first, second = two_versions
    LiveVersions(dynamo_settings).promote(first, "/versions/1/adapter", "base")

    assert "plumb-chat/2 is live (it replaces plumb-chat/1)." in cli("model", "promote", second).output
    listed = cli("model", "list")
    assert listed.exit_code == 0
    assert listed.output.startswith("Live: plumb-chat/2\nplumb-chat/2 (live) · sft · created 2026-11-30T12:00:00+00:00")
    assert "export export-20261130-120000 · base smollm2-135m-instruct" in listed.output
    assert "eval_loss 1.5, train_loss 1.25" in listed.output
    LiveVersions(dynamo_settings).rollback()
    assert "the base model is live again." in cli("model", "rollback").output


def test_an_adapter_that_does_not_fit_the_model_is_not_promoted(dynamo_settings, chat_version, prepared_models):
    folder = chat_version()
    config = json.loads((folder / "adapter" / "adapter_config.json").read_text())
    (folder / "adapter" / "adapter_config.json").write_text(json.dumps({**config, "target_modules": ["no_such_layer"]}))
    name = register_version(folder, dynamo_settings)

    with pytest.raises(ModelUnavailable, match=f"The adapter of {name} at .* does not fit the packaged model"):
        promote(name, dynamo_settings)
    assert LiveVersions(dynamo_settings).read().live is None


def test_a_version_whose_folder_is_gone_is_not_promoted(dynamo_settings, chat_version, prepared_models):
    import shutil

    folder = chat_version()
    name = register_version(folder, dynamo_settings)
    shutil.rmtree(folder / "adapter")

    with pytest.raises(ModelUnavailable, match=f"The adapter of {name} is not at {folder / 'adapter'} on this machine"):
        promote(name, dynamo_settings)


def test_of_concurrent_promotes_each_wins_or_is_told_and_none_is_lost(dynamo_settings):
    versions = [f"plumb-chat/{n}" for n in range(1, 9)]
    won, told = [], []
    start = threading.Barrier(len(versions))

    def promote_one(version: str) -> None:
        store = LiveVersions(dynamo_settings)
        start.wait()
        try:
            store.promote(version, f"/versions/{version}", "base")
            won.append(version)
        except LiveConflict as error:
            assert "changed while this change was being made" in str(error)
            told.append(version)

    threads = [threading.Thread(target=promote_one, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    record = LiveVersions(dynamo_settings).read()
    assert sorted(won + told) == sorted(versions) and won
    assert sorted([record.live.version, *(v.version for v in record.previous)]) == sorted(won)


def test_a_missing_table_is_a_clear_error(dynamo_local, monkeypatch):
    monkeypatch.setenv("PLUMB_DYNAMODB_ENDPOINT", dynamo_local.endpoint)
    monkeypatch.setenv("PLUMB_TABLE_PREFIX", "never-created-")
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match="never-created-models at .* does not exist: run `plumb db init`"):
        LiveVersions(get_settings()).read()


def test_the_watch_reads_once_per_interval_and_keeps_the_last_record_when_the_store_fails():
    now = [0.0]
    record = LiveRecord(None, [])
    reads = []

    def read() -> LiveRecord:
        reads.append(now[0])
        if isinstance(record, Exception):
            raise record
        return record

    watch = LiveWatch(read, ttl_s=10, clock=lambda: now[0])
    assert watch.current() is None and watch.current() is None and reads == [0.0]
    from datetime import UTC, datetime

    from pipeline.models.live import LiveVersion

    live = LiveVersion("plumb-chat/1", "/a", "base", datetime.now(UTC))
    record = LiveRecord(live, [])
    now[0] = 9.9
    assert watch.current() is None
    now[0] = 10.0
    assert watch.current() == live and reads == [0.0, 10.0]
    record = PlumbError("DynamoDB is down")
    now[0] = 20.0
    assert watch.current() == live, "a failed read keeps the version last read"
    assert watch.current() == live and reads == [0.0, 10.0, 20.0], "and is not retried before the interval"


# --- answering with the live version ------------------------------------------------------------


@pytest.fixture
def greedy(dynamo_settings, monkeypatch) -> Settings:
    """Short greedy answers, so the base model's and the version's can be compared."""
    monkeypatch.setenv("PLUMB_TEMPERATURE", "0")
    monkeypatch.setenv("PLUMB_MAX_NEW_TOKENS", "24")
    get_settings.cache_clear()
    return get_settings()


def live_chain(settings: Settings, base_llm, ttl_s: float = 0) -> LiveChain:
    from tests.test_prompt_provenance import FixedRetriever

    return LiveChain(
        base_llm,
        FixedRetriever(),
        BASE_ID,
        0.3,
        LiveWatch(LiveVersions(settings).read, ttl_s=ttl_s),
        lambda live: (load_version(live, settings), version_model_id(live.version, settings)),
    )


def test_a_promoted_version_answers_in_process_without_a_restart_and_the_turn_names_it(
    greedy, chat_version, prepared_models, local_llm, dynamo_items
):
    from pipeline.feedback.dynamo import DynamoFeedbackStore
    from pipeline.records import Turn

    chain = live_chain(greedy, local_llm)
    base = chain.invoke("What is code 2?")
    name = register_version(chat_version(), greedy)

    promote(name, greedy)
    tuned = chain.invoke("What is code 2?")
    rollback(greedy)
    again = chain.invoke("What is code 2?")

    assert base.model_id == again.model_id == BASE_ID
    assert tuned.model_id == f"{name} on {BASE_ID}" == "plumb-chat/1 on SmolLM2-135M-Instruct"
    assert tuned.answer != base.answer, "the adapter's weights change the answer"
    assert again.answer == base.answer, "the base model was left as it was"
    DynamoFeedbackStore(greedy).save_turn(Turn(session_id="s-1", user="alice", **tuned.model_dump()))
    assert [item["model_id"]["S"] for item in dynamo_items("turns")] == ["plumb-chat/1 on SmolLM2-135M-Instruct"]


def test_a_pinned_version_answers_whatever_is_live_and_base_pins_the_base_model(
    greedy, chat_version, prepared_models, local_llm, monkeypatch
):
    """PLUMB_MODEL_VERSION: what `plumb eval compare --a MODEL_VERSION=base --b MODEL_VERSION=...` uses."""
    from tests.test_prompt_provenance import FixedRetriever

    name = register_version(chat_version(), greedy)
    promote(name, greedy)
    pinned = {
        version: make_live_chain(greedy.model_copy(update={"model_version": version}), local_llm, FixedRetriever())
        for version in ("base", name)
    }

    assert pinned["base"].invoke("What is code 2?").model_id == BASE_ID, "the base model, though a version is live"
    assert pinned[name].invoke("What is code 2?").model_id == f"{name} on {BASE_ID}"
    with pytest.raises(UnknownVersion, match="plumb-chat/9"):
        make_live_chain(greedy.model_copy(update={"model_version": "plumb-chat/9"}), local_llm, FixedRetriever())


def test_a_live_version_this_replica_cannot_load_leaves_the_base_model_answering(greedy, local_llm):
    LiveVersions(greedy).promote("plumb-chat/7", "/no/such/adapter", "base")

    answer = live_chain(greedy, local_llm).invoke("What is code 2?")

    assert answer.model_id == BASE_ID, "the turn names the model that really answered"


def test_one_answer_is_written_by_one_version_even_when_a_promote_lands_mid_answer(greedy, local_llm):
    """The chain pins the version once per answer: the condensing call and the answer share it."""
    LiveVersions(greedy).promote("plumb-chat/1", "/versions/1", "base")
    seen = []

    def load(live):
        seen.append(live.version)
        return local_llm, version_model_id(live.version, greedy)

    chain = LiveChain(local_llm, None, BASE_ID, 0.3, LiveWatch(LiveVersions(greedy).read, ttl_s=0), load)
    llm, answered_by = chain.pinned()
    LiveVersions(greedy).promote("plumb-chat/2", "/versions/2", "base")

    assert answered_by == "plumb-chat/1 on SmolLM2-135M-Instruct" and llm is local_llm
    assert chain.pinned()[1] == "plumb-chat/2 on SmolLM2-135M-Instruct" and seen == ["plumb-chat/1", "plumb-chat/2"]
    assert chain.pinned()[1] == "plumb-chat/2 on SmolLM2-135M-Instruct" and len(seen) == 2, "loaded once"


def test_the_admin_page_groups_feedback_per_version_and_marks_the_live_one(dynamo_settings, monkeypatch):
    import streamlit as st

    from pipeline.feedback.dynamo import DynamoFeedbackStore
    from tests.export_factory import SEEDS, Seed, store_seeds
    from tests.test_admin_page import open_page

    monkeypatch.setenv("PLUMB_ADMINS", '["alice"]')
    get_settings.cache_clear()
    first, second = f"plumb-chat/1 on {BASE_ID}", f"plumb-chat/2 on {BASE_ID}"
    seeds = [Seed(**{**vars(seed), "model_id": first if n < 2 else second}) for n, seed in enumerate(SEEDS)]
    store_seeds(DynamoFeedbackStore(get_settings()), seeds)
    LiveVersions(get_settings()).promote("plumb-chat/2", "/versions/2/adapter", "base")
    st.cache_data.clear()

    at = open_page("alice")
    at.selectbox(key="group-by").set_value("Model version").run()

    table = at.dataframe[0].value
    assert table.loc[first, "answers"] == 2 and table.loc[second, "answers"] == len(SEEDS) - 2
    assert table.loc[first, "mean_rating"] == 3.0  # ratings 5 and 1
    assert list(table["live"]) == [True, False] and table.index[0] == second


class _NoRuntimeLora:
    """A local HTTP server that answers like vLLM started without VLLM_ALLOW_RUNTIME_LORA_UPDATING:
    it lists its base model and has no /v1/load_lora_adapter route."""

    def __enter__(self) -> str:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._reply(200, {"object": "list", "data": [{"id": "smollm2", "object": "model"}]})

            def do_POST(self) -> None:
                self.server.posted.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
                self._reply(404, {"detail": "Not Found"})

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.posted = []
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_vllm_without_runtime_lora_loading_is_named_and_nothing_goes_live(dynamo_settings, chat_version, monkeypatch):
    name = register_version(chat_version(), dynamo_settings)
    server = _NoRuntimeLora()
    with server as url:
        monkeypatch.setenv("PLUMB_LLM_BACKEND", "openai")
        monkeypatch.setenv("PLUMB_LLM_BASE_URL", url)
        get_settings.cache_clear()
        with pytest.raises(ModelUnavailable, match="cannot load LoRA adapters at runtime: start vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=true"):
            promote(name, get_settings())

    adapter = str(get_version(name, dynamo_settings).adapter)
    assert server.server.posted == [("/v1/load_lora_adapter", {"lora_name": "plumb-chat-1", "lora_path": adapter})]
    assert LiveVersions(dynamo_settings).read().live is None
