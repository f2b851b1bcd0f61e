/**
 * 邀请 / invite: the member's personal invite QR as a news reply (picture = the QR image), with the
 * rewards in the description. Follows through it are attributed in subscribe.ts.
 */
import type { Router } from '../src/bot/router.js'
import { inviteQr, recordShare } from '../src/community/invites.js'
import { levelByKey } from '../src/community/levels.js'
import { findRule } from '../src/community/points-ledger.js'
import { qrImageUrl } from '../src/wechat/api/qrcode.js'
import { news, text } from '../src/wechat/reply.js'

export function register(router: Router): void {
  router.command(
    { names: ['邀请', 'invite', '邀请好友'], description: 'command.invite', group: 'invite' },
    async (ctx) => {
      const api = ctx.wechat.api(ctx.account.appid)
      if (!api) {
        ctx.logger.warn('invite QR needs the account secret (WECHAT_SECRET)')
        return text(ctx.t('invite.unavailable'))
      }
      const now = ctx.clock.now()
      const settings = ctx.community.invites
      const qr = await inviteQr(ctx.db, api, { member: ctx.member, now, settings })
      await recordShare(ctx.db, { member: ctx.member, now, timeZone: ctx.community.timeZone })
      const rule = await findRule(ctx.db, ctx.account.appid, 'friend_invite')
      const chain = settings.chainRewards.filter((n) => n > 0)
      const until = new Intl.DateTimeFormat('sv-SE', {
        timeZone: ctx.community.timeZone,
        dateStyle: 'short',
      }).format(qr.expiresAt)
      const description = ctx.t(`invite.description.${settings.rewardOn}`, {
        points: rule?.enabled ? rule.points * levelByKey(ctx.member.level).multiplier : 0,
        chain: chain.length ? ctx.t('invite.chain', { amounts: chain.join('/') }) : '',
        code: qr.code,
        until,
      })
      // Built now from the current base: a cached ticket outlives a moved base (a restart).
      const image = qrImageUrl(ctx.wechat.qrImageBase, qr.ticket)
      return news({ title: ctx.t('invite.title'), description, picUrl: image, url: image })
    },
  )
}
