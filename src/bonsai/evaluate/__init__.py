"""The evaluate stage: per-category metrics, probe sets, diagnostics and reports.

- :mod:`~bonsai.evaluate.metrics`, :mod:`~bonsai.evaluate.scoring`: what "better" means per
  category, and comparing two models on the same items with bootstrap intervals;
- :mod:`~bonsai.evaluate.probes`: the built-in probes, the seed-task translations, a user's file;
- :mod:`~bonsai.evaluate.runner`: ``bonsai eval`` — a run, its parent and the base model answer
  the validation split and the probes, asked as chat asks (:mod:`~bonsai.evaluate.asking`: the
  same prompt building and retrieval; :mod:`~bonsai.evaluate.engine` holds the models for loss);
- :mod:`~bonsai.evaluate.diagnostics`: memorisation, suspected contradictions, loss by category
  and language;
- :mod:`~bonsai.evaluate.results`, :mod:`~bonsai.evaluate.report`: the results dict (the JSON)
  and the self-contained HTML report;
- :mod:`~bonsai.evaluate.ablation`: ``bonsai eval --ablation`` — alpaca vs bonsai layout.
"""
