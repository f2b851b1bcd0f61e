/** The API client of one account: token provider (shared in a token store) + layered client. */
import type { Clock } from '../../clock.js'
import type { Logger } from '../../logger.js'
import { type ApiClient, createApiClient, type FetchLike } from './client.js'
import { type TokenMode, tokenProvider } from './token-provider.js'
import type { TokenStore } from './token-store.js'

export interface AccountClientOptions {
  /** Where the account's access token is shared (`databaseTokenStore(db, clock)`). */
  tokenStore: TokenStore
  appid: string
  secret: string
  baseUrl: string
  mode: TokenMode
  clock: Clock
  logger: Logger
  fetch?: FetchLike
  /** First retry delay (default 200 ms). */
  backoffMs?: number
  /** Per attempt (default 5000 ms). */
  timeoutMs?: number
}

/** Builds the client every outbound call of an account goes through. */
export function accountClient(o: AccountClientOptions): ApiClient {
  const logger = o.logger.child({ appid: o.appid })
  const common = {
    baseUrl: o.baseUrl,
    logger,
    fetch: o.fetch,
    backoffMs: o.backoffMs,
    timeoutMs: o.timeoutMs,
  }
  const base = createApiClient(common)
  const tokens = tokenProvider({
    store: o.tokenStore,
    api: base,
    appid: o.appid,
    secret: o.secret,
    mode: o.mode,
    clock: o.clock,
  })
  return createApiClient({ ...common, tokens })
}

/** One client per account that has a secret, by appid (accounts without one cannot call out). */
export function accountClients(
  accounts: { appid: string; secret?: string }[],
  o: Omit<AccountClientOptions, 'appid' | 'secret'>,
): Map<string, ApiClient> {
  const clients = new Map<string, ApiClient>()
  for (const a of accounts)
    if (a.secret) clients.set(a.appid, accountClient({ ...o, appid: a.appid, secret: a.secret }))
  return clients
}

/**
 * The mini program's client (its own access token, shared in the same token store under its
 * appid): for its subscribe messages. Undefined when no mini program is configured.
 */
export function miniProgramClient(
  mp: { mpAppid: string; mpSecret: string } | undefined,
  o: Omit<AccountClientOptions, 'appid' | 'secret'>,
): ApiClient | undefined {
  return mp && accountClient({ ...o, appid: mp.mpAppid, secret: mp.mpSecret })
}
