"""`plumb train`: each job trains two steps on a tiny export made by the real export job from turns
in DynamoDB Local, writes its version folder (adapter or model, lineage) and logs its MLflow run;
bad exports and bad values end in one sentence."""

import json
import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ConfigError
from pipeline.records import Citation
from pipeline.settings import get_settings
from pipeline.training import dpo, grpo, kto, reward, sft
from pipeline.training.data import ExportFolder, TrainingDataError
from pipeline.training.versions import LINEAGE
from tests.training_factory import BAD, training_export

TWO_STEPS = {"max_steps": 2, "max_length": 512, "per_device_train_batch_size": 1}


@pytest.fixture
def export_dir(dynamo_settings, prepared_models, tmp_path) -> Path:
    return training_export(dynamo_settings, tmp_path / "exports")


def check_version(version, job: str, export_dir: Path, dataset: str, steps: int = 2) -> dict:
    """The folder is where the contract puts it, with the lineage of this export and run."""
    settings = get_settings()
    manifest = json.loads((export_dir / "manifest.json").read_text())
    assert version.folder.parent == settings.data_dir / "model-versions" and version.name.startswith(f"{job}-")
    assert not [p for p in version.folder.parent.iterdir() if p.name.startswith(".staging")]
    lineage = json.loads((version.folder / LINEAGE).read_text())
    assert (lineage["schema"], lineage["job"], lineage["export_id"]) == ("plumb-model-v1", job, manifest["export_id"])
    assert lineage["data_hashes"] == {
        split: manifest["files"][f"{dataset}/{split}.jsonl"]["sha256"] for split in ("train", "validation")
    }
    assert lineage["mlflow_run_id"] == version.mlflow_run_id and lineage["metrics"] == version.metrics
    assert lineage["config"]["trl"]["max_steps"] == steps and lineage["base_model"]
    assert not (version.folder / "trainer-output").exists()
    check_run(version, manifest["export_id"], steps)
    return lineage


def check_run(version, export_id: str, steps: int) -> None:
    """The MLflow run holds our params, TRL's, a finite loss per step and the folder as artifact."""
    from mlflow import MlflowClient

    client = MlflowClient(get_settings().mlflow_uri)
    run = client.get_run(version.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == version.name
    assert run.data.params["plumb.export_id"] == export_id and "learning_rate" in run.data.params
    history = client.get_metric_history(version.mlflow_run_id, "loss")
    assert [m.step for m in history] == list(range(1, steps + 1)) and all(math.isfinite(m.value) for m in history)
    assert LINEAGE in {Path(a.path).name for a in client.list_artifacts(version.mlflow_run_id, "model-version")}


def check_lora_trained(adapter: Path) -> None:
    """PEFT starts every lora_B at zero: after training some are not."""
    from safetensors.torch import load_file

    tensors = load_file(adapter / "adapter_model.safetensors")
    lora_b = [t for name, t in tensors.items() if "lora_B" in name]
    assert lora_b and any(t.abs().sum() > 0 for t in lora_b)
    assert (adapter / "adapter_config.json").is_file() and (adapter / "tokenizer.json").is_file()


@pytest.mark.slow
def test_sft_trains_an_adapter_that_loads_on_the_base(export_dir):
    version = sft.main(sft.SftConfig(str(export_dir), trl=TWO_STEPS))
    lineage = check_version(version, "sft", export_dir, "sft")
    check_lora_trained(version.folder / "adapter")
    assert "eval_loss" in version.metrics and math.isfinite(version.metrics["train_loss"])

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(lineage["base_model"]), version.folder / "adapter")
    assert tuned.peft_config["default"].r == 8


@pytest.mark.slow
def test_the_command_registers_the_version_it_trains(export_dir):
    from pipeline.models.registry import list_versions

    result = CliRunner().invoke(app, ["train", "sft", str(export_dir), "--trl", "max_steps=1", "--trl", "max_length=512"])
    assert result.exit_code == 0, result.output
    assert "registered as plumb-chat/1; make it live with `plumb model promote plumb-chat/1`" in " ".join(result.output.split())
    [version] = list_versions(get_settings())
    assert (version.name, version.job) == ("plumb-chat/1", "sft") and (version.folder / LINEAGE).is_file()


@pytest.mark.slow
def test_dpo_trains_on_preference_pairs(export_dir):
    version = dpo.main(dpo.DpoConfig(str(export_dir), trl=TWO_STEPS))
    check_version(version, "dpo", export_dir, "preference")
    check_lora_trained(version.folder / "adapter")
    assert "eval_rewards/accuracies" in version.metrics


@pytest.mark.slow
def test_kto_trains_on_unpaired_labels(export_dir):
    # KTO estimates its KL term from the other rows of a batch: two rows at least.
    version = kto.main(kto.KtoConfig(str(export_dir), trl={**TWO_STEPS, "per_device_train_batch_size": 2}))
    check_version(version, "kto", export_dir, "kto")
    check_lora_trained(version.folder / "adapter")


@pytest.mark.slow
def test_reward_model_ranks_chosen_over_rejected_after_training(export_dir):
    """"No idea." is always the rejected side: trivially separable, so after training every
    validation pair is ranked right, and the model GRPO loads scores the same way."""
    import torch

    version = reward.main(
        reward.RewardJobConfig(str(export_dir), trl={**TWO_STEPS, "max_steps": 20, "learning_rate": 1e-3})
    )
    lineage = check_version(version, "reward", export_dir, "reward", steps=20)
    assert version.metrics["eval_accuracy"] == 1.0

    model, tokenizer = reward.load_encoder(str(version.folder / "model"))
    validation = ExportFolder.open(export_dir).split("reward").validation
    for row in validation:
        texts = [tokenizer.apply_chat_template(row[side], tokenize=False) for side in ("chosen", "rejected")]
        with torch.inference_mode():
            scores = model(**tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)).logits[:, 0]
        assert row["rejected"][-1]["content"] == BAD and scores[0] > scores[1]
    base, _ = reward.load_encoder(lineage["base_model"])
    assert not torch.equal(base.bert.encoder.layer[0].attention.self.query.weight, model.bert.encoder.layer[0].attention.self.query.weight)


def test_a_reward_text_longer_than_the_encoder_reads_keeps_cls_and_its_end(prepared_models):
    """A served prompt with its passages is often over 512 positions: TRL would drop the pair; it is
    kept with the start of the passages cut, the answer and [CLS] intact."""
    from datasets import Dataset

    _, tokenizer = reward.load_encoder(reward._packaged_encoder())
    long = [{"role": "user", "content": "passage text " * 400 + "Question: how thick?"}, {"role": "assistant", "content": "16 mm"}]
    short = [{"role": "user", "content": "Question: how thick?"}, {"role": "assistant", "content": "No idea."}]
    full = tokenizer.apply_chat_template(long, tokenize=True, return_dict=True)["input_ids"]
    ids, cut = reward.encoder_ids(tokenizer, long, 512)
    assert cut and len(full) > 512 and len(ids) == 512
    assert ids[0] == tokenizer.cls_token_id and ids[1:] == full[-511:] and ids[-1] == tokenizer.sep_token_id
    assert tokenizer.decode(ids[-8:], skip_special_tokens=True).endswith("16 mm")
    assert reward.encoder_ids(tokenizer, short, 512) == (tokenizer.apply_chat_template(short, tokenize=True, return_dict=True)["input_ids"], False)
    pairs = reward.tokenized_pairs(Dataset.from_list([{"chosen": long, "rejected": short}]), tokenizer, 512)
    assert pairs.column_names == ["chosen_ids", "rejected_ids"] and len(pairs) == 1 and len(pairs[0]["chosen_ids"]) == 512


@pytest.mark.slow
def test_grpo_trains_on_the_human_score_and_a_trained_reward_model(export_dir):
    trained = reward.main(reward.RewardJobConfig(str(export_dir), trl={"max_steps": 2}))
    config = grpo.GrpoConfig(
        str(export_dir),
        trl={"max_steps": 2, "max_completion_length": 8},
        rewards=("human", "reward-model"),
        reward_model=str(trained.folder),
    )
    version = grpo.main(config)
    check_version(version, "grpo", export_dir, "ratings")
    check_lora_trained(version.folder / "adapter")
    from mlflow import MlflowClient

    client = MlflowClient(get_settings().mlflow_uri)
    for metric in ("reward", "kl", "rewards/human_score/mean", "rewards/reward_model/mean"):
        history = client.get_metric_history(version.mlflow_run_id, metric)
        assert len(history) == 2 and all(math.isfinite(m.value) for m in history), metric


def test_an_export_of_an_unknown_schema_is_refused_in_one_sentence(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"schema_version": 9, "export_id": "x"}))
    with pytest.raises(TrainingDataError, match=r"schema version 9, which this trainer does not know \(it reads 1\)"):
        ExportFolder.open(tmp_path)
    with pytest.raises(TrainingDataError, match="is not an export: it has no manifest.json"):
        ExportFolder.open(tmp_path / "nowhere")


def test_a_missing_or_changed_dataset_is_named(export_dir, tmp_path):
    copy = Path(shutil.copytree(export_dir, tmp_path / "copy"))
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"]["preference/train.jsonl"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    export = ExportFolder.open(copy)
    with pytest.raises(TrainingDataError, match="has no preference training rows"):
        export.split("preference")
    (copy / "kto" / "train.jsonl").write_text("{}\n")
    with pytest.raises(TrainingDataError, match="kto/train.jsonl has changed since the export wrote it"):
        export.split("kto")
    (copy / "sft" / "validation.jsonl").unlink()
    with pytest.raises(TrainingDataError, match="lists sft/validation.jsonl, but the file is missing"):
        export.split("sft")
    sft_rows = ExportFolder.open(export_dir).split("sft")
    assert sft_rows.train.column_names == ["prompt", "completion"] and len(sft_rows.validation) == 2


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: sft.SftConfig("x", lora="huge"), "lora 'huge' is not one of pilot-sft, pilot-rl, cpu"),
        (lambda: sft.SftConfig(""), "export_dir is empty"),
        (lambda: dpo.DpoConfig("x", trl={"output_dir": "/tmp"}), "trl field 'output_dir' is set by the job itself"),
        (lambda: grpo.GrpoConfig("x", rewards=("vibes",)), "reward 'vibes' is not one of reward-model, judge, human"),
        (lambda: grpo.GrpoConfig("x", rewards=("reward-model",)), "reward 'reward-model' needs reward_model"),
        (lambda: grpo.GrpoConfig("x", reward_model="/nowhere", rewards=("reward-model",)), "'/nowhere' holds no model/ folder"),
    ],
)
def test_a_bad_config_value_is_named(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_a_trl_field_that_does_not_exist_or_a_value_trl_refuses_is_named(export_dir):
    with pytest.raises(ConfigError, match="SFTConfig has no field 'lerning_rate'"):
        sft.main(sft.SftConfig(str(export_dir), trl={"lerning_rate": 1e-4}))
    with pytest.raises(ConfigError, match="TRL's KTOConfig refused the settings"):
        kto.main(kto.KtoConfig(str(export_dir), trl={"eval_strategy": "sometimes"}))
    assert not (get_settings().data_dir / "model-versions").exists() or not any(
        (get_settings().data_dir / "model-versions").iterdir()
    )


def _mlflow_runs() -> int:
    from mlflow import MlflowClient

    client = MlflowClient(get_settings().mlflow_uri)
    return sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments())


@pytest.mark.parametrize(("job", "dataset"), [(sft, "sft"), (dpo, "preference"), (kto, "kto")])
def test_rows_longer_than_max_length_are_refused_before_training(export_dir, job, dataset):
    """TRL would cut them keeping the start (and SFTTrainer drop those left with no completion);
    the job names how many and what to do, and trains nothing. A limit the longest row fits passes
    this check: a row is never counted longer than it is."""
    from pipeline.export.lengths import TokenCounter
    from pipeline.training.chat import chat_model_path, check_rows_fit, load_chat_model, row_tokens

    rows = ExportFolder.open(export_dir).split(dataset).train
    _, tokenizer = load_chat_model(chat_model_path("", get_settings()))
    lengths = [row_tokens(TokenCounter(tokenizer), row) for row in rows]
    longest = max(lengths)
    config = {sft: sft.SftConfig, dpo: dpo.DpoConfig, kto: kto.KtoConfig}[job]
    runs = _mlflow_runs()
    with pytest.raises(ConfigError) as refused:
        job.main(config(str(export_dir), trl={**TWO_STEPS, "max_length": longest - 1}))
    assert _mlflow_runs() == runs, "a refused command leaves no failed MLflow run"
    assert str(refused.value) == (
        f"Training not started: {lengths.count(longest)} of {len(rows)} {dataset} rows are longer than max_length "
        f"({longest - 1} tokens; the longest is {longest}), and TRL would cut their completions or drop them: "
        f"export again with --max-tokens {longest - 1}, which drops a prompt's last passages until its completions "
        "fit, or raise --trl max_length."
    )
    versions = get_settings().data_dir / "model-versions"
    assert not versions.exists() or not [p for p in versions.iterdir() if not p.name.startswith(".")]
    check_rows_fit(rows, tokenizer, longest, dataset)
    check_rows_fit(rows, tokenizer, None, dataset)


def test_a_rows_length_is_the_chat_templates_rendering_of_prompt_and_completion(export_dir):
    from pipeline.export.lengths import TokenCounter
    from pipeline.training.chat import chat_model_path, load_chat_model, row_tokens

    _, tokenizer = load_chat_model(chat_model_path("", get_settings()))
    counter = TokenCounter(tokenizer)
    for row in ExportFolder.open(export_dir).split("preference").train:
        rendered = [
            len(tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=True, return_dict=True)["input_ids"])
            for side in ("chosen", "rejected")
        ]
        assert row_tokens(counter, row) == max(rendered)


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "sft", str(tmp_path), "--lora", "huge"])
    assert result.exit_code == 1 and "lora 'huge' is not one of" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["train", "dpo", str(tmp_path), "--trl", "beta"])
    assert result.exit_code == 1 and "--trl 'beta' is not NAME=VALUE" in result.output
    result = runner.invoke(app, ["train", "grpo", str(tmp_path)])
    assert result.exit_code == 1 and "has no manifest.json" in result.output


def test_the_judge_reads_the_question_and_passages_back_from_the_prompt():
    """A GRPO completion is judged on the very question and passages its prompt held."""
    from pipeline.prompts import ANSWER_REQUESTS, answer_messages
    from pipeline.training.rewards import turn_for

    citations = [
        Citation(source="design-criteria.pdf", page=21, passage="Ramps shall not exceed 1:12.\n\nSee also 4.2.", score=0.8),
        Citation(source="paper.pdf", page=3, page_label="iv", passage="Roman numbered.", score=0.5),
        Citation(source="spec.md", page=1, section="Part 3 - Execution › 3.2 Curing", passage="Keep moist.", score=0.4),
    ]
    history = [("What about stairs?", "Not covered.")]
    for version in ANSWER_REQUESTS:
        turn = turn_for(answer_messages(history, citations, "What is the maximum slope?", version), "1:12 [1].")
        assert turn.question == "What is the maximum slope?" and turn.answer == "1:12 [1]." and turn.history == history
        assert [c.label() for c in turn.citations] == [c.label() for c in citations]
        assert [c.passage for c in turn.citations] == [c.passage for c in citations]
        assert turn.prompt_version == version


def test_the_judge_reward_is_its_score_against_the_correction_and_none_when_it_fails():
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    from pipeline.judge.judge import Judge
    from pipeline.prompts import answer_messages
    from pipeline.training.rewards import judge_reward

    class Replies(BaseChatModel):
        replies: list[str]
        sent: list = []

        @property
        def _llm_type(self) -> str:
            return "replies"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
            self.sent.append(messages[0].content)
            return ChatResult(generations=[ChatGeneration(message=AIMessage(self.replies[len(self.sent) - 1]))])

    verdict = json.dumps({"comment": "Has the 1:12 limit.", "score": 4.5})
    llm = Replies(replies=[verdict, "not json"], sent=[])
    score = judge_reward(Judge(llm, "judge", attempts=1), concurrency=1)
    prompt = answer_messages([], [Citation(source="a.pdf", page=2, passage="Slope 1:12.", score=0.9)], "Max slope?")
    completions = [[{"role": "assistant", "content": "1:12 [1]."}], [{"role": "assistant", "content": "Steep."}]]
    rewards = score(prompts=[prompt, prompt], completions=completions, reference=["The slope is 1:12.", ""])
    assert rewards == [0.75, None]
    assert "The slope is 1:12." in llm.sent[0] and "a.pdf – page 2" in llm.sent[0] and "1:12 [1]." in llm.sent[0]
    assert "There is no reference answer" in llm.sent[1]


@pytest.mark.slow
def test_the_human_reward_pays_for_answers_like_well_rated_ones(export_dir):
    from pipeline.embeddings import make_embedder
    from pipeline.training.rewards import human_reward, prompts_dataset

    export = ExportFolder.open(export_dir)
    rows = prompts_dataset(export.split("ratings").train, export.split("sft", ("prompt", "completion", "completion_source")).train)
    [row] = rows
    assert sorted(row["rated_scores"]) == [1, 5, 5] and row["reference"].startswith("The anchor bolts are 600 mm apart")
    score = human_reward(make_embedder(get_settings()))
    # The ratings rows come in no set order: take the answer the user rated 5, not the first one.
    well_rated = row["rated_answers"][row["rated_scores"].index(5)]
    good, bad = ([{"role": "assistant", "content": text}] for text in (well_rated, BAD))
    rewards = score(completions=[good, bad], rated_answers=[row["rated_answers"]] * 2, rated_scores=[row["rated_scores"]] * 2)
    # The default backend scales its 8-bit activations per batch, so a text encoded in two batches is
    # alike to itself to about 0.97 of cosine (a short one padded beside longer ones), not 1.
    assert rewards[0] == pytest.approx(1.0, abs=0.05) and rewards[1] == pytest.approx(-1.0, abs=0.05)
