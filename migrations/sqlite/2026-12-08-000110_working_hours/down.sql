DROP TABLE hours_exceptions;
ALTER TABLE resources DROP COLUMN working_hours;
