"""Chatting with the student: modes, retrieval over the user's notes, turn logs and feedback.

- :class:`~bonsai.chat.session.ChatSession`: ``ask(question)`` → a logged :class:`ChatTurn`;
  ``rate``, ``correct``, ``remember`` store feedback for the grow stage.
- :mod:`~bonsai.chat.store`: the ``chat_turns`` and ``chat_feedback`` tables
  (``pending_feedback`` / ``mark_feedback`` are what grow uses).
"""

from bonsai.chat.prompts import ANSWER, MODES, Q2Q, normalise_mode
from bonsai.chat.session import ChatArgs, ChatSession, ChatTurn

__all__ = ["ANSWER", "MODES", "Q2Q", "ChatArgs", "ChatSession", "ChatTurn", "normalise_mode"]
