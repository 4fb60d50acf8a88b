"""Conversation: follow-ups resolved against earlier turns, readings the documents choose between, small talk."""
