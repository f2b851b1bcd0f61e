/** The WeChat API client of an account, pointed at the sandbox API server (tests). */
import type { Kysely } from 'kysely'
import { systemClock } from '../src/clock.js'
import { databaseTokenStore } from '../src/community/token-store.js'
import type { Database } from '../src/db/schema.js'
import { silentLogger } from '../src/logger.js'
import { accountClient } from '../src/wechat/api/account-client.js'

/** A client with its token in `db`, calling `baseUrl` (the sandbox), retrying at once. */
export const sandboxClient = (
  db: Kysely<Database>,
  o: { appid: string; secret: string; baseUrl: string },
) =>
  accountClient({
    tokenStore: databaseTokenStore(db, systemClock),
    appid: o.appid,
    secret: o.secret,
    baseUrl: o.baseUrl,
    mode: 'stable',
    clock: { now: () => new Date() },
    logger: silentLogger,
    backoffMs: 1,
  })
