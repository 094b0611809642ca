-- Days after a payment's last refund window closes until its card brand and
-- last four are dropped (amounts, dates and provider references stay).
ALTER TABLE venues ADD COLUMN payment_data_days INTEGER NOT NULL DEFAULT 30;
