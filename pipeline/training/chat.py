"""The chat model the sft, dpo, kto and grpo jobs tune: found, loaded, and its adapter saved as
vLLM and PEFT read it."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import ConfigError
from pipeline.settings import Settings

if TYPE_CHECKING:
    from datasets import Dataset


def chat_model_path(base_model: str, settings: Settings) -> str:
    """`base_model` as given, or the packaged SmolLM2 folder (made once under the models folder)."""
    if base_model:
        return base_model
    from pipeline.llm.local_model import prepare_local_model

    return str(prepare_local_model(settings.models_dir))


def load_chat_model(path: str) -> tuple[Any, Any]:
    """(model, tokenizer): `load_chat_weights` and `load_chat_tokenizer` of `path`."""
    return load_chat_weights(path), load_chat_tokenizer(path)


def load_chat_weights(path: str) -> Any:
    """The chat model at `path`, in the dtype the checkpoint was saved in."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype="auto")


def load_chat_tokenizer(path: str) -> Any:
    """The tokenizer of the chat model at `path`, padding with its end-of-sequence token when it
    has no pad token, as TRL's trainers expect."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def save_adapter(trainer: Any, folder: Path) -> Path:
    """`folder/adapter`: adapter_config.json and adapter_model.safetensors with the tokenizer beside
    them, which `PeftModel.from_pretrained(base, folder)` and vLLM's LoRA loading both read. The
    trainer saves it, so under FSDP the shards are gathered first and only the main process writes."""
    adapter = folder / "adapter"
    trainer.save_model(str(adapter))
    return adapter


def check_rows_fit(rows: "Dataset", tokenizer: Any, max_length: int | None, dataset: str) -> None:
    """Raise ConfigError when a training row is longer than `max_length` tokens (prompt with the
    longest of its completions, as the chat template renders them; None means no limit).

    TRL's SFT, DPO and KTO trainers cut prompt + completion at `max_length` keeping the start, so
    the completion of a long row loses its end or all of it; SFTTrainer then drops a row whose
    completion is gone without a word. A model would learn from a fraction of its export, or from
    answers cut mid-sentence. The export's `--max-tokens` fits rows by dropping passages instead.
    """
    if max_length is None:
        return
    from pipeline.export.lengths import TokenCounter

    counter = TokenCounter(tokenizer)
    lengths = [row_tokens(counter, row) for row in rows]
    over = [length for length in lengths if length > max_length]
    if over:
        raise ConfigError(
            f"Training not started: {len(over)} of {len(lengths)} {dataset} rows are longer than max_length "
            f"({max_length} tokens; the longest is {max(over)}), and TRL would cut their completions or drop them: "
            f"export again with --max-tokens {max_length}, which drops a prompt's last passages until its "
            "completions fit, or raise --trl max_length."
        )


def row_tokens(counter: Any, row: dict[str, Any]) -> int:
    """Tokens of a row's prompt and its longest completion (`completion`, or `chosen`/`rejected`)."""
    completions = [row[name] for name in ("completion", "chosen", "rejected") if name in row]
    return counter.prompt_tokens(row["prompt"]) + max(counter.completion_tokens(row["prompt"], c) for c in completions)


def train_adapter(job: str, dataset: str, config: Any, settings: Settings, trl_config: type, trainer_class: type) -> Any:
    """The shape SFT, DPO and KTO share: LoRA on the chat model, TRL's `trainer_class` on the export's
    `dataset` split, one tracked version written. Returns the TrainedVersion; raises a PlumbError
    subclass (one sentence) when it cannot train."""
    from pipeline.training.config import trl_args
    from pipeline.training.data import ExportFolder
    from pipeline.training.lora import lora_config
    from pipeline.training.run import finished, new_run, tracked

    export = ExportFolder.open(config.export_dir)
    data = export.split(dataset)
    base = chat_model_path(config.base_model, settings)
    run = new_run(settings, job)
    args = trl_args(trl_config, config, run.checkpoints, run.name)
    # Before the MLflow run starts: rows that do not fit are a mistake in the command, not a failed run.
    tokenizer = load_chat_tokenizer(base)
    check_rows_fit(data.train, tokenizer, args.max_length, dataset)
    with tracked(run, settings, config, export, data.hashes, base):
        model = load_chat_weights(base)
        trainer = trainer_class(
            model=model,
            args=args,
            train_dataset=data.train,
            eval_dataset=data.validation,
            processing_class=tokenizer,
            peft_config=lora_config(config.lora, "CAUSAL_LM"),
        )
        run.train(trainer)
        save_adapter(trainer, run.folder)
    return finished(run)
