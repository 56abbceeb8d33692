"""The model that answers, behind LangChain's BaseChatModel.

`make_llm` picks the implementation from `settings.llm_backend`: 'local' runs the packaged SmolLM2
in-process (demo and test default), 'openai' talks to an OpenAI-compatible endpoint (vLLM in production).
"""

from langchain_core.language_models import BaseChatModel

from pipeline.errors import ConfigError
from pipeline.settings import Settings


def make_llm(settings: Settings) -> BaseChatModel:
    """Build the configured chat model; the local one is prepared on first use, which takes a while once."""
    match settings.llm_backend:
        case "local":
            from pipeline.llm.local_chat import LocalChatModel
            from pipeline.llm.local_model import LOCAL_MODEL_NAME, prepare_local_model

            return LocalChatModel.load(
                prepare_local_model(settings.models_dir),
                model_name=LOCAL_MODEL_NAME,
                max_new_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                repetition_penalty=settings.repetition_penalty,
            )
        case "openai":
            from pipeline.llm.openai_chat import make_openai_llm

            return make_openai_llm(settings)
        case other:
            raise ConfigError(f"Unknown PLUMB_LLM_BACKEND {other!r}: use 'local' or 'openai'.")


def model_id(llm: BaseChatModel) -> str:
    """The name of the model that answers, recorded with every turn so feedback names the model it judged:
    the served model or adapter for an endpoint, the packaged model's name for the local one."""
    return getattr(llm, "model_name", None) or type(llm).__name__


def check_llm(settings: Settings) -> None:
    """Raise ModelUnavailable, with what to do, when the configured model cannot answer."""
    match settings.llm_backend:
        case "local":
            from pipeline.llm.local_model import check_local_model

            check_local_model(settings.models_dir)
        case "openai":
            from pipeline.llm.openai_chat import check_endpoint

            check_endpoint(settings)
        case other:
            raise ConfigError(f"Unknown PLUMB_LLM_BACKEND {other!r}: use 'local' or 'openai'.")
