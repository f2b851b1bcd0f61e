/** 兑换 / redeem: lists the catalog; 兑换 <编号> redeems and replies with the code. */
import type { Router } from '../src/bot/router.js'
import { ensureDefaultRewards, listRewards, redeem } from '../src/community/rewards.js'
import { text } from '../src/wechat/reply.js'

export function register(router: Router): void {
  router.command(
    { names: ['兑换', 'redeem', '商城'], description: 'command.redeem', group: 'points' },
    async (ctx) => {
      const appid = ctx.account.appid
      await ensureDefaultRewards(ctx.db, appid, ctx.clock.now())
      const code = Number(ctx.args.replace(/^[#＃]/, ''))
      if (!ctx.args || !Number.isInteger(code) || code <= 0) {
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
        return text(
          [
            ctx.t('redeem.title', { balance: ctx.member.points_balance }),
            ...lines,
            ctx.t('redeem.hint'),
          ].join('\n'),
        )
      }
      const r = await redeem(ctx.db, {
        appid,
        memberId: ctx.member.id,
        code,
        now: ctx.clock.now(),
        timeZone: ctx.community.timeZone,
      })
      switch (r.status) {
        case 'redeemed':
          return text(ctx.t('redeem.done', r))
        case 'not_found':
          return text(ctx.t('redeem.notFound', { code }))
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
