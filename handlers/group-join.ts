/** 入群 / group (OA chat): the follower's own join QR into the community's WeCom groups. */
import type { Router } from '../src/bot/router.js'
import { joinQr } from '../src/community/group-joins.js'
import { news, text } from '../src/wechat/reply.js'

export function register(router: Router): void {
  router.command({ names: ['入群', 'group'], description: 'command.joinGroup' }, async (ctx) => {
    const wecom = ctx.wechat.wecom
    if (!wecom || wecom.joinChats.length === 0) return text(ctx.t('joinGroup.unavailable'))
    const qr = await joinQr(ctx.db, wecom.api, {
      member: ctx.member,
      chatIds: wecom.joinChats,
      now: ctx.clock.now(),
    })
    return news({
      title: ctx.t('joinGroup.title'),
      description: ctx.t('joinGroup.description'),
      picUrl: qr.qrCode,
      url: qr.qrCode,
    })
  })
}
