/**
 * 补签 / makeup: fills a missed check-in day (the latest one, or `补签 11-20`), for points; the reply
 * says what it cost, the streak it restored, the bonuses it reached and the month's make-ups left.
 */
import type { BotContext } from '../src/bot/context.js'
import type { Router } from '../src/bot/router.js'
import { badgeLine } from '../src/community/badges.js'
import {
  type MakeupResult,
  makeUpCheckin,
  parseMakeupDay,
} from '../src/community/checkin-makeup.js'
import { localDay } from '../src/community/community-time.js'
import { text } from '../src/wechat/reply.js'
import { monthlyLines } from './checkin.js'

const month = (day: string) => Number(day.slice(5, 7))

/** The reply to a make-up that did not happen. */
function refusal(ctx: BotContext, r: Exclude<MakeupResult, { status: 'made_up' }>): string {
  switch (r.status) {
    case 'disabled':
      return ctx.t('makeup.disabled')
    case 'today':
      return ctx.t('makeup.today')
    case 'future':
      return ctx.t('makeup.future', { day: r.day })
    case 'too_old':
      return ctx.t('makeup.tooOld', { days: r.days, earliest: r.earliest })
    case 'before_follow':
      return ctx.t('makeup.beforeFollow', { day: r.day, follow: r.follow })
    case 'already':
      return ctx.t('makeup.already', { day: r.day })
    case 'none':
      return ctx.t('makeup.none', { days: r.days })
    case 'limit':
      return ctx.t('makeup.limit', { month: month(r.day), limit: r.perMonth })
    case 'insufficient':
      return ctx.t('makeup.insufficient', { day: r.day, cost: r.cost, balance: r.balance })
  }
}

export function register(router: Router): void {
  router.command(
    {
      names: ['补签', 'makeup', '补卡'],
      description: 'command.makeup',
      group: 'daily',
      args: 'help.arg.day',
    },
    async (ctx) => {
      const now = ctx.clock.now()
      const day = parseMakeupDay(ctx.args, localDay(now, ctx.community.timeZone))
      if (day === null) return text(ctx.t('makeup.badDay', { text: ctx.args }))
      const r = await makeUpCheckin(ctx.db, {
        appid: ctx.account.appid,
        memberId: ctx.member.id,
        now,
        timeZone: ctx.community.timeZone,
        settings: ctx.community.checkin,
        day,
      })
      if (r.status !== 'made_up') return text(refusal(ctx, r))
      const level = ctx.t(`level.${r.level.key}`)
      const lines = [
        r.cost > 0
          ? ctx.t('makeup.done', { day: r.day, cost: r.cost, streak: r.streak })
          : ctx.t('makeup.doneFree', { day: r.day, streak: r.streak }),
        ...r.bonuses.map((b) => ctx.t('checkin.bonus', { streak: b.streak, bonus: b.points })),
        ...monthlyLines(
          ctx,
          r.monthly,
          r.day.slice(0, 7) === localDay(now, ctx.community.timeZone).slice(0, 7)
            ? undefined
            : month(r.day),
        ),
        ctx.t('makeup.quota', { month: month(r.day), used: r.used, limit: r.perMonth }),
        ctx.t('points.summary', { balance: r.balance, level }),
      ]
      if (r.levelUp)
        lines.push(ctx.t('points.levelUp', { level, multiplier: r.levelUp.to.multiplier }))
      lines.push(...r.badges.map((b) => badgeLine(ctx.t, b)))
      return text(lines.join('\n'))
    },
  )
}
