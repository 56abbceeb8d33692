"""Trained model versions: the registry (MLflow's model registry), the live version every app replica
reads (a DynamoDB item), and the serving of a version's LoRA adapter in-process or by vLLM.

`plumb train` calls `register_version(folder, settings)` at the end of a run; `plumb model` lists,
registers, promotes and rolls back versions.
"""

from pipeline.models.registry import register_version

__all__ = ["register_version"]
