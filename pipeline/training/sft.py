"""`plumb train sft`: supervised fine-tuning with LoRA on the export's `sft` rows (users' corrections
and answers rated 4-5), TRL's SFTTrainer, loss on the completion only."""

from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.settings import Settings, get_settings
from pipeline.training.config import JobConfig
from pipeline.training.versions import TrainedVersion


@dataclass(frozen=True)
class SftConfig(JobConfig):
    # Small and quick on a CPU; the pilot's run on Mistral-7B: --lora pilot-sft, num_train_epochs=20.
    TRL_DEFAULTS: ClassVar[dict[str, Any]] = {
        "learning_rate": 2e-4,
        "num_train_epochs": 1,
        "per_device_train_batch_size": 2,
        "max_length": 1024,
        "logging_steps": 1,
        "save_strategy": "no",
    }


def main(config: SftConfig, settings: Settings | None = None) -> TrainedVersion:
    """Train one SFT version; raises a PlumbError subclass (one sentence) when it cannot."""
    from trl import SFTConfig, SFTTrainer

    from pipeline.training.chat import train_adapter

    return train_adapter("sft", "sft", config, settings or get_settings(), SFTConfig, SFTTrainer)
