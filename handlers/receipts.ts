/**
 * Receipts WeChat pushes about what we sent: template delivery results, and subscribe-message
 * authorisations that open or close that channel for a member.
 */
import type { Router } from '../src/bot/router.js'
import { recordDelivery } from '../src/community/outbox.js'
import { clearSubscribeRefusal, recordUnreachable } from '../src/community/reachability.js'

export function register(router: Router): void {
  router.on('TEMPLATESENDJOBFINISH', async (ctx) => {
    const m = ctx.message
    if (m.type !== 'event' || m.event !== 'TEMPLATESENDJOBFINISH') return null
    const found = await recordDelivery(ctx.db, {
      appid: ctx.account.appid,
      msgid: m.msgId,
      status: m.status,
      openid: m.fromUserName,
      now: ctx.clock.now(),
    })
    if (!found)
      // Kept in push_receipts: the send's result may not be stored yet.
      ctx.logger.info('delivery receipt before its send was stored', {
        msgid: m.msgId,
        status: m.status,
      })
    return null
  })

  router.on(['subscribe_msg_popup_event', 'subscribe_msg_change_event'], async (ctx) => {
    const m = ctx.message
    if (m.type !== 'event' || !('items' in m)) return null
    for (const item of m.items) {
      if (item.status === 'accept') {
        await clearSubscribeRefusal(ctx.db, ctx.account.appid, m.fromUserName, item.templateId)
      } else if (item.status === 'reject') {
        await recordUnreachable(ctx.db, {
          appid: ctx.account.appid,
          openid: m.fromUserName,
          errcode: 43101,
          scope: item.templateId,
          now: ctx.clock.now(),
        })
      }
    }
    return null
  })
}
