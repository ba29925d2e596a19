"""The Slack adapter: slack-bolt in, neutral values to the core, Block Kit out."""
