"""`plumb train kto`: Kahneman-Tversky optimisation with LoRA on the export's `kto` rows, TRL's
KTOTrainer. It takes unpaired labels (an answer rated 4-5 or a correction: desirable; 1-2:
undesirable), so every rated answer counts, not only those a pair can be made of. The dataset card
gives the desirable/undesirable balance and the weights TRL suggests for it (`--trl
desirable_weight=...`)."""

from dataclasses import dataclass
from typing import Any, ClassVar

from pipeline.settings import Settings, get_settings
from pipeline.training.config import JobConfig
from pipeline.training.versions import TrainedVersion


@dataclass(frozen=True)
class KtoConfig(JobConfig):
    # KTO estimates its KL term from mismatched pairs within a batch, so a batch holds at least two rows.
    TRL_DEFAULTS: ClassVar[dict[str, Any]] = {
        "learning_rate": 5e-6,
        "beta": 0.1,
        "num_train_epochs": 1,
        "per_device_train_batch_size": 2,
        "max_length": 1024,
        "logging_steps": 1,
        "save_strategy": "no",
    }


def main(config: KtoConfig, settings: Settings | None = None) -> TrainedVersion:
    """Train one KTO version; raises a PlumbError subclass (one sentence) when it cannot."""
    from trl import KTOConfig, KTOTrainer

    from pipeline.training.chat import train_adapter

    return train_adapter("kto", "kto", config, settings or get_settings(), KTOConfig, KTOTrainer)
