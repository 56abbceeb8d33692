"""The feedback store: answered turns and users' verdicts in DynamoDB, never lost thanks to a local outbox.

The app opens it with `make_store(settings)`; `create_tables(settings)` makes the tables.
"""

from pipeline.feedback.dynamo import DynamoFeedbackStore, create_tables
from pipeline.feedback.resilient import ResilientStore, make_store
from pipeline.feedback.store import FeedbackStore, Saved, SessionSummary, TurnRejected, checked_feedback

__all__ = [
    "DynamoFeedbackStore",
    "FeedbackStore",
    "ResilientStore",
    "Saved",
    "SessionSummary",
    "TurnRejected",
    "checked_feedback",
    "create_tables",
    "make_store",
]
