"""The registry of trained versions: MLflow's model registry, in the tracking store the settings name.

Chat adapters (sft, dpo, kto, grpo) are numbered under the registered model `plumb-chat`, reward
models under `plumb-reward`, so a version is named "plumb-chat/3". Each MLflow model version keeps
the folder as its source and the lineage and metrics of its plumb_model.json as tags (`job`,
`base_model`, `export_id`, `created_at`, `mlflow_run_id`, and `data_hashes`, `config`, `metrics` as
JSON), so `mlflow ui` and `plumb model list` show where a version came from.
"""

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PlumbError
from pipeline.models.errors import UnknownVersion
from pipeline.models.manifest import CHAT_JOBS, CHAT_MODEL, REWARD_MODEL, VersionFolder, read_version_folder
from pipeline.settings import Settings

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

VERSION_NAME = re.compile(r"^(plumb-chat|plumb-reward)/([1-9][0-9]*)$")


@dataclass(frozen=True)
class RegisteredVersion:
    """One version as the registry holds it; `name` is "plumb-chat/3", `folder` the version folder."""

    name: str
    folder: Path
    job: str
    base_model: str
    export_id: str
    created_at: str
    metrics: dict[str, float]
    config: dict

    @property
    def is_chat(self) -> bool:
        return self.job in CHAT_JOBS

    @property
    def adapter(self) -> Path:
        return self.folder / "adapter"


def register_version(folder: Path, settings: Settings) -> str:
    """Register the version in `folder` (checked first: BadVersionFolder names what is wrong) and
    return its name, e.g. "plumb-chat/3". A folder registered before gets its existing name back, so
    `plumb train` and a later `plumb model register` of the same folder make one version."""
    version = read_version_folder(folder)
    uri = settings.mlflow_uri
    with _registry(uri) as client:
        for known in _versions(client, version.registered_model):
            if known.source == str(version.path):
                return f"{known.name}/{known.version}"
        _ensure_registered_model(client, version.registered_model)
        created = client.create_model_version(
            version.registered_model,
            source=str(version.path),
            run_id=version.manifest.mlflow_run_id or None,
            tags=_tags(version),
            description=f"{version.manifest.job} on {version.manifest.base_model} from export {version.manifest.export_id}",
        )
    return f"{created.name}/{created.version}"


def list_versions(settings: Settings) -> list[RegisteredVersion]:
    """Every registered version, chat adapters first, each model's newest first."""
    with _registry(settings.mlflow_uri) as client:
        found = [_registered(v) for model in (CHAT_MODEL, REWARD_MODEL) for v in _versions(client, model)]
    return sorted(found, key=lambda v: (v.name.split("/")[0], -int(v.name.split("/")[1])))


def get_version(name: str, settings: Settings) -> RegisteredVersion:
    """The version called `name` ("plumb-chat/3"); UnknownVersion when the name is malformed or not registered."""
    match = VERSION_NAME.match(name)
    if not match:
        raise UnknownVersion(f"{name!r} is not a version name: versions are named like 'plumb-chat/3' (`plumb model list`).")
    from mlflow.exceptions import MlflowException

    uri = settings.mlflow_uri
    with _registry(uri) as client:
        try:
            return _registered(client.get_model_version(match[1], match[2]))
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
    raise UnknownVersion(f"No version {name} is registered in {uri}: `plumb model list` shows those that are.")


@contextmanager
def _registry(uri: str) -> Iterator["MlflowClient"]:
    """A client of the registry at `uri`, whose failures (server down, refused request) end as one sentence."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    except MlflowException as exc:
        raise PlumbError(f"The model registry at {uri} failed: {exc.message.splitlines()[0]}") from exc


def _versions(client: "MlflowClient", model: str) -> list["ModelVersion"]:
    return list(client.search_model_versions(f"name='{model}'"))


def _ensure_registered_model(client: "MlflowClient", model: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(model, description=_DESCRIPTIONS[model])
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":  # registered by an earlier or concurrent call
            raise


_DESCRIPTIONS = {
    CHAT_MODEL: "LoRA adapters of the chat model, trained on users' feedback (SFT, DPO, KTO, GRPO).",
    REWARD_MODEL: "Reward models trained on preference pairs from users' feedback.",
}


def _tags(version: VersionFolder) -> dict[str, str]:
    manifest = version.manifest
    return {
        "job": manifest.job,
        "base_model": manifest.base_model,
        "export_id": manifest.export_id,
        "created_at": manifest.created_at.isoformat(),
        "mlflow_run_id": manifest.mlflow_run_id,
        "data_hashes": json.dumps(manifest.data_hashes, sort_keys=True),
        "config": json.dumps(manifest.config, sort_keys=True),
        "metrics": json.dumps(manifest.metrics, sort_keys=True),
    }


def _registered(version: "ModelVersion") -> RegisteredVersion:
    tags = version.tags
    return RegisteredVersion(
        name=f"{version.name}/{version.version}",
        folder=Path(version.source),
        job=tags["job"],
        base_model=tags["base_model"],
        export_id=tags["export_id"],
        created_at=tags["created_at"],
        metrics=json.loads(tags["metrics"]),
        config=json.loads(tags["config"]),
    )
