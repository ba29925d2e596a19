"""The Slack adapter: slack-bolt in, neutral values to the core (`core.Ember`), Block Kit out.

app.py        the AsyncApp, and register (every listener)
client.py     the Web API client: token, server, retry policy
bot.py        what the listeners share: the facade, the client, caches, running work
inbound.py    messages, edits, deletions, reply buttons → the facade
convert.py    Slack payloads → neutral values; people.py: names and moderators
files.py      images shared with a message; recent.py: events seen lately
sink.py       a reply's messages: native streaming or post + update (ReplySurface)
render.py     escaping (links unmasked), the core's neutral markup as mrkdwn, blocks and buttons
commands.py   /opus, and the ask thread
shortcuts.py  message shortcuts: "Show the prompt" and "Stop the reply"
notifier.py   access requests, DMs, Approve / Deny
announcer.py  essay announcements
traits.py     Slack's facts for the core (core.PlatformTraits)
service.py    Socket Mode or HTTP; manifest.py: the app manifest
"""
