"""The JSON a judge must reply with, as pydantic models: their JSON schema goes to the server as
`response_format` (vLLM enforces it by guided decoding, the local model by xgrammar), and every
reply is validated here again, since not every endpoint enforces a schema."""

from typing import Any, Literal

from pydantic import BaseModel, Field

from pipeline.records import JudgeScore


class ScoreVerdict(BaseModel):
    """A score with the comment that explains it; the comment comes first so the model reasons
    before it commits to a number."""

    comment: str = Field(min_length=1, max_length=400)
    score: JudgeScore


class PairVerdict(BaseModel):
    """Which of two answers is better: "A", "B" or "tie"."""

    comment: str = Field(min_length=1, max_length=400)
    better: Literal["A", "B", "tie"]


def response_format(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAI `response_format` that asks for JSON matching `model`'s schema."""
    schema = model.model_json_schema()
    schema["additionalProperties"] = False
    return {"type": "json_schema", "json_schema": {"name": model.__name__, "schema": schema, "strict": True}}
