"""The project's own exceptions. Adapters turn library errors into these; the CLI and the app
show their message, which is written for the user and says what to do."""


class PlumbError(Exception):
    """Base of every error a user can meet."""


class ConfigError(PlumbError):
    """A setting is missing or wrong."""


class IngestError(PlumbError):
    """A document could not be read; ingestion skips it and goes on."""


class NoTextError(IngestError):
    """A document was read and holds no text: ingestion removes the text indexed for it before."""


class IndexUnavailable(PlumbError):
    """The vector index cannot be reached or opened."""


class ModelUnavailable(PlumbError):
    """The model that answers cannot be reached or loaded."""


class StoreUnavailable(PlumbError):
    """The feedback store (DynamoDB) cannot be reached."""


class InvalidFeedback(PlumbError):
    """Feedback that breaks a rule (rating range, length limits); nothing was stored."""
