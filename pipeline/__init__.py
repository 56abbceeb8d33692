"""Plumbline's core: ingestion, retrieval, the RAG chain, feedback storage, export and evaluation.

A question flows: app/ -> pipeline.chain (condense, retrieve through pipeline.retriever and
pipeline.index, generate with pipeline.llm) -> app/. Feedback flows: app/ -> pipeline.feedback
(DynamoDB, with a local outbox) -> pipeline.export (training files).
"""
