-- The SQLite twin of ../pgdb/query.sql, run inside one transaction per
-- store call on the tenant's own file. Timestamps are passed in by the
-- store, in the fixed-width text form the migrations describe.

-- name: CreateCustomer :one
INSERT INTO customers (id, name, email, created_at, updated_at)
VALUES (@id, @name, @email, @now, @now)
RETURNING *;

-- name: ListCustomers :many
SELECT * FROM customers ORDER BY name, id LIMIT @limit OFFSET @offset;

-- name: GetCustomer :one
SELECT * FROM customers WHERE id = @id;

-- name: UpdateCustomer :one
UPDATE customers
SET name = coalesce(sqlc.narg(name), name),
    email = coalesce(sqlc.narg(email), email),
    updated_at = @now
WHERE id = @id
RETURNING *;

-- name: DeleteCustomer :execrows
DELETE FROM customers WHERE id = @id;

-- name: CustomerExists :one
SELECT EXISTS (SELECT 1 FROM customers WHERE id = @id);

-- name: NextInvoiceNumber :one
UPDATE invoice_counter SET next_number = next_number + 1
RETURNING next_number - 1;

-- name: CreateInvoice :one
INSERT INTO invoices (id, number, customer_id, currency, due_date, subtotal_cents, total_cents, created_at, updated_at)
VALUES (@id, @number, @customer_id, @currency, @due_date, @subtotal_cents, @total_cents, @now, @now)
RETURNING *;

-- name: InsertLineItem :exec
INSERT INTO line_items (invoice_id, position, description, quantity, unit_price_cents, amount_cents)
VALUES (@invoice_id, @position, @description, @quantity, @unit_price_cents, @amount_cents);

-- name: ListInvoices :many
SELECT * FROM invoices
WHERE CAST(sqlc.narg(status) AS TEXT) IS NULL OR status = sqlc.narg(status)
ORDER BY number DESC
LIMIT @limit OFFSET @offset;

-- name: GetInvoice :one
SELECT * FROM invoices WHERE id = @id;

-- name: ListLineItems :many
SELECT * FROM line_items WHERE invoice_id = @invoice_id ORDER BY position;

-- name: InvoiceStatus :one
SELECT status FROM invoices WHERE id = @id;

-- name: UpdateDraft :one
UPDATE invoices
SET due_date = coalesce(sqlc.narg(due_date), due_date),
    subtotal_cents = coalesce(sqlc.narg(subtotal_cents), subtotal_cents),
    total_cents = coalesce(sqlc.narg(total_cents), total_cents),
    updated_at = @now
WHERE id = @id AND status = 'draft'
RETURNING *;

-- name: DeleteLineItems :exec
DELETE FROM line_items WHERE invoice_id = @invoice_id;

-- name: TransitionInvoice :one
UPDATE invoices
SET status = @new_status,
    issued_at = CASE WHEN @new_status = 'issued' THEN @now ELSE issued_at END,
    paid_at = CASE WHEN @new_status = 'paid' THEN @now ELSE paid_at END,
    voided_at = CASE WHEN @new_status = 'void' THEN @now ELSE voided_at END,
    updated_at = @now
WHERE id = @id AND status IN (sqlc.slice(from_statuses))
RETURNING *;
