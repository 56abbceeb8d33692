"""What differs between deployments, read from the CDK context key `plumbline` (cdk.json or `-c`)."""

from dataclasses import MISSING, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class DeployConfig:
    """One deployment's choices. The identity provider's endpoints are in its discovery document
    (`<issuer>/.well-known/openid-configuration`); the two secrets are created beforehand in
    Secrets Manager as plain strings, so no secret passes through CloudFormation."""

    certificate_arn: str  # ACM certificate for the app's HTTPS listener
    oidc_issuer: str
    oidc_authorization_endpoint: str
    oidc_token_endpoint: str
    oidc_user_info_endpoint: str
    oidc_client_id: str
    oidc_client_secret_name: str  # Secrets Manager secret holding the OIDC client secret
    hf_token_secret_name: str  # Secrets Manager secret holding a model hub token for Mistral's gated weights
    admins: tuple[str, ...] = ()  # OIDC subjects (the `sub` claim) of the admins
    app_replicas: int = 2
    vllm_replicas: int = 1
    vllm_instance_type: str = "g5.2xlarge"
    # `plumb train` on AWS Batch: one L40S (48 GB) holds Mistral-7B in bf16 with the pilot's r=512 adapter;
    # a several-GPU type (g6e.12xlarge) runs the same job under `accelerate launch`.
    train_instance_type: str = "g6e.2xlarge"
    opensearch_data_nodes: int = 2
    opensearch_instance_type: str = "r6g.large.search"
    table_prefix: str = "plumb-"

    def __post_init__(self) -> None:
        if self.app_replicas < 1 or self.vllm_replicas < 1:
            raise ValueError(
                f"app_replicas ({self.app_replicas}) and vllm_replicas ({self.vllm_replicas}) must be at least 1."
            )
        if self.opensearch_data_nodes < 2 or self.opensearch_data_nodes % 2:
            raise ValueError(
                f"opensearch_data_nodes is {self.opensearch_data_nodes}: use an even number, at least 2, "
                "so that both availability zones hold a copy of every shard."
            )

    @classmethod
    def from_context(cls, values: dict[str, Any] | None) -> "DeployConfig":
        """The config from the context's `plumbline` object, naming what is missing or unknown."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.default is MISSING}
        if missing := sorted(required - values.keys()):
            raise ValueError(f"The CDK context 'plumbline' lacks {', '.join(missing)}: see infra/cdk.json.")
        if unknown := sorted(values.keys() - known):
            raise ValueError(f"The CDK context 'plumbline' has unknown keys {', '.join(unknown)}.")
        if "admins" in values:
            values["admins"] = tuple(values["admins"])
        return cls(**values)
