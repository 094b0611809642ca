DROP TABLE access_codes;
