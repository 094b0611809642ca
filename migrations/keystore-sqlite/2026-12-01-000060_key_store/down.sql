DROP TABLE erasures;
DROP TABLE data_keys;
