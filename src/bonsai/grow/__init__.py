"""The grow stage: chat feedback becomes records, a new run, and (if not worse) the current one.

- :mod:`~bonsai.grow.args`: :class:`GrowArgs` and the :class:`PromotionRule`.
- :mod:`~bonsai.grow.feedback_to_records`: feedback → records, notes and a review list.
- :mod:`~bonsai.grow.promote`: the rule applied to an evaluation's numbers.
- :mod:`~bonsai.grow.pipeline`: :func:`grow`, the round from feedback to promotion.
"""

from bonsai.grow.args import GrowArgs, PromotionRule

__all__ = ["GrowArgs", "PromotionRule"]
