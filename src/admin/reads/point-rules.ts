/** The points rules and reward catalogue as an operator sees them. */
import type { Kysely } from 'kysely'
import { ensureDefaultRewards } from '../../community/rewards.js'
import type { Database } from '../../db/schema.js'

/** The rules in effect for an account: its own overrides over the `*` defaults, by rule name. */
export async function effectiveRules(db: Kysely<Database>, appid: string) {
  const rows = await db
    .selectFrom('point_rules')
    .selectAll()
    .where('appid', 'in', [appid, '*'])
    .orderBy('rule')
    .execute()
  const effective = new Map<string, (typeof rows)[number]>()
  for (const r of rows) if (r.appid === appid || !effective.has(r.rule)) effective.set(r.rule, r)
  return [...effective.values()].map((r) => ({
    rule: r.rule,
    points: r.points,
    capCount: r.cap_count,
    capPeriod: r.cap_period,
    enabled: r.enabled,
    overridden: r.appid === appid,
  }))
}

/** Every reward of an account, disabled ones too, by code (seeded with the defaults). */
export async function allRewards(db: Kysely<Database>, appid: string, now: Date) {
  await ensureDefaultRewards(db, appid, now)
  return db.selectFrom('rewards').selectAll().where('appid', '=', appid).orderBy('code').execute()
}
