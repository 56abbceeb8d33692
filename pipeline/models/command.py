"""`plumb model list | register | promote | rollback`: the commands of a typer group that
pipeline/cli.py registers. They raise PlumbError subclasses for the CLI to report."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pipeline.settings import get_settings

console = Console(soft_wrap=True)


def list_command() -> None:
    """Every registered version with its lineage and final metrics; the live one is marked."""
    from pipeline.models.live import LiveVersions
    from pipeline.models.registry import list_versions

    settings = get_settings()
    versions = list_versions(settings)
    live = LiveVersions(settings).read().live
    if not versions:
        console.print(f"No version is registered in {settings.mlflow_uri}: `plumb train` registers each one it trains.")
        return
    console.print(f"Live: {_name(live)}", markup=False)
    for version in versions:
        marker = " (live)" if live and live.version == version.name else ""
        metrics = ", ".join(f"{key} {value:.4g}" for key, value in sorted(version.metrics.items())) or "no metrics"
        console.print(
            f"{version.name}{marker} · {version.job} · created {version.created_at} · export {version.export_id} · "
            f"base {version.base_model}\n    {metrics} · {version.folder}",
            markup=False,
            highlight=False,
        )


def register_command(
    folder: Annotated[Path, typer.Argument(help="A version folder with its plumb_model.json, made by `plumb train`.")],
) -> None:
    """Register a trained version folder made elsewhere (e.g. by the training job on AWS)."""
    from pipeline.models.registry import register_version

    console.print(f"Registered {register_version(folder, get_settings())}.")


def promote_command(version: Annotated[str, typer.Argument(help="The version to make live, e.g. plumb-chat/3.")]) -> None:
    """Make a chat version live: its adapter is loaded where answers come from; app replicas follow within seconds."""
    from pipeline.models.promotion import promote

    record = promote(version, get_settings())
    console.print(f"{record.live.version} is live (it replaces {_name(record.previous[-1] if record.previous else None)}).")


def rollback_command() -> None:
    """Make the previously live version live again, or the base model when there was none."""
    from pipeline.models.promotion import rollback

    record = rollback(get_settings())
    console.print(f"{_name(record.live)} is live again.")


def _name(live) -> str:
    return live.version if live else "the base model"


MODEL_COMMANDS = {
    "list": list_command,
    "register": register_command,
    "promote": promote_command,
    "rollback": rollback_command,
}
