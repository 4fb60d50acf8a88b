"""Offline extractive question answering over your documents, with cited answers.

>>> from qa import answer
>>> answer("Where did the meeting take place?").text
'Ayn Issa'
"""

from qa.pipeline import QA, QuestionError, answer
from qa.reading.answers import Answer, Citation

__all__ = ["QA", "Answer", "Citation", "QuestionError", "answer"]
