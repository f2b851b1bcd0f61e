/** The API client of one account: token provider (shared in the database) + layered client. */
import type { Kysely } from 'kysely'
import type { Clock } from '../../clock.js'
import type { Database } from '../../db/schema.js'
import type { Logger } from '../../logger.js'
import { type ApiClient, createApiClient, type FetchLike } from './client.js'
import { databaseTokenProvider, type TokenMode } from './token-provider.js'

export interface AccountClientOptions {
  db: Kysely<Database>
  appid: string
  secret: string
  baseUrl: string
  mode: TokenMode
  clock: Clock
  logger: Logger
  fetch?: FetchLike
  /** First retry delay (default 200 ms). */
  backoffMs?: number
}

/** Builds the client every outbound call of an account goes through. */
export function accountClient(o: AccountClientOptions): ApiClient {
  const logger = o.logger.child({ appid: o.appid })
  const common = { baseUrl: o.baseUrl, logger, fetch: o.fetch, backoffMs: o.backoffMs }
  const base = createApiClient(common)
  const tokens = databaseTokenProvider({
    db: o.db,
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
