package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-tenancy/tenancy"
	"github.com/go-tenancy/tenancy/credential"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

var _ credential.Store = (*Store)(nil)

// PutSecret implements credential.Store, in one transaction. Secrets live
// in <schema>.tenant_secrets (migration 3), deleted with their tenant.
func (s *Store) PutSecret(ctx context.Context, sec credential.Secret, othersUntil time.Time) error {
	if err := tenancy.ValidateID(sec.TenantID); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE `+s.q.secrets+` SET expires_at = $2 WHERE tenant_id = $1 AND (expires_at IS NULL OR expires_at > $2)`, sec.TenantID, othersUntil); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+s.q.secrets+` (tenant_id, id, hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			sec.TenantID, sec.ID, sec.Hash, sec.CreatedAt, nullTime(sec.ExpiresAt))
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return fmt.Errorf("pgstore: put secret: %w", tenancy.ErrTenantNotFound)
	}
	if err != nil {
		return fmt.Errorf("pgstore: put secret: %w", err)
	}
	return nil
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

const secretCols = `id, tenant_id, hash, created_at, expires_at`

func scanSecret(row pgx.Row) (credential.Secret, error) {
	var sec credential.Secret
	var exp *time.Time
	if err := row.Scan(&sec.ID, &sec.TenantID, &sec.Hash, &sec.CreatedAt, &exp); err != nil {
		return credential.Secret{}, err
	}
	if exp != nil {
		sec.ExpiresAt = *exp
	}
	return sec, nil
}

// GetSecret implements credential.Store.
func (s *Store) GetSecret(ctx context.Context, tenantID, id string) (credential.Secret, error) {
	sec, err := scanSecret(s.pool.QueryRow(ctx, `SELECT `+secretCols+` FROM `+s.q.secrets+` WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return credential.Secret{}, credential.ErrSecretNotFound
	}
	if err != nil {
		return credential.Secret{}, fmt.Errorf("pgstore: get secret: %w", err)
	}
	return sec, nil
}

// ListSecrets implements credential.Store.
func (s *Store) ListSecrets(ctx context.Context, tenantID string) ([]credential.Secret, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+secretCols+` FROM `+s.q.secrets+` WHERE tenant_id = $1 ORDER BY created_at DESC, id`, tenantID)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list secrets: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (credential.Secret, error) { return scanSecret(r) })
	if err != nil {
		return nil, fmt.Errorf("pgstore: list secrets: %w", err)
	}
	return out, nil
}

// DeleteSecrets implements credential.Store.
func (s *Store) DeleteSecrets(ctx context.Context, tenantID, id string) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+s.q.secrets+` WHERE tenant_id = $1 AND ($2 = '' OR id = $2)`, tenantID, id)
	if err != nil {
		return 0, fmt.Errorf("pgstore: delete secrets: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
