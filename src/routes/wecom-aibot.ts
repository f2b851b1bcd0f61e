/**
 * `GET|POST /wecom/aibot`: the WeCom AI bot channel. Group messages that @-mention the bot (and
 * single chats) are verified, decrypted and de-duplicated on `msgid` like OA pushes; the text,
 * mention stripped, runs through the same bot router as the OA chat for the member linked to the
 * sender's WeCom userid (`绑定 <code>` links it; the code comes from 绑定 in the OA chat). The
 * answer is an encrypted stream reply with `finish: true`; a retry of the same msgid gets the same
 * answer.
 */
import { Hono } from 'hono'
import type { Kysely } from 'kysely'
import type { CommunitySettings, WechatAccess } from '../bot/context.js'
import { type Locale, translator } from '../bot/i18n.js'
import type { Router } from '../bot/router.js'
import type { Clock } from '../clock.js'
import { bindIdentity, memberByIdentity } from '../community/identities.js'
import { databaseInboundStore, waitForOutcome } from '../community/inbound-events.js'
import { seenInGroup } from '../community/moderation.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import { bodySize } from '../middleware/body-size.js'
import type { Reply } from '../wechat/reply.js'
import { AibotCallbackError, type AibotCodec, aibotText } from '../wecom/aibot.js'

export const AIBOT_CHANNEL = 'wecom_aibot'

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
}

/** A reply as the text of a stream message. */
function replyText(reply: Reply | null): string | null {
  if (!reply) return null
  if (reply.type === 'text') return reply.content
  if (reply.type === 'news')
    return reply.articles
      .map((a) => [a.title, a.description, a.url].filter(Boolean).join('\n'))
      .join('\n\n')
  return null
}

export function aibotRoutes(o: AibotRouteOptions): Hono {
  const app = new Hono()
  const t = translator(o.locale)
  const inbound = databaseInboundStore(o.db)
  app.use('*', bodySize({ maxBytes: 64 * 1024 }))
  const refuse = (error: unknown) => {
    if (error instanceof AibotCallbackError) {
      o.logger.warn('AI bot callback refused', { reason: error.message })
      return Response.json(
        { code: error.status === 401 ? 'UNAUTHORIZED' : 'BAD_REQUEST', message: error.message },
        { status: error.status },
      )
    }
    throw error
  }

  app.get('/', async (c) => {
    try {
      return c.text(await o.codec.verifyUrl(c.req.query()))
    } catch (error) {
      return refuse(error)
    }
  })

  app.post('/', async (c) => {
    const query = c.req.query()
    let m: Awaited<ReturnType<AibotCodec['open']>>
    try {
      m = await o.codec.open(query, await c.req.text())
    } catch (error) {
      return refuse(error)
    }
    const now = o.clock.now()
    const stream = (content: string) =>
      JSON.stringify({
        msgtype: 'stream',
        stream: { id: crypto.randomUUID(), finish: true, content },
      })
    const answer = async (plain: string | null) =>
      plain === null
        ? c.body(null, 200)
        : c.body(await o.codec.seal(plain, query.nonce!, Math.floor(now.getTime() / 1000)), 200, {
            'content-type': 'application/json',
          })

    if (m.msgtype === 'event')
      return answer(m.event?.eventtype === 'enter_chat' ? stream(t('group.welcome')) : null)
    if (m.msgtype !== 'text' && m.msgtype !== 'mixed') return answer(null) // stream refresh, files…

    const key = { appid: `aibot:${m.aibotid}`, dedupeKey: m.msgid }
    const claimed = await o.db
      .insertInto('inbound_events')
      .values({
        ...{ appid: key.appid, dedupe_key: key.dedupeKey },
        openid: m.from.userid,
        msg_type: m.msgtype,
        event: null,
        status: 'processing',
        received_at: now,
      })
      .onConflict((oc) => oc.columns(['appid', 'dedupe_key']).doNothing())
      .returning('dedupe_key')
      .executeTakeFirst()
    if (!claimed) {
      const outcome = await waitForOutcome(inbound, key, Date.now() + o.replyDeadlineMs)
      return answer(outcome?.reply ?? null)
    }

    let plain: string
    try {
      plain = stream(await handle(m, now))
    } catch (error) {
      o.logger.error('AI bot handler failed', { error })
      plain = stream(t('error.generic'))
    }
    await inbound.complete(key, plain, now)
    return answer(plain)
  })

  async function handle(m: Awaited<ReturnType<AibotCodec['open']>>, now: Date): Promise<string> {
    const text = aibotText(m)
    const bind = /^(?:绑定|bind)\s*(\d{6})$/i.exec(text)
    if (bind) {
      const linked = await bindIdentity(o.db, {
        channel: AIBOT_CHANNEL,
        externalId: m.from.userid,
        code: bind[1]!,
        now,
      })
      return t(linked ? 'group.bound' : 'group.badCode')
    }
    const member = await memberByIdentity(o.db, AIBOT_CHANNEL, m.from.userid)
    if (!member) return t('group.bindFirst')
    if (m.chatid)
      await seenInGroup(o.db, {
        channel: AIBOT_CHANNEL,
        chatId: m.chatid,
        memberId: member.id,
        now,
      })
    const message = {
      type: 'text' as const,
      content: text,
      toUserName: `aibot:${m.aibotid}`,
      fromUserName: member.openid,
      createTime: Math.floor(now.getTime() / 1000),
      msgId: m.msgid,
      raw: {},
    }
    const reply = await o.router.route({
      account: { appid: member.appid, locale: o.locale },
      message,
      member: {
        ...member,
        isNew: false,
        previous_active_at: member.last_active_at,
        dailyLogin: null,
      },
      text,
      args: '',
      match: null,
      db: o.db,
      community: o.community,
      wechat: o.wechat,
      channel: { kind: 'wecom_aibot', externalId: m.from.userid, chatId: m.chatid },
      clock: o.clock,
      logger: o.logger.child({ channel: AIBOT_CHANNEL, chatid: m.chatid }),
      t,
    })
    return replyText(reply) ?? t('group.noAnswer')
  }
  return app
}
