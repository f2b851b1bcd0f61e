/**
 * `POST /bridge/:id` — the opt-in bridge for personal-WeChat groups run through an RPA tool
 * (Wechaty and the like). Off unless BRIDGES configures the id and its shared secret, sent as
 * `X-Bridge-Secret` (compared in constant time). Our own JSON, one event per request:
 *
 *   {"type":"message","id":"<unique>","chat":{"id":"<room>"},"sender":{"id":"<contact>"},
 *    "text":"签到","mentioned":true}
 *   → {"reply":"签到成功 …"} (or {"reply":null}); only messages that mention the bot are handled.
 *   {"type":"member_join","id":"<unique>","chat":{"id":"<room>"},
 *    "members":[{"id":"<contact>","unionid":"…"?}],"state":"inv_XXXXXXXX"?}
 *   → {"credited":[…]}: a join carrying an invite code is attributed like a follow.
 *   {"type":"member_leave","id":"<unique>","chat":{"id":"<room>"},"members":[{"id":"<contact>"}]}
 *   → {"left": n}: they no longer get the group's announcements or appear in its ranking.
 *
 * Events are de-duplicated on `id`. Contacts are linked to members with 绑定 codes, not by their
 * (unstable) ids alone. Automating a personal WeChat account breaks WeChat's rules: see README.
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import * as v from 'valibot'
import { translator } from '../bot/i18n.js'
import { leaveGroup } from '../community/group-joins.js'
import { memberByIdentity } from '../community/identities.js'
import { claimEvent, databaseInboundStore, waitForOutcome } from '../community/inbound-events.js'
import { attributeInvite, type InviteSettings } from '../community/invites.js'
import { seenInGroup } from '../community/moderation.js'
import type { Database } from '../db/schema.js'
import { type GroupDeps, groupMessageReply } from '../inbound/group-message.js'
import { bodySize } from '../middleware/body-size.js'
import { sha1Hex, timingSafeEqual } from '../wechat/crypto.js'
import { parseBody } from './validate.js'

const id = v.pipe(v.string(), v.minLength(1), v.maxLength(128))
const eventBody = v.variant('type', [
  v.strictObject({
    type: v.literal('message'),
    id,
    chat: v.optional(v.strictObject({ id, name: v.optional(v.string()) })),
    sender: v.strictObject({ id, name: v.optional(v.string()) }),
    text: v.pipe(v.string(), v.maxLength(4000)),
    mentioned: v.optional(v.boolean(), false),
  }),
  v.strictObject({
    type: v.literal('member_leave'),
    id,
    chat: v.strictObject({ id, name: v.optional(v.string()) }),
    members: v.pipe(
      v.array(v.strictObject({ id, name: v.optional(v.string()) })),
      v.minLength(1),
      v.maxLength(500),
    ),
  }),
  v.strictObject({
    type: v.literal('member_join'),
    id,
    chat: v.strictObject({ id, name: v.optional(v.string()) }),
    members: v.pipe(
      v.array(v.strictObject({ id, name: v.optional(v.string()), unionid: v.optional(id) })),
      v.minLength(1),
      v.maxLength(500),
    ),
    state: v.optional(v.pipe(v.string(), v.maxLength(64))),
  }),
])

export function bridgeRoutes(
  o: GroupDeps & { bridges: Record<string, string>; codeAppid: string; invites: InviteSettings },
): Hono {
  const app = new Hono()
  const inbound = databaseInboundStore(o.db as Kysely<Database>)
  app.use('*', bodySize({ maxBytes: 64 * 1024 }))

  app.post('/:id', async (c) => {
    const bridge = c.req.param('id')
    const secret = o.bridges[bridge]
    if (!secret) throw new HTTPException(404, { message: 'no such bridge (BRIDGES)' })
    const given = c.req.header('x-bridge-secret') ?? ''
    if (!timingSafeEqual(await sha1Hex(given), await sha1Hex(secret)))
      throw new HTTPException(401, { message: 'missing or wrong X-Bridge-Secret' })
    const e = await parseBody(c, eventBody)
    const channel = `bridge:${bridge}`
    const now = o.clock.now()
    const key = { appid: channel, dedupeKey: e.id }
    const claimed = await claimEvent(o.db, {
      appid: channel,
      dedupeKey: e.id,
      sender: e.type === 'message' ? e.sender.id : e.type,
      msgType: e.type,
      now,
    })
    if (!claimed) {
      const outcome = await waitForOutcome(inbound, key, Date.now() + 4000)
      return c.json(outcome?.reply ? JSON.parse(outcome.reply) : { reply: null })
    }

    let answer: Record<string, unknown>
    if (e.type === 'member_leave') {
      const ids: number[] = []
      for (const m of e.members) {
        const member =
          (await memberByIdentity(o.db, channel, m.id)) ??
          (await o.db
            .selectFrom('members')
            .selectAll()
            .where('appid', '=', channel)
            .where('openid', '=', m.id)
            .executeTakeFirst())
        if (member) ids.push(member.id)
      }
      answer = { left: await leaveGroup(o.db, { channel, chatId: e.chat.id, memberIds: ids }) }
    } else if (e.type === 'message') {
      answer = {
        reply: e.mentioned
          ? await groupMessageReply(o, {
              channel,
              chatId: e.chat?.id,
              senderId: e.sender.id,
              text: e.text.replace(/^\s*@\S+\s*/, '').trim(),
              msgId: e.id,
              via: channel,
              now,
            })
          : null,
      }
    } else {
      const credited: { id: string; result: string }[] = []
      for (const m of e.members) {
        if (!e.state) {
          credited.push({ id: m.id, result: 'not_invite' })
          continue
        }
        const inserted = await o.db
          .insertInto('members')
          .values({ appid: channel, openid: m.id, unionid: m.unionid ?? null, first_seen_at: now })
          .onConflict((oc) => oc.columns(['appid', 'openid']).doNothing())
          .returningAll()
          .executeTakeFirst()
        const member =
          inserted ??
          (await o.db
            .selectFrom('members')
            .selectAll()
            .where('appid', '=', channel)
            .where('openid', '=', m.id)
            .executeTakeFirstOrThrow())
        const r = await attributeInvite(o.db, {
          invitee: member,
          scene: e.state,
          isNew: inserted !== undefined,
          source: 'group_join',
          codeAppid: o.codeAppid,
          now,
          timeZone: o.community.timeZone,
          settings: o.invites,
          t: translator(o.locale),
        })
        await seenInGroup(o.db, { channel, chatId: e.chat.id, memberId: member.id, now })
        credited.push({ id: m.id, result: r.status })
      }
      answer = { credited }
    }
    await inbound.complete(key, JSON.stringify(answer), now)
    return c.json(answer)
  })
  return app
}
