"""The data: firms, staff, payment requests, sealed files, queues, events.

Money is always an integer of minor units beside its currency code.
Nothing secret is stored in clear: raw and outbound mail are sealed under
the master key, request content under a key wrapped by the client's
password, and link tokens only as their SHA-256.
"""

from __future__ import annotations

from enum import Enum

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

# Each model says _no_comments: without it Tortoise looks for "#:" field
# comments (we write none) by reading the model's source, and
# inspect.getsource parses this whole file again for each model: 0.4 s of
# CPU at every start of a process (each command, each test's subprocess).

# Every firm's gateway address is pay@<its domain>; secure@<its domain>
# takes the same mail and sends a secure message without payment.
GATEWAY_LOCAL_PART = "pay"
SECURE_LOCAL_PART = "secure"

# The inbound queue's claim names this index (SQLite's INDEXED BY).
CLAIM_INDEX = "inbound_message_claim"
# The outbox's claim, this one.
OUTBOUND_CLAIM_INDEX = "outbound_message_claim"


class Level(str, Enum):
    NONE = "none"
    SEND = "send"
    REPORT = "report"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Level).index(self)

    def allows(self, needed: "Level") -> bool:
        return self.rank >= needed.rank


class RequestKind(str, Enum):
    """What a request asks of the client: to pay (pay@), or only to read
    (and perhaps answer) a secure message (secure@)."""

    PAYMENT = "payment"
    MESSAGE = "message"


# The gateway addresses, by local part, and the kind of request each makes.
KIND_BY_LOCAL_PART = {GATEWAY_LOCAL_PART: RequestKind.PAYMENT, SECURE_LOCAL_PART: RequestKind.MESSAGE}


def kind_for(rcpt_tos: list[str]) -> RequestKind:
    """The kind of request a message admitted for these recipients makes
    (admission lets one gateway address through per message)."""
    local = rcpt_tos[0].strip("<>").lower().rpartition("@")[0] if rcpt_tos else ""
    return KIND_BY_LOCAL_PART.get(local, RequestKind.PAYMENT)


class RequestStatus(str, Enum):
    SENT = "sent"
    VIEWED = "viewed"
    PAID = "paid"
    FAILED = "failed"
    REFUNDED = "refunded"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    # Set by the payment webhooks (gateway/payments): part of a paid request
    # given back, and a chargeback opened by the client's bank.
    PARTIALLY_REFUNDED = "partially_refunded"
    DISPUTED = "disputed"
    # The client's mail came back undeliverable (a DSN, or the relay refused
    # the address): `resend INVOICE to=ADDR` sends it to a corrected address.
    BOUNCED = "bounced"


class InboundStatus(str, Enum):
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    QUARANTINED = "quarantined"


class OutboundStatus(str, Enum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class Firm(Model):
    _no_comments = True
    id = fields.IntField(primary_key=True)
    domain = fields.CharField(max_length=253, unique=True)
    name = fields.CharField(max_length=200)
    currency = fields.CharField(max_length=3, default="CAD")
    timezone = fields.CharField(max_length=64, default="America/Toronto")
    country = fields.CharField(max_length=2, default="CA")
    # Where the firm is located (ISO 3166-2 subdivision, "ON", "QC"): card-fee rules depend on it.
    province = fields.CharField(max_length=3, default="", db_default="")
    # Largest single request, in minor units of the firm's currency.
    request_limit_minor = fields.BigIntField(default=10_000_000)
    fee_by_default = fields.BooleanField(default=False)
    # The firm's own card rate (its Stripe pricing), the most `+fee` may pass on:
    # a decimal as text ("0.029"; "" = the gateway's CLIENTTRACK_CARD_FEE_RATE)
    # and a fixed part in minor units (None = the gateway's).
    card_fee_rate = fields.CharField(max_length=12, default="", db_default="")
    card_fee_fixed_minor = fields.BigIntField(null=True)
    # The day the firm told the card networks it will surcharge; `+fee` works
    # 30 days after it (payments.surcharge), not before.
    surcharge_notice_date = fields.DateField(null=True)
    notify_on_view = fields.BooleanField(default=True)
    # Payments: the firm's Stripe connected account, ready once charges_enabled.
    stripe_account_id = fields.CharField(max_length=64, default="")
    payments_ready = fields.BooleanField(default=False)
    # Account names used by the accounting exports (IIF, Sage), by role.
    ledger_accounts = fields.JSONField(default=dict)
    # Days a request's documents are kept after it is paid, cancelled or
    # expired; then gateway/retention.py deletes them for good.
    retention_days = fields.IntField(default=90, db_default=90)
    # The language of the client's mail and pages when a request says none
    # (lang=): "en", "fr", or "" (mail in English, pages as the browser asks).
    language = fields.CharField(max_length=5, default="", db_default="")
    # The reminder schedule (gateway/reminders): days after a request is sent,
    # and days before it expires, on which an unanswered one goes again.
    reminder_after = fields.JSONField(default=list, db_default="[]")
    reminder_before_expiry = fields.JSONField(default=list, db_default="[]")
    created_at = fields.DatetimeField()

    class Meta:
        table = "firm"

    @property
    def gateway_address(self) -> str:
        return f"{GATEWAY_LOCAL_PART}@{self.domain}"

    @property
    def secure_address(self) -> str:
        return f"{SECURE_LOCAL_PART}@{self.domain}"


class Staff(Model):
    _no_comments = True
    id = fields.IntField(primary_key=True)
    firm: fields.ForeignKeyRelation[Firm] = fields.ForeignKeyField("models.Firm", related_name="staff")
    email = fields.CharField(max_length=254)
    name = fields.CharField(max_length=200, default="")
    level = fields.CharEnumField(Level, default=Level.SEND)
    created_at = fields.DatetimeField()

    class Meta:
        table = "staff"
        unique_together = (("firm", "email"),)


class PaymentRequest(Model):
    _no_comments = True
    id = fields.IntField(primary_key=True)
    firm: fields.ForeignKeyRelation[Firm] = fields.ForeignKeyField("models.Firm", related_name="requests")
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="requests", null=True, on_delete=fields.SET_NULL
    )
    sender = fields.CharField(max_length=254)
    kind = fields.CharEnumField(RequestKind, max_length=10, default=RequestKind.PAYMENT, db_default="payment")
    invoice = fields.CharField(max_length=100, default="")
    client_email = fields.CharField(max_length=254)
    title = fields.CharField(max_length=300, default="")
    # The client's language (lang=, else the firm's): "" leaves the pages to
    # the browser and writes the mail in English.
    lang = fields.CharField(max_length=5, default="", db_default="")
    # A secure message (kind message) has no amount: 0, in the firm's currency.
    amount_minor = fields.BigIntField()
    currency = fields.CharField(max_length=3)
    pass_fee = fields.BooleanField(default=False)
    fee_minor = fields.BigIntField(null=True)
    total_minor = fields.BigIntField(null=True)
    status = fields.CharEnumField(RequestStatus, default=RequestStatus.SENT)
    hint = fields.CharField(max_length=200, default="")
    token_hash = fields.CharField(max_length=64, unique=True)
    # The link token sealed under the master key, so `remind` can send the
    # same link again; the database alone cannot open it.
    sealed_token = fields.BinaryField(null=True)
    # The data key wrapped under the password-derived key, and how to derive it.
    kdf = fields.JSONField()
    wrapped_key = fields.BinaryField()
    source_message_id = fields.CharField(max_length=998)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    viewed_at = fields.DatetimeField(null=True)
    paid_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    # When retention deleted the body and the files (the record stays).
    documents_removed_at = fields.DatetimeField(null=True)
    # Filled in by the payment provider.
    provider = fields.CharField(max_length=20, default="")
    provider_ref = fields.CharField(max_length=100, default="", db_index=True)
    provider_fee_minor = fields.BigIntField(null=True)
    application_fee_minor = fields.BigIntField(null=True)
    # Where the money landed (the provider's balance transaction): its currency,
    # the exchange rate from the request's currency ("" = none) and the net there.
    settlement_currency = fields.CharField(max_length=3, default="", db_default="")
    exchange_rate = fields.CharField(max_length=32, default="", db_default="")
    settlement_net_minor = fields.BigIntField(null=True)
    refunded_minor = fields.BigIntField(default=0)
    card_funding = fields.CharField(max_length=20, default="")
    deposit_date = fields.DateField(null=True)
    # Why a payment event could not be applied (amount mismatch...): for a person to look at.
    flagged = fields.CharField(max_length=300, default="")
    # The client as a QuickBooks customer, from a customer= directive ("" = look it up).
    customer = fields.CharField(max_length=41, default="", db_default="")
    # The documents asked of the client (upload=): a checklist on their page,
    # ticked as files for each arrive (SealedFile.upload_item).
    upload_items = fields.JSONField(default=list, db_default="[]")
    # remind=no: the firm's reminder schedule leaves this request alone.
    remind = fields.BooleanField(default=True, db_default=True)
    # The last day (the firm's) whose scheduled reminder is done with, and
    # when the staff member was told it expires tomorrow unpaid.
    reminded_through = fields.DateField(null=True)
    expiry_warned_at = fields.DatetimeField(null=True)

    class Meta:
        table = "payment_request"
        unique_together = (("firm", "sender", "source_message_id"),)
        # The dashboard's table pages newest first by (created_at, id) from a
        # key (web/staff/table.py): with these, a page reads its 50 rows
        # straight off an index however many requests the firm has, for the
        # whole firm, one status, one sender, or a sender's status.
        # (By the column firm_id, not the relation firm: tortoise's migrations
        # would otherwise index a column named "firm", which SQLite takes for
        # the string 'firm'.)
        indexes = (
            ("firm_id", "created_at", "id"),
            ("firm_id", "status", "created_at", "id"),
            ("firm_id", "sender", "created_at", "id"),
            ("firm_id", "sender", "status", "created_at", "id"),
        )


class ReminderDigest(Model):
    """The one mail a day that tells a staff member which of their requests
    the reminder schedule sent again, and which expire tomorrow unpaid. One
    row a member a day (unique), so no second digest goes that day, whatever
    process runs the schedule; the next lists the reminders after
    through_event_id."""
    _no_comments = True

    id = fields.IntField(primary_key=True)
    firm: fields.ForeignKeyRelation[Firm] = fields.ForeignKeyField("models.Firm", related_name="digests",
                                                                   on_delete=fields.CASCADE)
    staff_email = fields.CharField(max_length=254)
    day = fields.DateField()
    sent_at = fields.DatetimeField()
    through_event_id = fields.IntField(default=0)

    class Meta:
        table = "reminder_digest"
        unique_together = (("firm", "staff_email", "day"),)


class CustomerName(Model):
    """A firm's client as its accounting program names the customer (the
    IIF export's NAME), imported from QuickBooks' own customer list."""
    _no_comments = True

    id = fields.IntField(primary_key=True)
    firm: fields.ForeignKeyRelation[Firm] = fields.ForeignKeyField("models.Firm", related_name="customers",
                                                                   on_delete=fields.CASCADE)
    # Lower-cased, as the request stores the client's address.
    client_email = fields.CharField(max_length=254)
    name = fields.CharField(max_length=41)

    class Meta:
        table = "customer_name"
        unique_together = (("firm", "client_email"),)


class ClientReply(Model):
    """A reply the client sent from the request's page (gateway/replies):
    its text and files are SealedFile rows of the request, sealed under the
    request's own data key, so nothing of it is readable without the
    request's password. The staff member's notice links to it by a token
    kept only as its SHA-256."""
    _no_comments = True

    id = fields.IntField(primary_key=True)
    request: fields.ForeignKeyRelation[PaymentRequest] = fields.ForeignKeyField(
        "models.PaymentRequest", related_name="replies", on_delete=fields.CASCADE
    )
    number = fields.IntField()  # 1, 2, ... within the request
    created_at = fields.DatetimeField()
    file_count = fields.IntField(default=0)
    token_hash = fields.CharField(max_length=64, unique=True)
    # When the staff member first opened it (with the password).
    read_at = fields.DatetimeField(null=True)

    class Meta:
        table = "client_reply"
        unique_together = (("request", "number"),)


class SealedFile(Model):
    """A text (is_body: the staff's message, or a client's reply) or a
    file, sealed in chunks under the request's data key. The staff's come
    first (the message at position 0); a client's reply adds its own at the
    next positions, tied to the reply.

    The chunks are one object named `blob` in the blob store (gateway/blobs),
    or, for files sealed before the store existed and not yet moved by
    `clienttrack blobs migrate`, SealedChunk rows (blob empty)."""
    _no_comments = True

    id = fields.IntField(primary_key=True)
    request: fields.ForeignKeyRelation[PaymentRequest] = fields.ForeignKeyField(
        "models.PaymentRequest", related_name="files", on_delete=fields.CASCADE
    )
    # None for the staff's; set for what the client sent.
    reply: fields.ForeignKeyNullableRelation[ClientReply] = fields.ForeignKeyField(
        "models.ClientReply", related_name="sealed_files", null=True, on_delete=fields.CASCADE
    )
    # The line of the request's upload= checklist a client's file answers.
    upload_item = fields.IntField(null=True)
    position = fields.IntField()
    is_body = fields.BooleanField(default=False)
    filename = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=127)
    size = fields.BigIntField()
    file_salt = fields.BinaryField()
    chunk_count = fields.IntField()
    blob = fields.CharField(max_length=100, default="", db_default="")

    class Meta:
        table = "sealed_file"
        unique_together = (("request", "position"),)


class SealedChunk(Model):
    """A sealed chunk kept in the database: how files were stored before the
    blob store; `clienttrack blobs migrate` moves them out."""
    _no_comments = True

    id = fields.IntField(primary_key=True)
    file: fields.ForeignKeyRelation[SealedFile] = fields.ForeignKeyField(
        "models.SealedFile", related_name="chunks", on_delete=fields.CASCADE
    )
    index = fields.IntField()
    data = fields.BinaryField()

    class Meta:
        table = "sealed_chunk"
        unique_together = (("file", "index"),)


class InboundMessage(Model):
    """The inbound queue: a message accepted with 250, until processed."""
    _no_comments = True

    id = fields.CharField(max_length=32, primary_key=True)
    status = fields.CharEnumField(InboundStatus, default=InboundStatus.QUEUED, db_index=True)
    mail_from = fields.CharField(max_length=998)
    # Who sent it to which firm, as admission authenticated: rate limits count by them.
    sender = fields.CharField(max_length=254, default="")
    firm_domain = fields.CharField(max_length=253, default="")
    rcpt_tos = fields.JSONField()
    peer = fields.CharField(max_length=100, default="")
    trusted_peer = fields.BooleanField(default=False)
    size = fields.BigIntField()
    # The message itself is InboundRaw's row of the same id. For a large
    # message that is only its header section: the body went to the blob
    # store while it arrived (body_blob, sealed in chunks under a key of
    # the master key's for this queue id, file salt body_salt), and the
    # object is deleted once the message is done.
    body_blob = fields.CharField(max_length=100, default="", db_default="")
    body_salt = fields.BinaryField(null=True)
    attempts = fields.IntField(default=0)
    last_error = fields.TextField(default="")
    outcome = fields.CharField(max_length=200, default="")
    received_at = fields.DatetimeField()
    lease_until = fields.DatetimeField(null=True)
    # Which process holds the lease (gateway/core/owner.py): it renews the
    # lease while alive, and a restart on the same machine takes back at
    # once what its dead predecessor held.
    lease_owner = fields.CharField(max_length=200, default="", db_default="")
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "inbound_message"
        # The claim's pick (inbound/queue.py) read off this index alone. With
        # only the status index, SQLite read each queued row for its lease
        # and arrival time, and those columns came after the message (in the
        # row then): every claim walked the overflow pages of every queued
        # message (7.5 ms for 200 queued 140 KB messages, against 0.02 ms
        # from this index).
        indexes = (Index(fields=("status", "received_at", "lease_until", "id"), name=CLAIM_INDEX),)

    # Not a column: the claim reads it from InboundRaw (inbound/queue.py).
    sealed_raw: bytes | None = None


class InboundRaw(Model):
    """A queued message as received, sealed under the master key (its
    InboundMessage has the same id); deleted once the message is done, kept
    while it waits, is retried or is quarantined. A table of its own: the
    queue row is updated at the claim and the finish, and SQLite rewrites a
    row whose size changes whole, a 140 KB message's ~35 overflow pages
    with it (and, built with SECURE_DELETE as Debian's is, zeroes the old
    ones): the claim wrote ~71 pages to the WAL, now 3."""
    _no_comments = True

    id = fields.CharField(max_length=32, primary_key=True)
    sealed_raw = fields.BinaryField()

    class Meta:
        table = "inbound_raw"


class AdmissionCount(Model):
    """Messages admitted per minute, for a firm (sender "") and for each
    sender: the hourly limits add up the last 60 of them. (Counting the
    queue's own rows cost a scan of the hour's messages for every message.)
    Housekeeping deletes the minutes no limit looks at any more."""
    _no_comments = True

    id = fields.BigIntField(primary_key=True)
    firm_domain = fields.CharField(max_length=253)
    sender = fields.CharField(max_length=254)
    minute = fields.BigIntField()  # Unix time // 60
    messages = fields.IntField()

    class Meta:
        table = "admission_count"
        unique_together = (("firm_domain", "sender", "minute"),)


class AcceptedMessageId(Model):
    """The Message-IDs of signed messages a firm's gateway accepted: a
    message acts once (a copy sent again is refused at DATA). Kept for
    longer than a signed message stays fresh (admission/replays.py), then
    deleted by housekeeping."""
    _no_comments = True

    id = fields.BigIntField(primary_key=True)
    firm_domain = fields.CharField(max_length=253)
    # SHA-256 of the Message-ID as signed: bounded, whatever its length.
    digest = fields.CharField(max_length=64)
    accepted_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "accepted_message_id"
        unique_together = (("firm_domain", "digest"),)


class OutboundMessage(Model):
    """The outbound queue: mail to deliver to the relay or the Maildir."""
    _no_comments = True

    id = fields.IntField(primary_key=True)
    status = fields.CharEnumField(OutboundStatus, default=OutboundStatus.QUEUED, db_index=True)
    kind = fields.CharField(max_length=40)
    mail_from = fields.CharField(max_length=254)
    rcpt_to = fields.CharField(max_length=254)
    subject = fields.CharField(max_length=998, default="")
    # The rendered message sealed under the master key; cleared once sent.
    sealed_message = fields.BinaryField(null=True)
    # Who hears about it if delivery fails for good (empty: nobody, no loops).
    notify_on_failure = fields.CharField(max_length=254, default="")
    request: fields.ForeignKeyNullableRelation[PaymentRequest] = fields.ForeignKeyField(
        "models.PaymentRequest", related_name="outbound", null=True, on_delete=fields.SET_NULL
    )
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(db_index=True)
    # A runner's claim while it delivers, as on the inbound queue.
    lease_until = fields.DatetimeField(null=True)
    lease_owner = fields.CharField(max_length=200, default="", db_default="")
    last_error = fields.TextField(default="")
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    # Messages accepted at this message's bounce address (admission/bounces.py
    # takes a few, then refuses: whoever saw the address cannot flood it).
    returns = fields.IntField(default=0, db_default=0)

    class Meta:
        table = "outbound_message"
        # The outbox's claim (outbound/outbox.py) read off this index alone,
        # in its order (due time, then id); as on the inbound queue, the
        # status index left SQLite reading each queued row for its due time
        # and lease, past its sealed message: 0.45 ms a claim with 200
        # queued, 0.005 ms from this index.
        indexes = (Index(fields=("status", "next_attempt_at", "id", "lease_until"), name=OUTBOUND_CLAIM_INDEX),)


class Event(Model):
    """Who did what, when. Never holds a secret."""
    _no_comments = True

    id = fields.IntField(primary_key=True)
    at = fields.DatetimeField()
    firm: fields.ForeignKeyNullableRelation[Firm] = fields.ForeignKeyField(
        "models.Firm", related_name="events", null=True, on_delete=fields.SET_NULL
    )
    request: fields.ForeignKeyNullableRelation[PaymentRequest] = fields.ForeignKeyField(
        "models.PaymentRequest", related_name="events", null=True, on_delete=fields.SET_NULL
    )
    actor = fields.CharField(max_length=254)
    action = fields.CharField(max_length=60)
    detail = fields.JSONField(default=dict)

    class Meta:
        table = "event"


class UnlockGuard(Model):
    """Password tries on one request: what stops guessing. Apart from the
    request row, so unlocking never contends with the payment side's writes."""
    _no_comments = True

    id = fields.IntField(primary_key=True)
    request: fields.OneToOneRelation[PaymentRequest] = fields.OneToOneField(
        "models.PaymentRequest", related_name="unlock_guard", on_delete=fields.CASCADE
    )
    # Wrong passwords in a row, counting tries still being checked, so that
    # tries made at the same moment cannot slip past the limit together.
    failures = fields.IntField(default=0)
    # Locks since the last right password: each one lasts twice the last.
    locks = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    # The hourly cap, whatever the address: tries since window_start.
    window_start = fields.DatetimeField(null=True)
    window_tries = fields.IntField(default=0)

    class Meta:
        table = "unlock_guard"


class ClientSession(Model):
    """An unlocked request in one browser. Holds the data key sealed under
    the master key (never the password) and the session id only as its
    SHA-256, so the table alone opens nothing."""
    _no_comments = True

    id_hash = fields.CharField(max_length=64, primary_key=True)
    request: fields.ForeignKeyRelation[PaymentRequest] = fields.ForeignKeyField(
        "models.PaymentRequest", related_name="sessions", on_delete=fields.CASCADE
    )
    sealed_key = fields.BinaryField()
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "client_session"


class StaffSignIn(Model):
    """A one-time link to the firm's dashboard (gateway/vault/signin.py):
    the token only as its SHA-256, for one staff member of one firm, valid
    a few minutes and spent once, by the POST of the page it opens."""
    _no_comments = True

    token_hash = fields.CharField(max_length=64, primary_key=True)
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="sign_ins", on_delete=fields.CASCADE
    )
    firm: fields.ForeignKeyRelation[Firm] = fields.ForeignKeyField(
        "models.Firm", related_name="sign_ins", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)
    used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "staff_sign_in"


class StaffSession(Model):
    """A signed-in staff member in one browser (web/staff/sessions.py). The
    session id only as its SHA-256. Removing the member deletes these rows;
    a level of none ends them too (gateway/core/directory.py)."""
    _no_comments = True

    id_hash = fields.CharField(max_length=64, primary_key=True)
    staff: fields.ForeignKeyRelation[Staff] = fields.ForeignKeyField(
        "models.Staff", related_name="sessions", on_delete=fields.CASCADE
    )
    firm: fields.ForeignKeyRelation[Firm] = fields.ForeignKeyField(
        "models.Firm", related_name="staff_sessions", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField(db_index=True)
    # What the last action said, shown once by the next page (post/redirect/get).
    flash = fields.JSONField(default=dict)

    class Meta:
        table = "staff_session"
