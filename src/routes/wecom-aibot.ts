/**
 * `GET|POST /wecom/aibot`: the WeCom AI bot channel. Group messages that @-mention the bot (and
 * single chats) are verified, decrypted and de-duplicated on `msgid` like OA pushes; the text,
 * mention stripped, runs through the same bot router as the OA chat for the member linked to the
 * sender's WeCom userid (`绑定 <code>` links it; the code comes from 绑定 in the OA chat). The
 * answer is an encrypted stream reply with `finish: true`; a retry of the same msgid gets the same
 * answer. A user opening the single chat (`enter_chat`) is welcomed with a text reply. An answer not ready within the reply deadline goes to the message's `response_url`.
 * Every callback is claimed in the replay cache (door `wecom_aibot`): the same timestamp and nonce
 * with another body is refused (401). A message's claim is leased like the other WeCom door's
 * (claim-lease.ts): renewed while it is handled, so WeCom's retry of a message whose process died
 * takes it back and answers it (as of its first receipt) instead of answering nothing.
 */

import { Hono } from 'hono'
import type { Kysely } from 'kysely'
import type { WechatAccess } from '../bot/context.js'
import { type Locale, translator } from '../bot/i18n.js'
import type { Router } from '../bot/router.js'
import type { Clock } from '../clock.js'
import type { CheckinRunner } from '../community/checkins.js'
import { holdClaim, INBOUND_CLAIM_LEASE_MS, PAST_DEADLINE } from '../community/claim-lease.js'
import {
  claimInbound,
  claimReplay,
  databaseInboundStore,
  type InboundStore,
  type ReplayClaim,
  retakeEvent,
} from '../community/inbound-events.js'
import type { Database } from '../db/schema.js'
import type { CommunitySettings } from '../inbound/community-context.js'
import { groupMessageReply } from '../inbound/group-message.js'
import type { Logger } from '../logger.js'
import { bodySize } from '../middleware/body-size.js'
import {
  AIBOT_TEXT_MAX_BYTES,
  type AibotCodec,
  type AibotMessage,
  aibotText,
} from '../wecom/aibot.js'
import { refusal, WecomCallbackError } from '../wecom/callback-error.js'

export const AIBOT_CHANNEL = 'wecom_aibot'
/** The AI bot's door in the replay cache. */
const AIBOT_DOOR = 'wecom_aibot'

export interface AibotRouteOptions {
  codec: AibotCodec
  db: Kysely<Database>
  router: Router
  clock: Clock
  logger: Logger
  locale: Locale
  community: CommunitySettings
  wechat: WechatAccess
  replyDeadlineMs: number
  /** For response_url posts (the global fetch by default). */
  fetch?: typeof fetch
  /** Keeps late work alive after the response (Workers' waitUntil). */
  waitUntil?: (work: Promise<unknown>) => void
  /** The app's claim store (scoped per request on Workers); the database store by default. */
  inbound?: InboundStore
  /** The app's batched check-in statements; absent: one per check-in. */
  checkins?: CheckinRunner
  /** The lease on a claim ({@link INBOUND_CLAIM_LEASE_MS} by default; tests inject a shorter one). */
  claimLeaseMs?: number
}

export function aibotRoutes(o: AibotRouteOptions): Hono {
  const app = new Hono()
  const t = translator(o.locale)
  const inbound = o.inbound ?? databaseInboundStore(o.db)
  const leaseMs = o.claimLeaseMs ?? INBOUND_CLAIM_LEASE_MS
  app.use('*', bodySize({ maxBytes: 64 * 1024 }))
  const refuse = (error: unknown) =>
    refusal(error, (reason) => o.logger.warn('AI bot callback refused', { reason }))

  app.get('/', async (c) => {
    try {
      return c.text(await o.codec.verifyUrl(c.req.query()))
    } catch (error) {
      return refuse(error)
    }
  })

  app.post('/', async (c) => {
    // One deadline for the whole answer (a retry's wait for the claim included): what is not
    // ready by then goes to response_url, never into a reply WeChat has stopped waiting for.
    const deadline = Date.now() + o.replyDeadlineMs
    const query = c.req.query()
    let opened: Awaited<ReturnType<AibotCodec['open']>>
    try {
      opened = await o.codec.open(query, await c.req.text())
    } catch (error) {
      return refuse(error)
    }
    const m = opened.message
    const replay: ReplayClaim = { door: AIBOT_DOOR, ...opened.stamp }
    const replayed = () =>
      refuse(new WecomCallbackError(401, 'replayed callback: this timestamp and nonce came before'))
    const now = o.clock.now()
    const stream = (content: string) =>
      JSON.stringify({
        msgtype: 'stream',
        stream: { id: crypto.randomUUID(), finish: true, content },
      })
    const welcome = (content: string) => JSON.stringify({ msgtype: 'text', text: { content } })
    const answer = async (plain: string | null) =>
      plain === null
        ? c.body(null, 200)
        : c.body(await o.codec.seal(plain, query.nonce!, Math.floor(now.getTime() / 1000)), 200, {
            'content-type': 'application/json',
          })

    const key = { appid: `aibot:${m.aibotid}`, dedupeKey: m.msgid }
    if (m.msgtype !== 'text' && m.msgtype !== 'mixed') {
      // Nothing to claim (events, stream refresh, files…): the replay claim alone.
      if ((await claimReplay(o.db, key.appid, replay, now)) === 'conflict') return replayed()
      // The welcome (only to enter_chat) is a text or a template card, never a stream
      // (../shared/protocol/wecom-groups.md §2.4).
      if (m.msgtype === 'event')
        return answer(m.event?.eventtype === 'enter_chat' ? welcome(t('group.welcome')) : null)
      return answer(null)
    }

    const claimed = await claimInbound(o.db, {
      appid: key.appid,
      dedupeKey: key.dedupeKey,
      sender: m.from.userid,
      msgType: m.msgtype,
      now,
      replay,
    })
    if (claimed === 'replayed') return replayed()
    // A retry: the stored answer, or the message taken back from an attempt whose process died
    // (handled as of its first receipt); still held by a live attempt past the deadline: nothing.
    const taken =
      claimed === 'claimed'
        ? { receivedAt: now, claimedAt: now }
        : await retakeEvent(o.db, key, {
            clock: o.clock,
            leaseMs,
            waitMs: Math.max(0, deadline - Date.now()),
          })
    if (!taken) return answer(null)
    if ('reply' in taken) return answer(taken.reply)

    const work = handle(m, taken.receivedAt).catch((error: unknown) => {
      o.logger.error('AI bot handler failed', { error })
      return t('error.generic')
    })
    // The claim is renewed until the answer is ready or the deadline passes (then it is deferred:
    // a deferred message is never taken back). The deadline is on Date.now(), holdClaim's on the
    // hold's clock: the time left is what carries over.
    const hold = { claimedAt: taken.claimedAt, clock: o.clock, leaseMs, logger: o.logger }
    const left = deadline - Date.now()
    const first = await holdClaim(o.db, key, hold, () => work, o.clock.now().getTime() + left)
    if (first !== PAST_DEADLINE) {
      const plain = stream(first)
      await inbound.complete(key, plain, now, undefined, hold.claimedAt)
      return answer(plain)
    }
    // Too slow for the passive reply: answer empty now, post the result to response_url (once,
    // valid an hour) when it is ready.
    if (!(await inbound.defer(key, now, hold.claimedAt))) {
      // Taken over meanwhile (this attempt's renewals missed a whole lease): the retry holding the
      // claim answers the message; this attempt neither defers under it nor posts its own answer.
      o.logger.warn('inbound claim lost: another attempt took the message over', {
        code: 'INBOUND_CLAIM_LOST',
        msgid: m.msgid,
      })
      return answer(null)
    }
    const followUp = work.then(async (content) => {
      await inbound.recordFollowUp(key, null, o.clock.now())
      if (!m.response_url) return
      const res = await (o.fetch ?? fetch)(m.response_url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ msgtype: 'markdown', markdown: { content } }),
        signal: AbortSignal.timeout(10_000),
      })
      if (!res.ok) o.logger.warn('response_url refused the late answer', { status: res.status })
    })
    o.waitUntil?.(
      followUp.catch((error: unknown) => o.logger.error('late answer failed', { error })),
    )
    if (!o.waitUntil)
      followUp.catch((error: unknown) => o.logger.error('late answer failed', { error }))
    return answer(null)
  })

  function handle(m: AibotMessage, now: Date): Promise<string> {
    return groupMessageReply(o, {
      channel: AIBOT_CHANNEL,
      chatId: m.chatid,
      senderId: m.from.userid,
      text: aibotText(m),
      msgId: m.msgid,
      via: `aibot:${m.aibotid}`,
      now,
      maxBytes: AIBOT_TEXT_MAX_BYTES,
    })
  }
  return app
}
