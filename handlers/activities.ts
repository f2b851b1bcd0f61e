/**
 * 活动 (list, in pages that fit a reply: 「活动 2」; an activity worth points names what this member
 * gets, × their level's multiplier), 报名 <活动> (sign up, with a waitlist when
 * full), 取消报名 <活动>.
 */
import { listPageText, pageArgument } from '../src/bot/paged-list.js'
import type { CommandSpec, Router } from '../src/bot/router.js'
import { cancelSignup, ensureDefaultActivities, signUp } from '../src/community/activities.js'
import { levelByKey } from '../src/community/levels.js'
import { text } from '../src/wechat/reply.js'

const JOIN: CommandSpec = {
  names: ['报名', 'join'],
  description: 'command.join',
  group: 'activity',
  args: 'help.arg.code',
}
const LEAVE: CommandSpec = {
  names: ['取消报名', 'leave'],
  description: 'command.leave',
  group: 'activity',
  args: 'help.arg.code',
}

export function register(router: Router): void {
  router.command(
    { names: ['活动', 'activities'], description: 'command.activities', group: 'activity' },
    async (ctx) => {
      await ensureDefaultActivities(ctx.db, ctx.account.appid, ctx.clock.now())
      const list = await ctx.db
        .selectFrom('activities')
        .select(['key', 'name', 'description', 'points'])
        .where('appid', '=', ctx.account.appid)
        .where('status', '=', 'open')
        .orderBy('id')
        .execute()
      // what this member gets for taking part: the points × their level's multiplier, as awarded
      const multiplier = levelByKey(ctx.member.level).multiplier
      return text(
        listPageText(ctx.t, {
          head: [ctx.t('activity.title')],
          entries: list.map(
            (a) =>
              ctx.t('activity.line', { key: a.key, name: a.name, description: a.description }) +
              (a.points > 0 ? ctx.t('activity.linePoints', { points: a.points * multiplier }) : ''),
          ),
          tail: [ctx.t('activity.footer')],
          // Activities are named by key, never by number: a bare number is a page.
          page: pageArgument(ctx.args, { bare: true }) ?? 1,
          command: 'activity.page',
        }),
      )
    },
  )

  router.command(JOIN, async (ctx) => {
    if (!ctx.args) return text(ctx.t('activity.which'))
    await ensureDefaultActivities(ctx.db, ctx.account.appid, ctx.clock.now())
    const r = await signUp(ctx.db, {
      appid: ctx.account.appid,
      memberId: ctx.member.id,
      ref: ctx.args,
      now: ctx.clock.now(),
      timeZone: ctx.community.timeZone,
    })
    switch (r.status) {
      case 'confirmed':
        return text(ctx.t('activity.confirmed', { name: r.name }))
      case 'waitlisted':
        return text(ctx.t('activity.waitlisted', { name: r.name, position: r.position ?? 1 }))
      case 'already':
        return text(ctx.t('activity.already', { name: r.name }))
      case 'needs_purchase':
        return text(ctx.t('activity.needsPurchase', { name: r.name ?? '' }))
      case 'no_signup':
      case 'closed':
        return text(ctx.t('activity.closed', { name: r.name ?? ctx.args }))
      default:
        return text(ctx.t('activity.unknown', { ref: ctx.args }))
    }
  })

  router.command(LEAVE, async (ctx) => {
    if (!ctx.args) return text(ctx.t('activity.which'))
    const r = await cancelSignup(ctx.db, {
      appid: ctx.account.appid,
      memberId: ctx.member.id,
      ref: ctx.args,
      now: ctx.clock.now(),
      timeZone: ctx.community.timeZone,
      // the promoted member's notice, in the account's language
      t: ctx.t,
    })
    if (r === 'not_found') return text(ctx.t('activity.unknown', { ref: ctx.args }))
    return text(ctx.t(r === 'cancelled' ? 'activity.cancelled' : 'activity.notSignedUp'))
  })
}
