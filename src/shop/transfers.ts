/**
 * Cashback paid through WeChat Pay's merchant transfer (商家转账, the 2025 user-confirmation
 * version; ../shared/protocol/wechatpay-v3-transfers-bills.md §1):
 *
 *   pending ─create─▶ [accepted / processing ─create again─▶] wait_user_confirm ─member confirms─▶
 *   transfering ─▶ success | fail           wait_user_confirm ─cancel─▶ canceling ─▶ cancelled
 *
 * - A transfer is sent with its one `out_bill_no` and the body stored at its first send, every
 *   time: a timeout, 5xx, 429 or NOT_ENOUGH is retried with backoff; a refusal ends it only once a
 *   query shows WeChat Pay has no such bill (its own 404 NOT_FOUND, nothing else) — a new number
 *   is never made. Out of tries without such a refusal, it is asked about and sent again later:
 *   a bill still being accepted is not found either.
 * - Every answer — create, query, cancel, MCHTRANSFER.BILL.FINISHED — goes through
 *   {@link applyBill}: a non-final state only moves forward (a conditional update); a final one
 *   settles once, under the member's lock: FAIL and CANCELLED cancel the redemption in the same
 *   transaction (points back through the ledger, key `refund:<redemption>`, stock back).
 * - The queue ({@link runTransferQueue}, from shop maintenance) sends due transfers and asks about
 *   those whose notification may be lost; a bill the member left unconfirmed for 24 hours is
 *   cancelled. Each row is claimed by moving `next_attempt_at` with SKIP LOCKED.
 */
import { type Kysely, sql } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import { notifyMember } from '../community/notify.js'
import { withMemberLocked } from '../community/points-ledger.js'
import { returnRedemption } from '../community/rewards.js'
import type { Database, Transfer, TransferState } from '../db/schema.js'
import type { Logger } from '../logger.js'
import { PayApiError, type TransferBill, type TransferBillRequest } from '../pay/gateway.js'
import type { Shop } from './maintenance.js'
import {
  CONFIRM_WINDOW_MS,
  DEFAULT_TRANSFER_SETTINGS,
  FINAL_TRANSFER_STATES,
  TRANSFER_STATE_RANK,
  transferRequest,
  transferState,
} from './transfer-bills.js'

/** What the transfer functions work with. */
export interface TransferDeps {
  db: Kysely<Database>
  shop: Shop
  timeZone: string
  logger?: Logger
  /** When given, the member is told (an outbox notice) that the cash arrived or points came back. */
  t?: Translate
}

/** What applying an answer did. */
export type ApplyOutcome = 'updated' | 'settled' | 'duplicate' | 'stale' | 'unknown' | 'mismatch'

/** Sends before the transfer is checked for good (a query decides whether it ends). */
export const TRANSFER_MAX_ATTEMPTS = 10

/** Wait after `attempts` failed sends: 1 min, 2, 4 … capped at 6 h, like the refund queue. */
export const transferRetryDelayMs = (attempts: number) =>
  Math.min(6 * 3600_000, 60_000 * 2 ** Math.max(0, attempts - 1))

/** Errors after which the same bill is simply tried again (§1.9). */
const TRANSIENT_CODES = new Set([
  'SYSTEM_ERROR',
  'FREQUENCY_LIMITED',
  'FREQUENCY_LIMIT_EXCEED',
  'NOT_ENOUGH',
])

const SEND_LEASE_MS = 60_000
const POLL_LEASE_MS = 10 * 60_000

const find = (db: Kysely<Database>, outBillNo: string) =>
  db.selectFrom('transfers').selectAll().where('out_bill_no', '=', outBillNo).executeTakeFirst()

const isFinal = (s: TransferState) => FINAL_TRANSFER_STATES.includes(s)

/**
 * Sends one transfer (create, with the stored body; the body is stored at the first send) when it
 * needs sending: pending, accepted or processing (re-created, as §1.3 says, until it waits for the
 * member), or waiting for the member without a package. Returns its state afterwards.
 */
export async function sendTransfer(
  d: TransferDeps,
  outBillNo: string,
  now: Date,
): Promise<TransferState> {
  let row = await find(d.db, outBillNo)
  if (!row) throw new Error(`no transfer ${outBillNo}`)
  if (!needsSend(row)) return row.state
  if (row.request_body === null) {
    const body = JSON.stringify(
      transferRequest(
        row,
        d.shop.settings.transfer ?? DEFAULT_TRANSFER_SETTINGS,
        d.shop.settings.notifyUrl,
      ),
    )
    await d.db
      .updateTable('transfers')
      .set({ request_body: body, updated_at: now })
      .where('id', '=', row.id)
      .where('state', '=', 'pending')
      .where('request_body', 'is', null)
      .execute()
    row = (await find(d.db, outBillNo))!
    // Cancelled before it was ever sent.
    if (row.request_body === null) return row.state
  }
  let bill: TransferBill
  try {
    bill = await d.shop.gateway.createTransfer(JSON.parse(row.request_body) as TransferBillRequest)
  } catch (error) {
    return sendFailed(d, row, error, now)
  }
  await applyBill(d, bill, now)
  return (await find(d.db, outBillNo))!.state
}

const needsSend = (row: Transfer) =>
  row.state === 'pending' ||
  row.state === 'accepted' ||
  row.state === 'processing' ||
  (row.state === 'wait_user_confirm' && row.package_info === null)

async function sendFailed(
  d: TransferDeps,
  row: Transfer,
  error: unknown,
  now: Date,
): Promise<TransferState> {
  const code = error instanceof PayApiError ? error.code : 'NO_ANSWER'
  const message =
    error instanceof PayApiError ? `${error.status} ${error.code} ${error.message}` : String(error)
  // WeChat Pay's own refusal: a 4xx it signed (a proxy's unsigned page is no answer)
  const refused =
    error instanceof PayApiError &&
    error.verified &&
    error.status >= 400 &&
    error.status < 500 &&
    !TRANSIENT_CODES.has(error.code)
  const attempts = row.attempts + 1
  let unconfirmed = false
  if (refused || attempts >= TRANSFER_MAX_ATTEMPTS) {
    // A refused or unanswered create may still have made the bill: only WeChat Pay's "no such
    // bill" ends it. A query that fails decides nothing.
    const known = await d.shop.gateway.transferQuery(row.out_bill_no).catch(() => undefined)
    if (known) {
      await applyBill(d, known, now)
      return (await find(d.db, row.out_bill_no))!.state
    }
    // Only after WeChat Pay's own refusal of the last create: without one (a timeout, a 5xx, a
    // 429) it may still be accepting that bill — and its query answers NOT_FOUND meanwhile — so
    // the transfer is sent again (same number, same body) later, never ended: ending it returns
    // the points, and a member who redeems them again would be paid twice.
    unconfirmed = known === null && !refused
    if (known === null && refused && row.state === 'pending') {
      d.logger?.warn('transfer refused: the cashback is cancelled and its points returned', {
        code: 'TRANSFER_REFUSED',
        outBillNo: row.out_bill_no,
        attempts,
        error: message,
      })
      await settleTransfer(d, row, 'fail', { fail_reason: code }, now)
      return (await find(d.db, row.out_bill_no))!.state
    }
  }
  if (unconfirmed)
    d.logger?.warn(
      'transfer unconfirmed: its last create had no answer and WeChat Pay has no such bill yet; sending it again later',
      { code: 'TRANSFER_UNCONFIRMED', outBillNo: row.out_bill_no, attempts, error: message },
    )
  else
    d.logger?.warn('transfer not accepted yet', {
      outBillNo: row.out_bill_no,
      attempts,
      error: message,
    })
  await d.db
    .updateTable('transfers')
    .set({
      attempts,
      error: message.slice(0, 500),
      next_attempt_at: new Date(now.getTime() + transferRetryDelayMs(attempts)),
      updated_at: now,
    })
    .where('id', '=', row.id)
    .where('state', '=', row.state)
    .execute()
  return row.state
}

/**
 * Applies what WeChat Pay says about a bill (a create, query or cancel answer, or a
 * MCHTRANSFER.BILL.FINISHED resource). A bill that is not ours, or that names another merchant,
 * amount or payee, changes nothing.
 */
export async function applyBill(
  d: TransferDeps,
  bill: TransferBill,
  now: Date,
): Promise<ApplyOutcome> {
  const row = await find(d.db, String(bill.out_bill_no ?? ''))
  if (!row) return 'unknown'
  if (
    (bill.mch_id !== undefined && bill.mch_id !== d.shop.gateway.mchid) ||
    (bill.transfer_amount !== undefined && bill.transfer_amount !== row.amount_fen) ||
    (bill.openid !== undefined && bill.openid !== row.openid)
  ) {
    d.logger?.error('a transfer bill does not match ours: ignored', {
      code: 'TRANSFER_MISMATCH',
      outBillNo: row.out_bill_no,
    })
    return 'mismatch'
  }
  const state = typeof bill.state === 'string' ? transferState(bill.state) : undefined
  if (!state || !(state in TRANSFER_STATE_RANK)) {
    d.logger?.warn('a transfer bill in an unknown state: ignored', {
      outBillNo: row.out_bill_no,
      state: bill.state,
    })
    return 'stale'
  }
  if (isFinal(state)) return settleTransfer(d, row, state, bill, now)
  const rank = TRANSFER_STATE_RANK[state]
  const from = (Object.keys(TRANSFER_STATE_RANK) as TransferState[]).filter(
    (s) => TRANSFER_STATE_RANK[s] < rank || s === state,
  )
  const hasPackage = (bill.package_info ?? row.package_info) != null
  const updated = await d.db
    .updateTable('transfers')
    .set({
      state,
      transfer_bill_no: bill.transfer_bill_no ?? row.transfer_bill_no,
      package_info: sql<string>`coalesce(${bill.package_info ?? null}::text, package_info)`,
      accepted_at: sql<Date>`coalesce(accepted_at, ${now}::timestamptz)`,
      next_attempt_at: nextCheck(state, now, row.accepted_at ?? now, hasPackage),
      error: null,
      updated_at: now,
    })
    .where('id', '=', row.id)
    .where('state', 'in', from)
    .returning('id')
    .executeTakeFirst()
  return updated ? 'updated' : 'stale'
}

/**
 * When a non-final transfer is next looked at: accepted or processing bills are created again
 * (soon, then less often the longer they take); a bill waiting for the member is asked about hourly
 * and at the end of the 24-hour window; transferring and cancelling ones every few minutes.
 */
function nextCheck(state: TransferState, now: Date, acceptedAt: Date, hasPackage: boolean): Date {
  const at = (ms: number) => new Date(now.getTime() + ms)
  const age = now.getTime() - acceptedAt.getTime()
  switch (state) {
    case 'wait_user_confirm': {
      if (!hasPackage) return now
      const deadline = acceptedAt.getTime() + CONFIRM_WINDOW_MS
      return new Date(
        Math.max(now.getTime() + 60_000, Math.min(now.getTime() + 3600_000, deadline)),
      )
    }
    case 'transfering':
      return at(Math.min(3600_000, Math.max(300_000, age / 2)))
    case 'canceling':
      return at(60_000)
    default:
      return at(Math.min(30 * 60_000, Math.max(60_000, age / 4)))
  }
}

/**
 * Ends a transfer once, under the member's lock: success, or fail / cancelled — which cancels the
 * redemption in the same transaction (points back, stock back). `unsentOnly`: only if it was never
 * sent (an operator cancelling before the first send). A second call is a `duplicate`.
 */
export async function settleTransfer(
  d: TransferDeps,
  row: Transfer,
  state: TransferState,
  bill: { fail_reason?: string; transfer_bill_no?: string },
  now: Date,
  o: { unsentOnly?: boolean } = {},
): Promise<ApplyOutcome> {
  return withMemberLocked(d.db, row.member_id, async (trx, member) => {
    let update = trx
      .updateTable('transfers')
      .set({
        state,
        fail_reason: state === 'success' ? null : (bill.fail_reason ?? null),
        transfer_bill_no: bill.transfer_bill_no ?? row.transfer_bill_no,
        package_info: null,
        next_attempt_at: null,
        settled_at: now,
        updated_at: now,
      })
      .where('id', '=', row.id)
      .where('state', 'not in', FINAL_TRANSFER_STATES)
    if (o.unsentOnly) update = update.where('request_body', 'is', null)
    const done = await update.returning('id').executeTakeFirst()
    if (!done) {
      const current = await trx
        .selectFrom('transfers')
        .select('state')
        .where('id', '=', row.id)
        .executeTakeFirstOrThrow()
      if (current.state !== state && isFinal(current.state))
        d.logger?.error('WeChat Pay ended a transfer differently than we recorded', {
          code: 'TRANSFER_CONFLICT',
          outBillNo: row.out_bill_no,
          recorded: current.state,
          reported: state,
        })
      return 'duplicate'
    }
    const yuan = (row.amount_fen / 100).toFixed(2)
    let text: string | undefined
    if (state === 'success') {
      text = d.t?.('cashback.paid', { yuan })
    } else {
      const back = await returnRedemption(trx, member, {
        appid: row.appid,
        redemptionId: row.redemption_id,
        now,
        timeZone: d.timeZone,
      })
      const reason =
        state === 'cancelled'
          ? 'cashback.reason.cancelled'
          : bill.fail_reason === 'OVERDUE_CLOSE'
            ? 'cashback.reason.expired'
            : 'cashback.reason.failed'
      if (back?.status === 'applied')
        text = d.t?.('cashback.returned', {
          yuan,
          reason: d.t(reason),
          points: back.delta,
          balance: back.balance,
        })
    }
    // Only a follower of the account can be told (a mini-program-only member has no OA chat).
    if (text && member.appid === row.appid)
      await notifyMember(trx, {
        appid: row.appid,
        openid: member.openid,
        source: `transfer:${row.id}`,
        text,
        now,
      })
    return 'settled'
  })
}

/**
 * Asks WeChat Pay about a transfer whose notification may be lost, applies the answer, and cancels
 * a bill still waiting for the member when the 24-hour window has passed (its cancellation returns
 * the points).
 */
export async function pollTransfer(
  d: TransferDeps,
  outBillNo: string,
  now: Date,
): Promise<ApplyOutcome | 'cancelling'> {
  const row = await find(d.db, outBillNo)
  if (!row || isFinal(row.state)) return 'duplicate'
  const bill = await d.shop.gateway.transferQuery(outBillNo)
  if (!bill) {
    d.logger?.warn('WeChat Pay does not know a transfer it accepted', {
      code: 'TRANSFER_UNKNOWN',
      outBillNo,
    })
    return 'unknown'
  }
  const outcome = await applyBill(d, bill, now)
  const acceptedAt = row.accepted_at ?? row.created_at
  if (
    bill.state === 'WAIT_USER_CONFIRM' &&
    now.getTime() - acceptedAt.getTime() >= CONFIRM_WINDOW_MS
  ) {
    await cancelBill(d, outBillNo, now)
    return 'cancelling'
  }
  return outcome
}

/**
 * Cancels a bill at WeChat Pay (only before the member confirms) and applies the answer; a bill
 * WeChat Pay does not know (never accepted) is cancelled here.
 */
export async function cancelBill(
  d: TransferDeps,
  outBillNo: string,
  now: Date,
): Promise<ApplyOutcome> {
  let bill: TransferBill
  try {
    bill = await d.shop.gateway.cancelTransfer(outBillNo)
  } catch (error) {
    if (!(error instanceof PayApiError && error.status === 404)) throw error
    const known = await d.shop.gateway.transferQuery(outBillNo)
    if (known) return applyBill(d, known, now)
    const row = await find(d.db, outBillNo)
    if (!row) return 'unknown'
    return settleTransfer(d, row, 'cancelled', { fail_reason: 'MCH_CANCEL' }, now)
  }
  return applyBill(d, bill, now)
}

/**
 * An operator cancels a cashback redemption: a transfer never sent is cancelled here (points back
 * at once), one sent is cancelled at WeChat Pay (the points come back when it is CANCELLED, which
 * may be at once). A member who already confirmed cannot be stopped. Returns the state afterwards.
 */
export async function cancelCashback(
  d: TransferDeps,
  redemptionId: number,
  now: Date,
): Promise<TransferState | 'not_found'> {
  const row = await d.db
    .selectFrom('transfers')
    .selectAll()
    .where('redemption_id', '=', redemptionId)
    .executeTakeFirst()
  if (!row) return 'not_found'
  if (isFinal(row.state)) return row.state
  if (row.request_body === null) {
    const local = await settleTransfer(d, row, 'cancelled', { fail_reason: 'MCH_CANCEL' }, now, {
      unsentOnly: true,
    })
    if (local === 'settled') return 'cancelled'
  }
  await cancelBill(d, row.out_bill_no, now)
  return (await find(d.db, row.out_bill_no))!.state
}

/**
 * One pass of the transfer queue: due sends, then due polls (not with `payee`: a member's page
 * sends only the transfers to its openid). Bounded by `limit` each; errors are counted and logged,
 * not thrown.
 */
export async function runTransferQueue(
  d: TransferDeps,
  now: Date,
  o: { payee?: string; limit?: number } = {},
) {
  const limit = o.limit ?? 100
  const summary = { transfersSent: 0, transfersPolled: 0, transferErrors: 0 }
  const payee =
    o.payee === undefined ? undefined : { appid: d.shop.settings.mpAppid, openid: o.payee }
  for (const no of await claim(d.db, now, 'send', limit, payee)) {
    try {
      if ((await sendTransfer(d, no, now)) !== 'pending') summary.transfersSent++
    } catch (error) {
      summary.transferErrors++
      d.logger?.warn('could not send a transfer', { outBillNo: no, error })
    }
  }
  if (o.payee !== undefined) return summary
  for (const no of await claim(d.db, now, 'poll', limit)) {
    try {
      const outcome = await pollTransfer(d, no, now)
      if (outcome === 'settled' || outcome === 'cancelling') summary.transfersPolled++
    } catch (error) {
      summary.transferErrors++
      d.logger?.warn('could not ask about a transfer', { outBillNo: no, error })
    }
  }
  return summary
}

/** Claims due transfers by moving their `next_attempt_at` (a lease), skipping rows others hold. */
async function claim(
  db: Kysely<Database>,
  now: Date,
  kind: 'send' | 'poll',
  limit: number,
  payee?: { appid: string; openid: string },
): Promise<string[]> {
  let due = db
    .selectFrom('transfers')
    .select('id')
    .where('next_attempt_at', '<=', now)
    .where('state', 'not in', FINAL_TRANSFER_STATES)
    .where((eb) =>
      kind === 'send'
        ? eb.or([
            eb('state', 'in', ['pending', 'accepted', 'processing']),
            eb.and([eb('state', '=', 'wait_user_confirm'), eb('package_info', 'is', null)]),
          ])
        : eb.or([
            eb('state', 'in', ['transfering', 'canceling']),
            eb.and([eb('state', '=', 'wait_user_confirm'), eb('package_info', 'is not', null)]),
          ]),
    )
  if (payee) due = due.where('pay_appid', '=', payee.appid).where('openid', '=', payee.openid)
  const claimed = await db
    .updateTable('transfers')
    .set({
      next_attempt_at: new Date(now.getTime() + (kind === 'send' ? SEND_LEASE_MS : POLL_LEASE_MS)),
    })
    .where('id', 'in', due.orderBy('next_attempt_at').limit(limit).forUpdate().skipLocked())
    .returning('out_bill_no')
    .execute()
  return claimed.map((r) => r.out_bill_no)
}
