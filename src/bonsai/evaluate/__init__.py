"""The evaluate stage: per-category metrics, probe sets, diagnostics and reports."""
