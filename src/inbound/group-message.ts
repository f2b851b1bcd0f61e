/**
 * Group messages in: every group adapter (the WeCom AI bot, the bridge) turns a message
 * into a {@link GroupMessage} and gets the reply text from here. `绑定 <code>` links the sender's
 * identity on the channel to a member; a linked member's text runs through the same router as the
 * OA chat, with the channel identity (for moderator checks) and the group remembered.
 */
import type { Kysely } from 'kysely'
import type { WechatAccess } from '../bot/context.js'
import { type Locale, type Translate, translator } from '../bot/i18n.js'
import type { Router } from '../bot/router.js'
import type { Clock } from '../clock.js'
import type { CheckinRunner } from '../community/checkins.js'
import {
  ALL_BINDING_ATTEMPTS,
  BIND_LIMITS,
  bindIdentity,
  memberByIdentity,
} from '../community/identities.js'
import { seenInGroup } from '../community/moderation.js'
import { limitRequest } from '../community/rate-buckets.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import type { Reply } from '../wechat/reply.js'
import type { CommunitySettings } from './community-context.js'
import { fitReplyText } from './reply-budget.js'

/** One message from a group (or a single chat with a group bot). */
export interface GroupMessage {
  /** `wecom_aibot`, `bridge:<id>`: the namespace of `senderId` and `chatId`. */
  channel: string
  chatId?: string
  senderId: string
  /** The text, any mention of the bot already removed. */
  text: string
  msgId: string
  /** What the message came through (a bot id), for the synthetic push. */
  via: string
  now: Date
  /** The most UTF-8 bytes the channel takes in one reply: a longer answer is cut (reply-budget.ts). */
  maxBytes: number
}

export interface GroupDeps {
  db: Kysely<Database>
  router: Router
  clock: Clock
  logger: Logger
  locale: Locale
  community: CommunitySettings
  wechat: WechatAccess
  /** The app's batched check-in statements (`checkinStatements`); absent: one per check-in. */
  checkins?: CheckinRunner
}

/** A reply as plain text for a group (news as title, description and link). */
export function replyText(reply: Reply | null): string | null {
  if (!reply) return null
  if (reply.type === 'text') return reply.content
  if (reply.type === 'news')
    return reply.articles
      .map((a) => [a.title, a.description, a.url].filter(Boolean).join('\n'))
      .join('\n\n')
  return null
}

/** The reply text for a group message, within the channel's byte limit (`m.maxBytes`). */
export async function groupMessageReply(deps: GroupDeps, m: GroupMessage): Promise<string> {
  const t = translator(deps.locale)
  const log = deps.logger.child({ channel: m.channel, chatId: m.chatId })
  const { content, handler } = await answerText(deps, m, t, log)
  return fitReplyText(content, { maxBytes: m.maxBytes, handler, t, log })
}

async function answerText(
  deps: GroupDeps,
  m: GroupMessage,
  t: Translate,
  log: Logger,
): Promise<{ content: string; handler: string | null }> {
  const said = (content: string) => ({ content, handler: null })
  const bind = /^(?:绑定|bind)\s*(\d{6})$/i.exec(m.text)
  if (bind) {
    // A guess costs a token from the sender's, the chat's and every door's bucket (BIND_LIMITS).
    const waitMs = await limitRequest(
      deps.db,
      [
        { key: `bind:${m.channel}:sender:${m.senderId}`, rate: BIND_LIMITS.perPerson },
        ...(m.chatId
          ? [{ key: `bind:${m.channel}:chat:${m.chatId}`, rate: BIND_LIMITS.perPlace }]
          : []),
        { key: ALL_BINDING_ATTEMPTS, rate: BIND_LIMITS.all },
      ],
      m.now,
    )
    if (waitMs > 0) return said(t('group.bindTooFast', { seconds: Math.ceil(waitMs / 1000) }))
    const linked = await bindIdentity(deps.db, {
      channel: m.channel,
      externalId: m.senderId,
      code: bind[1]!,
      now: m.now,
    })
    return said(t(linked ? 'group.bound' : 'group.badCode'))
  }
  const member = await memberByIdentity(deps.db, m.channel, m.senderId)
  if (!member) return said(t('group.bindFirst'))
  if (m.chatId)
    await seenInGroup(deps.db, {
      channel: m.channel,
      chatId: m.chatId,
      memberId: member.id,
      now: m.now,
    })
  const { reply, handler } = await deps.router.answer({
    account: { appid: member.appid, locale: deps.locale },
    message: {
      type: 'text',
      content: m.text,
      toUserName: m.via,
      fromUserName: member.openid,
      createTime: Math.floor(m.now.getTime() / 1000),
      msgId: m.msgId,
      raw: {},
    },
    member: Object.assign({}, member, {
      isNew: false,
      previous_active_at: member.last_active_at,
      dailyLogin: null,
    }),
    text: m.text,
    args: '',
    match: null,
    db: deps.db,
    community: deps.community,
    checkins: deps.checkins,
    wechat: deps.wechat,
    channel: { kind: m.channel, externalId: m.senderId, chatId: m.chatId },
    clock: deps.clock,
    logger: log,
    t,
  })
  return { content: replyText(reply) ?? t('group.noAnswer'), handler }
}
