/**
 * Every minute: reminders of the activities whose cron matches the slot, through the outbox. Each
 * missed slot is caught up, but one past its deadline (2 h, as a check-in reminder's) sends nothing.
 */
import { translator } from '../src/bot/i18n.js'
import { sendActivityReminders } from '../src/community/activities.js'
import { DEFAULT_REMINDER_SETTINGS } from '../src/community/checkin-reminders.js'
import type { Job } from './types.js'

export const activityRemindersJob: Job = {
  name: 'activity-reminders',
  cron: '* * * * *',
  catchUp: 'every',
  async run({ db, slot, clock, config }) {
    const queued = await sendActivityReminders(db, {
      slot,
      now: clock.now(),
      timeZone: config.timeZone,
      t: translator(config.locale),
      robots: config.robots,
      settings: config.checkin.reminders ?? DEFAULT_REMINDER_SETTINGS,
    })
    return { queued }
  },
}
