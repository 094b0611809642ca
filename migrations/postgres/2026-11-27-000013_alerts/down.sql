DROP INDEX audit_by_principal_action;
DROP TABLE principal_holds;
DROP TABLE alerts;
