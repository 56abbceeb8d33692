"""The ONNX backends give the vectors sentence-transformers gives, and the setting that picks one
is checked with one clear sentence."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.embeddings import Embedder, default_model_path
from pipeline.errors import ConfigError
from pipeline.onnx_model import prepare_onnx_model
from pipeline.settings import get_settings

TEXTS = [
    "How thick are the end plates of the beam schedule?",
    "Concrete shall be cured for seven days at no less than 10 °C.",
    "B1 | UB 305x165x40 | end plate 12 mm | M20 grade 8.8 bolts",
    "The functools module is for higher-order functions: functions that act on or return other functions.",
    "ok",
]


@pytest.fixture(scope="session")
def onnx_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-models")


@pytest.mark.parametrize(("backend", "least_cosine"), [("onnx", 0.999), ("onnx-int8", 0.97)])
def test_onnx_vectors_match_sentence_transformers(
    embedder: Embedder, onnx_models_dir: Path, backend: str, least_cosine: float
) -> None:
    onnx = Embedder(default_model_path(), backend=backend, models_dir=onnx_models_dir)
    expected, got = embedder.encode(TEXTS), onnx.encode(TEXTS)
    assert got.shape == expected.shape and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (got * expected).sum(axis=1)
    assert cosines.min() > least_cosine and cosines.mean() > 0.98
    assert onnx.dimension == embedder.dimension and onnx.max_tokens == embedder.max_tokens
    assert onnx.count_cut(["word " * 300, "short"]) == 1


def test_export_is_done_once(onnx_models_dir: Path) -> None:
    first = prepare_onnx_model(default_model_path(), onnx_models_dir, int8=True)
    written = first.stat().st_mtime_ns
    assert prepare_onnx_model(default_model_path(), onnx_models_dir, int8=True) == first
    assert first.stat().st_mtime_ns == written
    assert [path.name for path in onnx_models_dir.iterdir() if path.name.startswith(".onnx-") and path.is_dir()] == []


def test_a_search_with_onnx_loads_no_torch(onnx_models_dir: Path) -> None:
    """A question is encoded without importing torch or transformers (over 10 s on 2 cores)."""
    prepare_onnx_model(default_model_path(), onnx_models_dir, int8=True)
    code = (
        "import sys\nfrom pipeline.embeddings import Embedder, default_model_path\n"
        f"embedder = Embedder(default_model_path(), backend='onnx-int8', models_dir=Path({str(onnx_models_dir)!r}))\n"
        "assert embedder.encode_one('How thick are the end plates?').shape == (384,)\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", "from pathlib import Path\n" + code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_unknown_backend_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUMB_EMBEDDING_BACKEND", "gpu")
    with pytest.raises(ConfigError) as raised:
        get_settings()
    assert str(raised.value) == "PLUMB_EMBEDDING_BACKEND is 'gpu': Input should be 'torch', 'onnx' or 'onnx-int8'."


def test_int8_keeps_the_embedding_table_and_one_product_in_float32(onnx_models_dir: Path) -> None:
    """The two nodes whose quantization moved the vectors most (see `onnx_model._kept_float`)."""
    import onnx

    graph = onnx.load(prepare_onnx_model(default_model_path(), onnx_models_dir, int8=True)).graph
    float_products = [node.name for node in graph.node if node.op_type == "MatMul"]
    assert float_products == ["/model/model.0/encoder/layer.0/output/dense/MatMul"]
    assert [node.op_type for node in graph.node if "Embed" in node.op_type] == ["EmbedLayerNormalization"]


def test_quantizing_configures_no_logging(onnx_models_dir: Path, tmp_path: Path) -> None:
    """ONNX Runtime's quantizer warns through the root logger, which gave it a stderr handler when it
    had none: every library's warnings printed after the first int8 export (pypdf's among them)."""
    import logging

    from pipeline.onnx_model import FLOAT_FILE, _quantize

    source = prepare_onnx_model(default_model_path(), onnx_models_dir, int8=False)
    assert source.name == FLOAT_FILE
    root = logging.getLogger()
    kept = root.handlers[:]  # pytest's own capture handlers
    root.handlers.clear()
    try:
        _quantize(source, tmp_path / "model.int8.onnx")
        assert root.handlers == []
    finally:
        root.handlers[:] = kept
    assert (tmp_path / "model.int8.onnx").is_file()
