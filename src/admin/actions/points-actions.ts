/** An operator grants (+) or deducts (−) a member's points, with a reason; the member is told. */
import type { Transaction } from 'kysely'
import * as v from 'valibot'
import type { Translate } from '../../bot/i18n.js'
import { levelUpLine, notifyMember } from '../../community/notify.js'
import { applyDelta, type LedgerOutcome, lockMember } from '../../community/points-ledger.js'
import type { Database, Member } from '../../db/schema.js'
import { INT_MAX } from '../../routes/validate.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'
import { type OverLimit, overDailyLimit } from './grant-limit.js'

/** The input of {@link grantPoints} (`POST members/:openid/points`). */
export const grantPointsInput = v.strictObject({
  delta: v.pipe(
    v.number(),
    v.integer('must be a whole number'),
    v.check((n) => n !== 0, 'must not be 0'),
    v.minValue(-1_000_000),
    v.maxValue(1_000_000),
  ),
  reason: v.pipe(v.string(), v.trim(), v.minLength(1, 'is required'), v.maxLength(200)),
  idempotencyKey: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(100))),
})
export type GrantPointsInput = v.InferOutput<typeof grantPointsInput>

/**
 * What a grant did: the ledger's outcome, `limit` when the balance would overflow, or `over_limit`
 * when the console operator's per-day grant limit refuses it.
 */
export type GrantPointsResult = LedgerOutcome | { status: 'limit'; balance: number } | OverLimit

/** Options of {@link grantPoints}. */
export interface GrantPointsOptions {
  /**
   * The actor is a console operator whose per-day grant limit applies (src/admin/actions/
   * grant-limit.ts); the API's token holder has none.
   */
  dailyLimit?: boolean
}

/**
 * The ledger idempotency key of an operator's grant: the operator's own key (or a new one) under
 * `admin:`. Internal entries use their own prefixes in the same per-account namespace
 * (`redeem:<id>`, `refund:<id>`, `activity:…`, `invite:…`, `complete_profile:…` …), so an
 * operator key such as `refund:1` must never be stored as it is: it would take the key of
 * redemption 1's refund and make the refund a silent duplicate. The same operator key always maps
 * to the same ledger key, so a replay is still a duplicate. (Keys stored unprefixed before were
 * moved under `admin:` by migration 0060.)
 */
const ledgerKey = (operatorKey: string = crypto.randomUUID()) => `admin:${operatorKey}`

/**
 * Grants or deducts `delta` points (a deduction never below zero: `insufficient`), at most once per
 * idempotency key (default: a new one; stored as {@link ledgerKey}). An applied change enqueues
 * the member's notice (customer-service text; a follower's only) and is audited (`points.grant` / `points.deduct`),
 * all in one transaction with the member locked — and, with `dailyLimit`, the operator locked
 * first and their grants today counted (a repeated idempotency key is answered as a duplicate).
 */
export async function grantPoints(
  deps: ActionDeps & { t: Translate },
  actor: Actor,
  input: GrantPointsInput & { appid: string; member: Member },
  options: GrantPointsOptions = {},
): Promise<GrantPointsResult> {
  const { appid, member, ...body } = input
  const now = deps.clock.now()
  const key = ledgerKey(body.idempotencyKey)
  const action = body.delta > 0 ? 'points.grant' : 'points.deduct'
  const step = { appid, actor, action, target: member.openid, now } satisfies AuditedStep
  // The entry is the member's, under their own appid like all their entries (a mini-program
  // member's is the mini program's): the account's weekly board and figures count followers'.
  const ledgerAppid = member.appid
  return auditedAction<GrantPointsResult>(deps.db, step, async (trx) => {
    if (options.dailyLimit) {
      const over = await overDailyLimit(trx, actor.name, body.delta, now, deps.timeZone)
      if (over && !(await keyUsed(trx, ledgerAppid, key))) return { result: over }
    }
    const locked = await lockMember(trx, member.id)
    if (body.delta > 0 && (await overflows(trx, ledgerAppid, locked, body.delta, key)))
      return { result: { status: 'limit', balance: locked.points_balance } }
    const result = await applyDelta(
      trx,
      locked,
      {
        appid: ledgerAppid,
        memberId: member.id,
        rule: body.delta > 0 ? 'grant' : 'deduct',
        idempotencyKey: key,
        reference: body.reason,
        now,
        timeZone: deps.timeZone,
      },
      body.delta,
    )
    if (result.status !== 'applied') return { result }
    const delta = body.delta > 0 ? `+${body.delta}` : String(body.delta)
    const lines = [
      deps.t('points.changed', { delta, reason: body.reason, balance: result.balance }),
    ]
    const up = levelUpLine(result, deps.t)
    if (up) lines.push(up)
    // Told in the OA chat: a member of the account's mini program has none (their openid is not
    // the account's), so the mini program's balance is where they see it.
    if (member.appid === appid)
      await notifyMember(trx, {
        appid,
        openid: member.openid,
        source: `points:${key}`,
        text: lines.join('\n'),
        now,
      })
    return { result, details: { ...body, idempotencyKey: key } }
  })
}

/**
 * Whether granting `delta` would take the member's balance or lifetime points past the `integer`
 * columns — unless the idempotency key was already used (then the grant is a duplicate, answered
 * as before).
 */
async function overflows(
  trx: Transaction<Database>,
  appid: string,
  member: Member,
  delta: number,
  key: string,
): Promise<boolean> {
  if (member.points_balance + delta <= INT_MAX && member.points_lifetime + delta <= INT_MAX)
    return false
  return !(await keyUsed(trx, appid, key))
}

/** Whether the ledger already holds an entry with this idempotency key. */
async function keyUsed(trx: Transaction<Database>, appid: string, key: string): Promise<boolean> {
  const used = await trx
    .selectFrom('points_ledger')
    .select('id')
    .where('appid', '=', appid)
    .where('idempotency_key', '=', key)
    .executeTakeFirst()
  return used !== undefined
}
