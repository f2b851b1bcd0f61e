/**
 * Moderator commands, in a group (through the WeCom AI bot) or in a moderator's own OA chat:
 *   加分 <成员> <n> <原因> / 扣分 …   points through the ledger (成员: OA openid or bound WeCom userid)
 *   公告 <内容>                        to the group (robot webhook, 20/min) and its linked followers
 *                                     (refused past WeChat's 2048-byte text limit)
 *   开启 / 关闭 <活动>                 open or close an activity
 * Every attempt is audited; non-moderators get a clear refusal (audited too).
 */
import type { BotContext } from '../src/bot/context.js'
import type { Router } from '../src/bot/router.js'
import { ensureDefaultActivities, findActivity } from '../src/community/activities.js'
import { type AuditAction, audit } from '../src/community/audit-log.js'
import { memberByIdentity } from '../src/community/identities.js'
import { findMember } from '../src/community/members.js'
import { announce, isModerator } from '../src/community/moderation.js'
import { changePoints } from '../src/community/points-ledger.js'
import { dedupeKey } from '../src/wechat/message.js'
import { text } from '../src/wechat/reply.js'
import { TEXT_MAX_BYTES, utf8Bytes } from '../src/wechat/text-budget.js'

/** Listed by 帮助 to moderators only. */
const MODERATOR = { group: 'moderator', scope: 'moderator' } as const

const actor = (ctx: BotContext) => `${ctx.channel.kind}:${ctx.channel.externalId}`

/** Runs `fn` for moderators; refuses (and audits the attempt) for everyone else. */
function moderated(action: AuditAction, fn: (ctx: BotContext) => Promise<string>) {
  return async (ctx: BotContext) => {
    const now = ctx.clock.now()
    if (!(await isModerator(ctx.db, ctx.channel))) {
      await audit(ctx.db, {
        appid: ctx.account.appid,
        actor: actor(ctx),
        action: `${action}.refused`,
        target: ctx.channel.chatId ?? 'oa',
        details: { text: ctx.text },
        now,
      })
      return text(ctx.t('mod.refused'))
    }
    return text(await fn(ctx))
  }
}

export function register(router: Router): void {
  const points = (sign: 1 | -1) =>
    moderated(sign > 0 ? 'points.grant' : 'points.deduct', async (ctx) => {
      const m = /^(\S+)\s+(\d{1,6})\s+(.+)$/.exec(ctx.args)
      if (!m) return ctx.t('mod.pointsUsage')
      const [, who, n, reason] = m as unknown as [string, string, string, string]
      const target =
        (await memberByIdentity(ctx.db, 'wecom_aibot', who)) ??
        (await findMember(ctx.db, ctx.account.appid, who))
      if (!target) return ctx.t('mod.noMember', { who })
      const now = ctx.clock.now()
      const delta = sign * Number(n)
      if (delta === 0) return ctx.t('mod.pointsUsage')
      const outcome = await changePoints(
        ctx.db,
        {
          appid: target.appid,
          memberId: target.id,
          rule: sign > 0 ? 'moderator_grant' : 'moderator_deduct',
          // the command's own push: a retry of it changes nothing
          idempotencyKey: `mod:${dedupeKey(ctx.message)}:${target.id}`,
          reference: `${actor(ctx)}: ${reason}`,
          now,
          timeZone: ctx.community.timeZone,
        },
        delta,
      )
      await audit(ctx.db, {
        appid: target.appid,
        actor: actor(ctx),
        action: sign > 0 ? 'points.grant' : 'points.deduct',
        target: target.openid,
        details: { delta, reason, chat: ctx.channel.chatId, status: outcome.status },
        now,
      })
      if (outcome.status === 'insufficient')
        return ctx.t('mod.insufficient', { balance: outcome.balance })
      return ctx.t('mod.pointsDone', {
        who,
        delta: delta > 0 ? `+${delta}` : String(delta),
        balance: outcome.balance,
      })
    })
  router.command(
    { names: ['加分', 'grant'], description: 'command.grant', ...MODERATOR },
    points(1),
  )
  router.command(
    { names: ['扣分', 'deduct'], description: 'command.deduct', ...MODERATOR },
    points(-1),
  )

  router.command(
    { names: ['公告', 'announce'], description: 'command.announce', ...MODERATOR },
    moderated('announce', async (ctx) => {
      if (!ctx.args) return ctx.t('mod.announceUsage')
      // A robot's text and a customer-service text both stop at 2048 bytes: refused, not cut.
      const announcement = ctx.t('mod.announcement', { text: ctx.args })
      const room = TEXT_MAX_BYTES - (utf8Bytes(announcement) - utf8Bytes(ctx.args))
      if (utf8Bytes(ctx.args) > room)
        return ctx.t('mod.announceTooLong', {
          bytes: utf8Bytes(ctx.args),
          max: room,
          chars: Math.floor(room / 3),
        })
      const now = ctx.clock.now()
      const r = await announce(ctx.db, ctx.community.robots, {
        appid: ctx.account.appid,
        chatId: ctx.channel.chatId,
        text: announcement,
        // One announcement per message: a retried message does not push it to followers twice.
        source: `announce:${actor(ctx)}:${dedupeKey(ctx.message)}`,
        now,
      })
      await audit(ctx.db, {
        appid: ctx.account.appid,
        actor: actor(ctx),
        action: 'announce',
        target: ctx.channel.chatId ?? 'all groups',
        details: { text: ctx.args, robots: r.robots, followers: r.followers },
        now,
      })
      if (r.robots.some((x) => x.status === 'rate_limited')) return ctx.t('mod.announceLimited')
      return ctx.t('mod.announced', {
        groups: r.robots.filter((x) => x.status === 'sent').length,
        followers: r.followers,
      })
    }),
  )

  const toggle = (status: 'open' | 'closed') =>
    moderated(status === 'open' ? 'activity.open' : 'activity.close', async (ctx) => {
      await ensureDefaultActivities(ctx.db, ctx.account.appid, ctx.clock.now())
      const a = ctx.args && (await findActivity(ctx.db, ctx.account.appid, ctx.args))
      if (!a) return ctx.t('activity.unknown', { ref: ctx.args })
      const now = ctx.clock.now()
      await ctx.db.updateTable('activities').set({ status }).where('id', '=', a.id).execute()
      await audit(ctx.db, {
        appid: ctx.account.appid,
        actor: actor(ctx),
        action: status === 'open' ? 'activity.open' : 'activity.close',
        target: a.key,
        details: { chat: ctx.channel.chatId },
        now,
      })
      return ctx.t(status === 'open' ? 'mod.opened' : 'mod.closed', { name: a.name })
    })
  router.command(
    { names: ['开启', 'open'], description: 'command.open', ...MODERATOR },
    toggle('open'),
  )
  router.command(
    { names: ['关闭', 'close'], description: 'command.close', ...MODERATOR },
    toggle('closed'),
  )
}
