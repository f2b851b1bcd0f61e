/**
 * 兑换 / redeem: lists the catalog, in pages that fit a reply (兑换 第2页 — a bare number is a
 * reward's code); 兑换 <编号> redeems and replies with the code — or, for a cashback reward, with
 * the mini-program link where the member confirms the transfer. Both replies
 * end with what members like this one also redeemed (src/community/recommendations.ts), or what is
 * popular, when the nightly rebuild has found any. A redemption is keyed on the message that asked
 * for it, so the same message handled again (a group channel's retry) answers it again and spends
 * nothing more.
 */
import type { BotContext } from '../src/bot/context.js'
import { listPageText, pageArgument } from '../src/bot/paged-list.js'
import type { Router } from '../src/bot/router.js'
import { recommendRewards } from '../src/community/recommendations.js'
import { ensureDefaultRewards, listRewards, redeem } from '../src/community/rewards.js'
import { cashbackLink } from '../src/shop/transfer-bills.js'
import { dedupeKey } from '../src/wechat/message.js'
import { text } from '../src/wechat/reply.js'
import { withUnionid } from './subscribe.js'

/**
 * The mini-program link of a text reply (opens the cashback page): a tappable link in the OA chat,
 * the page's path elsewhere (groups render no mini-program links).
 */
function mpLink(ctx: BotContext, outBillNo?: string): string {
  const mp = ctx.community.miniProgram
  if (!mp) return ''
  const link = cashbackLink(mp.appid, outBillNo)
  if (ctx.channel.kind !== 'oa') return link.pagepath
  return ctx.t('redeem.cashbackLink', { appid: link.appid, path: link.pagepath })
}

/**
 * The key of the message a redemption answers: its channel, what it came through (the account, a
 * bot, a bridge) and its dedupe key (`m:<msgId>`), so no two channels' messages share one.
 */
function messageKey(ctx: BotContext): string {
  return `msg:${ctx.channel.kind}:${ctx.message.toUserName}:${dedupeKey(ctx.message)}`
}

/**
 * The recommendation lines of a 兑换 reply ('' when there are none): similar rewards, then popular
 * ones. A failure is logged and leaves them out — the reply (a redemption's code) still goes.
 */
async function recommendations(ctx: BotContext): Promise<string> {
  try {
    const recs =
      (
        await recommendRewards(ctx.db, {
          appid: ctx.account.appid,
          memberIds: [ctx.member.id],
          limit: 3,
        })
      ).get(ctx.member.id) ?? []
    const line = (because: 'similar' | 'popular') => {
      const items = recs.filter((r) => r.because === because)
      return items.length === 0
        ? []
        : [
            ctx.t(`redeem.${because}`, {
              items: items
                .map((r) => ctx.t('redeem.recItem', { name: r.name, code: r.code }))
                .join(' / '),
            }),
          ]
    }
    return [...line('similar'), ...line('popular')].join('\n')
  } catch (error) {
    ctx.logger.error('recommendations failed', { error: String(error), member: ctx.member.id })
    return ''
  }
}

/** `reply` with the recommendation lines appended. */
async function withRecommendations(ctx: BotContext, reply: string) {
  const recs = await recommendations(ctx)
  return text(recs ? `${reply}\n${recs}` : reply)
}

export function register(router: Router): void {
  router.command(
    { names: ['兑换', 'redeem', '商城'], description: 'command.redeem', group: 'points' },
    async (ctx) => {
      const appid = ctx.account.appid
      await ensureDefaultRewards(ctx.db, appid, ctx.clock.now())
      const code = Number(ctx.args.replace(/^[#＃]/, ''))
      const page = pageArgument(ctx.args, { bare: false })
      if (page !== null || !ctx.args || !Number.isInteger(code) || code <= 0) {
        const rewards = await listRewards(ctx.db, appid)
        if (rewards.length === 0) return text(ctx.t('redeem.empty'))
        const lines = rewards.map((r) =>
          ctx.t('redeem.item', {
            code: r.code,
            name: r.name,
            cost: r.cost,
            stock:
              r.stock === null
                ? ''
                : r.stock > 0
                  ? ctx.t('redeem.stock', { stock: r.stock })
                  : ctx.t('redeem.soldOut'),
          }),
        )
        const recs = await recommendations(ctx)
        return text(
          listPageText(ctx.t, {
            head: [ctx.t('redeem.title', { balance: ctx.member.points_balance })],
            entries: lines,
            tail: [...(recs ? [recs] : []), ctx.t('redeem.hint')],
            page: page ?? 1,
            command: 'redeem.page',
          }),
        )
      }
      const attempt = () =>
        redeem(ctx.db, {
          appid,
          memberId: ctx.member.id,
          code,
          now: ctx.clock.now(),
          timeZone: ctx.community.timeZone,
          miniProgram: ctx.community.miniProgram,
          requestKey: messageKey(ctx),
        })
      let r = await attempt()
      // A cashback needs the member's mini-program sign-in: one under their unionid counts too,
      // so a follower whose unionid is not known yet is asked about (user/info) and tried again.
      if (
        r.status === 'needs_mini_program' &&
        !ctx.member.unionid &&
        ctx.member.appid === appid &&
        (await withUnionid(ctx)).unionid
      )
        r = await attempt()
      switch (r.status) {
        case 'redeemed': {
          const { cashback, ...done } = r
          if (!cashback) return withRecommendations(ctx, ctx.t('redeem.done', done))
          return withRecommendations(
            ctx,
            ctx.t('redeem.cashback', {
              ...done,
              yuan: (cashback.amountFen / 100).toFixed(2),
              link: mpLink(ctx, cashback.outBillNo),
            }),
          )
        }
        case 'unavailable':
          return text(ctx.t('redeem.unavailable', r))
        case 'needs_mini_program':
          return text(ctx.t('redeem.needsMiniProgram', { ...r, code, link: mpLink(ctx) }))
        case 'not_found':
          return text(ctx.t('redeem.notFound', { code }))
        case 'cancelled':
          return text(ctx.t('redeem.cancelled', r))
        case 'out_of_stock':
          return text(ctx.t('redeem.outOfStock', r))
        case 'limit_reached':
          return text(ctx.t('redeem.limit', r))
        case 'insufficient':
          return text(ctx.t('redeem.insufficient', r))
      }
    },
  )
}
