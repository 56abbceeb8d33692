"""Serving the live trained version: its LoRA adapter loaded where the configured backend answers,
and a chain that picks the live version for each answer and records its exact name in the turn.

- In-process (llm_backend=local): the adapter is merged into its own copy of the packaged SmolLM2.
- vLLM (llm_backend=openai): the adapter is loaded through vLLM's runtime LoRA API
  (`POST /v1/load_lora_adapter`; the server needs VLLM_ALLOW_RUNTIME_LORA_UPDATING=true and
  `--enable-lora` with a `--max-lora-rank` at least the adapter's) and asked for by its served name.
"""

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.retrievers import BaseRetriever

from pipeline.chain import RagChain
from pipeline.errors import ConfigError, ModelUnavailable
from pipeline.llm import model_id
from pipeline.models.live import LIVE_CHECK_SECONDS, LiveVersion, LiveVersions, LiveWatch
from pipeline.settings import Settings

log = logging.getLogger(__name__)


def served_name(version: str) -> str:
    """vLLM's model name for a version's adapter: "plumb-chat/3" is served as "plumb-chat-3", a name
    that is also a folder name (vLLM's filesystem LoRA resolver names adapters by their folder)."""
    return version.replace("/", "-")


def version_model_id(version: str, settings: Settings) -> str:
    """The model id a turn answered by `version` records: "plumb-chat/3 on SmolLM2-135M-Instruct"."""
    if settings.llm_backend == "local":
        from pipeline.llm.local_model import LOCAL_MODEL_NAME

        return f"{version} on {LOCAL_MODEL_NAME}"
    return f"{version} on {settings.llm_model}"


def live_model_id(settings: Settings) -> str:
    """The model id turns are answered under now (the live version's, else the base model's), as
    turns record it; raises PlumbError when the live record cannot be read."""
    live = LiveVersions(settings).read().live
    if live is not None:
        return version_model_id(live.version, settings)
    if settings.llm_backend == "local":
        from pipeline.llm.local_model import LOCAL_MODEL_NAME

        return LOCAL_MODEL_NAME
    from pipeline.llm.openai_chat import served_model

    return served_model(settings)


def load_version(live: LiveVersion, settings: Settings) -> BaseChatModel:
    """A chat model that answers with `live`'s adapter on the configured backend. Raises
    ModelUnavailable, saying why, when the adapter cannot be loaded there."""
    match settings.llm_backend:
        case "local":
            return _local_model(live, settings)
        case "openai":
            from pipeline.llm.openai_chat import make_openai_llm

            load_into_vllm(settings, served_name(live.version), live.adapter)
            return make_openai_llm(settings.model_copy(update={"llm_adapter": served_name(live.version)}))
        case other:
            raise ConfigError(f"Unknown PLUMB_LLM_BACKEND {other!r}: use 'local' or 'openai'.")


def _local_model(live: LiveVersion, settings: Settings) -> BaseChatModel:
    from pipeline.llm.local_chat import LocalChatModel
    from pipeline.llm.local_model import prepare_local_model

    adapter = Path(live.adapter)
    if not (adapter / "adapter_config.json").is_file():
        raise ModelUnavailable(f"The adapter of {live.version} is not at {adapter} on this machine.")
    try:
        return LocalChatModel.load(
            prepare_local_model(settings.models_dir),
            model_name=version_model_id(live.version, settings),
            max_new_tokens=settings.max_new_tokens,
            temperature=settings.temperature,
            repetition_penalty=settings.repetition_penalty,
            adapter=adapter,
        )
    except (ValueError, RuntimeError, KeyError) as exc:  # PEFT's words for an adapter of another model
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailable(f"The adapter of {live.version} at {adapter} does not fit the packaged model: {reason}") from exc


def load_into_vllm(settings: Settings, name: str, adapter: str) -> None:
    """Have the vLLM server at settings.llm_base_url serve the adapter folder `adapter` as `name`,
    unless it does already. Raises ModelUnavailable, saying what to do, when it cannot."""
    import httpx

    from pipeline.llm.openai_chat import not_answering

    base = settings.llm_base_url.rstrip("/")
    headers = {"Authorization": f"Bearer {settings.llm_api_key}"}
    try:
        with httpx.Client(headers=headers, timeout=settings.llm_timeout) as client:
            listed = client.get(f"{base}/models")
            if listed.status_code == 200 and name in {model["id"] for model in listed.json()["data"]}:
                return
            loaded = client.post(f"{base}/load_lora_adapter", json={"lora_name": name, "lora_path": adapter})
    except httpx.TransportError as exc:
        raise not_answering(settings.llm_base_url) from exc
    if loaded.status_code == 200 or "already been loaded" in loaded.text:  # loaded meanwhile by another replica
        return
    if 401 in (listed.status_code, loaded.status_code):
        raise ModelUnavailable(f"The model endpoint at {base} refused the API key: set PLUMB_LLM_API_KEY.")
    body = loaded.json() if loaded.headers.get("content-type", "").startswith("application/json") else {}
    if loaded.status_code == 404 and "error" not in body:  # the route itself is missing
        raise ModelUnavailable(
            f"The model endpoint at {base} cannot load LoRA adapters at runtime: start vLLM with "
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING=true and --enable-lora."
        )
    message = body.get("error", {}).get("message") or loaded.text or f"HTTP {loaded.status_code}"
    raise ModelUnavailable(f"vLLM at {base} could not load {name} from {adapter}: {message.strip().splitlines()[0]}")


class LiveChain(RagChain):
    """A RagChain that answers with the live trained version, checked per answer (at most one record
    read per LIVE_CHECK_SECONDS), so a promote or rollback reaches this replica without a restart.

    A version is loaded once, when it becomes live. One this replica cannot load (adapter missing,
    vLLM refusing it) is not served: the base model answers, the turn records the base model's id,
    and loading is tried again after LIVE_CHECK_SECONDS.
    """

    def __init__(
        self,
        llm: BaseChatModel,
        retriever: BaseRetriever,
        model_id: str,
        min_relevance: float,
        watch: "LiveWatch | PinnedVersion",
        load: Callable[[LiveVersion], tuple[BaseChatModel, str]],
        **options: Any,
    ) -> None:
        """`options` are RagChain's own (history window, escalation detector, tracer, prompt version)."""
        super().__init__(llm=llm, retriever=retriever, model_id=model_id, min_relevance=min_relevance, **options)
        self._watch = watch
        self._load = load
        self._lock = threading.Lock()
        self._loaded: tuple[LiveVersion, BaseChatModel, str] | None = None
        self._failed: tuple[LiveVersion, float] | None = None

    def pinned(self) -> tuple[BaseChatModel, str]:
        live = self._watch.current()
        if live is None:
            return self.llm, self.model_id
        with self._lock:
            if self._loaded is None or self._loaded[0] != live:
                self._switch(live)
            if self._loaded is not None and self._loaded[0] == live:
                return self._loaded[1], self._loaded[2]
        return self.llm, self.model_id

    def _switch(self, live: LiveVersion) -> None:
        if self._failed and self._failed[0] == live and time.monotonic() - self._failed[1] < LIVE_CHECK_SECONDS:
            return
        try:
            llm, answered_by = self._load(live)
        except ModelUnavailable as error:
            self._failed = (live, time.monotonic())
            log.error("%s is live but cannot be served here (%s); the base model answers.", live.version, error)
            return
        self._loaded, self._failed = (live, llm, answered_by), None
        log.info("Now answering with %s.", answered_by)


class PinnedVersion:
    """A fixed version in place of the live record's (PLUMB_MODEL_VERSION), so two versions can be
    evaluated side by side whatever is live; None is the base model."""

    def __init__(self, live: LiveVersion | None) -> None:
        self._live = live

    def current(self) -> LiveVersion | None:
        return self._live


def pinned_version(settings: Settings) -> PinnedVersion:
    """The version PLUMB_MODEL_VERSION names ('base' or a registered chat version); UnknownVersion or
    ModelUnavailable say what is wrong with it."""
    if settings.model_version == "base":
        return PinnedVersion(None)
    from pipeline.models.registry import get_version

    version = get_version(settings.model_version, settings)
    if not version.is_chat:
        raise ModelUnavailable(f"{version.name} is a reward model: PLUMB_MODEL_VERSION names a chat version.")
    return PinnedVersion(LiveVersion(version.name, str(version.adapter), version.base_model, datetime.now(UTC)))


def make_live_chain(settings: Settings, llm: BaseChatModel, retriever: BaseRetriever, **options: Any) -> LiveChain:
    """The app's chain: `llm` (the base model) answers until a version is promoted, or the version
    PLUMB_MODEL_VERSION pins; `options` go to RagChain."""
    watch = pinned_version(settings) if settings.model_version else LiveWatch(LiveVersions(settings).read)
    return LiveChain(
        llm,
        retriever,
        model_id(llm),
        settings.min_relevance,
        watch,
        lambda live: (load_version(live, settings), version_model_id(live.version, settings)),
        **options,
    )
