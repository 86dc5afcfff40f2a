-- Each tenant has its own SQLite file, so the file is the boundary and the
-- tables have no tenant column. IDs are UUIDs made by the application,
-- money is integer cents, timestamps are fixed-width UTC text
-- (microseconds) that sorts as time, and dates are YYYY-MM-DD text.

-- +goose Up
CREATE TABLE customers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    email      TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- One customer per email address, ignoring (ASCII) case.
CREATE UNIQUE INDEX customers_email_key ON customers (lower(email));

-- The invoice number counter: one row, advanced in the transaction that
-- creates the invoice, which holds the file's write lock from its start.
CREATE TABLE invoice_counter (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    next_number INTEGER NOT NULL CHECK (next_number > 0)
);
INSERT INTO invoice_counter (singleton, next_number) VALUES (1, 1);

CREATE TABLE invoices (
    id             TEXT PRIMARY KEY,
    number         INTEGER NOT NULL UNIQUE CHECK (number > 0),
    customer_id    TEXT NOT NULL REFERENCES customers (id) ON DELETE RESTRICT,
    status         TEXT NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'issued', 'paid', 'void')),
    currency       TEXT NOT NULL CHECK (length(currency) = 3 AND currency GLOB '[A-Z][A-Z][A-Z]'),
    due_date       TEXT NOT NULL,
    subtotal_cents INTEGER NOT NULL CHECK (subtotal_cents >= 0),
    total_cents    INTEGER NOT NULL CHECK (total_cents >= 0),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    issued_at      TEXT,
    paid_at        TEXT,
    voided_at      TEXT
);

CREATE INDEX invoices_customer_id_idx ON invoices (customer_id);

CREATE TABLE line_items (
    invoice_id       TEXT    NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL CHECK (position > 0),
    description      TEXT    NOT NULL CHECK (length(description) BETWEEN 1 AND 500),
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents INTEGER NOT NULL CHECK (unit_price_cents >= 0),
    amount_cents     INTEGER NOT NULL CHECK (amount_cents = quantity * unit_price_cents),
    PRIMARY KEY (invoice_id, position)
);

-- +goose Down
DROP TABLE line_items;
DROP TABLE invoices;
DROP TABLE invoice_counter;
DROP TABLE customers;
