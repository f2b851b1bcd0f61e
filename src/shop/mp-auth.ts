/**
 * Mini-program sign-in: a `wx.login()` code → code2Session → the member behind it (the OA follower
 * with the same unionid when there is one; else a member of the mini program's own) → a signed,
 * expiring session token for the following calls. The token is `v1.<payload>.<HMAC-SHA256>`
 * (base64url), so any instance can check it without a session table; session_key never leaves
 * the server.
 */
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.js'
import type { ApiClient } from '../wechat/api/client.js'
import { code2Session } from '../wechat/api/mini-program.js'
import { timingSafeEqual } from '../wechat/crypto.js'

const encoder = new TextEncoder()
const SESSION_HOURS = 24

/** Who a session token speaks for. */
export interface MpSession {
  memberId: number
  openid: string
  expiresAt: Date
}

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '')
const fromB64url = (s: string) =>
  Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0))

async function hmac(secret: string, data: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    encoder.encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  )
  return b64url(new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(data))))
}

/** Signs a session token. */
export async function signSession(secret: string, s: MpSession): Promise<string> {
  const payload = b64url(
    encoder.encode(
      JSON.stringify({ m: s.memberId, o: s.openid, e: Math.floor(s.expiresAt.getTime() / 1000) }),
    ),
  )
  return `v1.${payload}.${await hmac(secret, `v1.${payload}`)}`
}

/** Exactly `v1.<payload>.<43 base64url characters>`: nothing before, between or after. */
const TOKEN_SHAPE = /^v1\.([A-Za-z0-9_-]{1,512})\.([A-Za-z0-9_-]{43})$/

/** Checks a session token: null when malformed (any other shape), forged or expired. */
export async function verifySession(
  secret: string,
  token: string,
  now: Date,
): Promise<MpSession | null> {
  const shape = TOKEN_SHAPE.exec(token)
  if (!shape) return null
  const [, payload, mac] = shape as unknown as [string, string, string]
  if (!timingSafeEqual(mac, await hmac(secret, `v1.${payload}`))) return null
  try {
    const p = JSON.parse(new TextDecoder().decode(fromB64url(payload))) as {
      m: unknown
      o: unknown
      e: unknown
    }
    if (
      !Number.isSafeInteger(p.m) ||
      (p.m as number) < 1 ||
      typeof p.o !== 'string' ||
      p.o.length === 0 ||
      !Number.isSafeInteger(p.e) ||
      (p.e as number) * 1000 <= now.getTime()
    )
      return null
    return { memberId: p.m as number, openid: p.o, expiresAt: new Date((p.e as number) * 1000) }
  } catch {
    return null
  }
}

/**
 * Signs a mini-program user in: their member is found or created (race-safe: the mp_users primary
 * key decides), merged with the OA follower of the same unionid when one is known.
 */
export async function mpLogin(
  db: Kysely<Database>,
  api: ApiClient,
  o: { mpAppid: string; mpSecret: string; shopAppid: string; code: string; now: Date },
): Promise<{ memberId: number; openid: string; unionid: string | null }> {
  const session = await code2Session(api, {
    appid: o.mpAppid,
    secret: o.mpSecret,
    code: o.code,
  })
  const known = await db
    .selectFrom('mp_users')
    .select('member_id')
    .where('appid', '=', o.mpAppid)
    .where('openid', '=', session.openid)
    .executeTakeFirst()
  if (known) {
    if (session.unionid)
      await db
        .updateTable('mp_users')
        .set({ unionid: session.unionid })
        .where('appid', '=', o.mpAppid)
        .where('openid', '=', session.openid)
        .where('unionid', 'is', null)
        .execute()
    return { memberId: known.member_id, openid: session.openid, unionid: session.unionid }
  }
  // The OA follower with the same unionid (the shop's account first), else a member of our own.
  const follower = session.unionid
    ? await db
        .selectFrom('members')
        .select('id')
        .where('unionid', '=', session.unionid)
        .orderBy((eb) => eb.case().when('appid', '=', o.shopAppid).then(0).else(1).end())
        .orderBy('id')
        .executeTakeFirst()
    : undefined
  const memberId =
    follower?.id ??
    (
      await db
        .insertInto('members')
        .values({
          appid: o.mpAppid,
          openid: session.openid,
          unionid: session.unionid,
          first_seen_at: o.now,
          last_active_at: o.now,
        })
        .onConflict((oc) => oc.columns(['appid', 'openid']).doUpdateSet({ last_active_at: o.now }))
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id
  await db
    .insertInto('mp_users')
    .values({
      appid: o.mpAppid,
      openid: session.openid,
      unionid: session.unionid,
      member_id: memberId,
      created_at: o.now,
    })
    .onConflict((oc) => oc.columns(['appid', 'openid']).doNothing())
    .execute()
  const row = await db
    .selectFrom('mp_users')
    .select('member_id')
    .where('appid', '=', o.mpAppid)
    .where('openid', '=', session.openid)
    .executeTakeFirstOrThrow()
  return { memberId: row.member_id, openid: session.openid, unionid: session.unionid }
}

export const sessionExpiry = (now: Date) => new Date(now.getTime() + SESSION_HOURS * 3600_000)
