"""The essay studio: the model writes essays, people review them (approve or veto, never edit),
ember publishes them unedited as its own feed and pages, and announces them.

The modules, one concept each:

    prompts      the prompt strategies (minimal, past_entries, with_news) → one request
    news         recent items from the news feeds (the essay feeds' fetching and parsing)
    drafting     asking the alias's backends for one whole essay; keeping it with its hash
    schedule     slots (daily or weekly, UTC) and when the next begins
    review       who reviews (proven by the platform), what a decision does
    preview      what an adapter posts for reviewers, and the buttons' ids
    buttons      a press of a preview's buttons: reviewers only, the first settling decision wins
    publication  hash re-checked, essay recorded and owed to subscribed channels, once
    pages        the Atom feed and the HTML pages
    commands     `/opus studio …`
    wording      every sentence shown to people and the model
    service      StudioService, composing the above

Every SQL statement is in core.store.studio_repo; nothing here imports SQLAlchemy.
"""

from core.store.studio_records import DraftState, DraftView, PublishedEssay, Verdict
from core.studio.preview import Action, DraftPreview, parse_studio_button_id, studio_button_id
from core.studio.service import StudioService

__all__ = [
    "Action",
    "DraftPreview",
    "DraftState",
    "DraftView",
    "PublishedEssay",
    "StudioService",
    "Verdict",
    "parse_studio_button_id",
    "studio_button_id",
]
