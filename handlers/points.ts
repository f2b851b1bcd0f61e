/**
 * 积分 / points and 我的 / me: balance, the next points to expire and until when they are valid,
 * points pending from purchases (待到账) and when they are released, level, progress to the next
 * level, check-in record (this month's check-ins and make-ups too), name, badges held (徽章).
 */
import type { BotContext } from '../src/bot/context.js'
import { LIST_MAX_BYTES } from '../src/bot/paged-list.js'
import type { CommandSpec, Router } from '../src/bot/router.js'
import { memberBadges } from '../src/community/badges.js'
import { checkinStats, DEFAULT_MAKEUP } from '../src/community/checkins.js'
import { maskedName } from '../src/community/display-names.js'
import { levelByKey, nextLevel } from '../src/community/levels.js'
import { expiringPoints } from '../src/community/points-expiry.js'
import { pendingPoints } from '../src/shop/purchase-grants.js'
import { text } from '../src/wechat/reply.js'
import { utf8Bytes } from '../src/wechat/text-budget.js'

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

/** The 待到账 line: frozen purchase points and the earliest release, or null when none. */
async function pendingLine(ctx: BotContext): Promise<string | null> {
  if (ctx.member.points_frozen <= 0) return null
  const pending = await pendingPoints(ctx.db, ctx.member.id)
  if (!pending) return null
  const at = new Intl.DateTimeFormat('sv-SE', {
    timeZone: ctx.community.timeZone,
    dateStyle: 'short',
    timeStyle: 'short',
  }).format(pending.nextReleaseAt)
  return ctx.t('points.pending', { points: pending.points, at })
}

/** The next points to expire and their last valid day, or null when none will. */
async function expiringLine(ctx: BotContext): Promise<string | null> {
  if (ctx.member.points_balance <= 0) return null
  const next = await expiringPoints(ctx.db, ctx.member.id, ctx.community.timeZone)
  return next && ctx.t('points.expiring', { points: next.points, date: next.lastDay })
}

export function register(router: Router): void {
  router.command(POINTS, async (ctx) => {
    const { points_balance: balance, points_lifetime: lifetime } = ctx.member
    const level = ctx.t(`level.${levelByKey(ctx.member.level).key}`)
    const next = nextLevel(lifetime)
    const expiring = await expiringLine(ctx)
    const pending = await pendingLine(ctx)
    return text(
      [
        ctx.t('points.summary', { balance, level }),
        ...(expiring ? [expiring] : []),
        ...(pending ? [pending] : []),
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
    const month = ctx.t('me.month', {
      days: stats.monthDays,
      used: stats.monthMadeUp,
      limit: (ctx.community.checkin.makeup ?? DEFAULT_MAKEUP).perMonth,
    })
    const expiring = await expiringLine(ctx)
    const pending = await pendingLine(ctx)
    const perks = ctx.t('me.perks', { perks: ctx.t(`perks.${level}`) })
    const badges = await memberBadges(ctx.db, ctx.member.id)
    const lines = [
      summary,
      month,
      ...(expiring ? [expiring] : []),
      ...(pending ? [pending] : []),
      perks,
    ]
    if (badges.length > 0) {
      const room = LIST_MAX_BYTES - utf8Bytes(lines.join('\n')) - 1
      const names = badges.map((b) => b.name)
      lines.push(badgeLine(ctx, names, room))
    }
    return text(lines.join('\n'))
  })
}

/**
 * The 徽章 line within `room` bytes: every badge held, or — as operators add badges, a member can
 * hold more than a reply has room for — the first ones that fit and 「等」.
 */
function badgeLine(ctx: BotContext, names: string[], room: number): string {
  const line = (shown: number) =>
    ctx.t(shown < names.length ? 'me.badgesSome' : 'me.badges', {
      count: names.length,
      badges: names.slice(0, shown).join('、'),
    })
  let shown = names.length
  while (shown > 1 && utf8Bytes(line(shown)) > room) shown--
  return line(shown)
}
