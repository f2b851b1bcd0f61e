/**
 * Access tokens in `wechat_tokens`, one row per AppID (or `wecom:<corpid>`), shared by every process
 * on the database: the {@link TokenStore} behind the outbound API clients.
 */
import type { Kysely } from 'kysely'
import type { Clock } from '../clock.js'
import type { Database } from '../db/schema.js'
import type { StoredToken, TokenStore } from '../wechat/api/token-store.js'

/**
 * The database token store. `refresh` locks the row (`select … for update`) for the whole refresh,
 * fetch included, so one process fetches while the others wait and then find its token; `expire`
 * is one conditional `UPDATE` on the token. `clock` stamps what it writes.
 */
export function databaseTokenStore(db: Kysely<Database>, clock: Clock): TokenStore {
  const stored = (row: { access_token: string; expires_at: Date } | undefined) =>
    row?.access_token ? { token: row.access_token, expiresAt: row.expires_at } : undefined

  return {
    async read(appid) {
      return stored(
        await db
          .selectFrom('wechat_tokens')
          .select(['access_token', 'expires_at'])
          .where('appid', '=', appid)
          .executeTakeFirst(),
      )
    },

    refresh(appid, refresh) {
      return db.transaction().execute(async (trx): Promise<StoredToken> => {
        // A row to lock even before the first token (rolled back with the rest if the fetch fails).
        await trx
          .insertInto('wechat_tokens')
          .values({ appid, access_token: '', expires_at: new Date(0), updated_at: clock.now() })
          .onConflict((oc) => oc.column('appid').doNothing())
          .execute()
        const locked = stored(
          await trx
            .selectFrom('wechat_tokens')
            .select(['access_token', 'expires_at'])
            .where('appid', '=', appid)
            .forUpdate()
            .executeTakeFirstOrThrow(),
        )
        if (locked && refresh.isFresh(locked)) return locked
        const next = await refresh.fetch()
        await trx
          .updateTable('wechat_tokens')
          .set({ access_token: next.token, expires_at: next.expiresAt, updated_at: clock.now() })
          .where('appid', '=', appid)
          .execute()
        return next
      })
    },

    async expire(appid, token) {
      const now = clock.now()
      await db
        .updateTable('wechat_tokens')
        .set({ expires_at: now, updated_at: now })
        .where('appid', '=', appid)
        .where('access_token', '=', token)
        .execute()
    },
  }
}
