import { type Kysely, sql } from 'kysely'

/** A key the grant generated itself: `admin:` and a random UUID. */
const GENERATED = '^admin:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'

/**
 * Operators' idempotency keys move under `admin:` in the ledger. Until now the operator API and
 * the console stored an operator's key as it was given, in the same per-account namespace as the
 * internal keys (`refund:<id>`, `redeem:<id>`, `activity:…`, `invite:…`, `complete_profile:…`):
 * an operator key `refund:1` made redemption 1's refund a silent duplicate. Grants now store
 * `admin:<key>` (src/admin/actions/points-actions.ts), so the operators' entries stored before
 * (rules `grant` and `deduct`, written only there) are renamed the same way: a replay of an old
 * key is still a duplicate, and an internal key an operator took is free again. Keys the grant
 * generated itself (`admin:<uuid>`) are already in that form; an entry whose new key is taken is
 * left as it is.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`update points_ledger l set idempotency_key = 'admin:' || l.idempotency_key
    where l.rule in ('grant', 'deduct')
      and l.idempotency_key !~ ${GENERATED}
      and not exists (select 1 from points_ledger o
        where o.appid = l.appid and o.idempotency_key = 'admin:' || l.idempotency_key)`.execute(db)
}

/** Takes the prefix off again (where the bare key is free), for code that looks keys up bare. */
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`update points_ledger l set idempotency_key = substr(l.idempotency_key, 7)
    where l.rule in ('grant', 'deduct')
      and l.idempotency_key like 'admin:%'
      and l.idempotency_key !~ ${GENERATED}
      and not exists (select 1 from points_ledger o
        where o.appid = l.appid and o.idempotency_key = substr(l.idempotency_key, 7))`.execute(db)
}
