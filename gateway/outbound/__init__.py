"""Outbound mail: composing, the sealed outbox and the transports that deliver it."""
