"""The CDK app: `npx aws-cdk deploy` in infra/ (cdk.json runs this module with the repository root
on PYTHONPATH, so `infra` imports as a package)."""

import aws_cdk as cdk

from infra.config import DeployConfig
from infra.stack import PlumblineStack


def main() -> None:
    app = cdk.App()
    config = DeployConfig.from_context(app.node.try_get_context("plumbline"))
    PlumblineStack(app, "Plumbline", config=config, description="Plumbline document Q&A with feedback capture")
    app.synth()


if __name__ == "__main__":
    main()
