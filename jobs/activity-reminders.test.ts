import type { Kysely } from 'kysely'
import { expect, it, vi } from 'vitest'
import { loadConfig } from '../src/config.js'
import type { Database } from '../src/db/schema.js'
import { silentLogger } from '../src/logger.js'
import { activityRemindersJob } from './activity-reminders.js'

const sent = vi.hoisted(() => [] as { now: Date }[])
vi.mock('../src/community/activities.js', () => ({
  sendActivityReminders: async (_db: unknown, o: { now: Date }) => {
    sent.push(o)
    return 0
  },
}))

it('matches activity reminders against the slot being run, not the clock (catch-up)', async () => {
  const slot = new Date('2026-11-25T01:00:00Z')
  await activityRemindersJob.run({
    db: {} as Kysely<Database>,
    clock: { now: () => new Date('2026-11-25T03:17:42Z') }, // caught up two hours late
    logger: silentLogger,
    config: loadConfig({}),
    slot,
  })
  expect(sent.map((o) => o.now)).toEqual([slot])
})
