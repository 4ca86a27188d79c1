"""The garden's SQLite database: one file, WAL mode, append-only named migrations."""

from bonsai.db.connection import connect, transaction
from bonsai.db.migrations import MIGRATIONS, applied_migrations, migrate

__all__ = ["MIGRATIONS", "applied_migrations", "connect", "migrate", "transaction"]
