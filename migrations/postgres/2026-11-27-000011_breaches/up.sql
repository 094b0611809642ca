-- The breach register (GDPR Art. 33(5)): what happened, whom it touched,
-- what was done, and whether the authority heard within 72 hours. It
-- describes the incident, not the people: affected guests are ids in
-- breach_notices, notified through the outbox.
CREATE TABLE breaches (
    id TEXT PRIMARY KEY NOT NULL,
    discovered_at TIMESTAMPTZ NOT NULL,
    nature TEXT NOT NULL,
    data_categories TEXT NOT NULL,
    approx_people INTEGER NOT NULL,
    approx_records INTEGER NOT NULL,
    consequences TEXT NOT NULL,
    measures TEXT NOT NULL,
    contact TEXT NOT NULL,
    reported_at TIMESTAMPTZ,
    recorded_by TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE breach_notices (
    breach_id TEXT NOT NULL REFERENCES breaches (id),
    guest_id TEXT NOT NULL REFERENCES guests (id),
    outbox_id TEXT NOT NULL,
    notified_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (breach_id, guest_id)
);
