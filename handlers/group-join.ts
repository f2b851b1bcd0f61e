/**
 * 入群 / group (OA chat): the follower's own join QR into the community's WeCom groups. Their
 * unionid is learned first when not stored (user/info), so that joining through their own QR is
 * known as themselves (group-joins.ts), never as their own invitee.
 */
import type { CommandSpec, Router } from '../src/bot/router.js'
import { joinQr } from '../src/community/join-ways.js'
import { news, text } from '../src/wechat/reply.js'
import { withUnionid } from './subscribe.js'

const SPEC: CommandSpec = {
  names: ['入群', 'group'],
  description: 'command.joinGroup',
  group: 'invite',
}

export function register(router: Router): void {
  router.command(SPEC, async (ctx) => {
    const wecom = ctx.wechat.wecom
    if (!wecom || wecom.joinChats.length === 0) return text(ctx.t('joinGroup.unavailable'))
    await withUnionid(ctx)
    const qr = await joinQr(ctx.db, wecom.api, {
      member: ctx.member,
      chatIds: wecom.joinChats,
      now: ctx.clock.now(),
      logger: ctx.logger,
    })
    return news({
      title: ctx.t('joinGroup.title'),
      description: ctx.t('joinGroup.description'),
      picUrl: qr.qrCode,
      url: qr.qrCode,
    })
  })
}
