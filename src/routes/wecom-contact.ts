/**
 * `GET|POST /wecom/callback`: WeCom customer-contact events (XML, receive id = corp id). A member
 * added to a customer group (`change_external_chat` / `update` / `add_member`) is read back with
 * groupchat/get and credited to the inviter whose join QR they used, as is a 1:1 add
 * (`change_external_contact` / `add_external_contact`) whose `State` is an invite scene; events are de-duplicated on
 * ChatId + UpdateDetail + CurMemVer (or sender + time). Every group change refreshes the group's
 * moderators (its owner and admins). Every callback is claimed in the replay cache (door
 * `wecom_contact`): the same timestamp and nonce with another body is refused, the same request
 * again is WeCom's retry. A handled event gets `success`; one whose handling failed gets a 500 and
 * stays `failed` (with its error) until WeCom's retry takes it back and handles it again; a retry
 * while another attempt still holds the event gets a 503 (WeCom sends it again). One whose call
 * WeCom refuses for good ({@link isWecomRefusal}: its retry would be refused alike) is logged with
 * the errcode, kept `failed` with it, and answered `success`.
 */

import { Hono } from 'hono'
import type { Kysely } from 'kysely'
import { type Locale, translator } from '../bot/i18n.js'
import type { Clock } from '../clock.js'
import { holdClaim, INBOUND_CLAIM_LEASE_MS } from '../community/claim-lease.js'
import {
  CUSTOMER_CHANNEL,
  creditGroupJoins,
  customerContact,
  leaveGroup,
  memberForContact,
} from '../community/group-joins.js'
import {
  claimInbound,
  databaseInboundStore,
  type InboundStore,
  retakeEvent,
  STILL_PROCESSING,
} from '../community/inbound-events.js'
import { attributeInvite, type InviteSettings } from '../community/invites.js'
import { syncGroupModerators } from '../community/moderation.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import { bodySize } from '../middleware/body-size.js'
import type { ApiClient } from '../wechat/api/client.js'
import { refusal, WecomCallbackError } from '../wecom/callback-error.js'
import {
  changedMembers,
  type contactCodec,
  groupChatGet,
  isWecomRefusal,
} from '../wecom/contact.js'

export interface ContactRouteOptions {
  codec: ReturnType<typeof contactCodec>
  corpId: string
  api: ApiClient
  /** The OA account whose invite codes the join QRs carry. */
  codeAppid: string
  /** An OA account's API client (an inviter's unionid, for the self check of a group join). */
  oaApi?: (appid: string) => ApiClient | undefined
  db: Kysely<Database>
  clock: Clock
  logger: Logger
  locale: Locale
  timeZone: string
  invites: InviteSettings
  /** The app's claim store (scoped per request on Workers); the database store by default. */
  inbound?: InboundStore
  /** The lease on a claim ({@link INBOUND_CLAIM_LEASE_MS} by default; tests inject a shorter one). */
  claimLeaseMs?: number
}

export function contactRoutes(o: ContactRouteOptions): Hono {
  const app = new Hono()
  const inbound = o.inbound ?? databaseInboundStore(o.db)
  const leaseMs = o.claimLeaseMs ?? INBOUND_CLAIM_LEASE_MS
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
    const key = { appid: `wecom:${o.corpId}`, dedupeKey }
    const claimed = await claimInbound(o.db, {
      appid: key.appid,
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
    // When the event was first received: now, or for WeCom's retry of an event whose handling
    // failed or whose process died, that attempt's receipt (the members it recorded are still new
    // to the group).
    const taken =
      claimed === 'claimed'
        ? { receivedAt: now, claimedAt: now }
        : await retakeEvent(o.db, key, { clock: o.clock, leaseMs })
    if (!taken) return c.json(STILL_PROCESSING, 503, { 'Retry-After': '5' })
    if ('reply' in taken) return c.text('success')
    const { receivedAt, claimedAt } = taken
    // The claim is renewed while the event is handled: no retry takes a live attempt's event.
    const hold = { claimedAt, clock: o.clock, leaseMs, logger: o.logger }
    try {
      await holdClaim(o.db, key, hold, async () => {
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
            oaApi: o.oaApi,
            chatId: s('ChatId'),
            userids: changedMembers(f),
            since: Number(s('CreateTime')) - 60,
            now,
            receivedAt,
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
          // Who left (an empty or absent MemChangeList names no one: nothing changes).
          const left = changedMembers(f) ?? []
          const ids =
            left.length === 0
              ? []
              : await o.db
                  .selectFrom('member_identities')
                  .select('member_id')
                  .where('channel', '=', CUSTOMER_CHANNEL)
                  .where('external_id', 'in', left)
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
            ...customerContact(o.corpId, s('ExternalUserID')),
            now,
            receivedAt,
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
      })
    } catch (e) {
      if (isWecomRefusal(e)) {
        // WeCom refused a call of this event for good (a group that is not the corp's customer
        // group, a permission the app lacks …): its retry would be refused the same way. The
        // event is kept `failed` with the errcode, and answered `success` so WeCom stops.
        const { errcode, errmsg, method } = e
        o.logger.warn('WeCom event refused by WeCom', {
          event: s('Event'),
          chatId: s('ChatId') || undefined,
          method,
          errcode,
          errmsg,
        })
        await inbound.complete(key, 'success', now, e.message, hold.claimedAt).catch(() => false)
        return c.text('success')
      }
      // Not answered `success`: the claim is left `failed` with its error and no reply, so WeCom's
      // retry (it gets a 500) takes it back and handles the event again instead of a duplicate.
      const reason = (e instanceof Error ? e.message : String(e)) || 'failed'
      o.logger.error('WeCom event failed', { event: s('Event'), error: e })
      await inbound.complete(key, null, now, reason, hold.claimedAt).catch(() => false)
      return c.json(
        { code: 'INTERNAL_ERROR', message: 'the event could not be handled: send it again' },
        500,
      )
    }
    await inbound.complete(key, 'success', now, undefined, hold.claimedAt)
    return c.text('success')
  })
  return app
}
