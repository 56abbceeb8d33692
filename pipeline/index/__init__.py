"""Vector indexes behind one protocol (`base.ChunkIndex`); `make_index` picks one by settings."""

from pipeline.index.base import Chunk, ChunkIndex, Hit, Places, SearchMode
from pipeline.settings import Settings

__all__ = ["Chunk", "ChunkIndex", "Hit", "Places", "SearchMode", "make_index"]


def make_index(settings: Settings, dimension: int | None = None) -> ChunkIndex:
    """Open the index that `settings.index_backend` names, sized for `dimension`-wide embeddings.

    `None` takes the dimension the index was built with: enough to list and delete documents, so
    such commands load no embedding model."""
    match settings.index_backend:
        case "embedded":
            from pipeline.index.embedded import EmbeddedIndex

            return EmbeddedIndex(settings.index_dir, dimension)
        case "opensearch":
            from pipeline.index.opensearch import OpenSearchIndex

            return OpenSearchIndex.from_settings(settings, dimension)
        case other:
            raise ValueError(f"Unknown index backend {other!r}: use 'embedded' or 'opensearch'.")
