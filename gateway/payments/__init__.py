"""Payments: providers (sandbox, Stripe), the card-fee policy, webhooks."""
