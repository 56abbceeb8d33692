"""`plumb train dpo`: direct preference optimisation with LoRA on the export's `preference` rows (a
correction over the answer it corrects, a better-rated answer over a worse one to the same prompt),
TRL's DPOTrainer. The lighter alternative to a reward model and RL: no reward model, no generation;
the reference model is the base model with the adapter switched off."""

from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.settings import Settings, get_settings
from pipeline.training.config import JobConfig
from pipeline.training.versions import TrainedVersion


@dataclass(frozen=True)
class DpoConfig(JobConfig):
    TRL_DEFAULTS: ClassVar[dict[str, Any]] = {
        "learning_rate": 5e-6,
        "beta": 0.1,
        "num_train_epochs": 1,
        "per_device_train_batch_size": 2,
        "max_length": 1024,
        "logging_steps": 1,
        "save_strategy": "no",
    }


def main(config: DpoConfig, settings: Settings | None = None) -> TrainedVersion:
    """Train one DPO version; raises a PlumbError subclass (one sentence) when it cannot."""
    from trl import DPOConfig, DPOTrainer

    from pipeline.training.chat import train_adapter

    return train_adapter("dpo", "preference", config, settings or get_settings(), DPOConfig, DPOTrainer)
