/** An operator adds a reward to the catalogue or changes one. */
import type { Selectable } from 'kysely'
import * as v from 'valibot'
import type { Database } from '../../db/schema.js'
import { int } from '../../routes/validate.js'
import { TRANSFER_MAX_FEN, TRANSFER_MIN_FEN } from '../../shop/transfer-bills.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'

const fields = {
  name: v.pipe(v.string(), v.trim(), v.minLength(1), v.maxLength(60)),
  cost: int(1),
  stock: v.nullable(int(0)),
  perMemberLimit: v.nullable(int(1)),
  enabled: v.boolean(),
}

/** The input of {@link createReward} (`POST rewards`). */
export const createRewardInput = v.strictObject({
  code: int(1),
  name: fields.name,
  cost: fields.cost,
  stock: v.optional(fields.stock, null),
  perMemberLimit: v.optional(fields.perMemberLimit, null),
  /** A cashback reward: fen paid to the member's WeChat wallet (0.1–1,999.99 元). */
  cashbackFen: v.optional(
    int(TRANSFER_MIN_FEN, TRANSFER_MAX_FEN, 'must be 10–199999 fen (WeChat Pay transfer limits)'),
  ),
})
export type CreateRewardInput = v.InferOutput<typeof createRewardInput>

/** The input of {@link updateReward} (`PATCH rewards/:code`): the fields to change. */
export const updateRewardInput = v.partial(v.strictObject(fields))
/** A reward row. */
export type Reward = Selectable<Database['rewards']>

export type UpdateRewardInput = v.InferOutput<typeof updateRewardInput>

/** Adds a reward; undefined when the account has one with that code already (nothing changes). */
export async function createReward(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: CreateRewardInput & { appid: string },
): Promise<Reward | undefined> {
  const { appid, ...body } = input
  const now = deps.clock.now()
  const step = {
    appid,
    actor,
    action: 'reward.create',
    target: String(body.code),
    now,
  } satisfies AuditedStep
  return auditedAction(deps.db, step, async (trx) => {
    const row = await trx
      .insertInto('rewards')
      .values({
        appid,
        code: body.code,
        name: body.name,
        cost: body.cost,
        stock: body.stock,
        per_member_limit: body.perMemberLimit,
        created_at: now,
        ...(body.cashbackFen ? { kind: 'cashback' as const, cashback_fen: body.cashbackFen } : {}),
      })
      .onConflict((oc) => oc.columns(['appid', 'code']).doNothing())
      .returningAll()
      .executeTakeFirst()
    return { result: row, details: row && body }
  })
}

/** Changes a reward's fields; undefined when the account has no such reward. */
export async function updateReward(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: UpdateRewardInput & { appid: string; code: number },
): Promise<Reward | undefined> {
  const { appid, code, ...body } = input
  const set = {
    name: body.name,
    cost: body.cost,
    stock: body.stock,
    per_member_limit: body.perMemberLimit,
    enabled: body.enabled,
  }
  const changes = Object.fromEntries(Object.entries(set).filter(([, x]) => x !== undefined))
  const now = deps.clock.now()
  const step = {
    appid,
    actor,
    action: 'reward.update',
    target: String(code),
    now,
  } satisfies AuditedStep
  return auditedAction(deps.db, step, async (trx) => {
    const row = await trx
      .updateTable('rewards')
      .set(changes)
      .where('appid', '=', appid)
      .where('code', '=', code)
      .returningAll()
      .executeTakeFirst()
    return { result: row, details: row && body }
  })
}
