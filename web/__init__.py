"""The web side: the client's pages, webhooks, health, the demo outbox."""
