"""Plumbline on AWS as code (AWS CDK): `stack.PlumblineStack`, configured by `config.DeployConfig`."""
