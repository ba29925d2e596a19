"""Storage: SQLModel tables over an async engine (SQLite by default, PostgreSQL by URL)."""

from core.store.engine import Store
from core.store.models import ChannelSetting, Person, Reply, Turn, Usage, db_now

__all__ = ["ChannelSetting", "Person", "Reply", "Store", "Turn", "Usage", "db_now"]
