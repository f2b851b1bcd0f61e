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
      clock: { now: () => new Date('2026-11-25T03:17:42Z') }, // caught up two hours late
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
    expect(queued.map((r) => r.source)).toEqual([
      expect.stringMatching(/^activity:\d+:2026-11-25T01:00:00\.000Z$/),
    ])
  })
})
