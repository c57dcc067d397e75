"""Payment tables of their own: what Stripe sent us, as it came.

Two tables, as dj-stripe keeps them (``WebhookEventTrigger`` and ``Event``):

* :class:`WebhookDelivery` — the POSTs to ``/stripe/webhook``, with the
  outcome: a verified one with its body, an unverified one as a digest only
  (and not at all beyond a per-address allowance, or with no secret set).
  Forged posts are kept apart from real events: were the forged body stored
  under the event id it claims, it could squat on that id and make us drop
  the real event as a "duplicate" when it arrives.
* :class:`WebhookEvent` — one row per *verified* Stripe event, keyed by the
  event id. ``processed_at`` is the idempotency lock: processing claims the
  row with ``UPDATE ... WHERE processed_at IS NULL`` inside the transaction
  that applies the event, so a duplicate (or a concurrent second delivery)
  changes nothing, and a failure rolls the claim back for Stripe's retry.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

# Each model says _no_comments: without it Tortoise looks for "#:" field
# comments (we write none) by reading the model's source, and
# inspect.getsource parses this whole file again for each model: 0.4 s of
# CPU at every start of a process (each command, each test's subprocess).


class WebhookDelivery(Model):
    _no_comments = True
    id = fields.IntField(primary_key=True)
    received_at = fields.DatetimeField()
    # A verified delivery's body; an unverified one's "sha256:<hex>" only,
    # so that junk posted by strangers cannot fill the disk.
    body = fields.TextField()
    body_size = fields.IntField()
    verified = fields.BooleanField(default=False)
    # The id the body claims; trusted only when verified.
    event_id = fields.CharField(max_length=255, default="", db_index=True)
    event_type = fields.CharField(max_length=100, default="")
    # "processed", "duplicate", "ignored", "bad signature", "stale", ...
    outcome = fields.CharField(max_length=100, default="")
    error = fields.TextField(default="")

    class Meta:
        table = "payment_webhook_delivery"


class WebhookEvent(Model):
    _no_comments = True
    id = fields.CharField(max_length=255, primary_key=True)
    type = fields.CharField(max_length=100)
    # The connected account the event happened on ("" for the platform's own).
    account = fields.CharField(max_length=64, default="")
    livemode = fields.BooleanField(default=False)
    # Stripe's own timestamp of the event (its "created").
    created = fields.DatetimeField(null=True)
    payload = fields.TextField()
    received_at = fields.DatetimeField()
    processed_at = fields.DatetimeField(null=True)
    # What processing did ("paid R12", "ignored: no matching request", ...).
    outcome = fields.CharField(max_length=300, default="")
    # The last processing failure, for a person to look at; Stripe retries.
    error = fields.TextField(default="")
    attempts = fields.IntField(default=0)

    class Meta:
        table = "payment_webhook_event"
