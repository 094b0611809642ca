DROP TABLE breach_notices; DROP TABLE breaches;
