/**
 * 签到 / checkin: the daily check-in, with streak, bonus, balance and level in the reply — and the
 * day's `daily_login` award when this same push earned it, so the reply adds up to the balance.
 */
import type { Router } from '../src/bot/router.js'
import { badgeLine } from '../src/community/badges.js'
import { checkIn } from '../src/community/checkins.js'
import { text } from '../src/wechat/reply.js'

const hhmm = (minutes: number) =>
  `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`

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
      lines.push(...dailyLine, summary)
      if (result.levelUp) {
        lines.push(ctx.t('points.levelUp', { level, multiplier: result.levelUp.to.multiplier }))
      }
      lines.push(...result.badges.map((b) => badgeLine(ctx.t, b)))
      return text(lines.join('\n'))
    },
  )
}
