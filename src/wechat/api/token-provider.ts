/**
 * The access-token provider: one token per AppID, kept in a {@link TokenStore} shared by every
 * process. Only one fetch happens at a time — per process through a shared promise, across
 * processes through the store's lock (a row lock held while fetching, in the database) — so
 * instances cold-starting together fetch once. Tokens are refreshed early (5 min plus per-process
 * jitter) and a failing token is expired only if it is still the stored one (compare-and-expire).
 */
import type { Clock } from '../../clock.js'
import type { ApiClient, TokenSource } from './client.js'
import type { StoredToken, TokenStore } from './token-store.js'

/**
 * `stable` = `/cgi-bin/stable_token` (default); `classic` = `/cgi-bin/token`; `wecom` = WeCom's
 * `/cgi-bin/gettoken` (corp id + the app's secret; stored under `wecom:<corpid>`).
 */
export type TokenMode = 'stable' | 'classic' | 'wecom'

export interface TokenProviderOptions {
  /** Where the token is shared (`databaseTokenStore` in production). */
  store: TokenStore
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

/**
 * The token source of one account, shared through `store`.
 * @example tokenProvider({ store: databaseTokenStore(db, clock), api, appid, secret, clock })
 */
export function tokenProvider(options: TokenProviderOptions): TokenSource {
  const { store, appid, clock } = options
  const mode = options.mode ?? 'stable'
  const margin = (options.marginSeconds ?? 300) * 1000
  const jitter = (options.jitterSeconds ?? 120) * 1000 * (options.random ?? Math.random)()
  let cached: { token: string; expiresAt: number; refreshAt: number } | undefined
  /** Keeps a token in memory until the margin before expiry — or, for a token that arrived with
   * less life than the margin (stable_token near its end), until half its remaining life, so a short
   * token never turns every call into a refresh. */
  const remember = ({ token, expiresAt: at }: StoredToken) => {
    const now = clock.now().getTime()
    const expiresAt = at.getTime()
    const refreshAt = Math.max(expiresAt - margin - jitter, now + (expiresAt - now) / 2)
    cached = { token, expiresAt, refreshAt }
    return token
  }
  let inflight: Promise<string> | undefined

  const fresh = (expiresAt: Date, extra: number) =>
    expiresAt.getTime() - clock.now().getTime() > margin + extra

  async function refresh(): Promise<string> {
    const stored = await store.read(appid)
    if (stored && fresh(stored.expiresAt, jitter)) return remember(stored)
    return remember(
      await store.refresh(appid, {
        // Someone else may have refreshed while we waited for the lock.
        isFresh: (locked) => fresh(locked.expiresAt, 0),
        async fetch() {
          const { token, expiresIn } = await fetchAccessToken(
            options.api,
            appid,
            options.secret,
            mode,
          )
          return { token, expiresAt: new Date(clock.now().getTime() + expiresIn * 1000) }
        },
      }),
    )
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
      await store.expire(appid, token)
    },
  }
}
