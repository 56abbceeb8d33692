"""A LangChain chat model that runs a transformers model in-process on the CPU, with real token streaming.

Written here rather than taken from langchain-huggingface: its ChatHuggingFace over a HuggingFacePipeline
reports no token usage, and nothing in it keeps two Streamlit users from generating on one model at once.

Like an OpenAI-compatible server, it takes `response_format={"type": "json_schema", "json_schema":
{"schema": ...}}` (as `invoke(..., response_format=...)`) and then only generates JSON that the schema
allows, by xgrammar's grammar-constrained decoding (the engine vLLM uses for the same request).
"""

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, PrivateAttr


class LocalChatModel(BaseChatModel):
    """A causal LM from a local folder, prompted through its tokenizer's chat template.

    Only human and assistant turns are accepted, as for Mistral-7B-Instruct in production, so a prompt
    that works here works there. Generation runs under a lock: the model is shared by every user of the app.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_name: str
    max_new_tokens: int
    temperature: float
    repetition_penalty: float = 1.0
    model: Any
    tokenizer: Any
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _compiler: Any = PrivateAttr(default=None)  # xgrammar's, made for this tokenizer on first use
    _grammars: dict[str, Any] = PrivateAttr(default_factory=dict)  # compiled JSON schemas by their text

    @classmethod
    def load(
        cls,
        folder: Path,
        model_name: str,
        max_new_tokens: int,
        temperature: float,
        repetition_penalty: float = 1.0,
        adapter: Path | None = None,
    ) -> "LocalChatModel":
        """Load the model and tokenizer from a prepared folder, with a PEFT LoRA adapter's weights merged
        in when `adapter` names its folder (a model of its own: the base model stays as it was)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder)
        if adapter is not None:
            from peft import PeftModel

            # Merged, so generation runs at the base model's speed with no LoRA layers in the way.
            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        model.eval()
        return cls(
            model_name=model_name,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            repetition_penalty=repetition_penalty,
            model=model,
            tokenizer=tokenizer,
        )

    @property
    def _llm_type(self) -> str:
        return "plumb-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "max_new_tokens": self.max_new_tokens, "temperature": self.temperature}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop=stop, run_manager=run_manager, **kwargs))

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        inputs = self.tokenizer.apply_chat_template(
            _chat_turns(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        sampling = self._sampling()
        if stop:
            sampling |= {"stop_strings": list(stop), "tokenizer": self.tokenizer}
        if response_format := kwargs.get("response_format"):
            sampling["logits_processor"] = [self._json_only(response_format)]
        elif self.repetition_penalty != 1.0:  # free text only: JSON repeats its quotes and braces by design
            sampling["repetition_penalty"] = self.repetition_penalty
        with self._lock:
            # JSON held to a schema repeats keys and quotes by design, and the grammar bounds it already.
            generation = _Generation(self.model, self.tokenizer, inputs, sampling, stop_loops=not response_format)
            try:
                for text in generation.streamer:
                    if text:
                        chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                        if run_manager:
                            run_manager.on_llm_new_token(text, chunk=chunk)
                        yield chunk
            finally:
                generation.finish()
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": generation.input_tokens,
                    "output_tokens": generation.output_tokens,
                    "total_tokens": generation.input_tokens + generation.output_tokens,
                },
                response_metadata={"model_name": self.model_name, "finish_reason": generation.finish_reason},
            )
        )

    def _json_only(self, response_format: dict[str, Any]) -> Any:
        """A logits processor that allows only JSON matching the request's schema; one per generation,
        since it follows the tokens generated so far. Compiled schemas are kept per model."""
        import xgrammar
        from xgrammar.contrib.hf import LogitsProcessor

        if response_format.get("type") != "json_schema" or "schema" not in response_format.get("json_schema", {}):
            raise ValueError("The local model takes response_format={'type': 'json_schema', 'json_schema': {'schema': ...}}.")
        schema = json.dumps(response_format["json_schema"]["schema"], sort_keys=True)
        if schema not in self._grammars:
            if self._compiler is None:
                info = xgrammar.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.model.config.vocab_size)
                self._compiler = xgrammar.GrammarCompiler(info)
            # Compact JSON: free white space lets a small model loop on new lines until max_new_tokens.
            self._grammars[schema] = self._compiler.compile_json_schema(schema, any_whitespace=False)
        return LogitsProcessor(self._grammars[schema])

    def _sampling(self) -> dict[str, Any]:
        """Greedy decoding at temperature 0, sampling otherwise."""
        if self.temperature == 0:
            return {"max_new_tokens": self.max_new_tokens, "do_sample": False}
        return {"max_new_tokens": self.max_new_tokens, "do_sample": True, "temperature": self.temperature}


def _chat_turns(messages: list[BaseMessage]) -> list[dict[str, str]]:
    """Messages as chat-template turns; any role but human and assistant is refused."""
    turns = []
    for message in messages:
        if isinstance(message, HumanMessage):
            role = "user"
        elif isinstance(message, AIMessage):  # AIMessageChunk too: a streamed answer kept as history
            role = "assistant"
        else:
            raise TypeError(
                f"The local model takes only human and assistant messages, not {message.type!r}: "
                "put instructions in the first human message."
            )
        turns.append({"role": role, "content": message.text})
    return turns


class _Generation:
    """One `generate` call in a worker thread, feeding a TextIteratorStreamer that the caller reads.

    `finish` also stops the worker early when the reader goes away (a closed browser tab), so an
    abandoned answer does not hold the lock until max_new_tokens.
    """

    def __init__(self, model: Any, tokenizer: Any, inputs: Any, sampling: dict[str, Any], stop_loops: bool) -> None:
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        self.input_tokens: int = inputs["input_ids"].shape[1]
        self._max_new_tokens: int = sampling["max_new_tokens"]
        self._cancelled = threading.Event()
        self._sequences: Any = None
        self._error: BaseException | None = None
        self.streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        stopping = StoppingCriteriaList([_until(self._cancelled)] + ([_looping(self.input_tokens)] if stop_loops else []))
        kwargs = {**inputs, **sampling, "streamer": self.streamer, "stopping_criteria": stopping}
        self._thread = threading.Thread(target=self._run, args=(model, kwargs), daemon=True)
        self._thread.start()

    def _run(self, model: Any, kwargs: dict[str, Any]) -> None:
        import torch

        # One intra-op thread, for this worker only (OpenMP's thread count is per calling thread): decoding
        # a 135M model one token at a time gains little from two, and on a busy machine two threads spin
        # against the other processes and decode ten times slower.
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                self._sequences = model.generate(**kwargs)
        except Exception as error:  # noqa: BLE001 - re-raised in the reader's thread by finish()
            self._error = error
            self.streamer.end()

    def finish(self) -> None:
        """Stop and wait for the worker, and raise in the caller's thread what failed in it."""
        self._cancelled.set()
        self._thread.join()
        if self._error is not None:
            raise self._error

    @property
    def output_tokens(self) -> int:
        return self._sequences.shape[1] - self.input_tokens

    @property
    def finish_reason(self) -> str:
        """As the OpenAI API says it: 'length' when cut off at max_new_tokens."""
        return "length" if self.output_tokens >= self._max_new_tokens else "stop"


LOOP_TOKENS = 12  # a run of generated tokens this long, seen before in the answer, is a loop


def _looping(prompt_tokens: int) -> Any:
    """A stopping criterion that ends generation when the last LOOP_TOKENS tokens already occur
    earlier in the answer: a small model that starts repeating itself repeats until max_new_tokens.
    Hand-written because transformers' own no_repeat_ngram_size bans repeats of the prompt too,
    which would stop the model quoting its passages."""
    from transformers import StoppingCriteria

    class Looping(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            answer = input_ids[0, prompt_tokens:].tolist()
            if len(answer) < 2 * LOOP_TOKENS:
                return False
            tail = answer[-LOOP_TOKENS:]
            earlier = answer[:-LOOP_TOKENS]
            return any(earlier[i : i + LOOP_TOKENS] == tail for i in range(len(earlier) - LOOP_TOKENS + 1))

    return Looping()


def _until(event: threading.Event) -> Any:
    """A stopping criterion that ends generation once `event` is set."""
    from transformers import StoppingCriteria

    class UntilSet(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            return event.is_set()

    return UntilSet()
