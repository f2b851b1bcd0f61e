/**
 * 提醒 / 提醒 20:30 / 取消提醒: the daily check-in reminder (src/community/checkin-reminders.ts). The
 * reply says the time and how to turn it off; the reminder itself comes from the
 * `checkin-reminders` job.
 */
import type { BotContext } from '../src/bot/context.js'
import type { Router } from '../src/bot/router.js'
import {
  cancelReminder,
  DEFAULT_REMINDER_SETTINGS,
  formatMinutes,
  parseReminderTime,
  type ReminderSettings,
  reminderOf,
  setReminder,
} from '../src/community/checkin-reminders.js'
import { text } from '../src/wechat/reply.js'

/** The community's reminder settings (configured, else the defaults). */
export const reminderSettings = (ctx: BotContext): ReminderSettings =>
  ctx.community.checkin.reminders ?? DEFAULT_REMINDER_SETTINGS

export function register(router: Router): void {
  router.command(
    {
      names: ['提醒', 'remind', 'reminder'],
      description: 'command.remind',
      group: 'settings',
      args: 'help.arg.time',
    },
    async (ctx) => {
      const settings = reminderSettings(ctx)
      const minute = ctx.args ? parseReminderTime(ctx.args) : undefined
      if (minute === null) return text(ctx.t('reminder.badTime'))
      const result = await setReminder(ctx.db, {
        appid: ctx.account.appid,
        memberId: ctx.member.id,
        minute,
        now: ctx.clock.now(),
        timeZone: ctx.community.timeZone,
        settings,
      })
      if (result.status === 'quiet') {
        const { from, to } = result.quietHours
        return text(ctx.t('reminder.quiet', { from: formatMinutes(from), to: formatMinutes(to) }))
      }
      return text(
        [
          ctx.t('reminder.on', { time: formatMinutes(result.minute) }),
          ctx.t('reminder.window'),
        ].join('\n'),
      )
    },
  )
  router.command(
    {
      names: ['取消提醒', 'unremind', 'stopremind'],
      description: 'command.unremind',
      group: 'settings',
    },
    async (ctx) => {
      const settings = reminderSettings(ctx)
      if (await cancelReminder(ctx.db, ctx.member.id, ctx.clock.now(), settings.defaultMinute))
        return text(ctx.t('reminder.off'))
      // 提醒 turns it on at the time chosen before, if any (setReminder): say that one.
      const before = await reminderOf(ctx.db, ctx.member.id)
      const time = formatMinutes(before?.minute ?? settings.defaultMinute)
      return text(ctx.t('reminder.notOn', { time }))
    },
  )
}
