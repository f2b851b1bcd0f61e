/** An operator sets an account's points rule (its override of the `*` default). */
import * as v from 'valibot'
import { int } from '../../routes/validate.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'

/** The input of {@link putRule} (`PUT rules/:rule`). */
export const putRuleInput = v.strictObject({
  // 0 would make every award of the rule a zero ledger delta, which the ledger refuses (the
  // member's check-in then fails): a rule that awards nothing is turned off (`enabled`).
  points: int(1, 100_000),
  capCount: v.optional(v.nullable(int(1))),
  capPeriod: v.optional(
    v.nullable(v.picklist(['day', 'week', 'ever'], 'must be day, week or ever')),
  ),
  enabled: v.optional(v.boolean()),
})
export type PutRuleInput = v.InferOutput<typeof putRuleInput>

/** Whether `rule` may name a rule: lowercase letters, digits and _, starting with a letter. */
export const isRuleName = (rule: string) => /^[a-z][a-z0-9_]{1,40}$/.test(rule)

/** What is wrong with a valid-looking rule input as a whole (a message naming the fields), if any. */
export function putRuleProblem(input: PutRuleInput): string | undefined {
  if (((input.capCount ?? null) === null) !== ((input.capPeriod ?? null) === null))
    return 'capCount and capPeriod: set both or neither'
  return undefined
}

/** Writes the account's rule (created or replaced) and audits `rule.update`. */
export async function putRule(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: PutRuleInput & { appid: string; rule: string },
): Promise<void> {
  const { appid, rule, ...body } = input
  const row = {
    points: body.points,
    cap_count: body.capCount ?? null,
    cap_period: body.capPeriod ?? null,
    enabled: body.enabled ?? true,
  }
  const step = {
    appid,
    actor,
    action: 'rule.update',
    target: rule,
    now: deps.clock.now(),
  } satisfies AuditedStep
  await auditedAction(deps.db, step, async (trx) => {
    await trx
      .insertInto('point_rules')
      .values({ appid, rule, ...row })
      .onConflict((oc) => oc.columns(['appid', 'rule']).doUpdateSet(row))
      .execute()
    return { result: undefined, details: body }
  })
}
