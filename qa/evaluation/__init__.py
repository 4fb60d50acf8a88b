"""Evaluation: scoring the whole system on question sets, conversation sets, SQuAD files and corpora."""
