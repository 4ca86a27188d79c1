"""BONSAI: cultivate a small LLM of your own.

curate → teach → train → chat → grow, in one garden folder.
"""

__version__ = "0.1.0"
