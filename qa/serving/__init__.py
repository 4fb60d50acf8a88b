"""Serving: the Gradio chat page and the Ray cluster (embedding actors, answering replicas, POST /answer)."""
