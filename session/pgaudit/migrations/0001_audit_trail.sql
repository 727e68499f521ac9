-- The audit trail: one row per step of the flow. Ids, hashes and reason
-- codes only (session.AuditRecord's fields): never image bytes, names, NHIs,
-- handoff codes or tokens. Created in the connection's current schema.
CREATE TABLE audit_trail (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    event        text NOT NULL,
    practitioner text NOT NULL DEFAULT '',
    session      text NOT NULL DEFAULT '',
    image        text NOT NULL DEFAULT '',
    facility     text NOT NULL DEFAULT '',
    source       text NOT NULL DEFAULT '',
    sha256       text NOT NULL DEFAULT '',
    media_id     text NOT NULL DEFAULT '',
    outcome      text NOT NULL DEFAULT 'ok',
    reason       text NOT NULL DEFAULT '',
    detail       text NOT NULL DEFAULT ''
);

-- List's two shapes: one session's steps, and a time range.
CREATE INDEX audit_trail_session_at ON audit_trail (session, at, id);
CREATE INDEX audit_trail_at ON audit_trail (at, id);

-- Append-only for everyone, the table's owner and superusers included:
-- UPDATE, DELETE and TRUNCATE fail with SQLSTATE CI001 even when they would
-- touch no row (a statement-level trigger). ENABLE ALWAYS keeps it firing
-- under session_replication_role = replica. Only a role that may drop the
-- trigger (the owner) can get round it, so the application should not
-- connect as the owner: see the package documentation.
CREATE FUNCTION audit_trail_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_trail is append-only: % refused', TG_OP
        USING ERRCODE = 'CI001';
END
$$;

CREATE TRIGGER audit_trail_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_trail
    FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only();
ALTER TABLE audit_trail ENABLE ALWAYS TRIGGER audit_trail_append_only;

-- The application's role: INSERT and SELECT on the trail, nothing else. It
-- is a group role without login; the server logs in as a member of it
-- (CREATE ROLE clinicalimages_server LOGIN PASSWORD '...' IN ROLE
-- clinicalimages_app). Roles belong to the whole cluster, so it is created
-- only when missing; creating it needs CREATEROLE (or create it beforehand).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'clinicalimages_app') THEN
        BEGIN
            CREATE ROLE clinicalimages_app NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- another database or schema created it at the same moment
        END;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO clinicalimages_app', current_schema());
END
$$;
GRANT SELECT, INSERT ON audit_trail TO clinicalimages_app;
GRANT SELECT ON pgaudit_migrations TO clinicalimages_app;
