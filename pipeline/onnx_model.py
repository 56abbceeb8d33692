"""The embedding model run by ONNX Runtime: exported once from the sentence-transformers model into
the models directory, then loaded in about a second without torch.

Hand-written rather than sentence-transformers' own ONNX backend because that backend runs through
optimum-onnx, whose releases require transformers < 4.58 while Plumbline runs transformers 5. The
steps are the ones optimum takes: torch's ONNX exporter, ONNX Runtime's transformer optimizer (fused
attention, layer norms and GELU) and its dynamic int8 quantizer. The exported graph ends with the
model's own pooling and normalisation, so it gives the vectors sentence-transformers gives.

Speed and retrieval quality per backend: `bench/bench_encoder.py`; the figures are in the README.
"""

import hashlib
import json
import logging
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from filelock import FileLock

from pipeline.prepared import prepared_folder

if TYPE_CHECKING:
    import onnx
    from transformers import PreTrainedTokenizerBase

FLOAT_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
SETTINGS_FILE = "encoder.json"  # max_seq_length, dimension and the padding token
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
EXPORT_FORMAT = "2"  # part of the folder's name: a change to what `_export` or `_quantize` writes exports again


def prepare_onnx_model(model: str, models_dir: Path, int8: bool) -> Path:
    """The ONNX file for the sentence-transformers `model` (a local folder or a cached name), made
    the first time: float32 (`int8=False`, about 90 MB for all-MiniLM-L6-v2) or with 8-bit weights
    (about 60 MB: the embedding table stays float32). Needs no network. The export folder appears by
    an atomic rename and a file lock makes a second process wait, as for the local LLM
    (`llm.local_model`)."""
    folder = models_dir / f"onnx-{Path(model).name}-{_fingerprint(model)}"
    target = folder / (INT8_FILE if int8 else FLOAT_FILE)
    if target.is_file():
        return target
    prepared_folder(folder, lambda staging: _export(model, staging))
    if int8:
        with FileLock(models_dir / f".{folder.name}.lock"):
            if not target.is_file():
                _quantize(folder / FLOAT_FILE, target)
    return target


class OnnxModel:
    """An exported model (see `prepare_onnx_model`); thread-safe, as ONNX Runtime sessions are.

    Texts are encoded with the `tokenizers` library, which loads in milliseconds: importing
    transformers' tokenizer classes imports torch (over 10 s on 2 cores), so `tokenizer`, which
    only ingestion needs to size chunks, is loaded on first use."""

    def __init__(self, path: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        self.folder = path.parent
        saved = json.loads((self.folder / SETTINGS_FILE).read_text())
        self.max_seq_length: int = saved["max_seq_length"]
        self.dimension: int = saved["dimension"]
        self._fast = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        # Cut and padded like sentence-transformers' Transformer.tokenize.
        self._fast.enable_truncation(max_length=self.max_seq_length)
        self._fast.enable_padding(pad_id=saved["pad_id"], pad_token=saved["pad_token"])
        self._session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self._inputs = [node.name for node in self._session.get_inputs()]

    @cached_property
    def tokenizer(self) -> "PreTrainedTokenizerBase":
        """The model's Hugging Face tokenizer, as sentence-transformers gives it."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.folder)

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """(len(texts), dimension) float32 unit vectors. Texts are batched longest first, as
        sentence-transformers does, so that a batch pads little; the rows come back in order."""
        order = np.argsort([-len(text) for text in texts], kind="stable")
        batches = [
            self._batch([texts[i] for i in order[start : start + batch_size]])
            for start in range(0, len(texts), batch_size)
        ]
        vectors = np.concatenate(batches)[np.argsort(order)]
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def _batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._fast.encode_batch([text.strip() for text in texts])
        features = {
            "input_ids": [e.ids for e in encodings],
            "attention_mask": [e.attention_mask for e in encodings],
            "token_type_ids": [e.type_ids for e in encodings],
        }
        feed = {name: np.array(features[name], dtype=np.int64) for name in self._inputs}
        return self._session.run(None, feed)[0].astype(np.float32, copy=False)


def _fingerprint(model: str) -> str:
    """12 hex digits that change when the model's files do, so an edited model is exported again."""
    digest = hashlib.sha256(EXPORT_FORMAT.encode())
    digest.update(str(Path(model).resolve() if Path(model).exists() else model).encode())
    if Path(model).is_dir():
        for file in sorted(Path(model).rglob("*")):
            if file.is_file():
                stat = file.stat()
                digest.update(f"{file.relative_to(model)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:12]


def _export(model: str, folder: Path) -> None:
    """Write FLOAT_FILE (fused by ONNX Runtime's transformer optimizer), the tokenizer (with
    tokenizer.json, which fast tokenizers always save) and SETTINGS_FILE."""
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from sentence_transformers import SentenceTransformer

    # Eager attention exports as plain MatMul/Softmax, the pattern the optimizer fuses into one
    # Attention node; torch's fused attention kernel does not.
    loaded = SentenceTransformer(model, device="cpu", local_files_only=True, model_kwargs={"attn_implementation": "eager"})

    class Pipeline(torch.nn.Module):
        """The whole sentence-transformers pipeline (transformer, pooling, normalisation) as one
        module of plain tensors, which is what the exporter traces."""

        def __init__(self, names: list[str]) -> None:
            super().__init__()
            self.model = loaded
            self.names = names

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(self.names, tensors, strict=True)))["sentence_embedding"]

    features = loaded.tokenizer(["a short text", "a somewhat longer text to pad"], padding=True, return_tensors="pt")
    names = [name for name in INPUTS if name in features]
    axes = {name: {0: "batch", 1: "tokens"} for name in names} | {"sentence_embedding": {0: "batch"}}
    raw = folder / "raw.onnx"
    with torch.no_grad():
        torch.onnx.export(
            Pipeline(names).eval(),
            tuple(features[name] for name in names),
            str(raw),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,  # the TorchScript exporter: the dynamo one needs onnxscript, and fuses worse
        )
    config = loaded[0].auto_model.config
    fused = optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size)
    fused.save_model_to_file(str(folder / FLOAT_FILE))
    raw.unlink()
    loaded.tokenizer.save_pretrained(folder)
    settings = {
        "max_seq_length": loaded.max_seq_length,
        "dimension": loaded.get_embedding_dimension(),
        "pad_token": loaded.tokenizer.pad_token,
        "pad_id": loaded.tokenizer.pad_token_id,
    }
    (folder / SETTINGS_FILE).write_text(json.dumps(settings))


def _quantize(source: Path, target: Path) -> None:
    """8-bit weights, per output channel and in a 7-bit range: CPUs without VNNI instructions
    saturate full-range int8 products, which cost up to 0.13 of cosine against 0.014 here. The
    nodes of `_kept_float` stay float32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_suffix(".partial")
    # The quantizer warns through the root logger (`logging.warning`), and a root logger without a
    # handler gets a stderr one then (`logging.basicConfig`): from then on every library's warnings
    # printed, pypdf's "EOF marker not found" among them. With a NullHandler on the root logger for
    # the call, no handler is added and the advice meant for ONNX Runtime's examples is not shown.
    quiet = logging.NullHandler()
    logging.getLogger().addHandler(quiet)
    try:
        quantize_dynamic(
            source,
            partial,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            nodes_to_exclude=_kept_float(onnx.load(source)),
            # The fused nodes are outside the ONNX domain, so shape inference cannot type their outputs.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        logging.getLogger().removeHandler(quiet)
    partial.rename(target)


def _kept_float(model: "onnx.ModelProto") -> list[str]:
    """The nodes left unquantized, found by leaving out one node at a time and comparing vectors
    with float32 on 300 python-docs chunks. The embedding table in 8 bits gave the lowest cosines
    (0.979 against 0.986 with it in float32) and is a lookup, so it costs no time; of the 24 matrix
    products, the first layer's FFN output projection moved the vectors most (mean cosine 0.9923
    against 0.9938), for 4% of the speed. Together: mean 0.9941, lowest 0.986."""
    return [
        node.name
        for node in model.graph.node
        if node.op_type == "EmbedLayerNormalization" or node.name.endswith("/layer.0/output/dense/MatMul")
    ]
