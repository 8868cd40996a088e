-- Switchyard schema, SQLite dialect. Keep in step with ../postgres/0001_initial.sql.

-- Webhook outbox: one row per (event, url), written before any delivery attempt.
-- `seq` is assigned by the store from `outbox_seq` inside the inserting transaction, so it
-- increases with every insert, in commit order, and never goes back after a restart.
CREATE TABLE webhook_outbox (
    seq                INTEGER PRIMARY KEY NOT NULL,
    id                 TEXT    NOT NULL,
    queue_key          TEXT    NOT NULL,
    url                TEXT    NOT NULL,
    body               TEXT    NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms BIGINT  NOT NULL,
    created_at_ms      BIGINT  NOT NULL,
    last_error         TEXT,
    UNIQUE (id, url)
);
CREATE INDEX webhook_outbox_queue ON webhook_outbox (queue_key, url, seq);

-- The last `webhook_outbox.seq` handed out (a single row).
CREATE TABLE outbox_seq (
    id       INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    last_seq BIGINT  NOT NULL
);
INSERT INTO outbox_seq (id, last_seq) VALUES (1, 0);

CREATE TABLE rooms (
    sid           TEXT   PRIMARY KEY NOT NULL,
    name          TEXT   NOT NULL,
    created_at_ms BIGINT NOT NULL,
    closed_at_ms  BIGINT,
    metadata      TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX rooms_created ON rooms (created_at_ms);
CREATE INDEX rooms_name ON rooms (name);

CREATE TABLE participant_sessions (
    sid               TEXT   PRIMARY KEY NOT NULL,
    room_sid          TEXT   NOT NULL,
    room_name         TEXT   NOT NULL,
    identity          TEXT   NOT NULL,
    name              TEXT   NOT NULL DEFAULT '',
    joined_at_ms      BIGINT NOT NULL,
    left_at_ms        BIGINT,
    disconnect_reason TEXT
);
CREATE INDEX participant_sessions_room_name ON participant_sessions (room_name, joined_at_ms);
CREATE INDEX participant_sessions_room_sid ON participant_sessions (room_sid);

CREATE TABLE tracks (
    sid               TEXT   PRIMARY KEY NOT NULL,
    room_sid          TEXT   NOT NULL,
    participant_sid   TEXT   NOT NULL,
    kind              TEXT   NOT NULL,
    source            TEXT   NOT NULL,
    mime_type         TEXT   NOT NULL DEFAULT '',
    published_at_ms   BIGINT NOT NULL,
    unpublished_at_ms BIGINT
);
CREATE INDEX tracks_room_sid ON tracks (room_sid, published_at_ms);
CREATE INDEX tracks_participant_sid ON tracks (participant_sid);
