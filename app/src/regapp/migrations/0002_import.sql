-- Rows loaded by `regapp import` name the role that loaded them; the import's audit entry says
-- who ran it, from which file (with its SHA-256) and how many rows.
ALTER TABLE register.voter ALTER COLUMN registered_by SET DEFAULT current_user;
