"""Alembic environment: always driven from core.store.engine with an open connection."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import core.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `ember db upgrade`, which supplies the connection")
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    # Alembic assumes SQLite DDL is not transactional; on the connection migrations/sqlite_file.py
    # opens it is (None keeps alembic's own view of the other connections).
    transactional_ddl=connection.info.get("transactional_ddl"),
)
with context.begin_transaction():
    context.run_migrations()
