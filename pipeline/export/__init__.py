"""Feedback exported as training data: TRL datasets (sft, preference, reward, kto, ratings) with a
manifest and a dataset card, read from DynamoDB or a DynamoDB export in S3, written to a folder or S3.

Run it with `main(ExportConfig(out=...))` from `pipeline.export.job`, or `plumb export`.
"""
