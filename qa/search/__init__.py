"""Search: the sentence embedder, the FAISS index with its paragraph store, and the hybrid (dense + BM25) retriever."""
