"""Promote and roll back: change the live version, after proving the backend can serve it.

The adapter is loaded where answers come from (vLLM at PLUMB_LLM_BASE_URL through its runtime LoRA
API, or the packaged model in-process) before the record changes, so a version that cannot be served
never goes live; replicas then pick up the record within LIVE_CHECK_SECONDS.
"""

from datetime import UTC, datetime

from pipeline.models.errors import UnknownVersion
from pipeline.models.live import LiveRecord, LiveVersion, LiveVersions
from pipeline.models.registry import get_version
from pipeline.models.serving import load_version
from pipeline.settings import Settings


def promote(name: str, settings: Settings) -> LiveRecord:
    """Make the registered chat version `name` ("plumb-chat/3") live. Raises UnknownVersion for a name
    not registered or not a chat version, ModelUnavailable when the backend cannot load its adapter,
    LiveConflict when it is live already or the record changed meanwhile."""
    version = get_version(name, settings)
    if not version.is_chat:
        raise UnknownVersion(f"{name} is a {version.job} model; only chat versions (sft, dpo, kto, grpo) answer.")
    load_version(LiveVersion(name, str(version.adapter), version.base_model, datetime.now(UTC)), settings)
    return LiveVersions(settings).promote(name, str(version.adapter), version.base_model)


def rollback(settings: Settings) -> LiveRecord:
    """Make the previously live version live again (loaded first, as in promote), or the base model."""
    store = LiveVersions(settings)
    record = store.read()
    if record.live is not None and record.previous:
        load_version(record.previous[-1], settings)
    return store.rollback()
