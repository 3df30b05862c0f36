-- Rows loaded by `regapp import` are marked as imported; the import's audit entry says who ran
-- it, from which file (with its SHA-256) and how many rows.
ALTER TABLE register.voter ALTER COLUMN registered_by SET DEFAULT 'import';
