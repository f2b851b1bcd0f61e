/**
 * Operators define badges without code: an account's badge rule (its own, or its override of a
 * `*` default) written whole, or switched on and off. Both audited (`badge.update`,
 * `badge.enable` / `badge.disable`).
 */
import * as v from 'valibot'
import { badgePredicate, effectiveBadgeRules } from '../../community/badges.js'
import { int } from '../../routes/validate.js'
import { type ActionDeps, type Actor, type AuditedStep, auditedAction } from './audited-action.js'

/** One line of text a member reads: no line breaks or control characters. */
const line = (max: number) =>
  v.pipe(
    v.string(),
    v.trim(),
    v.maxLength(max, `must be at most ${max} characters`),
    v.regex(/^[^\p{Cc}]*$/u, 'must be one line without control characters'),
  )

/** The input of {@link putBadgeRule} (`PUT badges/:key`). */
export const putBadgeInput = v.strictObject({
  name: v.pipe(line(20), v.minLength(1, 'must not be empty')),
  description: v.optional(line(60), ''),
  predicate: badgePredicate,
  enabled: v.optional(v.boolean(), true),
  position: v.optional(int(0, 10_000), 100),
})
export type PutBadgeInput = v.InferOutput<typeof putBadgeInput>

/** The input of {@link setBadgeEnabled} (`PATCH badges/:key`). */
export const setBadgeEnabledInput = v.strictObject({ enabled: v.boolean() })

/** Whether `key` may name a badge: lowercase letters, digits and _, starting with a letter. */
export const isBadgeKey = (key: string) => /^[a-z][a-z0-9_]{1,40}$/.test(key)

/** Writes the account's badge rule (created, or replacing its own or the default's) and audits it. */
export async function putBadgeRule(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: PutBadgeInput & { appid: string; key: string },
): Promise<void> {
  const { appid, key, ...body } = input
  const now = deps.clock.now()
  const row = { ...body, predicate: JSON.stringify(body.predicate), updated_at: now }
  const step = { appid, actor, action: 'badge.update', target: key, now } satisfies AuditedStep
  await auditedAction(deps.db, step, async (trx) => {
    await trx
      .insertInto('badge_rules')
      .values({ appid, key, ...row })
      .onConflict((oc) => oc.columns(['appid', 'key']).doUpdateSet(row))
      .execute()
    return { result: undefined, details: body }
  })
}

/**
 * Switches a badge on or off for the account (a default is copied into an account row first).
 * False when the account has no such badge; nothing is audited when it was already so.
 */
export async function setBadgeEnabled(
  deps: Pick<ActionDeps, 'db' | 'clock'>,
  actor: Actor,
  input: { appid: string; key: string; enabled: boolean },
): Promise<boolean> {
  const { appid, key, enabled } = input
  const now = deps.clock.now()
  const action = enabled ? 'badge.enable' : 'badge.disable'
  return auditedAction(deps.db, { appid, actor, action, target: key, now }, async (trx) => {
    const rule = (await effectiveBadgeRules(trx, appid)).find((r) => r.key === key)
    if (!rule) return { result: false }
    if (rule.enabled === enabled) return { result: true }
    await trx
      .insertInto('badge_rules')
      .values({
        appid,
        key,
        name: rule.name,
        description: rule.description,
        predicate: JSON.stringify(rule.predicate),
        position: rule.position,
        enabled,
        updated_at: now,
      })
      .onConflict((oc) => oc.columns(['appid', 'key']).doUpdateSet({ enabled, updated_at: now }))
      .execute()
    return { result: true, details: { enabled } }
  })
}
