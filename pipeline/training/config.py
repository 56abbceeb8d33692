"""The fields every training job shares, and how a job's config turns into TRL's own config.

A job's config holds our fields and, under `trl`, any field of TRL's config class for that trainer
(SFTConfig, RewardConfig, DPOConfig, KTOConfig, GRPOConfig), so every knob TRL documents is there
without copying it. Our fields are checked when the config is made; TRL's when TRL's class is
built, at the start of `main`, before any model loads. Either way a bad value is named in one
sentence (ConfigError).
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pipeline.errors import ConfigError
from pipeline.training.lora import LORA_PRESETS

# The chat model the pilot fine-tuned; the default is the packaged SmolLM2 (a demo model).
PRODUCTION_CHAT_MODEL = "mistralai/Mistral-7B-Instruct-v0.3"
# The pilot's reward model; the default is the packaged all-MiniLM-L6-v2 encoder.
PRODUCTION_REWARD_MODEL = "distilroberta-base"

# TRL fields the job sets itself: where checkpoints go (inside the version being written), and that
# every run reports to MLflow (pipeline/training/tracking.py).
JOB_OWNED = ("output_dir", "report_to", "run_name")


@dataclass(frozen=True)
class JobConfig:
    """What every job takes; each job adds its own fields and its TRL defaults (`TRL_DEFAULTS`)."""

    TRL_DEFAULTS: ClassVar[dict[str, Any]] = {}

    export_dir: str = field(metadata={"help": "The export folder to train on (it holds manifest.json)."})
    base_model: str = field(
        default="",
        metadata={
            "help": "Folder or Hugging Face id of the model to start from; empty: the packaged SmolLM2 (chat "
            f"jobs) or all-MiniLM-L6-v2 (reward). Production: {PRODUCTION_CHAT_MODEL}, {PRODUCTION_REWARD_MODEL}."
        },
    )
    lora: str = field(
        default="cpu",
        metadata={
            "help": "LoRA preset: 'pilot-sft' (r=512, alpha=1024, the pilot's SFT on Mistral-7B), 'pilot-rl' "
            "(r=32, alpha=64, its RL stage) or 'cpu' (r=8, alpha=16, small enough for this CPU)."
        },
    )
    trl: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "Fields of TRL's config class for this trainer, overriding the job's defaults "
            "(e.g. learning_rate, num_train_epochs, max_steps, per_device_train_batch_size, max_length)."
        },
    )

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError(f"Training not started: {'; '.join(problems)}.")

    def problems(self) -> list[str]:
        """Every bad value of our fields, each named; a job adds its own."""
        problems = []
        if not str(self.export_dir).strip():
            problems.append("export_dir is empty: give an export folder")
        if self.lora not in LORA_PRESETS:
            problems.append(f"lora {self.lora!r} is not one of {', '.join(LORA_PRESETS)}")
        if not isinstance(self.trl, dict):
            problems.append(f"trl {self.trl!r} is not a mapping of TRL config fields to values")
            return problems
        problems += [f"trl field {name!r} is set by the job itself" for name in self.trl if name in JOB_OWNED]
        return problems

    def resolved(self) -> dict[str, Any]:
        """Our fields as JSON values, TRL's as given merged over the job's defaults."""
        values = dataclasses.asdict(self)
        values["trl"] = self.TRL_DEFAULTS | self.trl
        return values

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata["help"] for f in dataclasses.fields(cls)}


def trl_args(trl_class: type, config: JobConfig, output_dir: Path, run_name: str):
    """TRL's config for this run: the job's defaults, then `config.trl`, then what the job owns.
    Raises ConfigError naming a field TRL does not have or a value TRL refuses."""
    known = {f.name for f in dataclasses.fields(trl_class)}
    unknown = sorted(set(config.trl) - known)
    if unknown:
        raise ConfigError(f"Training not started: {trl_class.__name__} has no field {', '.join(map(repr, unknown))}.")
    _check_types(trl_class, config.trl)
    owned = {"output_dir": str(output_dir), "report_to": ["mlflow"], "run_name": run_name}
    values = {"bf16": _bf16_available()} | config.TRL_DEFAULTS | config.trl | owned
    try:
        return trl_class(**values)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"Training not started: TRL's {trl_class.__name__} refused the settings ({error}).") from error


def _check_types(trl_class: type, values: dict[str, Any]) -> None:
    """Each value against its field's type hint. TRL's config classes are dataclasses that check few
    types themselves, so `learning_rate="abc"` would be taken and fail deep in training with a
    traceback. pydantic validates in lax mode: 1 is a fine float, "cosine" a fine scheduler name."""
    import typing

    from pydantic import TypeAdapter, ValidationError

    hints = typing.get_type_hints(trl_class)
    for name, value in values.items():
        try:
            TypeAdapter(hints[name]).validate_python(value)
        except ValidationError as error:
            problem = error.errors()[0]["msg"]
            raise ConfigError(
                f"Training not started: {trl_class.__name__}.{name} cannot be {value!r} ({problem[0].lower()}{problem[1:]})."
            ) from None


def _bf16_available() -> bool:
    """TRL defaults to bf16, which a CPU (and an older GPU) cannot train in."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def parse_trl_options(options: list[str]) -> dict[str, Any]:
    """`--trl NAME=VALUE` options as a dict; a VALUE is read as JSON (1e-4, true, [1, 0.5]) and
    otherwise kept as text. Raises ConfigError for an option without '='."""
    import json

    parsed = {}
    for option in options:
        name, sep, text = option.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--trl {option!r} is not NAME=VALUE (e.g. --trl learning_rate=1e-4).")
        try:
            parsed[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            parsed[name.strip()] = text
    return parsed
