"""Offline extractive question answering over your documents, with cited answers.

>>> from qa import answer
>>> answer("Where did the meeting take place?").text
'Ayn Issa'
"""

from qa.answers import Answer, Citation
from qa.pipeline import QA, QuestionError, answer

__all__ = ["QA", "Answer", "Citation", "QuestionError", "answer"]
