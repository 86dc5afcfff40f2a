-- Indexes for the two listings, added after tenants existed: the runner
-- brings every tenant schema to this version.

-- +goose Up
CREATE INDEX customers_name_idx ON customers (name, id);
CREATE INDEX invoices_status_number_idx ON invoices (status, number DESC);

-- +goose Down
DROP INDEX invoices_status_number_idx;
DROP INDEX customers_name_idx;
