"""Chat: a message in, a streamed reply out, with access, routing, failover and metering.

The engine (`ChatEngine`) is what adapters drive; the values and protocols they need with it
are re-exported here: the protocols adapters implement (`ReplySink`, `HistoryReader`) and the
gate the runtime plugs in (`AccessGate`). The rest is imported from its own module: `context`,
`failover`, `payload`, `streaming`, `routing`, `providers`, `usage`, `transcript`, `controls`,
`triggers`, `commands` and `wording` (text shown to people).
"""

from core.chat.context import ContextSource
from core.chat.engine import ChatEngine
from core.chat.gate import AccessGate, OpenGate
from core.chat.outcome import Outcome, new_reply_id

__all__ = [
    "AccessGate",
    "ChatEngine",
    "ContextSource",
    "OpenGate",
    "Outcome",
    "new_reply_id",
]
