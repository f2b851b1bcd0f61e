/**
 * The alert rules and their settings. Defaults live here; an account's overrides are one JSON
 * document in `alert_settings`, validated when written (the operator API) and again when read (a
 * field that no longer validates falls back to its default). Deployment-wide rules (`job_stalled`)
 * are evaluated once, on the first configured account, with that account's settings.
 */
import type { Kysely, Transaction } from 'kysely'
import * as v from 'valibot'
import type { Database } from '../db/schema.js'

/** Every rule, by key. */
export const ALERT_RULE_KEYS = [
  'active_members_drop',
  'error_rate',
  'campaign_conversion_drop',
  'reply_latency_p95',
  'outbox_backlog',
  'job_stalled',
  'orders_stuck',
  'refunds_failing',
  'transfers_stuck',
  'transfers_failed',
  'reconciliation_mismatches',
] as const

export type AlertRuleKey = (typeof ALERT_RULE_KEYS)[number]

/** One rule's effective settings. */
export interface RuleSettings {
  enabled: boolean
  /** Compared with the rule's figure (see {@link AlertRuleSpec.compare}). */
  threshold: number
  /** How far back the figure looks, where the rule has a window. */
  windowMinutes?: number
  /** The fewest events (actives, pushes, recipients) a figure needs to be judged at all. */
  minSamples?: number
  /** While open, the alert is delivered again at most this often (≥ 60). */
  repeatMinutes: number
}

/** What a rule measures and how its threshold reads. */
export interface AlertRuleSpec {
  /** `ratio`: a fraction (0.1 = 10 %); `seconds`; `periods` of a job's schedule; `count`. */
  unit: 'ratio' | 'seconds' | 'periods' | 'count'
  /** `above`: alert when the figure > threshold; `atLeast`: when figure ≥ threshold. */
  compare: 'above' | 'atLeast'
  /** `deployment`: evaluated once, on the first account. */
  scope: 'account' | 'deployment'
  defaults: RuleSettings
  /** Bounds of the threshold an operator may set. */
  bounds: { min: number; max: number; integer?: boolean }
}

const HOUR = 60

/** The rules: the plan's real-time monitoring, and the engine's own vital signs. */
export const ALERT_RULES: Record<AlertRuleKey, AlertRuleSpec> = {
  /** Today's active members so far vs. the same time last week: relative drop. */
  active_members_drop: {
    unit: 'ratio',
    compare: 'above',
    scope: 'account',
    defaults: { enabled: true, threshold: 0.1, minSamples: 20, repeatMinutes: HOUR },
    bounds: { min: 0.01, max: 0.99 },
  },
  /** Refused and failed pushes and failed sends, of all pushes and sends, in the window. */
  error_rate: {
    unit: 'ratio',
    compare: 'above',
    scope: 'account',
    defaults: {
      enabled: true,
      threshold: 0.05,
      windowMinutes: 15,
      minSamples: 20,
      repeatMinutes: HOUR,
    },
    bounds: { min: 0.001, max: 0.99 },
  },
  /**
   * A campaign's newest run (whose window is over) converting less than its previous runs:
   * relative drop of the rate of recipients converted within `windowMinutes` of being enqueued.
   */
  campaign_conversion_drop: {
    unit: 'ratio',
    compare: 'above',
    scope: 'account',
    defaults: {
      enabled: true,
      threshold: 0.2,
      windowMinutes: 1440,
      minSamples: 50,
      repeatMinutes: HOUR,
    },
    bounds: { min: 0.01, max: 0.99 },
  },
  /** p95 of received → completed of the pushes received in the window, seconds. */
  reply_latency_p95: {
    unit: 'seconds',
    compare: 'above',
    scope: 'account',
    defaults: {
      enabled: true,
      threshold: 3,
      windowMinutes: 15,
      minSamples: 20,
      repeatMinutes: HOUR,
    },
    bounds: { min: 0.1, max: 600 },
  },
  /** How long the oldest due outbox item of a lane has waited, seconds. */
  outbox_backlog: {
    unit: 'seconds',
    compare: 'above',
    scope: 'account',
    defaults: { enabled: true, threshold: 600, repeatMinutes: HOUR },
    bounds: { min: 60, max: 7 * 86_400, integer: true },
  },
  /** Consecutive scheduled slots of a job without a success. */
  job_stalled: {
    unit: 'periods',
    compare: 'atLeast',
    scope: 'deployment',
    defaults: { enabled: true, threshold: 2, repeatMinutes: HOUR },
    bounds: { min: 1, max: 100, integer: true },
  },
  /**
   * Unpaid orders still `pending` longer than the window after their expiry: shop maintenance
   * (every minute) asks WeChat Pay about each within a minute of its expiry and again every minute
   * while the query fails, so an hour is some 60 failed tries — past a blip of WeChat Pay's — while
   * the order's stock stays held. Names the oldest and the last error (`orders.expire_error`).
   */
  orders_stuck: {
    unit: 'count',
    compare: 'atLeast',
    scope: 'account',
    defaults: { enabled: true, threshold: 1, windowMinutes: HOUR, repeatMinutes: HOUR },
    bounds: { min: 1, max: 1_000_000, integer: true },
  },
  /**
   * Refunds gone `failed` or `abnormal` in the window, plus refunds WeChat Pay keeps refusing
   * (still `requested` after 3 tries or more).
   */
  refunds_failing: {
    unit: 'count',
    compare: 'atLeast',
    scope: 'account',
    defaults: { enabled: true, threshold: 1, windowMinutes: 1440, repeatMinutes: HOUR },
    bounds: { min: 1, max: 1_000_000, integer: true },
  },
  /**
   * Cashback transfers that never reached the member (their points held meanwhile): still
   * `pending` after 3 creates or more (WeChat Pay has not accepted them), or still `pending`,
   * `accepted` or `processing` longer than the window after they were made.
   */
  transfers_stuck: {
    unit: 'count',
    compare: 'atLeast',
    scope: 'account',
    defaults: { enabled: true, threshold: 1, windowMinutes: 1440, repeatMinutes: HOUR },
    bounds: { min: 1, max: 1_000_000, integer: true },
  },
  /**
   * Cashback transfers WeChat Pay ended `fail` in the window (by the time we recorded it) for a
   * reason that is not the member's own (not OVERDUE_CLOSE, MCH_CANCEL or the member's wallet:
   * `MEMBER_SIDE_FAIL_REASONS` in alert-checks.ts), refused creates included. The member gets the points
   * back, but a merchant-side cause (funds, product rights, scene, limits) fails every cashback
   * after it, so the first one is worth a message, as for refunds and stuck transfers.
   */
  transfers_failed: {
    unit: 'count',
    compare: 'atLeast',
    scope: 'account',
    defaults: { enabled: true, threshold: 1, windowMinutes: 1440, repeatMinutes: HOUR },
    bounds: { min: 1, max: 1_000_000, integer: true },
  },
  /** Open reconciliation mismatches (WeChat Pay's bills vs. our orders and refunds). */
  reconciliation_mismatches: {
    unit: 'count',
    compare: 'atLeast',
    scope: 'account',
    defaults: { enabled: true, threshold: 1, repeatMinutes: HOUR },
    bounds: { min: 1, max: 1_000_000, integer: true },
  },
}

/** Whether `value` is past the rule's threshold. */
export const breaches = (spec: AlertRuleSpec, value: number, threshold: number) =>
  spec.compare === 'above' ? value > threshold : value >= threshold

/** An account's effective alert settings. */
export interface AlertSettings {
  rules: Record<AlertRuleKey, RuleSettings>
  /**
   * Chat ids whose group robots get the alerts; null = the default: every configured robot whose
   * chat has a moderator scoped to it.
   */
  robotChats: string[] | null
}

const minutes = (min: number, max: number) =>
  v.pipe(
    v.number(),
    v.integer('must be a whole number'),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  )

/** An override of one rule's settings, as stored and as sent (null drops a field's override). */
export interface RuleOverride {
  enabled?: boolean | null
  threshold?: number | null
  windowMinutes?: number | null
  minSamples?: number | null
  repeatMinutes?: number | null
}

/** The override schema of one rule: only the settings the rule has, its threshold in bounds. */
function ruleOverride(key: AlertRuleKey): v.GenericSchema<unknown, RuleOverride> {
  const spec = ALERT_RULES[key]
  const d = spec.defaults
  const { min, max, integer } = spec.bounds
  const threshold = v.pipe(
    v.number(),
    v.check((n) => Number.isFinite(n), 'must be a number'),
    v.check((n) => !integer || Number.isInteger(n), 'must be a whole number'),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  )
  const entries: v.ObjectEntries = {
    enabled: v.optional(v.nullable(v.boolean())),
    threshold: v.optional(v.nullable(threshold)),
    repeatMinutes: v.optional(v.nullable(minutes(60, 7 * 1440))),
  }
  if (d.windowMinutes !== undefined)
    entries.windowMinutes = v.optional(v.nullable(minutes(1, 7 * 1440)))
  if (d.minSamples !== undefined) entries.minSamples = v.optional(v.nullable(minutes(0, 1_000_000)))
  return v.strictObject(entries) as unknown as v.GenericSchema<unknown, RuleOverride>
}

/** A change of settings: rules' fields (null resets one to its default), robot chats. */
export const alertSettingsPatch = v.strictObject({
  rules: v.optional(
    v.strictObject(
      Object.fromEntries(ALERT_RULE_KEYS.map((k) => [k, v.optional(v.nullable(ruleOverride(k)))])),
    ),
  ),
  robotChats: v.optional(
    v.nullable(
      v.pipe(
        v.array(v.pipe(v.string(), v.minLength(1), v.maxLength(128))),
        v.maxLength(20, 'at most 20 chats'),
      ),
    ),
  ),
})
export type AlertSettingsPatch = v.InferOutput<typeof alertSettingsPatch>

/** What is stored: only the overridden fields. */
export interface StoredSettings {
  rules: Partial<Record<AlertRuleKey, Partial<RuleSettings>>>
  robotChats?: string[]
}

/** Reads the stored overrides; anything that no longer validates is ignored. */
export async function readOverrides(
  db: Kysely<Database>,
  appid: string,
  o: { forUpdate?: boolean } = {},
): Promise<StoredSettings> {
  let q = db.selectFrom('alert_settings').select('settings').where('appid', '=', appid)
  if (o.forUpdate) q = q.forUpdate()
  const row = await q.executeTakeFirst()
  const out: StoredSettings = { rules: {} }
  if (!row) return out
  let raw: { rules?: Record<string, unknown>; robotChats?: unknown }
  try {
    raw = JSON.parse(row.settings)
  } catch {
    return out
  }
  for (const key of ALERT_RULE_KEYS) {
    const parsed = v.safeParse(ruleOverride(key), raw.rules?.[key])
    if (!parsed.success) continue
    const fields = Object.entries(parsed.output).filter(([, x]) => x !== null && x !== undefined)
    if (fields.length > 0) out.rules[key] = Object.fromEntries(fields) as Partial<RuleSettings>
  }
  const chats = v.safeParse(alertSettingsPatch.entries.robotChats, raw.robotChats)
  if (chats.success && chats.output) out.robotChats = chats.output
  return out
}

/** The effective settings: defaults, overridden field by field. */
export async function readAlertSettings(
  db: Kysely<Database>,
  appid: string,
): Promise<AlertSettings> {
  const stored = await readOverrides(db, appid)
  const rules = Object.fromEntries(
    ALERT_RULE_KEYS.map((k) => [k, { ...ALERT_RULES[k].defaults, ...stored.rules[k] }]),
  ) as Record<AlertRuleKey, RuleSettings>
  return { rules, robotChats: stored.robotChats ?? null }
}

/**
 * Applies a validated change to the stored overrides. Run it in a transaction: the account's row is
 * locked while read and written, so concurrent changes of different fields both stay.
 */
export async function writeAlertSettings(
  trx: Transaction<Database>,
  appid: string,
  patch: AlertSettingsPatch,
  now: Date,
): Promise<StoredSettings> {
  await trx
    .insertInto('alert_settings')
    .values({ appid, settings: '{"rules":{}}', updated_at: now })
    .onConflict((oc) => oc.column('appid').doNothing())
    .execute()
  const stored = await readOverrides(trx, appid, { forUpdate: true })
  for (const [key, change] of Object.entries(patch.rules ?? {}) as [
    AlertRuleKey,
    Record<string, unknown> | null | undefined,
  ][]) {
    if (change === undefined) continue
    const next: Record<string, unknown> = change === null ? {} : { ...stored.rules[key] }
    for (const [field, value] of Object.entries(change ?? {}))
      if (value === null) delete next[field]
      else if (value !== undefined) next[field] = value
    if (Object.keys(next).length > 0) stored.rules[key] = next as Partial<RuleSettings>
    else delete stored.rules[key]
  }
  if (patch.robotChats === null) delete stored.robotChats
  else if (patch.robotChats !== undefined) stored.robotChats = patch.robotChats
  await trx
    .updateTable('alert_settings')
    .set({ settings: JSON.stringify(stored), updated_at: now })
    .where('appid', '=', appid)
    .execute()
  return stored
}
