/**
 * The check-in reminder job over 1,000,000 opted-in members on PostgreSQL (issue target: ≤ 30 s per
 * run), in a throw-away schema. The worst case: every member chose the same time (the default
 * 20:00), so one run decides them all.
 *
 *   npm run bench:reminders           # BENCH_MEMBERS=1000000 by default
 *   BENCH_SCHEMA=bench_jb_rem npm run bench:reminders   # keep the members for the next run
 *
 * Members: 60 % wrote within 48 h (customer-service message), 5 % of those used up the window's
 * quota, 30 % accepted the subscribe template once, 20 % checked in already, 3 % unfollowed.
 * Runs: (1) 20:00 — every reminder due; (2) 20:01 — nothing due (the every-minute cost). Baseline in
 * the same run: `update checkin_reminders set updated_at = updated_at` (writing every row once).
 */
import { sql } from 'kysely'
import { translator } from '../src/bot/i18n.js'
import {
  DEFAULT_REMINDER_SETTINGS,
  enqueueCheckinReminders,
  type ReminderSettings,
} from '../src/community/checkin-reminders.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { keptOrThrowawaySchema, timed } from './throwaway-schema.js'

const count = Number(process.env.BENCH_MEMBERS ?? 1_000_000)
const { db, drop, generated, markGenerated } = await keptOrThrowawaySchema('bench_rem')
const TZ = 'Asia/Shanghai'
const settings: ReminderSettings = {
  ...DEFAULT_REMINDER_SETTINGS,
  subscribe: { templateId: 'bench_tpl', titleKey: 'thing1', hintKey: 'thing2' },
}
try {
  await migrateToLatest(db)
  const slot = new Date('2026-12-03T20:00:00+08:00')
  if (generated !== null && generated !== count)
    throw new Error(`BENCH_SCHEMA holds ${generated} members, not ${count}`)
  if (generated === null)
    await timed(`insert ${count.toLocaleString()} members`, async () => {
      await sql`
        insert into members (appid, openid, subscribed, first_seen_at, last_inbound_at)
        select 'wxbench000000000001', 'o_' || g, g % 100 >= 3,
          ${slot}::timestamptz - interval '90 days',
          case when g % 10 < 6 then ${slot}::timestamptz - make_interval(mins => (g % 2800)::int)
            else ${slot}::timestamptz - interval '5 days' end
        from generate_series(1, ${count}::bigint) g`.execute(db)
      await sql`
        insert into checkins (member_id, day, appid, streak, points, created_at)
        select id, '2026-12-03', appid, 1, 5, ${slot}::timestamptz - interval '10 hours'
        from members where id % 5 = 0`.execute(db)
      await sql`
        insert into cs_window_sends (appid, openid, window_opened_at, sent)
        select appid, openid, last_inbound_at, 5 from members
        where last_inbound_at > ${slot}::timestamptz - interval '2 days' and id % 20 = 1`.execute(
        db,
      )
      await markGenerated(count)
    })
  // What a run changes is made anew each time (so a kept dataset starts from the same state).
  await timed(`opt ${count.toLocaleString()} members in`, async () => {
    await sql`truncate push_outbox, checkin_reminders`.execute(db)
    await sql`
      insert into checkin_reminders (member_id, appid, minute_of_day, next_at, oa_template_id,
        oa_credits, created_at, updated_at)
      select id, appid, 1200, ${slot}::timestamptz,
        case when id % 10 < 3 then 'bench_tpl' end, case when id % 10 < 3 then 1 else 0 end,
        ${slot}::timestamptz - interval '1 day', ${slot}::timestamptz - interval '1 day'
      from members`.execute(db)
    await sql`vacuum analyze`.execute(db)
  })
  // The cost of writing every reminder row once, measured in the same run (the machine's pace).
  const baseline = await timed('baseline: touch every reminder once', async () => {
    await sql`update checkin_reminders set updated_at = updated_at`.execute(db)
    await sql`vacuum checkin_reminders`.execute(db)
  })
  const run = (at: Date) =>
    enqueueCheckinReminders(db, { slot: at, timeZone: TZ, settings, t: translator('zh-CN') })
  const due = await timed('run at 20:00 (every reminder due)', () => run(slot))
  const idle = await timed('run at 20:01 (nothing due)', () =>
    run(new Date(slot.getTime() + 60_000)),
  )
  console.log(
    `\n| run (${count.toLocaleString()} members) | seconds | × baseline |\n|---|---:|---:|\n` +
      [
        ['baseline: touch every reminder once', baseline],
        ['20:00, every reminder due', due],
        ['20:01, nothing due', idle],
      ]
        .map(([name, ms]) => {
          const s = ms as number
          return `| ${name} | ${(s / 1000).toFixed(2)} | ${(s / baseline).toFixed(2)} |`
        })
        .join('\n'),
  )
} finally {
  await drop()
}
