-- Line items travel as parallel arrays, one element per item, so that a
-- whole invoice is one statement.
--
-- Every statement names tables unqualified: the provider's search path is
-- the tenant's schema alone.

-- name: CreateCustomer :one
INSERT INTO customers (name, email) VALUES ($1, $2)
RETURNING *;

-- name: ListCustomers :many
SELECT * FROM customers ORDER BY name, id LIMIT $1 OFFSET $2;

-- name: GetCustomer :one
SELECT * FROM customers WHERE id = $1;

-- name: UpdateCustomer :one
UPDATE customers
SET name = coalesce(sqlc.narg(name), name),
    email = coalesce(sqlc.narg(email), email),
    updated_at = now()
WHERE id = $1
RETURNING *;

-- name: DeleteCustomer :execrows
DELETE FROM customers WHERE id = $1;

-- name: CreateInvoice :one
-- One statement takes the next number, inserts the invoice and its line
-- items: the counter's row lock is held for this statement only, and a
-- failure (an unknown customer, say) rolls the counter back with the rest.
WITH counter AS (
    UPDATE invoice_counter SET next_number = next_number + 1
    RETURNING next_number - 1 AS number
), invoice AS (
    INSERT INTO invoices (number, customer_id, currency, due_date, subtotal_cents, total_cents)
    SELECT counter.number, @customer_id, @currency, @due_date, @subtotal_cents, @total_cents
    FROM counter
    RETURNING *
), items AS (
    INSERT INTO line_items (invoice_id, position, description, quantity, unit_price_cents, amount_cents)
    SELECT invoice.id, i, (@descriptions::text[])[i], (@quantities::bigint[])[i],
           (@unit_prices_cents::bigint[])[i], (@amounts_cents::bigint[])[i]
    FROM invoice, generate_series(1, cardinality(@descriptions::text[])) AS i
)
SELECT * FROM invoice;

-- name: ListInvoices :many
SELECT * FROM invoices
WHERE sqlc.narg(status)::text IS NULL OR status = sqlc.narg(status)
ORDER BY number DESC
LIMIT $1 OFFSET $2;

-- name: GetInvoiceWithItems :many
-- An invoice and its line items in one statement, hence one snapshot: a
-- row per item, the invoice's columns repeated.
SELECT sqlc.embed(invoices), li.position, li.description, li.quantity, li.unit_price_cents, li.amount_cents
FROM invoices LEFT JOIN line_items li ON li.invoice_id = invoices.id
WHERE invoices.id = $1
ORDER BY li.position;

-- name: ListLineItems :many
SELECT * FROM line_items WHERE invoice_id = $1 ORDER BY position;

-- name: InvoiceStatus :one
SELECT status FROM invoices WHERE id = $1;

-- name: UpdateDraft :one
UPDATE invoices
SET due_date = coalesce(sqlc.narg(due_date), due_date),
    subtotal_cents = coalesce(sqlc.narg(subtotal_cents), subtotal_cents),
    total_cents = coalesce(sqlc.narg(total_cents), total_cents),
    updated_at = now()
WHERE id = $1 AND status = 'draft'
RETURNING *;

-- name: DeleteLineItems :exec
DELETE FROM line_items WHERE invoice_id = $1;

-- name: InsertLineItems :exec
INSERT INTO line_items (invoice_id, position, description, quantity, unit_price_cents, amount_cents)
SELECT @invoice_id, i, (@descriptions::text[])[i], (@quantities::bigint[])[i],
       (@unit_prices_cents::bigint[])[i], (@amounts_cents::bigint[])[i]
FROM generate_series(1, cardinality(@descriptions::text[])) AS i;

-- name: TransitionInvoice :one
-- Moves an invoice to @new_status if its status is one of @from_statuses,
-- stamping the matching time.
UPDATE invoices
SET status = @new_status::text,
    issued_at = CASE WHEN @new_status::text = 'issued' THEN now() ELSE issued_at END,
    paid_at = CASE WHEN @new_status::text = 'paid' THEN now() ELSE paid_at END,
    voided_at = CASE WHEN @new_status::text = 'void' THEN now() ELSE voided_at END,
    updated_at = now()
WHERE id = @id AND status = ANY(@from_statuses::text[])
RETURNING *;
