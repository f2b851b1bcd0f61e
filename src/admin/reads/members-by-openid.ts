/** The members an operator names by openid, and the openids that name nobody. */
import type { Kysely } from 'kysely'
import type { Database } from '../../db/schema.js'

/** The account's members among `openids` (id and openid) and the openids it has no member for. */
export async function membersByOpenid(db: Kysely<Database>, appid: string, openids: string[]) {
  const members = await db
    .selectFrom('members')
    .select(['id', 'openid'])
    .where('appid', '=', appid)
    .where('openid', 'in', openids)
    .execute()
  const unknown = openids.filter((x) => !members.some((m) => m.openid === x))
  return { members, unknown }
}
