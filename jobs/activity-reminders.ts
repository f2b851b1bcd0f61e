/** Every minute: reminders of the activities whose cron matches the slot, through the outbox. */
import { translator } from '../src/bot/i18n.js'
import { sendActivityReminders } from '../src/community/activities.js'
import type { Job } from './types.js'

export const activityRemindersJob: Job = {
  name: 'activity-reminders',
  cron: '* * * * *',
  catchUp: 'every',
  async run({ db, slot, config }) {
    const queued = await sendActivityReminders(db, {
      now: slot,
      timeZone: config.timeZone,
      t: translator(config.locale),
      robots: config.robots,
    })
    return { queued }
  },
}
