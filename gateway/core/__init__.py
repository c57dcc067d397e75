"""The core: models, money, settings, clock, events, the database, the firm directory. Imports nothing of the project above it."""
