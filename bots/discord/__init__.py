"""The Discord adapter: discord.py in, neutral values to the core (`core.Ember`), rendering out.

app.py        make_client (the facade over a runtime, the client) and register
client.py     the discord.Client subclass: intents, events handed to inbound
inbound.py    messages, edits, deletions, reply buttons → the facade
triggers.py   the facts about a message (mentions, replies, threads, bots)
history.py    conversations read fresh from Discord (also the core's HistoryReader)
convert.py    Discord objects → neutral values
sink.py       a reply's messages, buttons and typing sign (core.ports.ReplySurface)
buttons.py    persistent reply buttons
render.py     the core's neutral markup as Discord text; model text with links unmasked; no pings
commands.py   /opus as slash commands, and the ask thread
menus.py      the "Show the prompt" message menu command
notifier.py   access requests, DMs, Approve / Deny
announcer.py  essay announcements
traits.py     Discord's facts for the core (core.PlatformTraits)
service.py    run until cancelled; endpoints.py: where discord.py connects
"""
