-- hookwatch's tables on PostgreSQL, all in the schema `hookwatch` so they
-- never meet an application's own tables of the same names.
--
-- Ids (events, notices, bulk jobs) are ULIDs stored as 16 big-endian bytes:
-- bytea compares bytewise, so id order is creation order and a time bound is
-- an id bound, as in the redb store. Times the queries compare are
-- milliseconds since the epoch (bigint), as the redb store's keys are; the
-- records themselves (`record`, jsonb) keep full precision.
--
-- State codes are `EventState::code()`: 0 pending, 1 retrying, 2 delivered,
-- 3 failed, 4 cancelled, 5 skipped (never reordered).

CREATE TABLE hookwatch.events (
    id bytea PRIMARY KEY,
    destination text NOT NULL,
    topic text NOT NULL,
    state smallint NOT NULL,
    -- The due time while the event is owed (pending or retrying) and has
    -- one; NULL otherwise, so that the due index holds owed events only.
    next_attempt_ms bigint,
    -- Which node is attempting the event and until when (a node that dies
    -- loses its lease when it expires); set by the cluster's claim.
    leased_by text,
    lease_until_ms bigint,
    -- The whole EventRecord as the engine knows it; the columns above are
    -- copies of its fields kept in step by the same statement.
    record jsonb NOT NULL
);

-- What each dispatcher reads: a destination's owed events by due time.
CREATE INDEX events_due ON hookwatch.events (destination, next_attempt_ms, id)
    WHERE next_attempt_ms IS NOT NULL;
-- Per-destination counts and listings, flush and bulk selections.
CREATE INDEX events_destination_state ON hookwatch.events (destination, state, id);
-- Listings by state across destinations; the purge's finished events.
CREATE INDEX events_state ON hookwatch.events (state, id);
-- Listings by topic (a glob's literal prefix is a range of it).
CREATE INDEX events_topic ON hookwatch.events (topic text_pattern_ops, id);

-- Bodies apart from the records, so that a state change does not copy them.
CREATE TABLE hookwatch.payloads (
    id bytea PRIMARY KEY REFERENCES hookwatch.events (id) ON DELETE CASCADE,
    body bytea NOT NULL
);

CREATE TABLE hookwatch.attempts (
    event_id bytea NOT NULL REFERENCES hookwatch.events (id) ON DELETE CASCADE,
    n integer NOT NULL,
    at_ms bigint NOT NULL,
    record jsonb NOT NULL,
    PRIMARY KEY (event_id, n)
);

-- The first event of a (destination, key) within the window; a later event
-- with the key takes it over once the window has passed.
CREATE TABLE hookwatch.idempotency_keys (
    destination text NOT NULL,
    key text NOT NULL,
    event_id bytea NOT NULL,
    created_ms bigint NOT NULL,
    PRIMARY KEY (destination, key)
);
CREATE INDEX idempotency_keys_created ON hookwatch.idempotency_keys (created_ms);

-- Destinations created through the API: the engine's document, as bytes.
CREATE TABLE hookwatch.destinations (
    id text PRIMARY KEY,
    document bytea NOT NULL
);

CREATE TABLE hookwatch.destination_runtime (
    destination text PRIMARY KEY,
    runtime jsonb NOT NULL
);

-- Minutes of attempt statistics: the engine's bytes.
CREATE TABLE hookwatch.stats (
    destination text NOT NULL,
    minute_ms bigint NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (destination, minute_ms)
);

CREATE TABLE hookwatch.notices (
    id bytea PRIMARY KEY,
    acked boolean NOT NULL,
    record jsonb NOT NULL
);
CREATE INDEX notices_unacked ON hookwatch.notices (id) WHERE NOT acked;

-- Bulk jobs: whether finished, and the engine's record (bytes).
CREATE TABLE hookwatch.bulk_jobs (
    id bytea PRIMARY KEY,
    finished boolean NOT NULL,
    record bytea NOT NULL
);

-- A running job's ids, one destination's chunk per row (16 bytes per id).
CREATE TABLE hookwatch.bulk_job_ids (
    job bytea NOT NULL REFERENCES hookwatch.bulk_jobs (id) ON DELETE CASCADE,
    n integer NOT NULL,
    destination text NOT NULL,
    ids bytea NOT NULL,
    PRIMARY KEY (job, n)
);
