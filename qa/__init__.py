"""Offline extractive question answering over your documents, with cited answers.

>>> from qa import answer
>>> answer("Where did the meeting take place?").text
'Ayn Issa'
"""

from qa.pipeline import QA, Answer, Citation, QuestionError, answer

__all__ = ["QA", "Answer", "Citation", "QuestionError", "answer"]
