"""The in-process model stops when it starts repeating itself, and at the answer's stop sequences."""

import torch
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from pipeline.chain import RagChain
from pipeline.llm.local_chat import LOOP_TOKENS, _looping
from tests.test_history_window import OnePassage

PROMPT = list(range(100, 130))


def stops(answer: list[int]) -> bool:
    return bool(_looping(len(PROMPT))(torch.tensor([PROMPT + answer]), None))


def test_an_answer_that_repeats_a_run_of_tokens_stops():
    run = list(range(1, LOOP_TOKENS + 1))
    assert not stops(run + [50])
    assert stops(run + [50, 51] + run)


def test_quoting_the_prompt_is_no_loop():
    assert not stops(PROMPT[:LOOP_TOKENS] + [7, 8, 9] + PROMPT[LOOP_TOKENS : 2 * LOOP_TOKENS])


def test_what_follows_a_stop_sequence_is_cut_from_the_answer():
    model = GenericFakeChatModel(messages=iter([AIMessage("Wind is 120 mph [1].\nQuestion: And snow?\nSnow is 25 psf.")]))
    assert RagChain(model, OnePassage(), "fake", 0.3).invoke("Wind?").answer == "Wind is 120 mph [1]."

