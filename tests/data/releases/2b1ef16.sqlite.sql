-- The SQL Tortoise's generate_schemas(safe=True) ran at every start of release 2b1ef16
-- on sqlite: get_schema_sql(connection, safe=True) for that commit's gateway/models.py
-- and gateway/payments/models.py, tortoise-orm 1.1.9 (see README.md here).
CREATE TABLE IF NOT EXISTS "firm" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "domain" VARCHAR(253) NOT NULL UNIQUE,
    "name" VARCHAR(200) NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "timezone" VARCHAR(64) NOT NULL,
    "country" VARCHAR(2) NOT NULL,
    "request_limit_minor" BIGINT NOT NULL,
    "fee_by_default" INT NOT NULL,
    "notify_on_view" INT NOT NULL,
    "stripe_account_id" VARCHAR(64) NOT NULL,
    "payments_ready" INT NOT NULL,
    "ledger_accounts" JSON NOT NULL,
    "created_at" TIMESTAMP NOT NULL
);
CREATE TABLE IF NOT EXISTS "inbound_message" (
    "id" VARCHAR(32) NOT NULL PRIMARY KEY,
    "status" VARCHAR(11) NOT NULL /* QUEUED: queued\nPROCESSING: processing\nDONE: done\nQUARANTINED: quarantined */,
    "mail_from" VARCHAR(998) NOT NULL,
    "rcpt_tos" JSON NOT NULL,
    "peer" VARCHAR(100) NOT NULL,
    "trusted_peer" INT NOT NULL,
    "size" BIGINT NOT NULL,
    "sealed_raw" BLOB,
    "attempts" INT NOT NULL,
    "last_error" TEXT NOT NULL,
    "outcome" VARCHAR(200) NOT NULL,
    "received_at" TIMESTAMP NOT NULL,
    "lease_until" TIMESTAMP,
    "finished_at" TIMESTAMP
) /* The inbound queue: a message accepted with 250, until processed. */;
CREATE INDEX IF NOT EXISTS "idx_inbound_mes_status_d32ae7" ON "inbound_message" ("status");
CREATE TABLE IF NOT EXISTS "staff" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "email" VARCHAR(254) NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "level" VARCHAR(6) NOT NULL /* NONE: none\nSEND: send\nREPORT: report\nADMIN: admin */,
    "created_at" TIMESTAMP NOT NULL,
    "firm_id" INT NOT NULL REFERENCES "firm" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_staff_firm_id_95845d" UNIQUE ("firm_id", "email")
);
CREATE TABLE IF NOT EXISTS "payment_request" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "sender" VARCHAR(254) NOT NULL,
    "invoice" VARCHAR(100) NOT NULL,
    "client_email" VARCHAR(254) NOT NULL,
    "title" VARCHAR(300) NOT NULL,
    "amount_minor" BIGINT NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "pass_fee" INT NOT NULL,
    "fee_minor" BIGINT,
    "total_minor" BIGINT,
    "status" VARCHAR(9) NOT NULL /* SENT: sent\nVIEWED: viewed\nPAID: paid\nFAILED: failed\nREFUNDED: refunded\nCANCELLED: cancelled\nEXPIRED: expired */,
    "hint" VARCHAR(200) NOT NULL,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "kdf" JSON NOT NULL,
    "wrapped_key" BLOB NOT NULL,
    "source_message_id" VARCHAR(998) NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "expires_at" TIMESTAMP NOT NULL,
    "viewed_at" TIMESTAMP,
    "paid_at" TIMESTAMP,
    "provider" VARCHAR(20) NOT NULL,
    "provider_ref" VARCHAR(100) NOT NULL,
    "provider_fee_minor" BIGINT,
    "application_fee_minor" BIGINT,
    "refunded_minor" BIGINT NOT NULL,
    "card_funding" VARCHAR(20) NOT NULL,
    "deposit_date" DATE,
    "flagged" VARCHAR(300) NOT NULL,
    "firm_id" INT NOT NULL REFERENCES "firm" ("id") ON DELETE CASCADE,
    "staff_id" INT REFERENCES "staff" ("id") ON DELETE SET NULL,
    CONSTRAINT "uid_payment_req_firm_id_dcab69" UNIQUE ("firm_id", "sender", "source_message_id")
);
CREATE INDEX IF NOT EXISTS "idx_payment_req_provide_bcc736" ON "payment_request" ("provider_ref");
CREATE TABLE IF NOT EXISTS "event" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "at" TIMESTAMP NOT NULL,
    "actor" VARCHAR(254) NOT NULL,
    "action" VARCHAR(60) NOT NULL,
    "detail" JSON NOT NULL,
    "firm_id" INT REFERENCES "firm" ("id") ON DELETE SET NULL,
    "request_id" INT REFERENCES "payment_request" ("id") ON DELETE SET NULL
) /* Who did what, when. Never holds a secret. */;
CREATE TABLE IF NOT EXISTS "outbound_message" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "status" VARCHAR(6) NOT NULL /* QUEUED: queued\nSENT: sent\nFAILED: failed */,
    "kind" VARCHAR(40) NOT NULL,
    "mail_from" VARCHAR(254) NOT NULL,
    "rcpt_to" VARCHAR(254) NOT NULL,
    "subject" VARCHAR(998) NOT NULL,
    "sealed_message" BLOB,
    "notify_on_failure" VARCHAR(254) NOT NULL,
    "attempts" INT NOT NULL,
    "next_attempt_at" TIMESTAMP NOT NULL,
    "last_error" TEXT NOT NULL,
    "created_at" TIMESTAMP NOT NULL,
    "sent_at" TIMESTAMP,
    "request_id" INT REFERENCES "payment_request" ("id") ON DELETE SET NULL
) /* The outbound queue: mail to deliver to the relay or the Maildir. */;
CREATE INDEX IF NOT EXISTS "idx_outbound_me_status_b48477" ON "outbound_message" ("status");
CREATE INDEX IF NOT EXISTS "idx_outbound_me_next_at_fa7274" ON "outbound_message" ("next_attempt_at");
CREATE TABLE IF NOT EXISTS "sealed_file" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "position" INT NOT NULL,
    "is_body" INT NOT NULL,
    "filename" VARCHAR(255) NOT NULL,
    "content_type" VARCHAR(127) NOT NULL,
    "size" BIGINT NOT NULL,
    "file_salt" BLOB NOT NULL,
    "chunk_count" INT NOT NULL,
    "request_id" INT NOT NULL REFERENCES "payment_request" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_sealed_file_request_6cdb21" UNIQUE ("request_id", "position")
) /* The message body (position 0) or an attachment, sealed in chunks. */;
CREATE TABLE IF NOT EXISTS "sealed_chunk" (
    "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    "index" INT NOT NULL,
    "data" BLOB NOT NULL,
    "file_id" INT NOT NULL REFERENCES "sealed_file" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_sealed_chun_file_id_4d5aec" UNIQUE ("file_id", "index")
);
