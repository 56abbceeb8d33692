"""The OpenAI-compatible client: how settings map onto it, and how a dead endpoint is reported.

Answers from a real server (vLLM) are tested in test_vllm_integration.py.
"""

import asyncio
import socket

import pytest
from langchain_core.messages import HumanMessage

from pipeline.errors import ModelUnavailable
from pipeline.llm import check_llm, make_llm, model_id
from pipeline.llm.openai_chat import EndpointChatModel
from pipeline.settings import Settings

QUESTION = [HumanMessage("What is the capital of France?")]


def dead_url() -> str:
    """The address of a loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def openai_settings(**overrides) -> Settings:
    return Settings(**{"llm_backend": "openai", "llm_max_retries": 0, **overrides})


def test_settings_shape_the_client():
    settings = openai_settings(
        llm_base_url="http://models.internal:8000/v1",
        llm_model="mistral-7b",
        llm_api_key="secret",
        llm_timeout=12.5,
        llm_max_retries=3,
        max_new_tokens=99,
        temperature=0.3,
    )

    llm = make_llm(settings)

    assert isinstance(llm, EndpointChatModel)
    assert llm.openai_api_base == "http://models.internal:8000/v1"
    assert llm.model_name == model_id(llm) == "mistral-7b"
    assert llm.openai_api_key.get_secret_value() == "secret"
    assert (llm.request_timeout, llm.max_retries, llm.max_tokens, llm.temperature) == (12.5, 3, 99, 0.3)
    assert llm.streaming and llm.stream_usage


def test_an_adapter_is_asked_for_by_its_own_name():
    llm = make_llm(openai_settings(llm_model="mistral-7b", llm_adapter="plumb-sft-3"))

    assert model_id(llm) == "plumb-sft-3"


def test_check_llm_on_a_dead_endpoint_says_what_to_do():
    url = dead_url()

    with pytest.raises(ModelUnavailable) as caught:
        check_llm(openai_settings(llm_base_url=url))

    assert str(caught.value) == (f"The model endpoint at {url} is not answering: start vLLM or set PLUMB_LLM_BASE_URL.")


def test_a_dead_endpoint_fails_every_way_of_asking_with_model_unavailable():
    llm = make_llm(openai_settings(llm_base_url=dead_url()))

    with pytest.raises(ModelUnavailable, match="is not answering"):
        llm.invoke(QUESTION)
    with pytest.raises(ModelUnavailable, match="is not answering"):
        list(llm.stream(QUESTION))
    with pytest.raises(ModelUnavailable, match="is not answering"):
        asyncio.run(llm.ainvoke(QUESTION))


def test_a_dead_endpoint_fails_async_streaming_with_model_unavailable():
    llm = make_llm(openai_settings(llm_base_url=dead_url()))

    async def read_all() -> list:
        return [chunk async for chunk in llm.astream(QUESTION)]

    with pytest.raises(ModelUnavailable, match="is not answering"):
        asyncio.run(read_all())
