"""LoRA presets, named after the source material's values, and the small default this CPU runs.

The pilot's SFT adapter on Mistral-7B (r=512, alpha=1024) was 5.68% of the parameters: that is LoRA
on the four attention projections of its 32 layers (436 M of 7.68 G), so the presets target those.
Its PPO stage used r=32, alpha=64. `cpu` is small enough to train SmolLM2-135M here in seconds.
"""

from dataclasses import dataclass

ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class LoraPreset:
    r: int
    alpha: int
    dropout: float
    target_modules: tuple[str, ...] | str


LORA_PRESETS = {
    "pilot-sft": LoraPreset(r=512, alpha=1024, dropout=0.05, target_modules=ATTENTION),
    "pilot-rl": LoraPreset(r=32, alpha=64, dropout=0.05, target_modules=ATTENTION),
    "cpu": LoraPreset(r=8, alpha=16, dropout=0.0, target_modules=ATTENTION),
}


def lora_config(name: str, task_type: str, target_modules: tuple[str, ...] | str | None = None):
    """PEFT's LoraConfig for preset `name`; `target_modules` replaces the preset's (an encoder names
    its layers differently: the reward job passes "all-linear")."""
    from peft import LoraConfig

    preset = LORA_PRESETS[name]
    targets = target_modules or preset.target_modules
    return LoraConfig(
        r=preset.r,
        lora_alpha=preset.alpha,
        lora_dropout=preset.dropout,
        target_modules=targets if isinstance(targets, str) else list(targets),
        task_type=task_type,
    )
