"""Payments: providers (sandbox, Stripe), the card-fee policy, webhooks.

* :mod:`.fees` — the card-fee rules per country and the gross-up quote.
* :mod:`.provider` — the provider interface and shared types; :mod:`.providers` —
  ``provider_for``, the one the settings name.
* :mod:`.sandbox` / :mod:`.stripe_provider` — the two providers.
* :mod:`.ledger` — applies what a provider reports to requests (paid,
  failed, refunded, disputed, deposited), with receipts and notices.
* :mod:`.webhooks` / :mod:`.web_routes` — ``POST /stripe/webhook`` and the
  Connect onboarding URLs; :mod:`.connect` — firm onboarding.
* :mod:`.receipts` — the receipt and the staff notices about payments.

See README.md in this folder.
"""
