/**
 * `POST /bridge/:id` — the opt-in bridge for personal-WeChat groups run through an RPA tool
 * (Wechaty and the like). Off unless BRIDGES configures the id and its secret. Every request is
 * signed: `X-Bridge-Timestamp` (Unix seconds, within WECHAT_MAX_SKEW_SECONDS — 300 when that is
 * 0), `X-Bridge-Nonce` (8–64 of [A-Za-z0-9_-]) and `X-Bridge-Signature`, the lowercase hex
 * HMAC-SHA256 with the secret over `timestamp + "\n" + nonce + "\n" + body` (the raw body bytes),
 * see {@link signBridgeRequest}. The (timestamp, nonce) is claimed in the replay cache: the same
 * request again is a retry, another body under it is refused. An unknown id and a wrong signature
 * get the same 401. Our own JSON, one event per request:
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
 * Events are de-duplicated on `id`: the same event again gets the first answer (or is handled
 * again if its handling failed); another event under a used id is refused with 409
 * `EVENT_ID_REUSED` and changes nothing (see bridge-event.ts: key order, spacing and display names
 * do not make another event). Contacts are linked to members with 绑定 codes (or, from a bridge
 * trusted for it, by unionid), not by their (unstable) ids alone; a join finds its member as a
 * WeCom customer's does (memberForContact): a follower or a linked contact is not new.
 * Automating a personal WeChat account breaks WeChat's rules: see README.
 */
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Kysely } from 'kysely'
import { translator } from '../bot/i18n.js'
import { holdClaim, INBOUND_CLAIM_LEASE_MS } from '../community/claim-lease.js'
import { leaveGroup, memberForContact } from '../community/group-joins.js'
import { memberByIdentity } from '../community/identities.js'
import {
  claimEventById,
  databaseInboundStore,
  type InboundStore,
  retakeEvent,
  STILL_PROCESSING,
} from '../community/inbound-events.js'
import { attributeInvite, type InviteSettings } from '../community/invites.js'
import { seenInGroup } from '../community/moderation.js'
import { bodyDigest, claimNonce } from '../community/replay-claims.js'
import type { BridgeConfig } from '../config.js'
import type { Database } from '../db/schema.js'
import { type GroupDeps, groupMessageReply } from '../inbound/group-message.js'
import { bodySize } from '../middleware/body-size.js'
import { timingSafeEqual } from '../wechat/crypto.js'
import { TEXT_MAX_BYTES } from '../wechat/text-budget.js'
import { type BridgeEvent, bridgeEvent, bridgeEventDigest } from './bridge-event.js'
import { parseBody } from './validate.js'

const encoder = new TextEncoder()

/**
 * The most UTF-8 bytes of a `reply`: the tool posts it into a personal-WeChat group as a text,
 * which WeChat holds to the OA's 2048-byte text limit (the bridge contract sets none of its own).
 */
export const BRIDGE_REPLY_MAX_BYTES = TEXT_MAX_BYTES

/** What a bridge request is signed with. */
export interface BridgeSignatureInput {
  /** Unix seconds, as sent in `X-Bridge-Timestamp`. */
  timestamp: string
  /** As sent in `X-Bridge-Nonce`: 8–64 of [A-Za-z0-9_-], new for every request. */
  nonce: string
  /** The raw request body. */
  body: string
}

/**
 * The `X-Bridge-Signature` of a request: the lowercase hex
 * HMAC-SHA256(secret, `timestamp + "\n" + nonce + "\n" + body`).
 * @example
 * const timestamp = String(Math.floor(Date.now() / 1000)), nonce = crypto.randomUUID()
 * const signature = await signBridgeRequest(secret, { timestamp, nonce, body })
 * fetch(`${base}/bridge/home`, { method: 'POST', body, headers: {
 *   'content-type': 'application/json', 'x-bridge-timestamp': timestamp,
 *   'x-bridge-nonce': nonce, 'x-bridge-signature': signature } })
 */
export async function signBridgeRequest(secret: string, r: BridgeSignatureInput): Promise<string> {
  const key = await crypto.subtle.importKey(
    'raw',
    encoder.encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign'],
  )
  const mac = await crypto.subtle.sign(
    'HMAC',
    key,
    encoder.encode(`${r.timestamp}\n${r.nonce}\n${r.body}`),
  )
  return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, '0')).join('')
}

/** Unknown ids are checked against this, so they cost what a known one does. */
const NO_SECRET = 'no-such-bridge-0000000000000000'

type BridgeRouteOptions = GroupDeps & {
  bridges: Record<string, BridgeConfig>
  codeAppid: string
  invites: InviteSettings
  /** The freshness window in seconds (WECHAT_MAX_SKEW_SECONDS); 0 → 300: always checked. */
  maxSkewSeconds: number
  /** The app's claim store (scoped per request on Workers); the database store by default. */
  inbound?: InboundStore
  /** The lease on a claim ({@link INBOUND_CLAIM_LEASE_MS} by default; tests inject a shorter one). */
  claimLeaseMs?: number
}

export function bridgeRoutes(o: BridgeRouteOptions): Hono {
  const app = new Hono()
  const inbound = o.inbound ?? databaseInboundStore(o.db as Kysely<Database>)
  const window = o.maxSkewSeconds > 0 ? o.maxSkewSeconds : 300
  const leaseMs = o.claimLeaseMs ?? INBOUND_CLAIM_LEASE_MS
  app.use('*', bodySize({ maxBytes: 64 * 1024 }))

  app.post('/:id', async (c) => {
    const bridge = c.req.param('id')
    const config = Object.hasOwn(o.bridges, bridge) ? o.bridges[bridge] : undefined
    const timestamp = c.req.header('x-bridge-timestamp') ?? ''
    const nonce = c.req.header('x-bridge-nonce') ?? ''
    const signature = c.req.header('x-bridge-signature') ?? ''
    if (
      !/^\d{1,12}$/.test(timestamp) ||
      !/^[\w-]{8,64}$/.test(nonce) ||
      !/^[0-9a-f]{64}$/.test(signature)
    )
      throw new HTTPException(401, {
        message: 'X-Bridge-Timestamp, X-Bridge-Nonce and X-Bridge-Signature are required',
      })
    const now = o.clock.now()
    if (Math.abs(now.getTime() / 1000 - Number(timestamp)) > window)
      throw new HTTPException(401, { message: `X-Bridge-Timestamp: more than ${window} s off` })
    const raw = await c.req.text()
    const expected = await signBridgeRequest(config?.secret ?? NO_SECRET, {
      timestamp,
      nonce,
      body: raw,
    })
    // The same answer for an unknown bridge and a wrong signature: ids are not revealed.
    if (!timingSafeEqual(signature, expected) || !config)
      throw new HTTPException(401, { message: 'unknown bridge or wrong X-Bridge-Signature' })
    const replay = await claimNonce(o.db, {
      door: 'bridge',
      key: bridge,
      timestamp: Number(timestamp),
      nonce,
      bodyDigest: await bodyDigest(raw),
      now,
    })
    if (replay === 'conflict')
      throw new HTTPException(401, { message: 'X-Bridge-Nonce: already used for another body' })
    const e = await parseBody(c, bridgeEvent)
    const channel = `bridge:${bridge}`
    const key = { appid: channel, dedupeKey: e.id }
    const claim = await claimEventById(o.db, {
      appid: channel,
      dedupeKey: e.id,
      sender: e.type === 'message' ? e.sender.id : e.type,
      msgType: e.type,
      digest: await bridgeEventDigest(e),
      now,
    })
    // An id names one event: another one under it (a client bug, or an attempt to rewrite what was
    // said or who said it) is refused whatever became of the first, and changes nothing.
    if (claim === 'reused')
      return c.json(
        {
          code: 'EVENT_ID_REUSED',
          message: 'this event id came before with another event: give each event its own id',
        },
        409,
      )
    const claimed = claim === 'claimed'
    // When the event was first received: now, or for the retry of an event whose handling failed
    // or whose process died, that attempt's receipt (the members it recorded are still new to the
    // group).
    const taken = claimed
      ? { receivedAt: now, claimedAt: now }
      : await retakeEvent(o.db, key, { clock: o.clock, leaseMs })
    if (!taken) return c.json(STILL_PROCESSING, 503, { 'Retry-After': '5' })
    if ('reply' in taken) return c.json(JSON.parse(taken.reply))
    const { receivedAt, claimedAt } = taken
    // The claim is renewed while the event is handled (no retry takes a live attempt's event), and
    // its completion is fenced on the last renewal: an attempt taken over stores nothing.
    const hold = { claimedAt, clock: o.clock, leaseMs, logger: o.logger }
    try {
      const answer = await holdClaim(o.db, key, hold, () =>
        handleEvent(o, config, e, { channel, now, receivedAt }),
      )
      await inbound.complete(key, JSON.stringify(answer), now, undefined, hold.claimedAt)
      return c.json(answer)
    } catch (error) {
      // Nothing answered: the claim is left `failed` with no reply, so the bridge's retry (it
      // gets a 500) takes it back and handles the event again instead of being told it was done.
      const reason = (error instanceof Error ? error.message : String(error)) || 'failed'
      await inbound.complete(key, null, now, reason, hold.claimedAt).catch(() => false)
      throw error
    }
  })
  return app
}

/** Handles one claimed event; what it returns is the answer (and the stored reply). */
async function handleEvent(
  o: BridgeRouteOptions,
  config: BridgeConfig,
  e: BridgeEvent,
  { channel, now, receivedAt }: { channel: string; now: Date; receivedAt: Date },
): Promise<Record<string, unknown>> {
  /** The member a contact became on this bridge (a join records one under the channel). */
  const contact = (id: string) =>
    o.db.selectFrom('members').selectAll().where('appid', '=', channel).where('openid', '=', id)
  let answer: Record<string, unknown>
  if (e.type === 'member_leave') {
    const ids: number[] = []
    for (const m of e.members) {
      const member =
        (await memberByIdentity(o.db, channel, m.id)) ?? (await contact(m.id).executeTakeFirst())
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
            maxBytes: BRIDGE_REPLY_MAX_BYTES,
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
      // The one path WeCom's contacts take too (group-joins.ts): a unionid — believed only from a
      // bridge configured with trustUnionid — links the contact to the OA follower, as does a
      // 绑定 made before; anyone else is recorded as the bridge's contact, first seen at the
      // event's first receipt (whichever attempt records them).
      const { member, isNew } = await memberForContact(o.db, {
        channel,
        appid: channel,
        externalId: m.id,
        unionid: config.trustUnionid ? m.unionid : undefined,
        linkOwnRow: false,
        now,
        receivedAt,
      })
      const r = await attributeInvite(o.db, {
        invitee: member,
        scene: e.state,
        // new now, or recorded by an earlier attempt at this event (which failed after it)
        isNew,
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
  return answer
}
