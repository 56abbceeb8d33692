"""Training the next model from an export: `plumb train sft|reward|dpo|kto|grpo EXPORT_DIR`.

Each job is one module of one shape (TRL's scripts' shape): a config dataclass holding our fields
and TRL's own config fields (`trl`), validated when it is made, and `main(config)` with every heavy
import inside. `data` reads an export through its manifest, `lora` holds the LoRA presets,
`tracking` logs each run to MLflow, `versions` writes the versioned model folder (the contract with
the model registry), `run` is the flow every job shares, `rewards` the GRPO reward functions.
"""
