"""All configuration in one place: `PLUMB_*` environment variables or an optional `.env` file.

Every job and the app read settings through `get_settings()`; nothing else reads the environment,
so tests can point the whole system at a temporary directory by setting variables.
"""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.errors import ConfigError

EmbeddingBackend = Literal["torch", "onnx", "onnx-int8"]


class Settings(BaseSettings):
    """Plumbline's settings. Each field is the environment variable `PLUMB_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="PLUMB_", env_file=".env", extra="ignore")

    data_dir: Path = Field(Path(".plumb"), description="Where the index, models, outbox and local DynamoDB live.")

    # Ingestion and retrieval
    embedding_model: str = Field(
        "", description="Path or name of a sentence-transformers model; empty means the packaged all-MiniLM-L6-v2."
    )
    embedding_backend: EmbeddingBackend = Field(
        "onnx",
        description="How the embedding model runs: 'torch' (sentence-transformers), 'onnx' (ONNX Runtime, exported "
        "once into the models folder; starts without torch) or 'onnx-int8' (8-bit weights: twice as fast, "
        "one dense hit@3 question lost of 54).",
    )
    chunk_tokens: int = Field(
        200,
        gt=0,
        description="Word pieces of the embedding model per chunk, at most what it reads less its special tokens "
        "(254 for all-MiniLM-L6-v2).",
    )
    chunk_overlap_tokens: int = Field(40, ge=0, description="Word pieces shared by neighbouring chunks.")
    index_backend: Literal["embedded", "opensearch"] = Field("embedded", description="Vector index implementation.")
    top_k: int = Field(5, gt=0, le=50, description="Passages given to the model per question.")
    min_relevance: float = Field(
        0.30, description="Cosine similarity under which the best passage is judged not relevant ('not covered')."
    )
    opensearch_url: str = Field("http://localhost:9200", description="OpenSearch endpoint (index_backend=opensearch).")
    opensearch_index: str = Field("plumb-chunks", description="OpenSearch index name.")
    opensearch_user: str = Field("", description="OpenSearch basic-auth user; empty for none.")
    opensearch_password: str = Field("", description="OpenSearch basic-auth password.")

    # The model that answers
    llm_backend: Literal["local", "openai"] = Field(
        "local", description="'local': packaged SmolLM2 in-process; 'openai': an OpenAI-compatible endpoint (vLLM)."
    )
    llm_base_url: str = Field("http://localhost:8000/v1", description="OpenAI-compatible endpoint (llm_backend=openai).")
    llm_model: str = Field("mistralai/Mistral-7B-Instruct-v0.3", description="Served model name (llm_backend=openai).")
    llm_adapter: str = Field("", description="LoRA adapter served by vLLM to use instead of the base model; empty for none.")
    llm_api_key: str = Field("not-needed", description="API key for the endpoint; vLLM ignores it unless started with one.")
    llm_timeout: float = Field(60.0, gt=0, description="Seconds before a model request is abandoned.")
    llm_max_retries: int = Field(2, ge=0, description="Retries of a failed model request.")
    max_new_tokens: int = Field(384, gt=0, description="Longest answer, in tokens.")
    temperature: float = Field(0.1, ge=0, description="Sampling temperature.")

    # The AI judge (RLAIF): another model scores answers; in production a stronger one than answers
    judge_backend: Literal["local", "openai"] = Field(
        "local",
        description="'local': the packaged SmolLM2 in-process, a demo judge too small to trust; 'openai': an "
        "OpenAI-compatible endpoint (vLLM serving a stronger model).",
    )
    judge_base_url: str = Field("http://localhost:8000/v1", description="The judge's endpoint (judge_backend=openai).")
    judge_model: str = Field(
        "mistralai/Mistral-7B-Instruct-v0.3", description="The judge's served model name (judge_backend=openai)."
    )
    judge_api_key: str = Field("not-needed", description="API key for the judge's endpoint.")
    judge_max_tokens: int = Field(256, gt=0, description="Longest judgement (score and comment), in tokens.")
    judge_attempts: int = Field(
        3, ge=1, description="Tries per turn when the judge's reply is not a valid judgement; then it is counted failed."
    )
    judge_concurrency: int = Field(8, ge=1, le=64, description="Requests the judge job keeps in flight at once.")
    judge_online: bool = Field(
        False, description="Judge each new turn in the background once it is stored (reference-free), never delaying the answer."
    )

    # Feedback store
    dynamodb_endpoint: str = Field(
        "", description="DynamoDB endpoint URL; empty means AWS itself. Dev and tests set DynamoDB Local's."
    )
    aws_region: str = Field("us-east-1", description="AWS region of the DynamoDB tables.")
    table_prefix: str = Field("plumb-", description="Prefix of the DynamoDB table names.")

    # Users
    dev_mode: bool = Field(True, description="Users type a name once; off means identity comes from a proxy or OIDC.")
    user_header: str = Field(
        "", description="Trusted proxy header that carries the user's identity (e.g. X-Forwarded-Email)."
    )
    admins: list[str] = Field(default_factory=list, description="Users with the admin role (JSON list).")

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"


def settings_table() -> str:
    """The settings as the Markdown table in the README (a test keeps the two equal)."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory else field.default
        rows.append(f"| `PLUMB_{name.upper()}` | `{default}` | {field.description} |")
    return "\n".join(rows)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once. Raises ConfigError naming the first bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "PLUMB_" + "_".join(str(part) for part in error["loc"]).upper()
        raise ConfigError(f"{name} is {error['input']!r}: {error['msg']}.") from exc
