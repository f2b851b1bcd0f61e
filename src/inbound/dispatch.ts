/**
 * The way a push travels after the webhook: claim the dedupe key → record the member → route →
 * render → store the reply, all inside the reply deadline. A handler that overruns gets `success`
 * sent for it and finishes in the background; its result is kept for a customer-service follow-up.
 */
import type { Kysely } from 'kysely'
import type { WechatAccess } from '../bot/context.js'
import { type Locale, type Translate, translator } from '../bot/i18n.js'
import { Router } from '../bot/router.js'
import type { Clock } from '../clock.js'
import type { CheckinRunner } from '../community/checkins.js'
import {
  type InboundStore,
  ReplayRefusedError,
  waitForOutcome,
} from '../community/inbound-events.js'
import {
  type DuplicatePush,
  isDuplicate,
  type MemberStore,
  type RecordedMember,
} from '../community/members.js'
import { levelUpLine, notifyMember } from '../community/notify.js'
import type { Database } from '../db/schema.js'
import type { Logger } from '../logger.js'
import type { Metrics, PushOutcome } from '../metrics.js'
import type { PushFormat } from '../wechat/codec.js'
import type { ReplayStamp } from '../wechat/envelope.js'
import { dedupeKey, type InboundMessage, isEvent } from '../wechat/message.js'
import { type Reply, renderReply, text } from '../wechat/reply.js'
import { TEXT_MAX_BYTES } from '../wechat/text-budget.js'
import type { Answer, AnsweredPushes } from './answered.js'
import type { CommunitySettings } from './community-context.js'
import { fitReplyText } from './reply-budget.js'

/** What dispatching needs; built once per app. */
export interface DispatchDeps {
  router: Router
  inbound: InboundStore
  members: MemberStore
  db: Kysely<Database>
  clock: Clock
  logger: Logger
  locale: Locale
  community: CommunitySettings
  wechat: WechatAccess
  replyDeadlineMs: number
  /** Keeps background work alive after the response (Workers' `waitUntil`); Node needs nothing. */
  waitUntil?: (work: Promise<unknown>) => void
  /** Counts each push by type and outcome, with its answer time. */
  metrics?: Metrics
  /** Final answers this process gave, for WeChat's exact resends (answered.ts); built once. */
  answered?: AnsweredPushes
  /** The app's batched check-in statements, handed to handlers (`checkinStatements`). */
  checkins?: CheckinRunner
}

/** One push to dispatch. */
export interface DispatchInput {
  appid: string
  message: InboundMessage
  format: PushFormat
  /** When the request arrived (epoch ms): the deadline counts from here. */
  receivedAt: number
  /** The request's timestamp, nonce and body digest: claimed in the replay cache with the push. */
  stamp?: ReplayStamp
}

/**
 * Handles one verified push and returns the plaintext reply body to send, or null for `success`.
 * Never throws for handler failures: they are logged and answered with an apology. Throws
 * {@link ReplayRefusedError} (nothing claimed, nothing run) for a replayed request.
 */
export async function dispatch(deps: DispatchDeps, input: DispatchInput): Promise<string | null> {
  const { body, outcome } = await handle(deps, input)
  const { message } = input
  deps.metrics?.push({
    channel: 'oa',
    // Typed events only: an untyped event's name comes from the push, so it is not a label.
    type:
      message.type === 'other_event'
        ? 'event.other'
        : isEvent(message)
          ? `event.${message.event}`
          : message.type,
    outcome,
    seconds: Math.max(0, deps.clock.now().getTime() - input.receivedAt) / 1000,
  })
  return body
}

type Handled = { body: string | null; outcome: PushOutcome }

async function handle(deps: DispatchDeps, input: DispatchInput): Promise<Handled> {
  const { message, appid, stamp } = input
  const key = { appid, dedupeKey: dedupeKey(message) }
  const deadline = input.receivedAt + deps.replyDeadlineMs
  const now = () => deps.clock.now().getTime()
  const log = deps.logger.child({ appid, dedupeKey: key.dedupeKey, msgType: message.type })
  // What the database settled, remembered for an exact resend of this request (answered.ts).
  const remember = (answer: Answer) => {
    if (stamp) deps.answered?.remember(appid, stamp, answer)
  }
  const resent = stamp && deps.answered?.get(appid, stamp)
  if (resent) {
    log.info('duplicate push', { outcome: resent.status })
    return { body: resent.body, outcome: 'duplicate' }
  }

  const t = translator(deps.locale)
  const render = (reply: Reply | null) =>
    reply &&
    renderReply(
      reply,
      { to: message.fromUserName, from: message.toUserName, createTime: Math.floor(now() / 1000) },
      input.format,
    )

  let member: RecordedMember | DuplicatePush
  try {
    member = await deps.members.receive(
      {
        appid,
        dedupeKey: key.dedupeKey,
        msgType: message.type === 'unknown' ? message.msgType : message.type,
        event: isEvent(message) ? message.event : null,
        replay: stamp && { door: 'wechat', ...stamp },
      },
      message,
      deps.clock.now(),
    )
  } catch (error) {
    if (error instanceof ReplayRefusedError) throw error
    // Nothing was claimed or recorded (one statement): WeChat's retry may try again.
    log.error('receiving the push failed', { code: 'RECEIVE_FAILED', error })
    return { body: render(text(t('error.generic'))), outcome: 'failed' }
  }
  if (isDuplicate(member)) {
    // An answered push is served from what the claim statement read; only a claim still being
    // worked on is waited for (bounded by the deadline, with a growing interval).
    const known = member.outcome
    const outcome =
      known && known.status !== 'processing'
        ? known
        : await waitForOutcome(deps.inbound, key, deadline, now)
    log.info('duplicate push', { outcome: outcome?.status ?? 'still processing' })
    if (outcome?.status === 'replied' || outcome?.status === 'failed') {
      remember({ body: outcome.reply, status: outcome.status })
      return { body: outcome.reply, outcome: 'duplicate' }
    }
    return { body: null, outcome: 'duplicate' }
  }
  const recorded = member

  let failed = false
  const work = (async () => {
    const { reply, handler } = await deps.router.answer({
      account: { appid, locale: deps.locale },
      message,
      member: recorded,
      text: Router.textOf(message),
      args: '',
      match: null,
      db: deps.db,
      community: deps.community,
      checkins: deps.checkins,
      wechat: deps.wechat,
      channel: { kind: 'oa', externalId: message.fromUserName, moderator: recorded.moderator },
      clock: deps.clock,
      logger: log,
      t,
    })
    const line = recorded.dailyLogin && levelUpLine(recorded.dailyLogin, t)
    if (!line) return withinBudget(reply, handler, t, log)
    if (!reply) return text(line)
    if (reply.type === 'text')
      return withinBudget(text(`${reply.content}\n${line}`), handler, t, log)
    // A news or image reply cannot carry it: the member is told by a customer-service message.
    await notifyMember(deps.db, {
      appid,
      openid: message.fromUserName,
      source: `levelup:${recorded.id}:${recorded.level}`,
      text: line,
      now: deps.clock.now(),
    })
    return reply
  })()

  // Settles the claim when the work ends, whether it beat the deadline or not.
  const settled = work.then(
    async (reply) => {
      const body = render(reply)
      if (await deps.inbound.complete(key, body, deps.clock.now())) {
        remember({ body, status: 'replied' })
        return body
      }
      await deps.inbound.recordFollowUp(key, reply && JSON.stringify(reply), deps.clock.now())
      log.info('late reply kept for follow-up', { hasReply: reply !== null })
      return undefined
    },
    async (error: unknown) => {
      failed = true
      log.error('handler failed', { code: 'HANDLER_FAILED', error })
      // Rendered once: what is stored is what is sent (a retry gets these bytes, CreateTime too).
      const apology = render(text(t('error.generic')))
      // Never empty: the stored status is `failed` only with an error (inbound-events.ts).
      const reason = (error instanceof Error ? error.message : String(error)) || 'handler failed'
      if (await deps.inbound.complete(key, apology, deps.clock.now(), reason)) {
        remember({ body: apology, status: 'failed' })
        return apology
      }
      await deps.inbound.recordFollowUp(key, null, deps.clock.now(), reason)
      return undefined
    },
  )

  const timedOut = Symbol('timeout')
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<typeof timedOut>((resolve) => {
    timer = setTimeout(() => resolve(timedOut), Math.max(0, deadline - now()))
  })
  const first = await Promise.race([settled, timeout])
  clearTimeout(timer)
  const answered = (body: string | null | undefined): Handled => ({
    body: body ?? null,
    outcome: failed ? 'failed' : body ? 'replied' : 'success',
  })
  if (first !== timedOut) return answered(first)

  if (await deps.inbound.defer(key, deps.clock.now())) {
    log.warn('reply deadline passed; answered success', {
      code: 'DEADLINE_PASSED',
      deadlineMs: deps.replyDeadlineMs,
    })
    deps.waitUntil?.(settled)
    return { body: null, outcome: 'deadline_passed' }
  }
  // The handler completed between the timer and the deferral: its reply is stored.
  return answered(await settled)
}

/**
 * The safety net under every text reply — passive or, when late, a customer-service message: one
 * over WeChat's byte budget is cut and logged (reply-budget.ts).
 */
function withinBudget(
  reply: Reply | null,
  handler: string | null,
  t: Translate,
  log: Logger,
): Reply | null {
  if (reply?.type !== 'text') return reply
  const content = fitReplyText(reply.content, { maxBytes: TEXT_MAX_BYTES, handler, t, log })
  return content === reply.content ? reply : text(content)
}
