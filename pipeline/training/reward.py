"""`plumb train reward`: a reward model on the export's `reward` rows ([prompt + chosen, prompt +
rejected]), a sequence-classification model with one output trained by TRL's RewardTrainer
(Bradley-Terry loss), LoRA merged in at the end so the folder loads as a plain model.

The default is the packaged all-MiniLM-L6-v2 encoder; the pilot's was distilroberta-base (learning
rate 1e-5, 10 epochs). Encoders have no chat template, so the conversation is written as plain
"role: text" lines between the encoder's own [CLS] and [SEP] (`ENCODER_CHAT_TEMPLATE`); the template
is saved with the tokenizer, so GRPO scores completions exactly as the model was trained.
Validation accuracy is the share of validation pairs whose chosen side scores higher.

A served prompt holds the retrieved passages, so a pair is often longer than the 512 positions an
encoder reads (the sample export's are about 900 word pieces). TRL's RewardTrainer leaves such pairs
out; here each side keeps its first token ([CLS], whose vector the score head reads) and its last
511 (`encoder_ids`): the answer being scored and the question stay, the start of the passages goes.
The rows are tokenized here, so TRL takes them as they are; GRPO scores with the same function.
"""

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pipeline.settings import Settings, get_settings
from pipeline.training.config import JobConfig
from pipeline.training.versions import TrainedVersion

if TYPE_CHECKING:
    from datasets import Dataset

ENCODER_CHAT_TEMPLATE = (
    "{{ cls_token }}{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{{ sep_token }}"
)


@dataclass(frozen=True)
class RewardJobConfig(JobConfig):
    # Encoders such as MiniLM and distilroberta read at most 512 positions (see `encoder_ids`).
    TRL_DEFAULTS: ClassVar[dict[str, Any]] = {
        "learning_rate": 1e-4,
        "num_train_epochs": 1,
        "per_device_train_batch_size": 2,
        "max_length": 512,
        "logging_steps": 1,
        "save_strategy": "no",
    }


def main(config: RewardJobConfig, settings: Settings | None = None) -> TrainedVersion:
    """Train one reward-model version; raises a PlumbError subclass (one sentence) when it cannot."""
    from trl import RewardConfig, RewardTrainer

    from pipeline.training.config import trl_args
    from pipeline.training.data import ExportFolder
    from pipeline.training.lora import lora_config
    from pipeline.training.run import finished, is_main_process, new_run, tracked

    settings = settings or get_settings()
    export = ExportFolder.open(config.export_dir)
    data = export.split("reward")
    base = config.base_model or _packaged_encoder()
    run = new_run(settings, "reward")
    args = trl_args(RewardConfig, config, run.checkpoints, run.name)
    with tracked(run, settings, config, export, data.hashes, base):
        model, tokenizer = load_encoder(base)
        trainer = RewardTrainer(
            model=model,
            args=args,
            train_dataset=tokenized_pairs(data.train, tokenizer, args.max_length),
            eval_dataset=tokenized_pairs(data.validation, tokenizer, args.max_length) if data.validation else None,
            processing_class=tokenizer,
            # Encoders name their layers differently from chat models: LoRA on every linear layer;
            # PEFT trains the new score head whole.
            peft_config=lora_config(config.lora, "SEQ_CLS", target_modules="all-linear"),
        )
        run.train(trainer)
        if is_main_process():
            trainer.model.merge_and_unload().save_pretrained(run.folder / "model")
            tokenizer.save_pretrained(run.folder / "model")
    return finished(run)


def encoder_ids(tokenizer: Any, messages: list[dict], max_length: int) -> tuple[list[int], bool]:
    """The token ids of a conversation as the reward model reads it, and whether it was cut: at most
    `max_length`, keeping the first ([CLS]) and the last `max_length - 1` (see the module docstring)."""
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    if len(ids) <= max_length:
        return ids, False
    return [ids[0], *ids[len(ids) - max_length + 1 :]], True


def tokenized_pairs(pairs: "Dataset", tokenizer: Any, max_length: int) -> "Dataset":
    """Reward rows (chosen, rejected conversations) as TRL's tokenized columns chosen_ids and
    rejected_ids, each side cut by `encoder_ids`; how many sides were cut is logged."""

    def tokenize(row: dict) -> dict:
        (chosen, chosen_cut), (rejected, rejected_cut) = (encoder_ids(tokenizer, row[side], max_length) for side in ("chosen", "rejected"))
        return {"chosen_ids": chosen, "rejected_ids": rejected, "cut": chosen_cut + rejected_cut}

    tokenized = pairs.map(tokenize, remove_columns=pairs.column_names)
    if cut := sum(tokenized["cut"]):
        logging.getLogger(__name__).warning(
            "%d of %d reward texts were longer than %d positions: the start of their passages was cut.",
            cut, 2 * len(pairs), max_length,
        )
    return tokenized.remove_columns("cut")


def load_encoder(path: str) -> tuple[Any, Any]:
    """(model with a one-output score head, tokenizer with a chat template)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.chat_template is None:
        tokenizer.chat_template = ENCODER_CHAT_TEMPLATE
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _packaged_encoder() -> str:
    from pipeline.embeddings import default_model_path

    return default_model_path()
