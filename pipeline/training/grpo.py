"""`plumb train grpo`: Group Relative Policy Optimization with LoRA (TRL's GRPOTrainer, its current
on-policy RL trainer) on the prompts of the export's `ratings` rows: for each prompt the policy
writes `num_generations` answers, the chosen reward functions score them (pipeline/training/
rewards.py), and each answer's advantage is its reward against its group's mean, so no value model
is trained. The KL penalty to the base model (beta) keeps the policy near it; the reference is the
base with the adapter switched off."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pipeline.settings import Settings, get_settings
from pipeline.training.config import JobConfig
from pipeline.training.versions import TrainedVersion


# The reward functions of pipeline/training/rewards.py, by the names the config takes.
REWARDS = ("reward-model", "judge", "human")


@dataclass(frozen=True)
class GrpoConfig(JobConfig):
    # The pilot's PPO learning rate; short answers and two per prompt keep a CPU step to seconds
    # (on a GPU: --trl num_generations=8 max_completion_length=384 use_vllm=true).
    TRL_DEFAULTS: ClassVar[dict[str, Any]] = {
        "learning_rate": 1.41e-5,
        "beta": 0.04,
        "num_generations": 2,
        "per_device_train_batch_size": 2,
        "max_completion_length": 64,
        "num_train_epochs": 1,
        "logging_steps": 1,
        "save_strategy": "no",
    }

    rewards: tuple[str, ...] = field(
        default=("human",),
        metadata={
            "help": "Reward functions, summed (weights: --trl reward_weights=[...]): 'reward-model' (the model "
            "of a `plumb train reward` version), 'judge' (the AI judge against the user's correction, "
            "PLUMB_JUDGE_*), 'human' (users' 1-5 scores of the most similar rated answer)."
        },
    )
    reward_model: str = field(
        default="",
        metadata={"help": "The version folder `plumb train reward` wrote (or its model/ folder), for 'reward-model'."},
    )

    def problems(self) -> list[str]:
        problems = super().problems()
        if not self.rewards:
            problems.append(f"rewards is empty: choose from {', '.join(REWARDS)}")
        problems += [f"reward {name!r} is not one of {', '.join(REWARDS)}" for name in self.rewards if name not in REWARDS]
        if "reward-model" in self.rewards and not self.reward_model:
            problems.append("reward 'reward-model' needs reward_model: the folder `plumb train reward` wrote")
        if self.reward_model and "reward-model" not in self.rewards:
            problems.append(f"reward_model {self.reward_model!r} is given but 'reward-model' is not among the rewards")
        if self.reward_model and not (reward_model_folder(self.reward_model) / "config.json").is_file():
            problems.append(f"reward_model {self.reward_model!r} holds no model/ folder of a reward version")
        return problems


def reward_model_folder(path: str) -> Path:
    """The model folder of a reward version, given the version folder or the model folder itself."""
    folder = Path(path)
    return folder / "model" if (folder / "model").is_dir() else folder


def main(config: GrpoConfig, settings: Settings | None = None) -> TrainedVersion:
    """Train one GRPO version; raises a PlumbError subclass (one sentence) when it cannot."""
    from trl import GRPOConfig, GRPOTrainer

    from pipeline.training.chat import chat_model_path, load_chat_model, save_adapter
    from pipeline.training.config import trl_args
    from pipeline.training.data import ExportFolder
    from pipeline.training.lora import lora_config
    from pipeline.training.rewards import prompts_dataset
    from pipeline.training.run import finished, new_run, tracked

    settings = settings or get_settings()
    export = ExportFolder.open(config.export_dir)
    ratings = export.split("ratings")
    # No sft rows (no correction, no answer rated 4-5): the judge judges without a reference.
    has_sft = export.has_rows("sft")
    corrections = export.split("sft", columns=("prompt", "completion", "completion_source")) if has_sft else None
    train = prompts_dataset(ratings.train, corrections and corrections.train)
    validation = prompts_dataset(ratings.validation, corrections and corrections.validation) if ratings.validation else None
    base = chat_model_path(config.base_model, settings)
    run = new_run(settings, "grpo")
    args = trl_args(GRPOConfig, config, run.checkpoints, run.name)
    with tracked(run, settings, config, export, ratings.hashes, base):
        functions = _reward_functions(config, settings)
        model, tokenizer = load_chat_model(base)
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=functions,
            args=args,
            train_dataset=train,
            eval_dataset=validation,
            processing_class=tokenizer,
            peft_config=lora_config(config.lora, "CAUSAL_LM"),
        )
        run.train(trainer)
        save_adapter(trainer, run.folder)
    return finished(run)


def _reward_functions(config: GrpoConfig, settings: Settings) -> list:
    """The reward functions, in the order of `config.rewards`."""
    from pipeline.training import rewards

    functions = []
    for name in config.rewards:
        match name:
            case "reward-model":
                from pipeline.training.reward import load_encoder

                model, tokenizer = load_encoder(str(reward_model_folder(config.reward_model)))
                functions.append(rewards.reward_model_reward(model.eval(), tokenizer))
            case "judge":
                from pipeline.judge.judge import make_judge

                functions.append(rewards.judge_reward(make_judge(settings), settings.judge_concurrency))
            case "human":
                from pipeline.embeddings import make_embedder

                functions.append(rewards.human_reward(make_embedder(settings)))
    return functions
