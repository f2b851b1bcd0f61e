/**
 * 签到 / checkin: the daily check-in, with streak, bonus, monthly rewards, balance and level in the
 * reply (and, when the streak broke within the make-up window, what a 补签 would cost) — and the day's `daily_login` award when this same push earned it, so the reply adds up to
 * the balance.
 */
import type { BotContext } from '../src/bot/context.js'
import type { Router } from '../src/bot/router.js'
import { badgeLine } from '../src/community/badges.js'
import { checkIn, type MonthlyOutcome } from '../src/community/checkins.js'
import { text } from '../src/wechat/reply.js'

const hhmm = (minutes: number) =>
  `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`

/**
 * One line per monthly reward (累计签到) a check-in or make-up reached; `month` names the month (a
 * make-up of a day in another month than today's: that month's reward, not 本月's).
 */
export function monthlyLines(
  ctx: BotContext,
  monthly: MonthlyOutcome | null,
  month?: number,
): string[] {
  return (monthly?.paid ?? []).map((p) =>
    month === undefined
      ? ctx.t('checkin.monthly', { days: p.days, bonus: p.points })
      : ctx.t('makeup.monthly', { month, days: p.days, bonus: p.points }),
  )
}

export function register(router: Router): void {
  router.command(
    { names: ['签到', 'checkin', '打卡'], description: 'command.checkin', group: 'daily' },
    async (ctx) => {
      const result = await checkIn(ctx.db, {
        appid: ctx.account.appid,
        memberId: ctx.member.id,
        now: ctx.clock.now(),
        timeZone: ctx.community.timeZone,
        settings: ctx.community.checkin,
        invites: { settings: ctx.community.invites, t: ctx.t },
        logger: ctx.logger,
        openid: ctx.member.openid,
        run: ctx.checkins,
      })
      if (result.status === 'closed') {
        return text(
          ctx.t('checkin.closed', { from: hhmm(result.window.from), to: hhmm(result.window.to) }),
        )
      }
      const level = ctx.t(`level.${result.level.key}`)
      const summary = ctx.t('points.summary', { balance: result.balance, level })
      // quanzi_receive paid daily_login for this push (its first of the community day).
      const daily = ctx.member.dailyLogin
      const dailyLine =
        daily?.status === 'applied' ? [ctx.t('checkin.dailyLogin', { points: daily.delta })] : []
      if (result.status === 'already') {
        return text(
          [ctx.t('checkin.already', { streak: result.streak }), ...dailyLine, summary].join('\n'),
        )
      }
      const lines = [ctx.t('checkin.done', { points: result.points, streak: result.streak })]
      if (result.bonus > 0)
        lines.push(ctx.t('checkin.bonus', { streak: result.streak, bonus: result.bonus }))
      lines.push(...monthlyLines(ctx, result.monthly))
      // a streak that broke within the make-up window: say that 补签 can mend it
      if (result.makeup) lines.push(ctx.t('checkin.makeupHint', result.makeup))
      lines.push(...dailyLine, summary)
      if (result.levelUp) {
        lines.push(ctx.t('points.levelUp', { level, multiplier: result.levelUp.to.multiplier }))
      }
      lines.push(...result.badges.map((b) => badgeLine(ctx.t, b)))
      return text(lines.join('\n'))
    },
  )
}
