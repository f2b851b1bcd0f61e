/**
 * Nightly, after the segment recompute: each account's community days not yet built, oldest first,
 * from its first built day (gaps a rebuild ahead of the job left included) up to yesterday (at
 * most `MAX_DAYS` a run, so a long outage catches up over a few nights; a new install starts from
 * the oldest fact, at most 90 days back; an account with no facts yet from yesterday). Each day is
 * built in one transaction
 * and is idempotent (src/analytics/rollup.ts), then the retention cohorts' cells of that day
 * (src/analytics/cohorts.ts); `npm run job analytics-rollup` runs it now. A day is the chunk: once
 * the invocation's budget is spent (Workers) the run stops after a day and says `more`; the next
 * tick resumes it from the days built (`analytics_days` is the cursor).
 */
import { sql } from 'kysely'
import { memberScope } from '../src/admin/reads/account-members.js'
import { buildCohortCells } from '../src/analytics/cohorts.js'
import { buildDay } from '../src/analytics/rollup.js'
import { addDays, localDay } from '../src/community/community-time.js'
import type { Job } from './types.js'

const MAX_DAYS = 31
const FIRST_BUILD_DAYS = 90

export const analyticsRollupJob: Job = {
  name: 'analytics-rollup',
  cron: '0 4 * * *',
  async run({ db, clock, config, slot, budget, shop }) {
    const today = localDay(slot, config.timeZone)
    const yesterday = addDays(today, -1)
    const built: Record<string, number> = {}
    let days = 0
    for (const { appid } of config.accounts) {
      const span = await db
        .selectFrom('analytics_days')
        .select(sql<string>`min(day)::text`.as('first'))
        .where('appid', '=', appid)
        .executeTakeFirst()
      let from: string
      if (span?.first) from = span.first
      else {
        const first = await sql<{ day: string | null }>`
          select least((select min(day) from member_days where appid = ${appid}),
            (select min(day) from follow_events where appid = ${appid}))::text as day`.execute(db)
        const oldest = first.rows[0]?.day
        // No facts yet (a new account, or one nobody has written to): yesterday is built, all
        // zero — its figures read 0 from then on, not "not built" (the days before it read as
        // before the account's data).
        from = oldest ? [oldest, addDays(today, -FIRST_BUILD_DAYS)].sort()[1]! : yesterday
      }
      // Every day not built from there to yesterday: a day a rebuild built ahead of the job (an
      // operator's POST rebuild after an outage) leaves the days before it to build.
      const due = await sql<{ day: string }>`
        select d::date::text as day
        from generate_series(${from}::date, ${yesterday}::date, interval '1 day') d
        where not exists (select 1 from analytics_days a where a.appid = ${appid} and a.day = d::date)
        order by d limit ${MAX_DAYS}`.execute(db)
      let n = 0
      for (const { day } of due.rows) {
        if (days++ > 0 && budget?.left() === false) {
          built[appid] = n
          return { built, more: true }
        }
        await buildDay(db, {
          appid,
          day,
          timeZone: config.timeZone,
          now: clock.now(),
          today,
          // the account's mini program's points are the account's (account-members.ts)
          mpAppids: memberScope(appid, shop).mpAppids,
        })
        // The retention cohorts' cells that became known that day (src/analytics/cohorts.ts).
        await buildCohortCells(db, { appid, day, timeZone: config.timeZone })
        n++
      }
      built[appid] = n
    }
    return { built }
  },
}
