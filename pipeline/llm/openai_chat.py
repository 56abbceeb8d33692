"""The model behind an OpenAI-compatible endpoint: vLLM in production, serving Mistral-7B-Instruct
and the LoRA adapters trained from users' feedback, each adapter under its own model name."""

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import openai
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

from pipeline.errors import ModelUnavailable
from pipeline.settings import Settings


def served_model(settings: Settings) -> str:
    """The model name to ask for: the adapter when one is set, since vLLM serves it by its own name."""
    return settings.llm_adapter or settings.llm_model


def not_answering(base_url: str) -> ModelUnavailable:
    return ModelUnavailable(f"The model endpoint at {base_url} is not answering: start vLLM or set PLUMB_LLM_BASE_URL.")


@contextmanager
def _endpoint_errors(base_url: str) -> Iterator[None]:
    """Turn the client's failures into ModelUnavailable, one sentence each that says what to do."""
    try:
        yield
    except openai.APITimeoutError as error:  # before APIConnectionError, its base class
        raise ModelUnavailable(
            f"The model endpoint at {base_url} took longer than PLUMB_LLM_TIMEOUT to answer: ask again, or raise the timeout."
        ) from error
    except openai.APIConnectionError as error:
        raise not_answering(base_url) from error
    except openai.RateLimitError as error:
        raise ModelUnavailable(
            f"The model endpoint at {base_url} is busy (too many requests): wait a moment and ask again."
        ) from error
    except openai.InternalServerError as error:
        raise ModelUnavailable(
            f"The model endpoint at {base_url} failed on its side (HTTP {error.status_code}): ask again, "
            "and tell the operator if it keeps failing."
        ) from error
    except openai.BadRequestError as error:
        if "context length" in str(error.message).lower() or "too long" in str(error.message).lower():
            raise ModelUnavailable(
                "The question with its passages and conversation is longer than the model reads: start a new "
                "conversation or ask a shorter question."
            ) from error
        raise ModelUnavailable(f"The model endpoint at {base_url} refused the request: {error.message}") from error
    except openai.AuthenticationError as error:
        raise ModelUnavailable(
            f"The model endpoint at {base_url} refused the API key: set PLUMB_LLM_API_KEY."
        ) from error
    except openai.NotFoundError as error:
        raise ModelUnavailable(
            f"The model endpoint at {base_url} does not serve the model asked for ({error.message}): "
            "set PLUMB_LLM_MODEL or PLUMB_LLM_ADAPTER to a model it serves."
        ) from error


class EndpointChatModel(ChatOpenAI):
    """ChatOpenAI whose endpoint failures arrive as the project's ModelUnavailable, so the app and the
    CLI can show one clear sentence instead of a client stack trace."""

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        with _endpoint_errors(self.openai_api_base):
            return super()._generate(*args, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        with _endpoint_errors(self.openai_api_base):
            yield from super()._stream(*args, **kwargs)

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        with _endpoint_errors(self.openai_api_base):
            return await super()._agenerate(*args, **kwargs)

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        with _endpoint_errors(self.openai_api_base):
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk


def make_openai_llm(settings: Settings) -> EndpointChatModel:
    """A streaming client of the endpoint that reports token usage on its last chunk."""
    return EndpointChatModel(
        base_url=settings.llm_base_url,
        model=served_model(settings),
        api_key=settings.llm_api_key,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        temperature=settings.temperature,
        max_tokens=settings.max_new_tokens,
        streaming=True,
        stream_usage=True,
        use_responses_api=False,
    )


def check_endpoint(settings: Settings) -> None:
    """Ask the endpoint which models it serves, and make sure the configured one is among them."""
    client = openai.OpenAI(
        base_url=settings.llm_base_url, api_key=settings.llm_api_key, timeout=settings.llm_timeout, max_retries=0
    )
    with _endpoint_errors(settings.llm_base_url):
        served = [model.id for model in client.models.list()]
    wanted = served_model(settings)
    if wanted not in served:
        setting = "PLUMB_LLM_ADAPTER" if settings.llm_adapter else "PLUMB_LLM_MODEL"
        raise ModelUnavailable(
            f"The model endpoint at {settings.llm_base_url} does not serve {wanted!r} (it serves "
            f"{', '.join(map(repr, served)) or 'nothing'}): set {setting} to one of those."
        )
