"""Plumbline on AWS, one stack:

- the Streamlit app on ECS Fargate behind an Application Load Balancer that signs users in with
  OIDC and keeps each browser on one task (sticky sessions: Streamlit keeps a conversation's state
  in the task that serves its websocket);
- vLLM on ECS on EC2 GPU instances (g5), the same image as docker-compose's, reached by the app
  through ECS Service Connect at http://vllm:8000;
- the feedback tables in DynamoDB, the chunk index in an OpenSearch domain inside the VPC, and an
  S3 bucket for documents to ingest, training exports and LoRA adapters;
- ingestion as an AWS Batch array job on Fargate: each child creates the index if it is missing and
  indexes its shard of s3://bucket/documents/ (`--shard` from the child's array index);
- the nightly feedback export, an ECS task on Fargate;
- `plumb train` as an AWS Batch job on GPU instances, reading an export from s3://bucket/exports/
  and writing the version it trains to s3://bucket/model-versions/.

Each task has its own IAM role with only what it uses.
"""

import json
from pathlib import Path

from aws_cdk import CfnOutput, Duration, RemovalPolicy, SecretValue, Size, Stack
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_batch as batch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_opensearchservice as opensearch
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import DeployConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_PORT = 8501
VLLM_PORT = 8000
BASE_MODEL = "mistralai/Mistral-7B-Instruct-v0.3"
VLLM_IMAGE = "vllm/vllm-openai:v0.32.0"
AWS_CLI_IMAGE = "amazon/aws-cli:2.17.0"
INDEX_NAME = "plumb-chunks"
# Documents to ingest, training exports and LoRA adapters live under these prefixes of one bucket.
DOCUMENTS_PREFIX = "documents/"
EXPORTS_PREFIX = "exports/"
ADAPTERS_PREFIX = "adapters/"
MODEL_VERSIONS_PREFIX = "model-versions/"
# At most this many vCPUs of ingest workers run at once (16 two-vCPU workers); more children of an
# array job wait in the queue. It also bounds the bulk writes the OpenSearch domain receives at once.
INGEST_MAX_VCPUS = 32
# Each child of the ingest array job is worker I of N: Batch numbers children from 0 and tells each
# the array's size; a job submitted without an array is the only worker.
INGEST_SHARD = "$((${AWS_BATCH_JOB_ARRAY_INDEX:-0} + 1))/${AWS_BATCH_JOB_ARRAY_SIZE:-1}"
# At most this many vCPUs of training instances run at once (two g6e.2xlarge).
TRAIN_MAX_VCPUS = 16
# An answer streams for tens of seconds; Service Connect's proxy would cut it at 15 s by default.
LLM_REQUEST_TIMEOUT = Duration.minutes(5)
# The ALB's session (and sticky cookie) outlives a working day so users are not sent to sign in
# again, or to another task, mid-conversation.
USER_SESSION = Duration.hours(12)


class PlumblineStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: DeployConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.vpc = ec2.Vpc(self, "Vpc", max_azs=2, nat_gateways=1)
        self.cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc)
        self.cluster.add_default_cloud_map_namespace(name="plumb.internal", use_for_service_connect=True)
        self.tables = self._tables()
        self.models_table = self._table("models", ("name", dynamodb.AttributeType.STRING))
        self.bucket = self._bucket()
        self.image = ecs.ContainerImage.from_asset(str(REPO_ROOT))

        self.app_role = _task_role(self, "AppTaskRole", "The Streamlit app: feedback tables, reads the index.")
        self.ingest_role = _task_role(self, "IngestTaskRole", "Ingest job: creates and writes the index.")
        self.export_role = _task_role(self, "ExportTaskRole", "Export job: reads feedback, writes exports.")
        self.train_role = _task_role(self, "TrainTaskRole", "Training job: reads exports, writes model versions.")

        self.app_sg = ec2.SecurityGroup(self, "AppSg", vpc=self.vpc, description="Plumbline app tasks")
        self.jobs_sg = ec2.SecurityGroup(self, "JobsSg", vpc=self.vpc, description="Plumbline batch jobs")
        self.domain = self._search_domain()
        self._vllm()
        self._app()
        self._ingest_job()
        self._export_job()
        self._training_job()

    # --- data ------------------------------------------------------------------------------------

    def _tables(self) -> dict[str, dynamodb.Table]:
        """The feedback store's tables, key for key as pipeline/feedback/tables.py declares them."""
        turns = self._table(
            "turns", ("session_id", dynamodb.AttributeType.STRING), ("turn_id", dynamodb.AttributeType.STRING)
        )
        turns.add_local_secondary_index(
            index_name="turns_by_time",
            sort_key=dynamodb.Attribute(name="created_at", type=dynamodb.AttributeType.STRING),
        )
        sessions = self._table(
            "sessions", ("user", dynamodb.AttributeType.STRING), ("session_id", dynamodb.AttributeType.STRING)
        )
        sessions.add_local_secondary_index(
            index_name="sessions_by_update",
            sort_key=dynamodb.Attribute(name="updated_at", type=dynamodb.AttributeType.STRING),
        )
        feedback = self._table(
            "feedback", ("turn_user", dynamodb.AttributeType.STRING), ("version", dynamodb.AttributeType.NUMBER)
        )
        feedback.add_global_secondary_index(
            index_name="feedback_by_day",
            partition_key=dynamodb.Attribute(name="day", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="stored_at", type=dynamodb.AttributeType.STRING),
        )
        judgements = self._table(
            "judgements", ("turn_id", dynamodb.AttributeType.STRING), ("judge", dynamodb.AttributeType.STRING)
        )
        pair_judgements = self._table(
            "pair-judgements", ("pair", dynamodb.AttributeType.STRING), ("judge", dynamodb.AttributeType.STRING)
        )
        reviews = self._table(
            "reviews", ("turn_judge", dynamodb.AttributeType.STRING), ("version", dynamodb.AttributeType.NUMBER)
        )
        escalations = self._table(
            "escalations", ("session_id", dynamodb.AttributeType.STRING), ("turn_id", dynamodb.AttributeType.STRING)
        )
        review_batches = self._table(
            "review-batches", ("batch_id", dynamodb.AttributeType.STRING), ("entry", dynamodb.AttributeType.STRING)
        )
        return {
            "turns": turns,
            "sessions": sessions,
            "feedback": feedback,
            "judgements": judgements,
            "pair-judgements": pair_judgements,
            "reviews": reviews,
            "escalations": escalations,
            "review-batches": review_batches,
        }

    def _table(self, name: str, partition: tuple, sort: tuple | None = None) -> dynamodb.Table:
        # Users' feedback is the product's training data: kept when the stack goes, restorable to
        # any second of the last 35 days.
        return dynamodb.Table(
            self,
            f"{name.capitalize()}Table",
            table_name=f"{self.config.table_prefix}{name}",
            partition_key=dynamodb.Attribute(name=partition[0], type=partition[1]),
            sort_key=dynamodb.Attribute(name=sort[0], type=sort[1]) if sort else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _bucket(self) -> s3.Bucket:
        return s3.Bucket(
            self,
            "DataBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _search_domain(self) -> opensearch.Domain:
        """OpenSearch in the VPC's private subnets, encrypted at rest and in transit, with
        fine-grained access control. Its master is an admin role that the account's
        administrators assume once, after the first deploy, to map the ingest role to a writer
        and the app role to a reader (docs/production.md): IAM lets a request in, the mapping
        decides what it may do."""
        admin = iam.Role(
            self,
            "SearchAdminRole",
            assumed_by=iam.AccountRootPrincipal(),
            description="Plumbline OpenSearch master user: maps IAM roles to OpenSearch roles.",
        )
        sg = ec2.SecurityGroup(self, "SearchSg", vpc=self.vpc, description="Plumbline OpenSearch domain")
        for client in (self.app_sg, self.jobs_sg):
            sg.add_ingress_rule(client, ec2.Port.tcp(443), "HTTPS from Plumbline tasks")
        domain = opensearch.Domain(
            self,
            "Search",
            version=opensearch.EngineVersion.OPENSEARCH_2_19,
            vpc=self.vpc,
            vpc_subnets=[ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)],
            security_groups=[sg],
            capacity=opensearch.CapacityConfig(
                data_nodes=self.config.opensearch_data_nodes,
                data_node_instance_type=self.config.opensearch_instance_type,
                multi_az_with_standby_enabled=False,
            ),
            zone_awareness=opensearch.ZoneAwarenessConfig(enabled=True, availability_zone_count=2),
            ebs=opensearch.EbsOptions(volume_size=100, volume_type=ec2.EbsDeviceVolumeType.GP3),
            encryption_at_rest=opensearch.EncryptionAtRestOptions(enabled=True),
            node_to_node_encryption=True,
            enforce_https=True,
            tls_security_policy=opensearch.TLSSecurityPolicy.TLS_1_2,
            fine_grained_access_control=opensearch.AdvancedSecurityOptions(master_user_arn=admin.role_arn),
            removal_policy=RemovalPolicy.RETAIN,
        )
        # The app only reads: the mapping when it opens the index and searches (POST) under the
        # index's own path. Bulk writes go to /_bulk and are not granted.
        self.app_role.add_to_policy(
            iam.PolicyStatement(
                actions=["es:ESHttpGet", "es:ESHttpHead", "es:ESHttpPost"],
                resources=[f"{domain.domain_arn}/{INDEX_NAME}", f"{domain.domain_arn}/{INDEX_NAME}/*"],
            )
        )
        domain.grant_read_write(self.ingest_role)
        domain.grant_read_write(admin)
        CfnOutput(self, "SearchEndpoint", value=domain.domain_endpoint)
        CfnOutput(self, "SearchAdminRoleArn", value=admin.role_arn)
        CfnOutput(self, "AppTaskRoleArn", value=self.app_role.role_arn)
        CfnOutput(self, "IngestTaskRoleArn", value=self.ingest_role.role_arn)
        return domain

    # --- services --------------------------------------------------------------------------------

    def _vllm(self) -> None:
        """vLLM on GPU instances that ECS adds and removes with the service (capacity provider).
        Adapters are copied from the bucket into the task at start; vLLM loads the one a request
        names (its folder name) on first use."""
        template = ec2.LaunchTemplate(
            self,
            "GpuHostTemplate",
            instance_type=ec2.InstanceType(self.config.vllm_instance_type),
            machine_image=ecs.EcsOptimizedImage.amazon_linux2(ecs.AmiHardwareType.GPU),
            user_data=ec2.UserData.for_linux(),  # ECS adds the cluster-joining commands
            role=iam.Role(self, "GpuHostRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com")),
            security_group=ec2.SecurityGroup(self, "GpuHostSg", vpc=self.vpc, description="Plumbline GPU hosts"),
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",  # room for the image and the model's weights
                    volume=ec2.BlockDeviceVolume.ebs(200, volume_type=ec2.EbsDeviceVolumeType.GP3, encrypted=True),
                )
            ],
            require_imdsv2=True,
        )
        hosts = autoscaling.AutoScalingGroup(
            self,
            "GpuHosts",
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            launch_template=template,
            min_capacity=0,
            max_capacity=self.config.vllm_replicas + 1,  # room for one new task during a deployment
        )
        capacity = ecs.AsgCapacityProvider(self, "GpuCapacity", auto_scaling_group=hosts)
        self.cluster.add_asg_capacity_provider(capacity)

        role = _task_role(self, "VllmTaskRole", "vLLM: reads the LoRA adapters.")
        self.bucket.grant_read(role, f"{ADAPTERS_PREFIX}*")
        task = ecs.Ec2TaskDefinition(self, "VllmTask", network_mode=ecs.NetworkMode.AWS_VPC, task_role=role)
        task.add_volume(name="adapters")
        task.add_volume(name="hf-cache", host=ecs.Host(source_path="/var/lib/plumbline/hf-cache"))
        sync = task.add_container(
            "adapters",
            image=ecs.ContainerImage.from_registry(AWS_CLI_IMAGE),
            command=["s3", "sync", f"s3://{self.bucket.bucket_name}/{ADAPTERS_PREFIX}", "/adapters"],
            essential=False,
            memory_reservation_mib=256,
            logging=_logs("vllm-adapters"),
        )
        sync.add_mount_points(ecs.MountPoint(container_path="/adapters", source_volume="adapters", read_only=False))
        server = task.add_container(
            "vllm",
            image=ecs.ContainerImage.from_registry(VLLM_IMAGE),
            command=[BASE_MODEL, "--enable-lora", "--max-lora-rank=64", "--max-model-len=8192"],
            gpu_count=1,
            memory_reservation_mib=24576,
            environment={
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "true",
                "VLLM_PLUGINS": "lora_filesystem_resolver",
                "VLLM_LORA_RESOLVER_CACHE_DIR": "/adapters",
            },
            secrets={
                "HF_TOKEN": ecs.Secret.from_secrets_manager(
                    secretsmanager.Secret.from_secret_name_v2(self, "HfToken", self.config.hf_token_secret_name)
                )
            },
            port_mappings=[ecs.PortMapping(container_port=VLLM_PORT, name="vllm")],
            linux_parameters=ecs.LinuxParameters(self, "VllmLinux", shared_memory_size=8192),
            health_check=_http_health(VLLM_PORT, "/health", start_period=Duration.minutes(5)),
            logging=_logs("vllm"),
        )
        server.add_mount_points(
            ecs.MountPoint(container_path="/adapters", source_volume="adapters", read_only=True),
            ecs.MountPoint(container_path="/root/.cache/huggingface", source_volume="hf-cache", read_only=False),
        )
        server.add_container_dependencies(
            ecs.ContainerDependency(container=sync, condition=ecs.ContainerDependencyCondition.SUCCESS)
        )

        sg = ec2.SecurityGroup(self, "VllmSg", vpc=self.vpc, description="Plumbline vLLM tasks")
        sg.add_ingress_rule(self.app_sg, ec2.Port.tcp(VLLM_PORT), "OpenAI API from the app")
        ecs.Ec2Service(
            self,
            "Vllm",
            cluster=self.cluster,
            task_definition=task,
            desired_count=self.config.vllm_replicas,
            capacity_provider_strategies=[
                ecs.CapacityProviderStrategy(capacity_provider=capacity.capacity_provider_name, weight=1)
            ],
            security_groups=[sg],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            service_connect_configuration=ecs.ServiceConnectProps(
                services=[
                    ecs.ServiceConnectService(
                        port_mapping_name="vllm",
                        dns_name="vllm",
                        port=VLLM_PORT,
                        per_request_timeout=LLM_REQUEST_TIMEOUT,
                        idle_timeout=LLM_REQUEST_TIMEOUT,
                    )
                ]
            ),
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )

    def _app_environment(self) -> dict[str, str]:
        return {
            "PLUMB_DATA_DIR": "/data",
            "PLUMB_INDEX_BACKEND": "opensearch",
            "PLUMB_OPENSEARCH_URL": f"https://{self.domain.domain_endpoint}",
            "PLUMB_OPENSEARCH_INDEX": INDEX_NAME,
            "PLUMB_AWS_REGION": self.region,
            "PLUMB_TABLE_PREFIX": self.config.table_prefix,
            "PLUMB_LLM_BACKEND": "openai",
            "PLUMB_LLM_BASE_URL": f"http://vllm:{VLLM_PORT}/v1",
            "PLUMB_LLM_MODEL": BASE_MODEL,
        }

    def _app(self) -> None:
        for table in self.tables.values():
            table.grant_read_write_data(self.app_role)
        # Replicas only read which version is live; `plumb model promote` writes it with an admin's credentials.
        self.models_table.grant_read_data(self.app_role)
        # Experts subscribe (e-mail, SMS, a chat bridge) to hear of each escalation.
        experts_topic = sns.Topic(self, "ExpertsTopic", display_name="Plumbline: expert wanted")
        experts_topic.grant_publish(self.app_role)
        task = ecs.FargateTaskDefinition(self, "AppTask", cpu=2048, memory_limit_mib=8192, task_role=self.app_role)
        task.add_container(
            "app",
            image=self.image,
            environment={
                **self._app_environment(),
                "PLUMB_DEV_MODE": "false",
                # Set by the load balancer after it authenticated the user; the app's security
                # group admits only the load balancer, so no one else can set it.
                "PLUMB_USER_HEADER": "x-amzn-oidc-identity",
                "PLUMB_ADMINS": _json_list(self.config.admins),
                "PLUMB_ESCALATION_SNS_TOPIC": experts_topic.topic_arn,
            },
            port_mappings=[ecs.PortMapping(container_port=APP_PORT)],
            health_check=_http_health(APP_PORT, "/_stcore/health", start_period=Duration.minutes(2)),
            logging=_logs("app"),
        )
        service = ecs.FargateService(
            self,
            "App",
            cluster=self.cluster,
            task_definition=task,
            desired_count=self.config.app_replicas,
            security_groups=[self.app_sg],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            service_connect_configuration=ecs.ServiceConnectProps(),
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
            min_healthy_percent=100,
        )
        scaling = service.auto_scale_task_count(
            min_capacity=self.config.app_replicas, max_capacity=self.config.app_replicas * 5
        )
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
        self._load_balancer(service)

    def _load_balancer(self, service: ecs.FargateService) -> None:
        alb = elbv2.ApplicationLoadBalancer(
            self, "Alb", vpc=self.vpc, internet_facing=True, idle_timeout=Duration.minutes(5)
        )
        alb.connections.allow_to(self.app_sg, ec2.Port.tcp(APP_PORT), "ALB to the app")
        app_targets = elbv2.ApplicationTargetGroup(
            self,
            "AppTargets",
            vpc=self.vpc,
            port=APP_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            health_check=elbv2.HealthCheck(path="/_stcore/health", healthy_http_codes="200"),
            stickiness_cookie_duration=USER_SESSION,
            deregistration_delay=Duration.seconds(30),
        )
        service.attach_to_application_target_group(app_targets)
        alb.add_listener(
            "Https",
            port=443,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            certificates=[elbv2.ListenerCertificate.from_arn(self.config.certificate_arn)],
            default_action=elbv2.ListenerAction.authenticate_oidc(
                issuer=self.config.oidc_issuer,
                authorization_endpoint=self.config.oidc_authorization_endpoint,
                token_endpoint=self.config.oidc_token_endpoint,
                user_info_endpoint=self.config.oidc_user_info_endpoint,
                client_id=self.config.oidc_client_id,
                client_secret=SecretValue.secrets_manager(self.config.oidc_client_secret_name),
                scope="openid email",
                session_timeout=USER_SESSION,
                next=elbv2.ListenerAction.forward([app_targets]),
            ),
        )
        alb.add_redirect(source_port=80, target_port=443)
        CfnOutput(self, "AppUrl", value=f"https://{alb.load_balancer_dns_name}")

    # --- jobs ------------------------------------------------------------------------------------

    def _ingest_job(self) -> None:
        """An AWS Batch array job on Fargate, submitted on demand (`aws batch submit-job
        --array-properties size=N`, docs/production.md): every child creates the index template,
        search pipeline and index if missing (safe when many start at once), then reads its shard of
        s3://bucket/documents/ straight from S3 and bulk-writes it to OpenSearch.

        Batch rather than N ECS tasks: one submission starts the N workers and gives each its
        number and N (AWS_BATCH_JOB_ARRAY_INDEX and _SIZE, the `--shard`), the queue holds the
        children that do not fit under INGEST_MAX_VCPUS, a failed child is retried alone, and the
        parent job tells when the whole set is in. Retrying is safe: a worker skips the documents
        that are already indexed unchanged."""
        self.bucket.grant_read(self.ingest_role, f"{DOCUMENTS_PREFIX}*")
        compute = batch.FargateComputeEnvironment(
            self,
            "IngestCompute",
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[self.jobs_sg],
            maxv_cpus=INGEST_MAX_VCPUS,
        )
        queue = batch.JobQueue(
            self,
            "IngestQueue",
            compute_environments=[batch.OrderedComputeEnvironment(compute_environment=compute, order=1)],
        )
        documents = f"s3://{self.bucket.bucket_name}/{DOCUMENTS_PREFIX.rstrip('/')}"
        job = batch.EcsJobDefinition(
            self,
            "IngestJob",
            container=batch.EcsFargateContainerDefinition(
                self,
                "IngestContainer",
                image=self.image,
                cpu=2,
                memory=Size.gibibytes(8),
                command=["sh", "-c", f"plumb index init && plumb ingest {documents} --shard {INGEST_SHARD}"],
                environment=self._app_environment(),
                job_role=self.ingest_role,
                logging=_logs("ingest"),
            ),
            retry_attempts=3,
            timeout=Duration.hours(12),
        )
        CfnOutput(self, "IngestJobQueue", value=queue.job_queue_arn)
        CfnOutput(self, "IngestJobDefinition", value=job.job_definition_arn)

    def _export_job(self) -> None:
        """Every night: the feedback of the past days as TRL datasets under s3://bucket/exports/."""
        for name in ("feedback", "turns", "judgements", "pair-judgements", "reviews"):  # AI labels: the last three
            self.tables[name].grant_read_data(self.export_role)
        self.bucket.grant_put(self.export_role, f"{EXPORTS_PREFIX}*")
        # A failed upload removes what it had put, so nothing half-written is left for a trainer.
        self.bucket.grant_delete(self.export_role, f"{EXPORTS_PREFIX}*")
        task = ecs.FargateTaskDefinition(
            self, "ExportTask", cpu=1024, memory_limit_mib=4096, task_role=self.export_role
        )
        task.add_container(
            "export",
            image=self.image,
            command=["plumb", "export", "--out", f"s3://{self.bucket.bucket_name}/{EXPORTS_PREFIX.rstrip('/')}"],
            environment={"PLUMB_AWS_REGION": self.region, "PLUMB_TABLE_PREFIX": self.config.table_prefix},
            logging=_logs("export"),
        )
        events.Rule(
            self,
            "NightlyExport",
            schedule=events.Schedule.cron(hour="2", minute="0"),
            targets=[
                targets.EcsTask(
                    cluster=self.cluster,
                    task_definition=task,
                    launch_type=ecs.LaunchType.FARGATE,
                    subnet_selection=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                    security_groups=[self.jobs_sg],
                )
            ],
        )
        CfnOutput(self, "ExportBucket", value=self.bucket.bucket_name)


    def _training_job(self) -> None:
        """`plumb train JOB s3://bucket/exports/<export id> --upload s3://bucket/model-versions`,
        submitted on demand (`aws batch submit-job --parameters job=dpo,export=s3://...`; any other
        command, such as `accelerate launch ... plumb train ...`, as a command override).

        AWS Batch on EC2 GPU instances rather than a SageMaker training job: a SageMaker job is an
        API call per run, not a resource CloudFormation can declare, and it wants its own container
        contract (/opt/ml/...); Batch runs the project's own image with the same `plumb train` as a
        laptop, queues the jobs, starts GPU instances only while one runs (0 vCPUs when idle) and
        retries a job whose instance failed, as the ingest job already does."""
        self.bucket.grant_read(self.train_role, f"{EXPORTS_PREFIX}*")
        self.bucket.grant_put(self.train_role, f"{MODEL_VERSIONS_PREFIX}*")
        compute = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "TrainCompute",
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            security_groups=[self.jobs_sg],
            instance_types=[ec2.InstanceType(self.config.train_instance_type)],
            use_optimal_instance_classes=False,
            minv_cpus=0,
            maxv_cpus=TRAIN_MAX_VCPUS,
        )
        queue = batch.JobQueue(
            self,
            "TrainQueue",
            compute_environments=[batch.OrderedComputeEnvironment(compute_environment=compute, order=1)],
        )
        bucket = f"s3://{self.bucket.bucket_name}"
        job = batch.EcsJobDefinition(
            self,
            "TrainJob",
            container=batch.EcsEc2ContainerDefinition(
                self,
                "TrainContainer",
                image=self.image,
                gpu=1,
                cpu=8,
                memory=Size.gibibytes(60),
                command=[
                    "plumb", "train", "Ref::job", "Ref::export",
                    "--base-model", "Ref::base_model", "--lora", "Ref::lora",
                    "--upload", f"{bucket}/{MODEL_VERSIONS_PREFIX.rstrip('/')}",
                ],  # fmt: skip
                environment={"PLUMB_DATA_DIR": "/tmp/plumb", "HF_HOME": "/tmp/hf"},
                secrets={
                    "HF_TOKEN": batch.Secret.from_secrets_manager(
                        secretsmanager.Secret.from_secret_name_v2(self, "TrainHfToken", self.config.hf_token_secret_name)
                    )
                },
                job_role=self.train_role,
                logging=_logs("train"),
            ),
            parameters={"job": "sft", "export": f"{bucket}/{EXPORTS_PREFIX}", "base_model": BASE_MODEL, "lora": "pilot-sft"},
            retry_attempts=2,
            timeout=Duration.hours(24),
        )
        CfnOutput(self, "TrainJobQueue", value=queue.job_queue_arn)
        CfnOutput(self, "TrainJobDefinition", value=job.job_definition_arn)


def _task_role(scope: Construct, construct_id: str, description: str) -> iam.Role:
    return iam.Role(
        scope, construct_id, assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"), description=description
    )


def _logs(prefix: str) -> ecs.LogDriver:
    return ecs.LogDrivers.aws_logs(stream_prefix=prefix, log_retention=logs.RetentionDays.ONE_MONTH)


def _http_health(port: int, path: str, start_period: Duration) -> ecs.HealthCheck:
    # The images have Python but not always curl.
    probe = f"import urllib.request; urllib.request.urlopen('http://localhost:{port}{path}')"
    return ecs.HealthCheck(
        command=["CMD", "python3", "-c", probe],
        interval=Duration.seconds(15),
        timeout=Duration.seconds(5),
        retries=5,
        start_period=start_period,
    )


def _json_list(values: tuple[str, ...]) -> str:
    return json.dumps(list(values))
