"""The Discord adapter: discord.py in, neutral values to the core, rendering out."""
