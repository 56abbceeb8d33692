"""All configuration in one place: `PLUMB_*` environment variables or an optional `.env` file.

Every job and the app read settings through `get_settings()`; nothing else reads the environment,
so tests can point the whole system at a temporary directory by setting variables.
"""

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

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
        "onnx-int8",
        description="How the embedding model runs: 'torch' (sentence-transformers), 'onnx' (ONNX Runtime, exported "
        "once into the models folder; starts without torch) or 'onnx-int8' (the same with 8-bit weights: three "
        "times torch's speed, with torch's hit@3 on the evaluation sets).",
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
    history_turns: int = Field(
        3, ge=0, description="Earlier question-answer pairs of a conversation that rewriting a follow-up and answering it see."
    )
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
    prompt_version: Literal["plumb-answer-v2", "plumb-answer-v3"] = Field(
        "plumb-answer-v2",
        description="The answer prompt (pipeline/prompts.py ANSWER_REQUESTS): 'plumb-answer-v2' or "
        "'plumb-answer-v3' (at most three sentences, cited sentence by sentence); compare two with "
        "`plumb eval compare --b PROMPT_VERSION=...`.",
    )
    repetition_penalty: float = Field(
        1.0,
        ge=1.0,
        description="In-process model: how much a token already in the prompt or answer is made less likely "
        "(1: not at all; 1.1 made sample answers 3.5x longer)."
    )

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

    model_version: str = Field(
        "",
        description="Answer with this registered chat version ('plumb-chat/3') or 'base' instead of the live one; "
        "empty follows `plumb model promote`. For `plumb eval compare --a MODEL_VERSION=base --b MODEL_VERSION=...`.",
    )

    # Experiment tracking: training, model versions, evaluation, traces
    mlflow_tracking_uri: str = Field(
        "",
        description="MLflow tracking server and model registry for training runs, model versions, evaluation runs "
        "and traces; empty: a SQLite store (mlflow.db) under the data directory, its artifacts in mlflow-artifacts beside it.",
    )

    trace_sample_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of turns traced to MLflow (condense, retrieve, generate spans, tagged with the turn id); "
        "0 is off: no trace store is touched.",
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
    dev_mode_on_network: bool = Field(
        False, description="Allow dev mode (names typed, no sign-in) on an address other than this machine's loopback."
    )
    admins: list[str] = Field(default_factory=list, description="Users with the admin role (JSON list).")
    experts: list[str] = Field(default_factory=list, description="Users with the expert role (JSON list).")
    reviewers: list[str] = Field(
        default_factory=list, description="Subject-matter experts who review the AI judge's scores (JSON list)."
    )

    # Escalation to a human expert
    escalation_threshold: float = Field(
        -0.5, ge=-1, le=1, description="VADER compound score (-1 … 1) at or below which a user's message calls in an expert."
    )
    escalation_llm: bool = Field(
        False, description="Also ask the judge's model for a structured yes/no when the offline checks say no (judge_backend=openai)."
    )
    escalation_hold: bool = Field(
        False, description="Hold the bot's answer to an escalated message: the user waits for the expert."
    )
    escalation_webhook_url: str = Field("", description="Slack-compatible incoming webhook told of each escalation; empty for none.")
    escalation_sns_topic: str = Field("", description="SNS topic ARN told of each escalation; empty for none.")

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def mlflow_uri(self) -> str:
        """The MLflow tracking and registry URI: the setting, else the SQLite store under the data
        directory (created here, since SQLite needs its folder), which `mlflow ui
        --backend-store-uri` opens as it is."""
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"


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
    except SettingsError as exc:
        # pydantic-settings reads a list setting as JSON before validating it and names only the field
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"PLUMB_{field[1].upper()}" if field else "A PLUMB_ setting"
        raise ConfigError(f'{name} is not valid JSON: give a list such as ["alice", "bob"].') from exc
