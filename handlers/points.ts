/** 积分 / points and 我的 / me: balance, level, progress to the next level, check-in record, name. */
import type { CommandSpec, Router } from '../src/bot/router.js'
import { checkinStats } from '../src/community/checkins.js'
import { maskedName } from '../src/community/display-names.js'
import { levelByKey, nextLevel } from '../src/community/levels.js'
import { text } from '../src/wechat/reply.js'

const POINTS: CommandSpec = {
  names: ['积分', 'points', '余额'],
  description: 'command.points',
  group: 'points',
}
const ME: CommandSpec = {
  names: ['我的', 'me', 'profile'],
  description: 'command.me',
  group: 'daily',
}

export function register(router: Router): void {
  router.command(POINTS, (ctx) => {
    const { points_balance: balance, points_lifetime: lifetime } = ctx.member
    const level = ctx.t(`level.${levelByKey(ctx.member.level).key}`)
    const next = nextLevel(lifetime)
    return text(
      [
        ctx.t('points.summary', { balance, level }),
        next
          ? ctx.t('points.next', { missing: next.missing, next: ctx.t(`level.${next.level.key}`) })
          : ctx.t('points.top', { level }),
      ].join('\n'),
    )
  })

  router.command(ME, async (ctx) => {
    const stats = await checkinStats(ctx.db, ctx.member.id, ctx.clock.now(), ctx.community.timeZone)
    const level = levelByKey(ctx.member.level).key
    const summary = ctx.t('me.summary', {
      name:
        ctx.member.display_name ??
        ctx.t('me.noName', { masked: maskedName(ctx.member.openid, ctx.t) }),
      balance: ctx.member.points_balance,
      lifetime: ctx.member.points_lifetime,
      level: ctx.t(`level.${level}`),
      streak: stats.streak,
      total: stats.total,
      today: ctx.t(stats.checkedInToday ? 'me.checkedIn' : 'me.notCheckedIn'),
    })
    return text(`${summary}\n${ctx.t('me.perks', { perks: ctx.t(`perks.${level}`) })}`)
  })
}
