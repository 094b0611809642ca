DROP TABLE audit_anchor;
ALTER TABLE audit_log DROP COLUMN key_version;
ALTER TABLE audit_log ADD COLUMN object TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN fields TEXT NOT NULL DEFAULT '';
UPDATE audit_log SET object = (SELECT o.object FROM audit_objects o WHERE o.seq = audit_log.seq AND o.position = 0),
                     fields = (SELECT o.fields FROM audit_objects o WHERE o.seq = audit_log.seq AND o.position = 0);
CREATE INDEX audit_by_object ON audit_log (object, seq);
CREATE INDEX audit_by_principal_action ON audit_log (principal, action, at);
DROP TABLE audit_objects;
