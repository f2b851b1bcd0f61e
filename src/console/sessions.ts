/**
 * Console sessions in the database: the browser holds a random token (cookie), the table holds
 * only its SHA-256, so a leaked table opens no session. A session is refused after `idleMs`
 * without a request, after `absoluteMs` since sign-in, once revoked (sign-out, password change)
 * or when its operator is disabled.
 */
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import { sha256Hex } from '../wechat/crypto.js'
import type { Operator, Role } from './operators.js'

/** How long a session lives. */
export interface SessionLimits {
  /** Refused after this long without a request (default 30 min). */
  idleMs: number
  /** Refused this long after sign-in, however active (default 12 h). */
  absoluteMs: number
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  idleMs: 30 * 60_000,
  absoluteMs: 12 * 3_600_000,
}

/** A live session and who it belongs to. */
export interface ConsoleSession {
  id: number
  csrfToken: string
  operator: Operator
}

const randomToken = () => {
  const bytes = crypto.getRandomValues(new Uint8Array(32))
  return btoa(String.fromCharCode(...bytes))
    .replaceAll('+', '-')
    .replaceAll('/', '_')
    .replaceAll('=', '')
}

/** Starts a session for an operator; returns the cookie's token (shown once, never stored). */
export async function createSession(
  db: Kysely<Database>,
  o: { operatorId: number; now: Date },
): Promise<{ token: string; csrfToken: string }> {
  const token = randomToken()
  const csrfToken = randomToken()
  await db
    .insertInto('console_sessions')
    .values({
      token_hash: await sha256Hex(token),
      operator_id: o.operatorId,
      csrf_token: csrfToken,
      created_at: o.now,
      last_seen_at: o.now,
    })
    .execute()
  return { token, csrfToken }
}

/** The live session for a cookie's token, its last-seen time moved to now; else undefined. */
export async function readSession(
  db: Kysely<Database>,
  o: { token: string; now: Date; limits?: SessionLimits },
): Promise<ConsoleSession | undefined> {
  const limits = o.limits ?? DEFAULT_SESSION_LIMITS
  if (!/^[\w-]{20,100}$/.test(o.token)) return undefined
  const row = await db
    .selectFrom('console_sessions as s')
    .innerJoin('operators as o', 'o.id', 's.operator_id')
    .select([
      's.id',
      's.csrf_token',
      's.created_at',
      's.last_seen_at',
      's.revoked_at',
      'o.id as operator_id',
      'o.name',
      'o.role',
      'o.disabled',
      'o.daily_grant_limit',
      'o.created_at as operator_created_at',
    ])
    .where('s.token_hash', '=', await sha256Hex(o.token))
    .executeTakeFirst()
  if (!row || row.revoked_at || row.disabled) return undefined
  const now = o.now.getTime()
  if (now - row.last_seen_at.getTime() > limits.idleMs) return undefined
  if (now - row.created_at.getTime() > limits.absoluteMs) return undefined
  // Written at most once a minute: a page with several requests costs one update.
  if (now - row.last_seen_at.getTime() > 60_000)
    await db
      .updateTable('console_sessions')
      .set({ last_seen_at: o.now })
      .where('id', '=', row.id)
      .execute()
  return {
    id: Number(row.id),
    csrfToken: row.csrf_token,
    operator: {
      id: Number(row.operator_id),
      name: row.name,
      role: row.role as Role,
      disabled: row.disabled,
      dailyGrantLimit: row.daily_grant_limit,
      createdAt: row.operator_created_at,
    },
  }
}

/** Revokes one session (sign-out). */
export async function revokeSession(db: Kysely<Database>, id: number, now: Date): Promise<void> {
  await db
    .updateTable('console_sessions')
    .set({ revoked_at: now })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .execute()
}
