"""A fake judge model whose reply depends on what it is asked, for evaluation tests whose outcome is
worked out by hand."""

from collections.abc import Callable

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from pipeline.judge.judge import Judge

# (the prompt's text, the verdict's name: ScoreVerdict, PairVerdict or YesNoVerdict) -> the reply
Replier = Callable[[str, str], str]


class Scripted(BaseChatModel):
    """Replies with `reply(prompt, verdict name)`; counts its calls."""

    reply: Replier
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.calls += 1
        name = kwargs["response_format"]["json_schema"]["name"]
        text = "\n".join(str(message.content) for message in messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(self.reply(text, name)))])


def scripted_judge(reply: Replier, attempts: int = 1) -> Judge:
    return Judge(Scripted(reply=reply), "scripted-judge", attempts)
