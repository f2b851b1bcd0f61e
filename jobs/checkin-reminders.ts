/**
 * Every minute: check-in reminders due by the slot, decided in batches (one statement each) and
 * enqueued in the outbox's notice lane (src/community/checkin-reminders.ts). A run covers every
 * reminder due up to its slot, so missed slots need no replay; one that is too late is not sent.
 */
import { translator } from '../src/bot/i18n.js'
import {
  DEFAULT_REMINDER_SETTINGS,
  enqueueCheckinReminders,
} from '../src/community/checkin-reminders.js'
import type { Job } from './types.js'

export const checkinRemindersJob: Job = {
  name: 'checkin-reminders',
  cron: '* * * * *',
  catchUp: 'latest',
  async run({ db, slot, clock, config, budget }) {
    const run = await enqueueCheckinReminders(db, {
      slot,
      now: clock.now(),
      timeZone: config.timeZone,
      settings: config.checkin.reminders ?? DEFAULT_REMINDER_SETTINGS,
      t: translator(config.locale),
      budget,
    })
    return { ...run }
  },
}
