"""Proof that the exported files are what TRL's trainers take: one training step of each on tiny
models built here from a config (no hub), with the packaged SmolLM2 tokenizer and chat template."""

from pathlib import Path

import pytest
import torch

from pipeline.export.job import ExportConfig, main
from pipeline.feedback.dynamo import DynamoFeedbackStore
from tests.export_factory import follow_up_pair, store_seeds

pytestmark = pytest.mark.slow


@pytest.fixture
def export_dir(dynamo_settings, tmp_path) -> Path:
    store = DynamoFeedbackStore(dynamo_settings)
    store_seeds(store)
    turn, feedback = follow_up_pair()
    store.save_turn(turn)
    store.save_feedback(feedback)
    result = main(ExportConfig(out=str(tmp_path / "exports"), mode="all", validation_fraction=0.0), dynamo_settings)
    return Path(result.location)


@pytest.fixture(scope="module")
def tokenizer(local_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(local_model_dir)


def tiny_config(tokenizer, **extra):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def tiny_causal_lm(tokenizer):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_config(tokenizer))


def tiny_classifier(tokenizer):
    from transformers import LlamaForSequenceClassification

    torch.manual_seed(0)
    return LlamaForSequenceClassification(tiny_config(tokenizer, num_labels=1))


def load(export_dir: Path, name: str):
    """The export's `name` dataset, checked to hold the follow-up's conversation as its prompt."""
    from datasets import load_dataset

    dataset = load_dataset(str(export_dir), name, split="train")
    prompts = [row[:-1] for row in dataset["chosen"]] if name == "reward" else dataset["prompt"]
    assert ["user", "assistant", "user"] in [[m["role"] for m in p] for p in prompts]
    return dataset


def common_args(tmp_path: Path) -> dict:
    return {
        "output_dir": str(tmp_path / "trainer"),
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
    }


def train_one_step(trainer) -> None:
    """Run one step and check that it logged a loss and moved the weights."""
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    changed = [
        name for name, p in trainer.model.named_parameters() if name in before and not torch.equal(p, before[name])
    ]
    assert changed, "no parameter changed in the training step"


def test_sft_trainer_takes_the_sft_file(export_dir, tokenizer, tmp_path):
    from trl import SFTConfig, SFTTrainer

    dataset = load(export_dir, "sft")
    assert dataset.column_names[:2] == ["prompt", "completion"]
    args = SFTConfig(**common_args(tmp_path), max_length=512)
    trainer = SFTTrainer(model=tiny_causal_lm(tokenizer), args=args, train_dataset=dataset, processing_class=tokenizer)
    train_one_step(trainer)


def test_dpo_trainer_takes_the_preference_file(export_dir, tokenizer, tmp_path):
    from trl import DPOConfig, DPOTrainer

    dataset = load(export_dir, "preference")
    assert dataset.column_names[:3] == ["prompt", "chosen", "rejected"]
    args = DPOConfig(**common_args(tmp_path), max_length=512)
    trainer = DPOTrainer(
        model=tiny_causal_lm(tokenizer),
        ref_model=tiny_causal_lm(tokenizer),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    train_one_step(trainer)


def test_kto_trainer_takes_the_kto_file(export_dir, tokenizer, tmp_path):
    from trl import KTOConfig, KTOTrainer

    dataset = load(export_dir, "kto")
    assert dataset.column_names[:3] == ["prompt", "completion", "label"]
    assert set(dataset["label"]) == {True, False}
    args = KTOConfig(**{**common_args(tmp_path), "per_device_train_batch_size": 4}, max_length=512)
    trainer = KTOTrainer(
        model=tiny_causal_lm(tokenizer),
        ref_model=tiny_causal_lm(tokenizer),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    train_one_step(trainer)


def test_reward_trainer_takes_the_reward_file(export_dir, tokenizer, tmp_path):
    from trl import RewardConfig, RewardTrainer

    dataset = load(export_dir, "reward")
    assert dataset.column_names[:2] == ["chosen", "rejected"]
    args = RewardConfig(**common_args(tmp_path), max_length=512)
    trainer = RewardTrainer(
        model=tiny_classifier(tokenizer), args=args, train_dataset=dataset, processing_class=tokenizer
    )
    train_one_step(trainer)


def test_sft_and_dpo_trainers_take_trimmed_rows_whole(dynamo_settings, tokenizer, tmp_path):
    """Rows fitted to --max-tokens reach the trainer with max_length at the same limit uncut: the
    tokenized example is exactly as long as the export counted it."""
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from pipeline.export.lengths import TokenCounter
    from tests.test_export_lengths import long_pair

    store = DynamoFeedbackStore(dynamo_settings)
    for n, correction in enumerate([None, "Passage [1] says so.", None]):
        turn, feedback = long_pair(correction=correction, user=f"user-{n}")
        if correction:  # a follow-up: its history is kept whole while passages are dropped
            turn = turn.model_copy(update={"history": [("What do the notes cover?", "Five passages [1].")]})
        store.save_turn(turn)
        store.save_feedback(feedback)
    limit = 1024  # TRL's default max_length
    result = main(
        ExportConfig(out=str(tmp_path / "exports"), mode="all", validation_fraction=0.0, max_tokens=limit),
        dynamo_settings,
    )
    export_dir = Path(result.location)
    assert result.manifest["tokens"]["rows_trimmed"]["sft"] == 3  # one row per verdict

    dataset = load(export_dir, "sft")
    assert all(dataset["passages_dropped"])
    trainer = SFTTrainer(
        model=tiny_causal_lm(tokenizer),
        args=SFTConfig(**common_args(tmp_path), max_length=limit),
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    counter = TokenCounter(tokenizer)
    counted = [
        counter.prompt_tokens(row["prompt"]) + counter.completion_tokens(row["prompt"], row["completion"])
        for row in dataset
    ]
    assert [len(ids) for ids in trainer.train_dataset["input_ids"]] == counted and max(counted) <= limit
    train_one_step(trainer)

    preference = load(export_dir, "preference")
    dpo = DPOTrainer(
        model=tiny_causal_lm(tokenizer),
        ref_model=tiny_causal_lm(tokenizer),
        args=DPOConfig(**common_args(tmp_path), max_length=limit),
        train_dataset=preference,
        processing_class=tokenizer,
    )
    train_one_step(dpo)
