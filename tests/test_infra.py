"""The AWS stack, synthesized offline (no AWS account, no Docker) and checked with CDK's assertions.

Synthesis takes several seconds, so it runs once for the module.
"""

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.feedback.tables import build_tables
from pipeline.settings import Settings

CONFIG = {
    "certificate_arn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
    "oidc_issuer": "https://idp.example.com",
    "oidc_authorization_endpoint": "https://idp.example.com/authorize",
    "oidc_token_endpoint": "https://idp.example.com/token",
    "oidc_user_info_endpoint": "https://idp.example.com/userinfo",
    "oidc_client_id": "plumbline",
    "oidc_client_secret_name": "plumbline/oidc",
    "hf_token_secret_name": "plumbline/hf",
    "admins": ["sub-of-ana"],
}
ROOT = Path(__file__).resolve().parent.parent
SETTING_NAMES = {f"PLUMB_{name.upper()}" for name in Settings.model_fields}


@pytest.fixture(scope="module")
def template():
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from infra.config import DeployConfig
    from infra.stack import PlumblineStack

    app = cdk.App()
    stack = PlumblineStack(app, "Plumbline", config=DeployConfig.from_context(CONFIG))
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def resources(template) -> dict[str, dict[str, Any]]:
    return template.to_json()["Resources"]


def of_type(resources: dict, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def one(resources: dict, kind: str, prefix: str = "") -> dict[str, Any]:
    (found,) = [r for name, r in of_type(resources, kind).items() if name.startswith(prefix)]
    return found["Properties"]


def statements(resources: dict, role_prefix: str) -> list[dict[str, Any]]:
    """Every policy statement attached to the role whose logical id starts with `role_prefix`."""
    (role,) = [name for name in of_type(resources, "AWS::IAM::Role") if name.startswith(role_prefix)]
    found = []
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def referenced(resource: Any) -> str:
    """The logical id an ARN expression points at, with any path after it: 'TurnsTable…/index/*'."""
    if resource == "*":
        return "*"
    if "Fn::GetAtt" in resource:
        return resource["Fn::GetAtt"][0]
    if "Ref" in resource:  # an SNS topic's ARN is its Ref
        return resource["Ref"]
    parts = resource["Fn::Join"][1]
    return parts[0]["Fn::GetAtt"][0] + "".join(p for p in parts[1:] if isinstance(p, str))


def container(resources: dict, task_prefix: str, name: str) -> dict[str, Any]:
    definitions = one(resources, "AWS::ECS::TaskDefinition", task_prefix)["ContainerDefinitions"]
    (found,) = [c for c in definitions if c["Name"] == name]
    return found


def env(definition: dict[str, Any]) -> dict[str, Any]:
    return {pair["Name"]: pair["Value"] for pair in definition.get("Environment", [])}


# --- DynamoDB ----------------------------------------------------------------------------------


def key_set(schema: list[dict]) -> set[tuple[str, str]]:
    return {(k["AttributeName"], k["KeyType"]) for k in schema}


def index_shapes(indexes: list[dict], name_key: str, schema_key: str, projection_key: str) -> dict:
    return {i[name_key]: (key_set(i[schema_key]), i[projection_key]["ProjectionType"]) for i in indexes}


@pytest.mark.parametrize("name", ["turns", "sessions", "feedback", "judgements", "pair-judgements", "reviews", "models", "escalations", "review-batches"])
def test_each_table_has_the_keys_and_indexes_the_feedback_store_declares(resources, name):
    model = getattr(build_tables(Settings(table_prefix="plumb-")), name.replace("-", "_"))
    expected = model._get_schema()
    (table,) = [
        r["Properties"]
        for r in of_type(resources, "AWS::DynamoDB::Table").values()
        if r["Properties"]["TableName"] == f"plumb-{name}"
    ]

    assert key_set(table["KeySchema"]) == key_set(expected["key_schema"])
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        (a["AttributeName"], a["AttributeType"]) for a in expected["attribute_definitions"]
    }
    assert index_shapes(table.get("LocalSecondaryIndexes", []), "IndexName", "KeySchema", "Projection") == index_shapes(
        expected["local_secondary_indexes"], "index_name", "key_schema", "projection"
    )
    assert index_shapes(
        table.get("GlobalSecondaryIndexes", []), "IndexName", "KeySchema", "Projection"
    ) == index_shapes(expected["global_secondary_indexes"], "index_name", "key_schema", "projection")


def test_tables_are_on_demand_recoverable_and_kept(resources):
    tables = of_type(resources, "AWS::DynamoDB::Table")
    assert len(tables) == 9
    for table in tables.values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["DeletionProtectionEnabled"] is True
        assert table["DeletionPolicy"] == "Retain"


# --- S3 ----------------------------------------------------------------------------------------


def test_the_bucket_is_private_encrypted_and_tls_only(template):
    from aws_cdk.assertions import Match

    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        },
    )
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )


# --- load balancer -----------------------------------------------------------------------------


def test_the_app_target_group_is_sticky_and_health_checked(resources):
    group = one(resources, "AWS::ElasticLoadBalancingV2::TargetGroup")
    attributes = {a["Key"]: a["Value"] for a in group["TargetGroupAttributes"]}
    assert attributes["stickiness.enabled"] == "true"
    assert attributes["stickiness.type"] == "lb_cookie"
    assert int(attributes["stickiness.lb_cookie.duration_seconds"]) >= 8 * 3600
    assert (group["Port"], group["HealthCheckPath"]) == (8501, "/_stcore/health")


def test_https_signs_users_in_with_oidc_before_forwarding(resources):
    listeners = [r["Properties"] for r in of_type(resources, "AWS::ElasticLoadBalancingV2::Listener").values()]
    (https,) = [listener for listener in listeners if listener["Port"] == 443]
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"] == [{"CertificateArn": CONFIG["certificate_arn"]}]
    oidc, forward = sorted(https["DefaultActions"], key=lambda action: action["Order"])
    assert oidc["Type"] == "authenticate-oidc"
    assert forward["Type"] == "forward"
    config = oidc["AuthenticateOidcConfig"]
    assert config["Issuer"] == CONFIG["oidc_issuer"]
    assert config["ClientId"] == CONFIG["oidc_client_id"]
    assert config["ClientSecret"].startswith("{{resolve:secretsmanager:plumbline/oidc:")
    (http,) = [listener for listener in listeners if listener["Port"] == 80]
    assert http["DefaultActions"][0]["Type"] == "redirect"


def test_only_the_load_balancer_reaches_the_app(resources):
    rules = [
        r["Properties"]
        for name, r in of_type(resources, "AWS::EC2::SecurityGroupIngress").items()
        if name.startswith("AppSg")
    ]
    assert [(rule["FromPort"], rule["SourceSecurityGroupId"]["Fn::GetAtt"][0][:16]) for rule in rules] == [
        (8501, "AlbSecurityGroup")
    ]


# --- IAM ---------------------------------------------------------------------------------------


def table_ids(resources: dict, *names: str) -> set[str]:
    return {
        logical
        for logical, r in of_type(resources, "AWS::DynamoDB::Table").items()
        if r["Properties"]["TableName"] in {f"plumb-{n}" for n in names}
    }


def dynamodb_grants(resources: dict, role_prefix: str) -> tuple[set[str], set[str]]:
    """(actions, the tables they apply to) of a role's DynamoDB statements."""
    actions, tables = set(), set()
    for statement in statements(resources, role_prefix):
        if any(a.startswith("dynamodb:") for a in as_list(statement["Action"])):
            actions |= set(as_list(statement["Action"]))
            tables |= {referenced(r).split("/")[0] for r in as_list(statement["Resource"])}
    return actions, tables


def test_the_app_role_reads_and_writes_exactly_the_feedback_tables(resources):
    actions, tables = dynamodb_grants(resources, "AppTaskRole")
    assert tables == table_ids(resources, "turns", "sessions", "feedback", "judgements", "pair-judgements", "reviews", "models", "escalations", "review-batches")
    assert {"dynamodb:PutItem", "dynamodb:Query", "dynamodb:GetItem", "dynamodb:DescribeTable"} <= actions
    assert not {"dynamodb:DeleteTable", "dynamodb:CreateTable", "dynamodb:*"} & actions


def test_the_app_role_only_reads_the_live_model_record(resources):
    (models,) = table_ids(resources, "models")
    on_models = [
        set(as_list(s["Action"]))
        for s in statements(resources, "AppTaskRole")
        if any(referenced(r).split("/")[0] == models for r in as_list(s["Resource"]))
    ]
    granted = set().union(*on_models)
    assert "dynamodb:GetItem" in granted
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} & granted


def test_the_app_publishes_escalations_to_the_experts_topic(resources):
    (topic,) = of_type(resources, "AWS::SNS::Topic")
    grants = [s for s in statements(resources, "AppTaskRole") if "sns:Publish" in as_list(s["Action"])]
    assert [r["Ref"] for g in grants for r in as_list(g["Resource"])] == [topic]


def test_the_app_role_may_only_read_the_chunk_index(resources):
    grants = [s for s in statements(resources, "AppTaskRole") if any(a.startswith("es:") for a in as_list(s["Action"]))]
    (grant,) = grants
    assert set(grant["Action"]) == {"es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"}
    domain = next(iter(of_type(resources, "AWS::OpenSearchService::Domain")))
    assert {referenced(r) for r in grant["Resource"]} == {f"{domain}/plumb-chunks", f"{domain}/plumb-chunks/*"}
    assert not [
        s for s in statements(resources, "AppTaskRole") if any(a.startswith("s3:") for a in as_list(s["Action"]))
    ]


def test_the_export_role_reads_feedback_turns_and_ai_labels_and_writes_only_the_exports_prefix(resources):
    actions, tables = dynamodb_grants(resources, "ExportTaskRole")
    assert tables == table_ids(resources, "feedback", "turns", "judgements", "pair-judgements", "reviews")
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"} & actions
    s3 = [s for s in statements(resources, "ExportTaskRole") if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    assert {referenced(r) for s in s3 for r in as_list(s["Resource"])} == {
        next(iter(of_type(resources, "AWS::S3::Bucket"))) + "/exports/*"
    }
    assert {"s3:PutObject", "s3:DeleteObject*"} <= {a for s in s3 for a in as_list(s["Action"])}


def test_no_task_role_is_granted_data_actions_on_every_resource(resources):
    for role in ("AppTaskRole", "ExportTaskRole", "IngestTaskRole", "TrainTaskRole", "VllmTaskRole", "SearchAdminRole"):
        for statement in statements(resources, role):
            data_actions = [a for a in as_list(statement["Action"]) if a.split(":")[0] in {"dynamodb", "s3", "es"}]
            if data_actions:
                assert "*" not in as_list(statement["Resource"]), (role, data_actions)


# --- OpenSearch --------------------------------------------------------------------------------


def test_the_search_domain_is_private_encrypted_and_access_controlled(resources):
    domain = one(resources, "AWS::OpenSearchService::Domain")
    assert domain["EngineVersion"] == "OpenSearch_2.19"
    assert domain["EncryptionAtRestOptions"] == {"Enabled": True}
    assert domain["NodeToNodeEncryptionOptions"] == {"Enabled": True}
    assert domain["DomainEndpointOptions"]["EnforceHTTPS"] is True
    assert domain["AdvancedSecurityOptions"]["Enabled"] is True
    assert domain["AdvancedSecurityOptions"]["InternalUserDatabaseEnabled"] is False
    assert domain["AdvancedSecurityOptions"]["MasterUserOptions"]["MasterUserARN"]["Fn::GetAtt"][0].startswith(
        "SearchAdminRole"
    )
    assert len(domain["VPCOptions"]["SubnetIds"]) == 2
    assert domain["ClusterConfig"]["ZoneAwarenessEnabled"] is True


# --- containers --------------------------------------------------------------------------------


def test_the_app_container_uses_opensearch_vllm_and_the_load_balancers_identity(resources):
    app = container(resources, "AppTask", "app")
    variables = env(app)
    assert set(variables) <= SETTING_NAMES
    assert variables["PLUMB_INDEX_BACKEND"] == "opensearch"
    assert variables["PLUMB_LLM_BACKEND"] == "openai"
    assert variables["PLUMB_LLM_BASE_URL"] == "http://vllm:8000/v1"
    assert variables["PLUMB_DEV_MODE"] == "false"
    assert variables["PLUMB_USER_HEADER"] == "x-amzn-oidc-identity"
    assert variables["PLUMB_ADMINS"] == '["sub-of-ana"]'
    assert variables["PLUMB_TABLE_PREFIX"] == "plumb-"
    assert app["PortMappings"][0]["ContainerPort"] == 8501


def test_every_plumb_variable_of_every_job_is_a_setting(resources):
    for task in of_type(resources, "AWS::ECS::TaskDefinition").values():
        for definition in task["Properties"]["ContainerDefinitions"]:
            assert {k for k in env(definition) if k.startswith("PLUMB_")} <= SETTING_NAMES


def test_jobs_run_the_commands_the_init_job_runs_locally(resources):
    assert container(resources, "ExportTask", "export")["Command"][:3] == ["plumb", "export", "--out"]
    one(resources, "AWS::Events::Rule")  # the nightly export


def rendered(value: Any, bucket: str) -> str:
    """A string of the template with the bucket's name put in for its reference."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        assert value["Ref"].startswith("DataBucket"), value
        return bucket
    separator, parts = value["Fn::Join"]
    return separator.join(rendered(part, bucket) for part in parts)


def test_ingest_is_a_batch_array_job_whose_children_are_the_shards(resources):
    job = one(resources, "AWS::Batch::JobDefinition", "IngestJob")
    assert job["Type"] == "container" and job["PlatformCapabilities"] == ["FARGATE"]
    container_props = job["ContainerProperties"]
    assert container_props["JobRoleArn"]["Fn::GetAtt"][0].startswith("IngestTaskRole")
    variables = env(container_props)
    assert set(variables) <= SETTING_NAMES and variables["PLUMB_INDEX_BACKEND"] == "opensearch"
    shell, flag, script = container_props["Command"]
    assert (shell, flag) == ("sh", "-c")
    script = rendered(script, "plumb-data")
    for index, size, shard in [("0", "4", "1/4"), ("3", "4", "4/4"), (None, None, "1/1")]:
        batch_env = {"AWS_BATCH_JOB_ARRAY_INDEX": index, "AWS_BATCH_JOB_ARRAY_SIZE": size} if index else {}
        # The shell, as the container runs it, with `plumb` replaced by echo.
        shown = subprocess.run(
            ["sh", "-c", script.replace("plumb ", "echo plumb ")],
            env={"PATH": "/usr/bin:/bin", **batch_env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        assert shown == ["plumb index init", f"plumb ingest s3://plumb-data/documents --shard {shard}"]

    compute = one(resources, "AWS::Batch::ComputeEnvironment", "IngestCompute")
    assert compute["ComputeResources"]["Type"] == "FARGATE" and compute["ComputeResources"]["MaxvCpus"] == 32
    assert [g["Fn::GetAtt"][0] for g in compute["ComputeResources"]["SecurityGroupIds"]] == [
        next(name for name in of_type(resources, "AWS::EC2::SecurityGroup") if name.startswith("JobsSg"))
    ]
    queue = one(resources, "AWS::Batch::JobQueue", "IngestQueue")
    (order,) = queue["ComputeEnvironmentOrder"]
    assert order["ComputeEnvironment"]["Fn::GetAtt"][0].startswith("IngestCompute")
    assert not [name for name in of_type(resources, "AWS::ECS::TaskDefinition") if name.startswith("IngestTask")]


def test_the_ingest_role_reads_only_the_documents_prefix(resources):
    s3 = [s for s in statements(resources, "IngestTaskRole") if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    bucket = next(iter(of_type(resources, "AWS::S3::Bucket")))
    assert {referenced(r) for s in s3 for r in as_list(s["Resource"])} == {bucket, f"{bucket}/documents/*"}
    assert {a for s in s3 for a in as_list(s["Action"])} >= {"s3:GetObject*", "s3:List*"}
    assert not [a for s in s3 for a in as_list(s["Action"]) if a.startswith(("s3:Put", "s3:Delete"))]


def test_vllm_runs_on_a_gpu_with_the_same_image_and_adapters_as_docker_compose(resources):
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["vllm"]
    vllm = container(resources, "VllmTask", "vllm")
    assert vllm["Image"] == compose["image"]
    assert vllm["Command"][0] == compose["command"][0] == "mistralai/Mistral-7B-Instruct-v0.3"
    assert "--enable-lora" in vllm["Command"]

    def vllm_variables(variables: dict) -> dict:
        return {k: v for k, v in variables.items() if k.startswith("VLLM_")}

    assert vllm_variables(env(vllm)) == vllm_variables(compose["environment"])
    assert vllm["ResourceRequirements"] == [{"Type": "GPU", "Value": "1"}]
    assert vllm["DependsOn"] == [{"ContainerName": "adapters", "Condition": "SUCCESS"}]
    template = one(resources, "AWS::EC2::LaunchTemplate")["LaunchTemplateData"]
    assert template["InstanceType"].startswith("g5.")


def test_the_app_reaches_vllm_through_service_connect_with_long_request_timeouts(resources):
    services = [r["Properties"] for r in of_type(resources, "AWS::ECS::Service").values()]
    servers = [s for s in services if s.get("ServiceConnectConfiguration", {}).get("Services")]
    (server,) = servers
    (endpoint,) = server["ServiceConnectConfiguration"]["Services"]
    assert endpoint["ClientAliases"] == [{"DnsName": "vllm", "Port": 8000}]
    assert endpoint["Timeout"]["PerRequestTimeoutSeconds"] >= 120
    assert all(s["ServiceConnectConfiguration"]["Enabled"] for s in services)


# --- configuration -----------------------------------------------------------------------------


def test_missing_configuration_is_named():
    from infra.config import DeployConfig

    with pytest.raises(ValueError, match="lacks certificate_arn.*oidc_issuer"):
        DeployConfig.from_context({"oidc_client_id": "x"})
    with pytest.raises(ValueError, match="unknown keys colour"):
        DeployConfig.from_context({**CONFIG, "colour": "blue"})


def test_an_odd_number_of_search_nodes_is_refused():
    from infra.config import DeployConfig

    with pytest.raises(ValueError, match="opensearch_data_nodes is 3"):
        DeployConfig.from_context({**CONFIG, "opensearch_data_nodes": 3})


def test_training_is_a_gpu_batch_job_that_reads_exports_and_writes_versions(resources):
    import typer

    from pipeline.cli import app

    job = one(resources, "AWS::Batch::JobDefinition", "TrainJob")
    assert job["PlatformCapabilities"] == ["EC2"]
    props = job["ContainerProperties"]
    assert props["JobRoleArn"]["Fn::GetAtt"][0].startswith("TrainTaskRole")
    assert {"Type": "GPU", "Value": "1"} in props["ResourceRequirements"]
    assert [s["Name"] for s in props["Secrets"]] == ["HF_TOKEN"]
    assert {k for k in env(props) if k.startswith("PLUMB_")} <= SETTING_NAMES
    # The command as Batch runs it, each Ref::name replaced by the job's parameters.
    parameters = {"job": "dpo", "export": "s3://plumb-data/exports/20260101T000000Z-abc123", "base_model": "m", "lora": "pilot-rl"}
    command = [parameters.get(p.removeprefix("Ref::"), p) if isinstance(p, str) else rendered(p, "plumb-data") for p in props["Command"]]
    assert command[:4] == ["plumb", "train", "dpo", parameters["export"]]
    assert command[-2:] == ["--upload", "s3://plumb-data/model-versions"]
    dpo = typer.main.get_command(app).commands["train"].commands["dpo"]
    given = dpo.make_context("dpo", command[3:]).params  # the CLI takes these arguments and options
    assert (given["export_dir"], given["base_model"], given["lora"], given["upload"]) == (
        parameters["export"], "m", "pilot-rl", "s3://plumb-data/model-versions"
    )
    assert set(job["Parameters"]) == set(parameters) and job["Parameters"]["lora"] == "pilot-sft"

    compute = one(resources, "AWS::Batch::ComputeEnvironment", "TrainCompute")["ComputeResources"]
    assert (compute["Type"], compute["InstanceTypes"], compute["MinvCpus"]) == ("EC2", ["g6e.2xlarge"], 0)
    (order,) = one(resources, "AWS::Batch::JobQueue", "TrainQueue")["ComputeEnvironmentOrder"]
    assert order["ComputeEnvironment"]["Fn::GetAtt"][0].startswith("TrainCompute")


def test_the_training_role_reads_exports_and_writes_only_model_versions(resources):
    s3 = [s for s in statements(resources, "TrainTaskRole") if any(a.startswith("s3:") for a in as_list(s["Action"]))]
    bucket = next(iter(of_type(resources, "AWS::S3::Bucket")))
    reads = {referenced(r) for s in s3 if "s3:GetObject*" in as_list(s["Action"]) for r in as_list(s["Resource"])}
    writes = {referenced(r) for s in s3 if "s3:PutObject" in as_list(s["Action"]) for r in as_list(s["Resource"])}
    assert reads == {bucket, f"{bucket}/exports/*"} and writes == {f"{bucket}/model-versions/*"}
    assert not [a for s in s3 for a in as_list(s["Action"]) if a.startswith("s3:Delete")]
