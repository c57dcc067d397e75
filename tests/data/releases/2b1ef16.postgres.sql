-- The SQL Tortoise's generate_schemas(safe=True) ran at every start of release 2b1ef16
-- on postgres: get_schema_sql(connection, safe=True) for that commit's gateway/models.py
-- and gateway/payments/models.py, tortoise-orm 1.1.9 (see README.md here).
CREATE TABLE IF NOT EXISTS "firm" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "domain" VARCHAR(253) NOT NULL UNIQUE,
    "name" VARCHAR(200) NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "timezone" VARCHAR(64) NOT NULL,
    "country" VARCHAR(2) NOT NULL,
    "request_limit_minor" BIGINT NOT NULL,
    "fee_by_default" BOOL NOT NULL,
    "notify_on_view" BOOL NOT NULL,
    "stripe_account_id" VARCHAR(64) NOT NULL,
    "payments_ready" BOOL NOT NULL,
    "ledger_accounts" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS "inbound_message" (
    "id" VARCHAR(32) NOT NULL PRIMARY KEY,
    "status" VARCHAR(11) NOT NULL,
    "mail_from" VARCHAR(998) NOT NULL,
    "rcpt_tos" JSONB NOT NULL,
    "peer" VARCHAR(100) NOT NULL,
    "trusted_peer" BOOL NOT NULL,
    "size" BIGINT NOT NULL,
    "sealed_raw" BYTEA,
    "attempts" INT NOT NULL,
    "last_error" TEXT NOT NULL,
    "outcome" VARCHAR(200) NOT NULL,
    "received_at" TIMESTAMPTZ NOT NULL,
    "lease_until" TIMESTAMPTZ,
    "finished_at" TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS "idx_inbound_mes_status_d32ae7" ON "inbound_message" ("status");
COMMENT ON COLUMN "inbound_message"."status" IS 'QUEUED: queued\nPROCESSING: processing\nDONE: done\nQUARANTINED: quarantined';
COMMENT ON TABLE "inbound_message" IS 'The inbound queue: a message accepted with 250, until processed.';
CREATE TABLE IF NOT EXISTS "staff" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "email" VARCHAR(254) NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "level" VARCHAR(6) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "firm_id" INT NOT NULL REFERENCES "firm" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_staff_firm_id_95845d" UNIQUE ("firm_id", "email")
);
COMMENT ON COLUMN "staff"."level" IS 'NONE: none\nSEND: send\nREPORT: report\nADMIN: admin';
CREATE TABLE IF NOT EXISTS "payment_request" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "sender" VARCHAR(254) NOT NULL,
    "invoice" VARCHAR(100) NOT NULL,
    "client_email" VARCHAR(254) NOT NULL,
    "title" VARCHAR(300) NOT NULL,
    "amount_minor" BIGINT NOT NULL,
    "currency" VARCHAR(3) NOT NULL,
    "pass_fee" BOOL NOT NULL,
    "fee_minor" BIGINT,
    "total_minor" BIGINT,
    "status" VARCHAR(9) NOT NULL,
    "hint" VARCHAR(200) NOT NULL,
    "token_hash" VARCHAR(64) NOT NULL UNIQUE,
    "kdf" JSONB NOT NULL,
    "wrapped_key" BYTEA NOT NULL,
    "source_message_id" VARCHAR(998) NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "expires_at" TIMESTAMPTZ NOT NULL,
    "viewed_at" TIMESTAMPTZ,
    "paid_at" TIMESTAMPTZ,
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
COMMENT ON COLUMN "payment_request"."status" IS 'SENT: sent\nVIEWED: viewed\nPAID: paid\nFAILED: failed\nREFUNDED: refunded\nCANCELLED: cancelled\nEXPIRED: expired';
CREATE TABLE IF NOT EXISTS "event" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "at" TIMESTAMPTZ NOT NULL,
    "actor" VARCHAR(254) NOT NULL,
    "action" VARCHAR(60) NOT NULL,
    "detail" JSONB NOT NULL,
    "firm_id" INT REFERENCES "firm" ("id") ON DELETE SET NULL,
    "request_id" INT REFERENCES "payment_request" ("id") ON DELETE SET NULL
);
COMMENT ON TABLE "event" IS 'Who did what, when. Never holds a secret.';
CREATE TABLE IF NOT EXISTS "outbound_message" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "status" VARCHAR(6) NOT NULL,
    "kind" VARCHAR(40) NOT NULL,
    "mail_from" VARCHAR(254) NOT NULL,
    "rcpt_to" VARCHAR(254) NOT NULL,
    "subject" VARCHAR(998) NOT NULL,
    "sealed_message" BYTEA,
    "notify_on_failure" VARCHAR(254) NOT NULL,
    "attempts" INT NOT NULL,
    "next_attempt_at" TIMESTAMPTZ NOT NULL,
    "last_error" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ NOT NULL,
    "sent_at" TIMESTAMPTZ,
    "request_id" INT REFERENCES "payment_request" ("id") ON DELETE SET NULL
);
CREATE INDEX IF NOT EXISTS "idx_outbound_me_status_b48477" ON "outbound_message" ("status");
CREATE INDEX IF NOT EXISTS "idx_outbound_me_next_at_fa7274" ON "outbound_message" ("next_attempt_at");
COMMENT ON COLUMN "outbound_message"."status" IS 'QUEUED: queued\nSENT: sent\nFAILED: failed';
COMMENT ON TABLE "outbound_message" IS 'The outbound queue: mail to deliver to the relay or the Maildir.';
CREATE TABLE IF NOT EXISTS "sealed_file" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "position" INT NOT NULL,
    "is_body" BOOL NOT NULL,
    "filename" VARCHAR(255) NOT NULL,
    "content_type" VARCHAR(127) NOT NULL,
    "size" BIGINT NOT NULL,
    "file_salt" BYTEA NOT NULL,
    "chunk_count" INT NOT NULL,
    "request_id" INT NOT NULL REFERENCES "payment_request" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_sealed_file_request_6cdb21" UNIQUE ("request_id", "position")
);
COMMENT ON TABLE "sealed_file" IS 'The message body (position 0) or an attachment, sealed in chunks.';
CREATE TABLE IF NOT EXISTS "sealed_chunk" (
    "id" SERIAL NOT NULL PRIMARY KEY,
    "index" INT NOT NULL,
    "data" BYTEA NOT NULL,
    "file_id" INT NOT NULL REFERENCES "sealed_file" ("id") ON DELETE CASCADE,
    CONSTRAINT "uid_sealed_chun_file_id_4d5aec" UNIQUE ("file_id", "index")
);
