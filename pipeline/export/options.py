"""The export's choice types, in a module of their own so the job, the row builders and the writers
can all name them without importing each other."""

from typing import Literal

Mode = Literal["incremental", "all", "range"]
FileFormat = Literal["jsonl", "parquet"]
KtoNeutral = Literal["omit", "desirable", "undesirable"]
LabelSource = Literal["human", "ai", "sme", "review", "expert"]  # users' feedback, the AI judge, experts who
# overrode it, reviewers' consolidated relevance ratings (`plumb review`), experts' answers to escalations
