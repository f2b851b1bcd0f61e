/**
 * The access-token provider: one token per AppID, stored in `wechat_tokens` and shared by every
 * process. Only one fetch happens at a time — per process through a shared promise, across
 * processes through a row lock (`select … for update`) held while fetching — so instances cold-
 * starting together fetch once. Tokens are refreshed early (5 min plus per-process jitter) and a
 * failing token is expired only if it is still the stored one (compare-and-expire).
 */
import type { Kysely } from 'kysely'
import type { Clock } from '../../clock.js'
import type { Database } from '../../db/schema.js'
import type { ApiClient, TokenSource } from './client.js'

/**
 * `stable` = `/cgi-bin/stable_token` (default); `classic` = `/cgi-bin/token`; `wecom` = WeCom's
 * `/cgi-bin/gettoken` (corp id + the app's secret; stored under `wecom:<corpid>`).
 */
export type TokenMode = 'stable' | 'classic' | 'wecom'

export interface TokenProviderOptions {
  db: Kysely<Database>
  api: ApiClient
  appid: string
  secret: string
  mode?: TokenMode
  clock: Clock
  /** Refresh when fewer seconds than this remain (default 300). */
  marginSeconds?: number
  /** Up to this many extra seconds, fixed per process, so processes do not all refresh at once. */
  jitterSeconds?: number
  random?: () => number
}

/** Fetches a brand-new token from WeChat (no storage). */
export async function fetchAccessToken(
  api: ApiClient,
  appid: string,
  secret: string,
  mode: TokenMode,
): Promise<{ token: string; expiresIn: number }> {
  const res =
    mode === 'wecom'
      ? await api.unauthenticated({
          method: 'gettoken',
          path: '/cgi-bin/gettoken',
          http: 'GET',
          query: { corpid: appid.replace(/^wecom:/, ''), corpsecret: secret },
          auth: false,
          secret: true,
        })
      : mode === 'stable'
        ? await api.unauthenticated({
            method: 'stable_token',
            path: '/cgi-bin/stable_token',
            http: 'POST',
            body: { grant_type: 'client_credential', appid, secret, force_refresh: false },
            auth: false,
            secret: true,
          })
        : await api.unauthenticated({
            method: 'token',
            path: '/cgi-bin/token',
            http: 'GET',
            query: { grant_type: 'client_credential', appid, secret },
            auth: false,
            secret: true,
          })
  const token = res.access_token
  const expiresIn = Number(res.expires_in)
  if (typeof token !== 'string' || !token || !Number.isFinite(expiresIn)) {
    throw new Error(
      `${mode === 'stable' ? 'stable_token' : mode === 'wecom' ? 'gettoken' : 'token'}: response lacks access_token/expires_in`,
    )
  }
  return { token, expiresIn }
}

/** The database-backed token source. */
export function databaseTokenProvider(options: TokenProviderOptions): TokenSource {
  const { db, appid, clock } = options
  const mode = options.mode ?? 'stable'
  const margin = (options.marginSeconds ?? 300) * 1000
  const jitter = (options.jitterSeconds ?? 120) * 1000 * (options.random ?? Math.random)()
  let cached: { token: string; expiresAt: number; refreshAt: number } | undefined
  /** Keeps a token in memory until the margin before expiry — or, for a token that arrived with
   * less life than the margin (stable_token near its end), until half its remaining life, so a short
   * token never turns every call into a refresh. */
  const remember = (token: string, expiresAt: number) => {
    const now = clock.now().getTime()
    const refreshAt = Math.max(expiresAt - margin - jitter, now + (expiresAt - now) / 2)
    cached = { token, expiresAt, refreshAt }
    return token
  }
  let inflight: Promise<string> | undefined

  const fresh = (expiresAt: number, extra: number) =>
    expiresAt - clock.now().getTime() > margin + extra

  async function refresh(): Promise<string> {
    const row = await db
      .selectFrom('wechat_tokens')
      .select(['access_token', 'expires_at'])
      .where('appid', '=', appid)
      .executeTakeFirst()
    if (row && fresh(row.expires_at.getTime(), jitter)) {
      return remember(row.access_token, row.expires_at.getTime())
    }
    return db.transaction().execute(async (trx) => {
      await trx
        .insertInto('wechat_tokens')
        .values({ appid, access_token: '', expires_at: new Date(0), updated_at: clock.now() })
        .onConflict((oc) => oc.column('appid').doNothing())
        .execute()
      const locked = await trx
        .selectFrom('wechat_tokens')
        .select(['access_token', 'expires_at'])
        .where('appid', '=', appid)
        .forUpdate()
        .executeTakeFirstOrThrow()
      // Someone else may have refreshed while we waited for the lock.
      if (locked.access_token && fresh(locked.expires_at.getTime(), 0)) {
        return remember(locked.access_token, locked.expires_at.getTime())
      }
      const { token, expiresIn } = await fetchAccessToken(options.api, appid, options.secret, mode)
      const now = clock.now()
      const expiresAt = new Date(now.getTime() + expiresIn * 1000)
      await trx
        .updateTable('wechat_tokens')
        .set({ access_token: token, expires_at: expiresAt, updated_at: now })
        .where('appid', '=', appid)
        .execute()
      return remember(token, expiresAt.getTime())
    })
  }

  return {
    async get() {
      if (cached && clock.now().getTime() < cached.refreshAt) return cached.token
      inflight ??= refresh().finally(() => {
        inflight = undefined
      })
      return inflight
    },
    async expire(token) {
      if (cached?.token === token) cached = undefined
      await db
        .updateTable('wechat_tokens')
        .set({ expires_at: clock.now(), updated_at: clock.now() })
        .where('appid', '=', appid)
        .where('access_token', '=', token)
        .execute()
    },
  }
}
