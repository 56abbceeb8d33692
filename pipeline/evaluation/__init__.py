"""Evaluation: `plumb eval` (retrieval hit@k, answers, the judge's scores, RAG metrics), `plumb eval compare`
(win/tie/loss between two configurations) and `plumb eval build-set` (eval files from exports)."""
