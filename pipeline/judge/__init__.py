"""The AI judge (RLAIF): another model scores each answer 1-5 in half points with a comment, against
the user's own correction where there is one, and compares two answers to one prompt.

`prompts` holds the versioned judge prompts, `verdicts` the JSON the judge must reply with, `judge`
the client that asks and validates, `batch` the `plumb judge` job, `pairs` the `plumb judge pairs`
job, `agreement` how well the judges agree with people.
"""
