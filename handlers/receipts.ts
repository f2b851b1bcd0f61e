/**
 * Receipts WeChat pushes about what we sent: template delivery results, and subscribe-message
 * authorisations that open or close that channel for a member.
 */
import type { BotContext } from '../src/bot/context.js'
import type { Router } from '../src/bot/router.js'
import { recordAuthorisation, revokeAuthorisation } from '../src/community/checkin-reminders.js'
import { recordDelivery } from '../src/community/outbox.js'
import { recordSubscribeAccept, recordUnreachable } from '../src/community/reachability.js'
import { reminderSettings } from './reminders.js'

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
      await reminderAuthorisation(ctx, item.templateId, item.status)
      if (item.status === 'accept') {
        await recordSubscribeAccept(ctx.db, {
          appid: ctx.account.appid,
          openid: m.fromUserName,
          templateId: item.templateId,
          now: ctx.clock.now(),
        })
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

/** An accepted check-in reminder template turns the reminder on (one send more); a reject forgets it. */
async function reminderAuthorisation(ctx: BotContext, templateId: string, status?: string) {
  const settings = reminderSettings(ctx)
  if (templateId !== settings.subscribe?.templateId) return
  const now = ctx.clock.now()
  if (status === 'accept')
    await recordAuthorisation(ctx.db, {
      appid: ctx.account.appid,
      memberId: ctx.member.id,
      source: { app: 'oa' },
      templateId,
      now,
      timeZone: ctx.community.timeZone,
      settings,
    })
  else if (status === 'reject')
    await revokeAuthorisation(ctx.db, { memberId: ctx.member.id, app: 'oa', templateId, now })
}
