// Versioned schema steps. PRAGMA user_version holds the last step applied; each step runs in a
// transaction with the version bump, so a crash never leaves a half-migrated database.
// Append new steps; never edit one that has shipped.
export const MIGRATIONS: string[] = [
  /* 1: the initial schema */ `
  CREATE TABLE certificates (
    serial        TEXT PRIMARY KEY,          -- lower-case hex, no leading zero byte
    subject       TEXT NOT NULL,
    sans          TEXT NOT NULL DEFAULT '[]', -- JSON array of "dns:..", "ip:..", ...
    not_before    INTEGER NOT NULL,          -- ms since epoch
    not_after     INTEGER NOT NULL,
    status        TEXT NOT NULL DEFAULT 'valid' CHECK (status IN ('valid','revoked','superseded')),
    issuer        TEXT NOT NULL,
    issuer_key    TEXT NOT NULL,             -- hex SKI of the issuing CA key
    profile       TEXT NOT NULL,
    requester     TEXT NOT NULL,
    spki_sha256   TEXT NOT NULL,
    der           BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER,
    revocation_reason TEXT,
    superseded_by TEXT,
    kind          TEXT NOT NULL DEFAULT 'ee' -- 'ee', 'tls' (the listener), 'ocsp'
  );
  CREATE INDEX certificates_status ON certificates(status, not_after);
  CREATE INDEX certificates_created ON certificates(created_at);
  CREATE INDEX certificates_subject ON certificates(subject);
  CREATE INDEX certificates_spki ON certificates(spki_sha256);

  CREATE TABLE est_requests (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            INTEGER NOT NULL,
    request_id    TEXT NOT NULL,
    operation     TEXT NOT NULL,
    label         TEXT,
    method        TEXT NOT NULL,
    client_addr   TEXT,
    client_identity TEXT,
    auth_method   TEXT,
    tls_version   TEXT,
    status        INTEGER NOT NULL,
    reason        TEXT,
    serial        TEXT,
    enrollment_id INTEGER,
    duration_ms   REAL
  );
  CREATE INDEX est_requests_at ON est_requests(at);
  CREATE INDEX est_requests_identity ON est_requests(client_identity);

  CREATE TABLE enrollments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    profile       TEXT NOT NULL,
    operation     TEXT NOT NULL,
    requester     TEXT NOT NULL,
    subject       TEXT NOT NULL,
    sans          TEXT NOT NULL DEFAULT '[]',
    spki_sha256   TEXT NOT NULL,
    csr_der       BLOB NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending','approved','rejected','issued')),
    reason        TEXT,
    decided_by    TEXT,
    serial        TEXT
  );
  CREATE INDEX enrollments_lookup ON enrollments(profile, spki_sha256, subject, state);

  CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    labels        TEXT NOT NULL DEFAULT '[]', -- JSON array of profile names; empty = default profile
    role          TEXT NOT NULL DEFAULT 'est' CHECK (role IN ('est','admin')),
    created_at    INTEGER NOT NULL
  );

  CREATE TABLE ca_certs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    generation    INTEGER NOT NULL,          -- 1 for the first root, +1 per rollover
    role          TEXT NOT NULL CHECK (role IN ('root','oldWithNew','newWithOld','ocsp')),
    status        TEXT NOT NULL CHECK (status IN ('active','retired','pending')),
    key_label     TEXT,                      -- the token key that signs under this certificate
    key_type      TEXT,
    subject       TEXT NOT NULL,
    serial        TEXT NOT NULL,
    ski           TEXT NOT NULL,
    not_before    INTEGER NOT NULL,
    not_after     INTEGER NOT NULL,
    der           BLOB NOT NULL,
    created_at    INTEGER NOT NULL
  );

  CREATE TABLE crls (
    number        INTEGER PRIMARY KEY,
    issuer_key    TEXT NOT NULL,
    this_update   INTEGER NOT NULL,
    next_update   INTEGER NOT NULL,
    der           BLOB NOT NULL
  );

  CREATE TABLE meta (
    key           TEXT PRIMARY KEY,
    value         TEXT NOT NULL
  );
  `,
  /* 2: listing, counting and searching stay fast with a million certificates (issue 6) */ `
  -- Per (kind, status) counts, kept by triggers, so the dashboard never sums a million rows.
  CREATE TABLE cert_counts (
    kind   TEXT NOT NULL,
    status TEXT NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (kind, status)
  ) WITHOUT ROWID;
  INSERT INTO cert_counts (kind, status, n) SELECT kind, status, count(*) FROM certificates GROUP BY kind, status;
  CREATE TRIGGER certificates_count_insert AFTER INSERT ON certificates BEGIN
    INSERT INTO cert_counts (kind, status, n) VALUES (NEW.kind, NEW.status, 1)
      ON CONFLICT (kind, status) DO UPDATE SET n = n + 1;
  END;
  CREATE TRIGGER certificates_count_delete AFTER DELETE ON certificates BEGIN
    UPDATE cert_counts SET n = n - 1 WHERE kind = OLD.kind AND status = OLD.status;
  END;
  CREATE TRIGGER certificates_count_update AFTER UPDATE OF kind, status ON certificates
    WHEN OLD.kind IS NOT NEW.kind OR OLD.status IS NOT NEW.status BEGIN
    UPDATE cert_counts SET n = n - 1 WHERE kind = OLD.kind AND status = OLD.status;
    INSERT INTO cert_counts (kind, status, n) VALUES (NEW.kind, NEW.status, 1)
      ON CONFLICT (kind, status) DO UPDATE SET n = n + 1;
  END;

  -- Substring search (subject, SANs, requester) through a trigram index instead of a full scan.
  CREATE VIRTUAL TABLE cert_search USING fts5(subject, sans, requester, content = 'certificates', content_rowid = 'rowid', tokenize = 'trigram');
  INSERT INTO cert_search (cert_search) VALUES ('rebuild');
  CREATE TRIGGER certificates_search_insert AFTER INSERT ON certificates BEGIN
    INSERT INTO cert_search (rowid, subject, sans, requester) VALUES (NEW.rowid, NEW.subject, NEW.sans, NEW.requester);
  END;
  CREATE TRIGGER certificates_search_delete AFTER DELETE ON certificates BEGIN
    INSERT INTO cert_search (cert_search, rowid, subject, sans, requester) VALUES ('delete', OLD.rowid, OLD.subject, OLD.sans, OLD.requester);
  END;
  CREATE TRIGGER certificates_search_update AFTER UPDATE OF subject, sans, requester ON certificates BEGIN
    INSERT INTO cert_search (cert_search, rowid, subject, sans, requester) VALUES ('delete', OLD.rowid, OLD.subject, OLD.sans, OLD.requester);
    INSERT INTO cert_search (rowid, subject, sans, requester) VALUES (NEW.rowid, NEW.subject, NEW.sans, NEW.requester);
  END;

  -- The list's sort orders and status filters, each with the serial as tie-breaker.
  CREATE INDEX certificates_kind_created ON certificates(kind, created_at, serial);
  CREATE INDEX certificates_kind_expiry ON certificates(kind, not_after, serial);
  CREATE INDEX certificates_kind_subject ON certificates(kind, subject, serial);
  CREATE INDEX certificates_kind_status ON certificates(kind, status, not_after);
  `,
  /* 3: expired/expiring filters and the status sort answered from indexes alone (issue 6) */ `
  DROP INDEX certificates_kind_status;
  CREATE INDEX certificates_kind_status ON certificates(kind, status, not_after, created_at, serial);
  CREATE INDEX certificates_kind_expiry_created ON certificates(kind, not_after, created_at, serial);
  CREATE INDEX certificates_kind_status_serial ON certificates(kind, status, serial);
  `,
  /* 4: admin UI sessions and sign-in failures, shared by every server process (--workers) */ `
  CREATE TABLE admin_sessions (
    token_sha256  TEXT PRIMARY KEY,          -- hex SHA-256 of the cookie value; the value itself is never stored
    user          TEXT NOT NULL,
    csrf          TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
  );
  CREATE INDEX admin_sessions_expires ON admin_sessions(expires_at);
  CREATE TABLE admin_login_failures (
    key           TEXT NOT NULL,             -- 'u:NAME@ADDR' (one account from one address) or 'a:ADDR'
    at            INTEGER NOT NULL
  );
  CREATE INDEX admin_login_failures_key ON admin_login_failures(key, at);
  `,
  /* 5: the CRL publisher's check of revocations reads a small index, not 20,000 rows (issue 6) */ `
  CREATE INDEX certificates_revoked ON certificates(issuer_key, not_after, revoked_at) WHERE status = 'revoked';
  `,
  /* 6: a CRL's entry count, so that checking it after a restart does not parse a CRL of 20,000 entries (issue 6) */ `
  ALTER TABLE crls ADD COLUMN entries INTEGER;
  `,
  /*
   * 7: new certificates enter the trigram index in batches (CertificateRepo.indexSearch), not one
   * by one in the issuing transaction: at a million rows a row's trigrams cost twice its insert.
   * Rows above the mark are searched directly until then. Deleting or editing a row the index
   * never held must not touch the index, or FTS5 would corrupt it.
   */ `
  DROP TRIGGER certificates_search_insert;
  INSERT INTO meta (key, value) VALUES ('search_indexed_rowid', (SELECT coalesce(max(rowid), 0) FROM certificates))
    ON CONFLICT (key) DO UPDATE SET value = excluded.value;
  DROP TRIGGER certificates_search_delete;
  CREATE TRIGGER certificates_search_delete AFTER DELETE ON certificates
    WHEN OLD.rowid <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'search_indexed_rowid') BEGIN
    INSERT INTO cert_search (cert_search, rowid, subject, sans, requester) VALUES ('delete', OLD.rowid, OLD.subject, OLD.sans, OLD.requester);
  END;
  DROP TRIGGER certificates_search_update;
  CREATE TRIGGER certificates_search_update AFTER UPDATE OF subject, sans, requester ON certificates
    WHEN OLD.rowid <= (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'search_indexed_rowid') BEGIN
    INSERT INTO cert_search (cert_search, rowid, subject, sans, requester) VALUES ('delete', OLD.rowid, OLD.subject, OLD.sans, OLD.requester);
    INSERT INTO cert_search (rowid, subject, sans, requester) VALUES (NEW.rowid, NEW.subject, NEW.sans, NEW.requester);
  END;
  `,
];
