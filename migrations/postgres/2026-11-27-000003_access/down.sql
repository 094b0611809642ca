DROP TABLE login_throttle;
DROP TABLE api_keys;
DROP TABLE sessions;
DROP TABLE authz_version;
DROP TABLE role_assignments;
DROP TABLE staff_users;
