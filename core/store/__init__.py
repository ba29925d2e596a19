"""Storage: SQLModel tables over an async engine (SQLite by default, PostgreSQL by URL)."""

from core.store.access_tables import AccessAudit, AccessGrant, AccessRequest
from core.store.engine import Store
from core.store.essay_tables import Essay, EssayDelivery, EssayFeed, EssaySubscription, EssayThread
from core.store.host_tables import Lease, ReplyInHand, ReplyStop
from core.store.models import ChannelSetting, Person, Reply, Turn, Usage, db_now
from core.store.replay_tables import SeenRequest
from core.store.studio_tables import StudioDecision, StudioDraft, StudioPreview

__all__ = [
    "AccessAudit",
    "AccessGrant",
    "AccessRequest",
    "ChannelSetting",
    "Essay",
    "EssayDelivery",
    "EssayFeed",
    "EssaySubscription",
    "EssayThread",
    "Lease",
    "Person",
    "Reply",
    "ReplyInHand",
    "ReplyStop",
    "SeenRequest",
    "Store",
    "StudioDecision",
    "StudioDraft",
    "StudioPreview",
    "Turn",
    "Usage",
    "db_now",
]
