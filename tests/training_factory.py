"""A tiny export for the training tests, made by the real export job from turns in DynamoDB Local.

Two questions, each answered well (rated 5) by one user and badly (rated 1, "No idea.") by another,
who corrected it: every dataset gets rows, and with half the questions held out the anchors
question lands in train and the ramp question in validation (the split is a hash of the question).
"""

from pathlib import Path

from pipeline.export.job import ExportConfig, main
from pipeline.feedback.dynamo import DynamoFeedbackStore
from tests.export_factory import ANCHOR_PASSAGE, ANCHORS, RAMP, RAMP_PASSAGE, Seed, store_seeds

BAD = "No idea."
TRAINING_SEEDS = [
    Seed("alice", ANCHORS, "Anchor bolts are set at 600 mm centres [1].", 5, ANCHOR_PASSAGE),
    Seed("bob", ANCHORS, BAD, 1, ANCHOR_PASSAGE, correction="The anchor bolts are 600 mm apart (drawings-notes.pdf – page 4)."),
    Seed("carol", RAMP, "A ramp may rise at most 1 in 12 [1].", 5, RAMP_PASSAGE),
    Seed("dave", RAMP, BAD, 1, RAMP_PASSAGE, correction="The maximum slope is 1:12 (design-criteria.pdf – page 21)."),
]


def training_export(settings, out: Path) -> Path:
    """The export folder of TRAINING_SEEDS, split half and half by question."""
    store_seeds(DynamoFeedbackStore(settings), TRAINING_SEEDS)
    result = main(ExportConfig(out=str(out), mode="all", settle_seconds=0, validation_fraction=0.5), settings)
    counts = result.manifest["counts"]
    assert all(counts[name]["train"] and counts[name]["validation"] for name in counts), counts
    return Path(result.location)
