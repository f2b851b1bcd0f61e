/**
 * The replay cache for signed doors: a request signed over (timestamp, nonce, body) is claimed as
 * a unique (door, key, timestamp, nonce) row holding the digest of its body, shared by every
 * instance.
 * The same request again (same body) is a `retry` — the sender resending unchanged — while another
 * body under the same (timestamp, nonce) is a `conflict`: a captured signature replayed, refuse it.
 * Rows are pruned once their timestamp is outside the door's freshness window, after which the
 * door refuses the request as stale anyway. One round trip (`quanzi_claim_replay`).
 */
import { type Kysely, sql } from 'kysely'
import type { Database } from '../db/schema.js'

/** A signed request to claim. */
export interface NonceClaimRequest {
  /** The door, e.g. `bridge`, `wechat`. */
  door: string
  /** Who signed within the door: the bridge id, the appid. */
  key: string
  /** The signed timestamp, Unix seconds (already checked for freshness). */
  timestamp: number
  nonce: string
  /** A digest of the body (hex SHA-256, see {@link bodyDigest}). */
  bodyDigest: string
  now: Date
}

/** `new` the first time; `retry` for the same body again; `conflict` for another body. */
export type NonceClaim = 'new' | 'retry' | 'conflict'

/**
 * Claims a (door, key, timestamp, nonce).
 * @example
 * const claim = await claimNonce(db, { door: 'bridge', key: id, timestamp, nonce, bodyDigest, now })
 * if (claim === 'conflict') throw new HTTPException(401)
 */
export async function claimNonce(db: Kysely<Database>, r: NonceClaimRequest): Promise<NonceClaim> {
  // quanzi_claim_replay (migration 0019) is the one implementation: the webhooks' claim
  // statements call it too, so every door decides new / retry / conflict the same way.
  const { rows } = await sql<{ r: NonceClaim }>`select quanzi_claim_replay(
    ${r.door}::text, ${r.key}::text, ${r.timestamp}::bigint, ${r.nonce}::text,
    ${r.bodyDigest}::text, ${r.now}::timestamptz
  ) as r`.execute(db)
  return rows[0]!.r
}

/** Deletes claims whose timestamp is before `before`; returns how many. Idempotent. */
export async function pruneReplayClaims(db: Kysely<Database>, before: Date): Promise<number> {
  const result = await db
    .deleteFrom('replay_claims')
    .where('ts', '<', sql<string>`${Math.floor(before.getTime() / 1000)}::bigint`)
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}

/** The hex SHA-256 of a body (Web Crypto). */
export async function bodyDigest(body: string | Uint8Array): Promise<string> {
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')
}
