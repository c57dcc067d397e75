"""The database migrations (Tortoise's own): how to add one is in the README, Development."""
