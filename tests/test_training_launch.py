"""The accelerate configs shipped for multi-GPU training parse with accelerate's own loader, as
`accelerate launch --config_file` reads them."""

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.utils import DistributedType

CONFIGS = Path(__file__).resolve().parent.parent / "pipeline" / "training" / "accelerate"


@pytest.mark.parametrize(("name", "kind"), [("ddp.yaml", DistributedType.MULTI_GPU), ("fsdp.yaml", DistributedType.FSDP)])
def test_each_accelerate_config_parses(name, kind):
    config = load_config_from_file(str(CONFIGS / name))
    assert isinstance(config, ClusterConfig) and config.distributed_type == kind
    assert config.mixed_precision == "bf16" and config.num_machines == 1 and not config.use_cpu
    if kind == DistributedType.FSDP:
        assert config.fsdp_config["fsdp_version"] == 2 and config.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
