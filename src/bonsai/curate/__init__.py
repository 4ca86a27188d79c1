"""The curate stage: import, annotate, check, split and export records."""
