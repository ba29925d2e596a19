"""Essay announcements: feeds in, one announcement per subscribed channel out.

The modules, one concept each:

    feeds          fetching a feed (conditional GET, deadline, size cap, redirects)
    feed_encoding  a feed's bytes decoded as they declare, bad bytes shown as U+FFFD
    feed_parsing   reading a feed strictly; an item's identity (guid, post path)
    plain_text     HTML to plain text, cleaned and cut
    poller         polling the configured feeds, recording new items
    feed_health    back-off after failures, the one alert to moderators
    delivery       what adapters see: Announcement, Delivery, the Announcer protocol
    outbox         claims, leases, fan-out, pacing, outcomes (exactly once)
    subscriptions  which channels announce essays
    status         `ember essays status`
    discussion     the essay as context in its discussion thread
    commands       `/opus essays …`
    wording        every sentence shown to people (and the model's thread prompt)
    service        EssayService, composing the above

Every SQL statement is in core.store's repositories (essays_repo, feeds_repo, outbox_repo,
subscriptions_repo, essay_counts); nothing here imports SQLAlchemy.
"""

from core.essays.delivery import Announcement, Delivery, DeliveryReport
from core.essays.poller import FeedReport
from core.essays.service import EssayService
from core.essays.status import EssayStatus, FeedStatus
from core.store.essay_records import SubscriptionView

__all__ = [
    "Announcement",
    "Delivery",
    "DeliveryReport",
    "EssayService",
    "EssayStatus",
    "FeedReport",
    "FeedStatus",
    "SubscriptionView",
]
