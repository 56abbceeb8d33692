"""`plumb train sft|reward|dpo|kto|grpo EXPORT_DIR`: the commands of a typer group that
pipeline/cli.py registers. Each builds its job's config (which checks every value), runs the job's
`main` and prints the version it wrote; errors are PlumbError subclasses for the CLI to report."""

import dataclasses
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from pipeline.training.config import JobConfig, parse_trl_options
from pipeline.training.grpo import GrpoConfig
from pipeline.training.versions import TrainedVersion

console = Console(soft_wrap=True)
C = TypeVar("C", bound=JobConfig)
help_of = JobConfig.help()

ExportDir = Annotated[
    str, typer.Argument(help=help_of["export_dir"] + " An s3://bucket/prefix/<export id> is fetched first.")
]
Upload = Annotated[
    str, typer.Option("--upload", help="Also copy the version to s3://bucket/prefix/<version name>/ (e.g. the stack's bucket).")
]
BaseModel = Annotated[str, typer.Option("--base-model", help=help_of["base_model"])]
Lora = Annotated[str, typer.Option("--lora", help=help_of["lora"])]
Trl = Annotated[
    list[str] | None,
    typer.Option(
        "--trl",
        help="NAME=VALUE: a field of TRL's config for this trainer, VALUE in JSON (--trl learning_rate=1e-4 "
        "--trl max_steps=100); repeat for several.",
    ),
]


def sft_command(
    export_dir: ExportDir, base_model: BaseModel = "", lora: Lora = "cpu", trl: Trl = None, upload: Upload = ""
) -> None:
    """Supervised fine-tuning with LoRA on the export's sft rows (corrections and answers rated 4-5)."""
    from pipeline.training import sft

    config = sft.SftConfig(export_dir, base_model, lora, parse_trl_options(trl or []))
    _report(sft.main(_fetched(config)), upload)


def reward_command(
    export_dir: ExportDir, base_model: BaseModel = "", lora: Lora = "cpu", trl: Trl = None, upload: Upload = ""
) -> None:
    """A reward model (sequence classification, TRL's RewardTrainer) on the export's reward pairs."""
    from pipeline.training import reward

    config = reward.RewardJobConfig(export_dir, base_model, lora, parse_trl_options(trl or []))
    _report(reward.main(_fetched(config)), upload)


def dpo_command(
    export_dir: ExportDir, base_model: BaseModel = "", lora: Lora = "cpu", trl: Trl = None, upload: Upload = ""
) -> None:
    """Direct preference optimisation with LoRA on the export's preference pairs."""
    from pipeline.training import dpo

    config = dpo.DpoConfig(export_dir, base_model, lora, parse_trl_options(trl or []))
    _report(dpo.main(_fetched(config)), upload)


def kto_command(
    export_dir: ExportDir, base_model: BaseModel = "", lora: Lora = "cpu", trl: Trl = None, upload: Upload = ""
) -> None:
    """KTO with LoRA on the export's unpaired good/bad labels."""
    from pipeline.training import kto

    config = kto.KtoConfig(export_dir, base_model, lora, parse_trl_options(trl or []))
    _report(kto.main(_fetched(config)), upload)


def grpo_command(
    export_dir: ExportDir,
    base_model: BaseModel = "",
    lora: Lora = "cpu",
    trl: Trl = None,
    reward: Annotated[
        list[str] | None, typer.Option("--reward", help=GrpoConfig.help()["rewards"] + " Repeat for several.")
    ] = None,
    reward_model: Annotated[str, typer.Option("--reward-model", help=GrpoConfig.help()["reward_model"])] = "",
    upload: Upload = "",
) -> None:
    """GRPO with LoRA on the export's rated prompts, rewarded by a reward model, the AI judge or users' scores."""
    from pipeline.training import grpo

    config = grpo.GrpoConfig(
        export_dir, base_model, lora, parse_trl_options(trl or []), tuple(reward or ("human",)), reward_model
    )
    _report(grpo.main(_fetched(config)), upload)


def _fetched(config: C) -> C:
    """The config with an export in S3 replaced by its local copy under the data directory."""
    from pipeline.s3_documents import is_s3_url

    if not is_s3_url(config.export_dir):
        return config
    from pipeline.settings import get_settings
    from pipeline.training.s3 import fetch_export

    local = fetch_export(config.export_dir, get_settings().data_dir / "exports")
    return dataclasses.replace(config, export_dir=str(local))


def _report(version: TrainedVersion, upload: str) -> None:
    from pipeline.models import register_version
    from pipeline.settings import get_settings

    figures = ", ".join(f"{name} {value:.4g}" for name, value in sorted(version.metrics.items()) if "runtime" not in name)
    console.print(f"Trained {version.name}: {version.folder}")
    console.print(f"  MLflow run {version.mlflow_run_id}; {figures}")
    registered = register_version(version.folder, get_settings())
    promote = f"; make it live with `plumb model promote {registered}`" if registered.startswith("plumb-chat/") else ""
    console.print(f"  registered as {registered}{promote}")
    if upload:
        from pipeline.training.s3 import push_version

        console.print(f"  uploaded to {push_version(version.folder, upload)}")
