/**
 * The way a push travels after the webhook: claim the dedupe key → record the member → route →
 * render → store the reply, all inside the reply deadline. A handler that overruns gets `success`
 * sent for it and finishes in the background; its result is kept for a customer-service follow-up.
 * The claim is leased (claim-lease.ts): renewed while the push is handled, so WeChat's retry of a
 * push whose process died takes it back and handles it instead of answering `success` for it.
 */
import type { Kysely } from 'kysely'
import type { WechatAccess } from '../bot/context.js'
import { type Locale, type Translate, translator } from '../bot/i18n.js'
import { Router } from '../bot/router.js'
import type { Clock } from '../clock.js'
import type { CheckinRunner } from '../community/checkins.js'
import {
  type ClaimHold,
  holdClaim,
  INBOUND_CLAIM_LEASE_MS,
  PAST_DEADLINE,
  renewClaim,
} from '../community/claim-lease.js'
import {
  type InboundOutcome,
  type InboundStore,
  ReplayRefusedError,
  retakeOrWait,
} from '../community/inbound-events.js'
import {
  type DuplicatePush,
  findMember,
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
import { type Answer, type AnsweredPushes, mayBeResent } from './answered.js'
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
  /** Final answers kept for WeChat's exact resends (answered.ts); built once. */
  answered?: AnsweredPushes
  /**
   * How late an answer this process gives must come to be kept for a resend (`mayBeResent`;
   * `RESEND_LIKELY_AFTER_MS`, 1 s, by default): tests set it.
   */
  resendLikelyAfterMs?: number
  /** The app's batched check-in statements, handed to handlers (`checkinStatements`). */
  checkins?: CheckinRunner
  /** The claims' lease (default {@link INBOUND_CLAIM_LEASE_MS}; tests shorten it). */
  claimLeaseMs?: number
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
  // What the database settled, remembered for an exact resend of this request (answered.ts): an
  // answer read for a duplicate always, one this attempt gave only when it came late enough for
  // WeChat to resend the push.
  const remember = (answer: Answer) => {
    if (stamp) deps.answered?.remember(appid, stamp, answer)
  }
  const rememberIfLate = (answer: Answer) => {
    if (stamp && deps.answered && mayBeResent(input.receivedAt, now(), deps.resendLikelyAfterMs))
      deps.answered.remember(appid, stamp, answer)
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

  const leaseMs = deps.claimLeaseMs ?? INBOUND_CLAIM_LEASE_MS
  const claimedAt = deps.clock.now()
  let member: RecordedMember | DuplicatePush
  try {
    member = await deps.members.receive(
      {
        appid,
        dedupeKey: key.dedupeKey,
        msgType: message.type === 'unknown' ? message.msgType : message.type,
        event: isEvent(message) ? message.event : null,
        // A literal, not `{ door, ...stamp }`: Node 20's V8 takes a slow path for a spread after
        // a property (bench/README.md, "Object spread").
        replay: stamp && {
          door: 'wechat',
          timestamp: stamp.timestamp,
          nonce: stamp.nonce,
          digest: stamp.digest,
        },
      },
      message,
      claimedAt,
    )
  } catch (error) {
    if (error instanceof ReplayRefusedError) throw error
    // Nothing was claimed or recorded (one statement): WeChat's retry may try again.
    log.error('receiving the push failed', { code: 'RECEIVE_FAILED', error })
    return { body: render(text(t('error.generic'))), outcome: 'failed' }
  }
  const duplicate = (outcome: InboundOutcome | undefined): Handled => {
    log.info('duplicate push', { outcome: outcome?.status ?? 'still processing' })
    if (outcome?.status === 'replied' || outcome?.status === 'failed') {
      remember({ body: outcome.reply, status: outcome.status })
      return { body: outcome.reply, outcome: 'duplicate' }
    }
    return { body: null, outcome: 'duplicate' }
  }
  // The claim as this attempt holds it (claim-lease.ts): made by the statement above, `claimed_at`
  // null (its `received_at` is the lease clock), or taken back from an attempt whose process died.
  const hold: ClaimHold = { claimedAt: null, clock: deps.clock, leaseMs, logger: log }
  let recorded: RecordedMember
  if (isDuplicate(member)) {
    // An answered push is served from what the claim statement read. A claim still being worked
    // on is waited for (bounded by the deadline, with a growing interval) — or, once its lease has
    // run out (its process died), taken back: this retry handles the push as of its first receipt.
    const known = member.outcome
    if (known && known.status !== 'processing') return duplicate(known)
    const found = await retakeOrWait(deps.db, key, {
      clock: deps.clock,
      leaseMs,
      until: deadline,
      now,
    })
    if (!found || !('claimedAt' in found)) return duplicate(found)
    hold.claimedAt = found.claimedAt
    log.warn('push taken back from an attempt that stopped renewing its claim', {
      code: 'INBOUND_CLAIM_RETAKEN',
      receivedAt: found.receivedAt,
    })
    const retaken = await retakenMember(deps.db, appid, message.fromUserName, found.receivedAt)
    if (!retaken) {
      // The member is gone (erased since): nothing to answer for them.
      await deps.inbound.complete(key, null, deps.clock.now(), undefined, hold.claimedAt)
      return { body: null, outcome: 'success' }
    }
    recorded = retaken
  } else {
    recorded = member
    // A claim statement that waited (a member row locked elsewhere) committed a claim whose lease
    // clock is when it was made: one that waited a quarter lease or more is renewed before the
    // handler runs — or found taken over by a retry meanwhile, and then not handled here.
    if (now() - claimedAt.getTime() >= leaseMs / 4) {
      const at = deps.clock.now()
      if (!(await renewClaim(deps.db, key, null, at))) {
        log.warn('inbound claim lost: another attempt took the push over', {
          code: 'INBOUND_CLAIM_LOST',
        })
        return { body: null, outcome: 'duplicate' }
      }
      hold.claimedAt = at
    }
  }

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
  const result = work.then(
    (reply) => ({ reply }),
    (error: unknown) => ({ error }),
  )

  // Settles the claim when the work ends, whether it beat the deadline or not; fenced on the claim
  // as this attempt holds it (one taken over stores nothing over the new holder's).
  const settle = async (r: { reply: Reply | null } | { error: unknown }) => {
    if ('reply' in r) {
      const body = render(r.reply)
      if (await deps.inbound.complete(key, body, deps.clock.now(), undefined, hold.claimedAt)) {
        rememberIfLate({ body, status: 'replied' })
        return body
      }
      await deps.inbound.recordFollowUp(
        key,
        r.reply && JSON.stringify(r.reply),
        deps.clock.now(),
        undefined,
        hold.claimedAt,
      )
      log.info('late reply kept for follow-up', { hasReply: r.reply !== null })
      return undefined
    }
    const { error } = r
    failed = true
    log.error('handler failed', { code: 'HANDLER_FAILED', error })
    // Rendered once: what is stored is what is sent (a retry gets these bytes, CreateTime too).
    const apology = render(text(t('error.generic')))
    // Never empty: the stored status is `failed` only with an error (inbound-events.ts).
    const reason = (error instanceof Error ? error.message : String(error)) || 'handler failed'
    if (await deps.inbound.complete(key, apology, deps.clock.now(), reason, hold.claimedAt)) {
      rememberIfLate({ body: apology, status: 'failed' })
      return apology
    }
    await deps.inbound.recordFollowUp(key, null, deps.clock.now(), reason, hold.claimedAt)
    return undefined
  }

  // The claim is renewed until the work ends or the deadline passes (then it is deferred: a
  // deferred push is never taken back); a handler done within a quarter lease renews nothing.
  const first = await holdClaim(deps.db, key, hold, () => result, deadline)
  const answered = (body: string | null | undefined): Handled => ({
    body: body ?? null,
    outcome: failed ? 'failed' : body ? 'replied' : 'success',
  })
  if (first !== PAST_DEADLINE) return answered(await settle(first))

  if (await deps.inbound.defer(key, deps.clock.now(), hold.claimedAt)) {
    log.warn('reply deadline passed; answered success', {
      code: 'DEADLINE_PASSED',
      deadlineMs: deps.replyDeadlineMs,
    })
    // Nothing awaits it on Node: a failure here (the database gone while the reply is stored) is
    // logged, never left as a rejection no one handles (node-process.ts crashes on those).
    const late = result.then(settle).catch((error: unknown) => {
      log.error('late reply not stored', { code: 'LATE_REPLY_NOT_STORED', error })
    })
    deps.waitUntil?.(late)
    return { body: null, outcome: 'deadline_passed' }
  }
  // Not deferred: the work has not settled (it does only after holdClaim returns), so another
  // attempt took the claim over — this attempt's renewals missed a whole lease. The new holder
  // answers the push; this one stores nothing (its completion is fenced) and answers at once.
  log.warn('inbound claim lost: another attempt took the push over', {
    code: 'INBOUND_CLAIM_LOST',
  })
  return { body: null, outcome: 'duplicate' }
}

/**
 * The member of a push taken back from an attempt whose process died: that attempt's claim
 * statement recorded them (and awarded the day's login, whose level-up line is not repeated); new
 * if it created them. Undefined when the member is gone.
 */
async function retakenMember(
  db: Kysely<Database>,
  appid: string,
  openid: string,
  receivedAt: Date,
): Promise<RecordedMember | undefined> {
  const row = await findMember(db, appid, openid)
  return (
    row &&
    Object.assign(row, {
      isNew: row.first_seen_at.getTime() === receivedAt.getTime(),
      previous_active_at: null,
      dailyLogin: null,
    })
  )
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
