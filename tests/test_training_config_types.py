"""A `--trl` value of the wrong type is named before anything loads, not met deep in training."""

import pytest

from pipeline.errors import ConfigError
from pipeline.training import grpo, sft
from pipeline.training.config import trl_args


def test_a_value_of_the_wrong_type_is_named(tmp_path):
    from trl import GRPOConfig, SFTConfig

    with pytest.raises(ConfigError, match=r"SFTConfig.learning_rate cannot be 'abc' \(input should be a valid number"):
        trl_args(SFTConfig, sft.SftConfig("x", trl={"learning_rate": "abc"}), tmp_path, "run")
    with pytest.raises(ConfigError, match=r"GRPOConfig.num_generations cannot be 2.5"):
        trl_args(GRPOConfig, grpo.GrpoConfig("x", trl={"num_generations": 2.5}), tmp_path, "run")


def test_values_of_the_right_type_pass_as_given(tmp_path):
    from trl import GRPOConfig

    config = grpo.GrpoConfig("x", trl={"learning_rate": 1, "reward_weights": [1, 0.5], "lr_scheduler_type": "cosine"})
    args = trl_args(GRPOConfig, config, tmp_path, "run")
    assert (args.learning_rate, args.reward_weights, args.lr_scheduler_type.value) == (1, [1, 0.5], "cosine")
