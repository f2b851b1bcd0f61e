/**
 * `GET|POST /wecom/callback`: WeCom customer-contact events (XML, receive id = corp id). A member
 * added to a customer group (`change_external_chat` / `update` / `add_member`) is read back with
 * groupchat/get and credited to the inviter whose join QR they used, as is a 1:1 add
 * (`change_external_contact` / `add_external_contact`) whose `State` is an invite scene; events are de-duplicated on
 * ChatId + UpdateDetail + CurMemVer (or sender + time); WeCom always gets `success`. Every group
 * change refreshes the group's moderators (its owner and admins). Every callback is claimed in the
 * replay cache (door `wecom_contact`): the same timestamp and nonce with another body is refused.
 */

import { Hono } from 'hono'
import type { Kysely } from 'kysely'
import { type Locale, translator } from '../bot/i18n.js'
import type { Clock } from '../clock.js'
import {
  CUSTOMER_CHANNEL,
  creditGroupJoins,
  leaveGroup,
  memberForContact,
} from '../community/group-joins.js'
import { claimInbound } from '../community/inbound-events.js'
import { attributeInvite, type InviteSettings } from '../community/invites.js'
import { syncGroupModerators } from '../community/moderation.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import { bodySize } from '../middleware/body-size.js'
import type { ApiClient } from '../wechat/api/client.js'
import { refusal, WecomCallbackError } from '../wecom/callback-error.js'
import { changedMembers, type contactCodec, groupChatGet } from '../wecom/contact.js'

export interface ContactRouteOptions {
  codec: ReturnType<typeof contactCodec>
  corpId: string
  api: ApiClient
  /** The OA account whose invite codes the join QRs carry. */
  codeAppid: string
  db: Kysely<Database>
  clock: Clock
  logger: Logger
  locale: Locale
  timeZone: string
  invites: InviteSettings
}

export function contactRoutes(o: ContactRouteOptions): Hono {
  const app = new Hono()
  app.use('*', bodySize({ maxBytes: 64 * 1024 }))
  const refuse = (error: unknown) =>
    refusal(error, (reason) => o.logger.warn('WeCom callback refused', { reason }))

  app.get('/', async (c) => {
    try {
      return c.text(await o.codec.verifyUrl(c.req.query()))
    } catch (error) {
      return refuse(error)
    }
  })

  app.post('/', async (c) => {
    let opened: Awaited<ReturnType<typeof o.codec.open>>
    try {
      opened = await o.codec.open(c.req.query(), await c.req.text())
    } catch (error) {
      return refuse(error)
    }
    const f = opened.fields
    const s = (name: string) => (typeof f[name] === 'string' ? (f[name] as string) : '')
    const now = o.clock.now()
    const dedupeKey = s('ChatId')
      ? `${s('ChatId')}:${s('ChangeType')}:${s('UpdateDetail')}:${s('CurMemVer') || s('CreateTime')}`
      : `${s('FromUserName')}:${s('CreateTime')}:${s('Event')}:${s('ChangeType')}:${s('ExternalUserID')}`
    const claimed = await claimInbound(o.db, {
      appid: `wecom:${o.corpId}`,
      dedupeKey,
      sender: s('FromUserName') || 'sys',
      msgType: s('MsgType') || 'event',
      event: s('Event') || undefined,
      now,
      replay: { door: 'wecom_contact', ...opened.stamp },
    })
    if (claimed === 'replayed')
      return refuse(
        new WecomCallbackError(401, 'replayed callback: this timestamp and nonce came before'),
      )
    if (claimed === 'duplicate') return c.text('success')
    let error: string | undefined
    try {
      if (s('Event') === 'change_external_chat') {
        // The group's owner and admins moderate it (refreshed on every change, gone on dismiss).
        if (s('ChangeType') === 'dismiss')
          await syncGroupModerators(o.db, s('ChatId'), { admins: [] })
        else {
          const g = await groupChatGet(o.api, s('ChatId'))
          await syncGroupModerators(o.db, s('ChatId'), {
            owner: g.owner,
            admins: (g.admin_list ?? []).map((a) => a.userid),
          })
        }
      }
      if (
        s('Event') === 'change_external_chat' &&
        s('ChangeType') === 'update' &&
        s('UpdateDetail') === 'add_member'
      ) {
        const results = await creditGroupJoins(o.db, o.api, {
          corpId: o.corpId,
          codeAppid: o.codeAppid,
          chatId: s('ChatId'),
          userids: changedMembers(f),
          since: Number(s('CreateTime')) - 60,
          now,
          timeZone: o.timeZone,
          settings: o.invites,
          t: translator(o.locale),
        })
        o.logger.info('group joins', { chatId: s('ChatId'), results })
      } else if (
        s('Event') === 'change_external_chat' &&
        s('ChangeType') === 'update' &&
        s('UpdateDetail') === 'del_member'
      ) {
        const ids = await o.db
          .selectFrom('member_identities')
          .select('member_id')
          .where('channel', '=', CUSTOMER_CHANNEL)
          .where('external_id', 'in', changedMembers(f) ?? [''])
          .execute()
        await leaveGroup(o.db, {
          channel: CUSTOMER_CHANNEL,
          chatId: s('ChatId'),
          memberIds: ids.map((i) => i.member_id),
        })
      } else if (
        s('Event') === 'change_external_contact' &&
        s('ChangeType') === 'add_external_contact' &&
        s('State')
      ) {
        // A 1:1 add through a 「联系我」 code whose state is an invite scene.
        const { member, isNew } = await memberForContact(o.db, {
          corpId: o.corpId,
          userid: s('ExternalUserID'),
          now,
        })
        const r = await attributeInvite(o.db, {
          invitee: member,
          scene: s('State'),
          isNew,
          source: 'group_join',
          codeAppid: o.codeAppid,
          now,
          timeZone: o.timeZone,
          settings: o.invites,
          t: translator(o.locale),
        })
        o.logger.info('contact added', { state: s('State'), result: r.status })
      }
    } catch (e) {
      error = e instanceof Error ? e.message : String(e)
      o.logger.error('WeCom event failed', { event: s('Event'), error: e })
    }
    await o.db
      .updateTable('inbound_events')
      .set({
        status: error ? 'failed' : 'replied',
        reply: 'success',
        error: error ?? null,
        completed_at: now,
      })
      .where('appid', '=', `wecom:${o.corpId}`)
      .where('dedupe_key', '=', dedupeKey)
      .execute()
    return c.text('success')
  })
  return app
}
