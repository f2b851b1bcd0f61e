import { expect, it } from 'vitest'
import { ensureDefaultActivities } from '../src/community/activities.js'
import { loadConfig } from '../src/config.js'
import { silentLogger } from '../src/logger.js'
import { forEachDatabase } from '../test/databases.js'
import { activityRemindersJob } from './activity-reminders.js'

forEachDatabase('activity reminders job', (get) => {
  it('matches activity reminders against the slot being run, not the clock (catch-up)', async () => {
    const { db } = get()
    const config = loadConfig({})
    const appid = 'wx_catch_up'
    const slot = new Date('2026-11-25T01:00:00Z') // 09:00 in Shanghai: the check-in reminder
    await ensureDefaultActivities(db, appid, slot)
    // Wrote yesterday, has not checked in today: the reminder's audience.
    const wrote = new Date('2026-11-24T06:00:00Z')
    await db
      .insertInto('members')
      .values({
        appid,
        openid: 'o_catch_up',
        subscribed: true,
        first_seen_at: wrote,
        last_active_at: wrote,
        last_inbound_at: wrote,
      })
      .execute()
    const result = await activityRemindersJob.run({
      db,
      clock: { now: () => new Date('2026-11-25T01:47:42Z') }, // caught up 47 minutes late
      logger: silentLogger,
      config,
      slot,
    })
    expect(result).toEqual({ queued: 1 })
    const queued = await db
      .selectFrom('push_outbox')
      .select('source')
      .where('openid', '=', 'o_catch_up')
      .execute()
    expect(queued.map((r) => r.source)).toEqual(['checkin-reminder:2026-11-25'])
  })

  it('sends nothing for a slot caught up past its deadline: no stale copy before the next one', async () => {
    const { db } = get()
    const config = loadConfig({})
    const appid = 'wx_gap'
    const yesterday = new Date('2026-11-24T01:00:00Z') // 09:00 in Shanghai
    const today = new Date('2026-11-25T01:00:00Z')
    await ensureDefaultActivities(db, appid, yesterday)
    const wrote = new Date('2026-11-23T23:00:00Z') // inside the 48 h window of both slots
    await db
      .insertInto('members')
      .values({
        appid,
        openid: 'o_gap',
        subscribed: true,
        first_seen_at: wrote,
        last_active_at: wrote,
        last_inbound_at: wrote,
      })
      .execute()
    const run = (slot: Date, now: Date) =>
      activityRemindersJob.run({
        db,
        clock: { now: () => now },
        logger: silentLogger,
        config,
        slot,
      })
    // The process was down ~21 h: yesterday's 09:00 is caught up at 08:55 today, then today's runs.
    expect(await run(yesterday, new Date('2026-11-25T00:55:00Z'))).toEqual({ queued: 0 })
    expect(await run(today, today)).toEqual({ queued: 1 })
    const items = await db
      .selectFrom('push_outbox')
      .select(['source', 'expires_at'])
      .where('appid', '=', appid)
      .execute()
    // one reminder, which goes no more than 2 h late (the outbox stores it expired after that)
    expect(items.map((i) => i.source)).toEqual(['checkin-reminder:2026-11-25'])
    expect(new Date(items[0]!.expires_at!)).toEqual(new Date('2026-11-25T03:00:00Z'))
  })
})
