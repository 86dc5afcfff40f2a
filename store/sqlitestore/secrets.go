package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/credential"
)

var _ credential.Store = (*Store)(nil)

// PutSecret implements credential.Store, in one transaction. Secrets live
// in tenant_secrets (migration 3), deleted with their tenant.
func (s *Store) PutSecret(ctx context.Context, sec credential.Secret, othersUntil time.Time) error {
	if err := tenancy.ValidateID(sec.TenantID); err != nil {
		return err
	}
	until := othersUntil.UTC().Format(timeLayout)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM tenants WHERE id = ?`, sec.TenantID).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return tenancy.ErrTenantNotFound
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tenant_secrets SET expires_at = ? WHERE tenant_id = ? AND (expires_at IS NULL OR expires_at > ?)`, until, sec.TenantID, until); err != nil {
			return err
		}
		var exp any
		if !sec.ExpiresAt.IsZero() {
			exp = sec.ExpiresAt.UTC().Format(timeLayout)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO tenant_secrets (tenant_id, id, hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
			sec.TenantID, sec.ID, sec.Hash, sec.CreatedAt.UTC().Format(timeLayout), exp)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: put secret: %w", err)
	}
	return nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanSecret(row rowScanner) (credential.Secret, error) {
	var sec credential.Secret
	var created string
	var exp sql.NullString
	if err := row.Scan(&sec.ID, &sec.TenantID, &sec.Hash, &created, &exp); err != nil {
		return credential.Secret{}, err
	}
	var err error
	if sec.CreatedAt, err = parseTime(created); err != nil {
		return credential.Secret{}, err
	}
	if exp.Valid {
		if sec.ExpiresAt, err = parseTime(exp.String); err != nil {
			return credential.Secret{}, err
		}
	}
	return sec, nil
}

const secretCols = `id, tenant_id, hash, created_at, expires_at`

// GetSecret implements credential.Store.
func (s *Store) GetSecret(ctx context.Context, tenantID, id string) (credential.Secret, error) {
	sec, err := scanSecret(s.db.QueryRowContext(ctx, `SELECT `+secretCols+` FROM tenant_secrets WHERE tenant_id = ? AND id = ?`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return credential.Secret{}, credential.ErrSecretNotFound
	}
	if err != nil {
		return credential.Secret{}, fmt.Errorf("sqlitestore: get secret: %w", err)
	}
	return sec, nil
}

// ListSecrets implements credential.Store.
func (s *Store) ListSecrets(ctx context.Context, tenantID string) ([]credential.Secret, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+secretCols+` FROM tenant_secrets WHERE tenant_id = ? ORDER BY created_at DESC, id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list secrets: %w", err)
	}
	defer rows.Close()
	var out []credential.Secret
	for rows.Next() {
		sec, err := scanSecret(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: list secrets: %w", err)
		}
		out = append(out, sec)
	}
	return out, rows.Err()
}

// DeleteSecrets implements credential.Store.
func (s *Store) DeleteSecrets(ctx context.Context, tenantID, id string) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		q, args := `DELETE FROM tenant_secrets WHERE tenant_id = ?`, []any{tenantID}
		if id != "" {
			q, args = q+` AND id = ?`, append(args, id)
		}
		res, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: delete secrets: %w", err)
	}
	return int(n), nil
}
