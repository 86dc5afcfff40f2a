-- Invoicer keeps every tenant in a schema of its own (tenant_acme_corp,
-- tenant_globex, ...), so these tables have no tenant column: the schema is
-- the boundary. The migration runner applies this file in each tenant
-- schema and then seals it (postgres.SealSchema): every table gets a
-- restrictive policy that admits only the schema's own tenant, so a
-- statement that names another tenant's schema reads nothing and cannot
-- write.
--
-- IDs are UUIDs, not sequences: an ID of one tenant means nothing in
-- another, and schemas share the tenant role, which may advance any
-- schema's sequences. Money is integer cents.

-- +goose Up
CREATE TABLE customers (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    email      text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One customer per email address within a tenant, ignoring case. Another
-- tenant's schema has its own index, so the same address is fine there.
CREATE UNIQUE INDEX customers_email_key ON customers (lower(email));

-- The invoice number counter: one row, advanced in the statement that
-- creates the invoice. Its row lock serializes concurrent creates, and a
-- create that fails rolls the counter back with it, so numbers have no
-- gaps and no duplicates.
CREATE TABLE invoice_counter (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    next_number bigint  NOT NULL CHECK (next_number > 0)
);
INSERT INTO invoice_counter (next_number) VALUES (1);

CREATE TABLE invoices (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    number         bigint      NOT NULL UNIQUE CHECK (number > 0),
    -- RESTRICT: a customer with invoices cannot be deleted.
    customer_id    uuid        NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    status         text        NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'issued', 'paid', 'void')),
    currency       text        NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    due_date       date        NOT NULL,
    subtotal_cents bigint      NOT NULL CHECK (subtotal_cents >= 0),
    total_cents    bigint      NOT NULL CHECK (total_cents >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    issued_at      timestamptz,
    paid_at        timestamptz,
    voided_at      timestamptz
);

CREATE INDEX invoices_customer_id_idx ON invoices (customer_id);

CREATE TABLE line_items (
    invoice_id       uuid   NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position         int    NOT NULL CHECK (position > 0),
    description      text   NOT NULL CHECK (char_length(description) BETWEEN 1 AND 500),
    quantity         bigint NOT NULL CHECK (quantity > 0),
    unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
    amount_cents     bigint NOT NULL CHECK (amount_cents = quantity * unit_price_cents),
    PRIMARY KEY (invoice_id, position)
);

-- +goose Down
DROP TABLE line_items;
DROP TABLE invoices;
DROP TABLE invoice_counter;
DROP TABLE customers;
