"""The export's errors, and DynamoDB's turned into the project's own."""

from collections.abc import Iterator
from contextlib import contextmanager

from pynamodb.exceptions import PynamoDBException

from pipeline.errors import ConfigError, PlumbError, StoreUnavailable


class ExportFailed(PlumbError):
    """The export could not be read, written or published; nothing was published."""


def translated(error: PynamoDBException, where: str) -> PlumbError:
    code = error.cause_response_code
    if code == "ResourceNotFoundException":
        return ConfigError(f"A table the export reads does not exist at {where}: run `plumb db init`.")
    if code is None:
        return StoreUnavailable(
            f"DynamoDB at {where} cannot be reached ({error.cause or error}): check that it is running and "
            "reachable, then run the export again."
        )
    return PlumbError(f"DynamoDB at {where} refused the request: {code}: {error.cause_response_message}")


@contextmanager
def dynamo_errors(where: str) -> Iterator[None]:
    try:
        yield
    except PynamoDBException as error:
        raise translated(error, where) from error
