"""The chat model the sft, dpo, kto and grpo jobs tune: found, loaded, and its adapter saved as
vLLM and PEFT read it."""

from pathlib import Path
from typing import Any

from pipeline.settings import Settings


def chat_model_path(base_model: str, settings: Settings) -> str:
    """`base_model` as given, or the packaged SmolLM2 folder (made once under the models folder)."""
    if base_model:
        return base_model
    from pipeline.llm.local_model import prepare_local_model

    return str(prepare_local_model(settings.models_dir))


def load_chat_model(path: str) -> tuple[Any, Any]:
    """(model, tokenizer) in the dtype the checkpoint was saved in; a tokenizer without a pad token
    pads with its end-of-sequence token, as TRL's trainers expect."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype="auto")
    return model, tokenizer


def save_adapter(trainer: Any, folder: Path) -> Path:
    """`folder/adapter`: adapter_config.json and adapter_model.safetensors with the tokenizer beside
    them, which `PeftModel.from_pretrained(base, folder)` and vLLM's LoRA loading both read. The
    trainer saves it, so under FSDP the shards are gathered first and only the main process writes."""
    adapter = folder / "adapter"
    trainer.save_model(str(adapter))
    return adapter


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
    with tracked(run, settings, config, export, data.hashes, base):
        model, tokenizer = load_chat_model(base)
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
