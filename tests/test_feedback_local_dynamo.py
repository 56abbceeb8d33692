"""DynamoDB Local is started from the npm package with the machine's Java, and says what is missing."""

import pytest

from pipeline.errors import ConfigError
from pipeline.feedback.local_dynamo import LocalDynamo, dev_dynamo, find_jar, project_roots, responds
from pipeline.settings import get_settings


def test_starts_answers_and_stops():
    with LocalDynamo() as local:
        assert responds(local.endpoint)
    assert not responds(local.endpoint)


def test_finds_the_jar_of_the_npm_package():
    jar = find_jar(project_roots())
    assert jar.name == "DynamoDBLocal.jar"
    assert (jar.parent / "DynamoDBLocal_lib").is_dir()


def test_without_the_npm_package_says_to_run_npm_ci(tmp_path):
    with pytest.raises(ConfigError, match="run `npm ci` in the project folder"):
        find_jar([tmp_path])


def test_without_java_says_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="Java 17 is needed for DynamoDB Local: install openjdk-17-jre-headless"):
        LocalDynamo().start()


def test_a_port_in_use_is_refused(dynamo_local):
    with pytest.raises(ConfigError, match=f"Port {dynamo_local.port} is in use"):
        LocalDynamo(port=dynamo_local.port).start()


def test_dev_instance_keeps_its_data_under_the_data_folder():
    local = dev_dynamo(get_settings())
    assert local.db_path == (get_settings().data_dir / "dynamodb").resolve()
