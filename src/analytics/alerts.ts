/**
 * Alerts: every minute each rule's figures (src/analytics/alert-checks.ts) are compared with the
 * account's thresholds. A figure past its threshold opens an episode — one row of `alerts`, unique
 * while open, so evaluators running at once open it once — which is delivered to the moderators
 * (alert-delivery.ts) and shown in the console (GET analytics/alerts). While it stays open it is
 * delivered again at most every `repeatMinutes` (a conditional update of `last_notified_at`, so
 * across instances too); it closes when the figure recovers. An episode opened less than
 * `repeatMinutes` after the previous one of the same rule was delivered is opened quietly and
 * waits for the interval: a figure wavering around its threshold reaches people at most hourly.
 * Each rule's outcome is returned, never thrown: one failing check does not stop the others.
 */
import { type Kysely, sql } from 'kysely'
import { type Locale, type MessageKey, translator } from '../bot/i18n.js'
import type { QuietHours } from '../community/community-time.js'
import type { GroupRobots } from '../community/moderation.js'
import type { Database } from '../db/schema.js'
import {
  ALERT_CHECKS,
  type CheckContext,
  type Observation,
  type OpenMismatches,
  openMismatchesFromTable,
} from './alert-checks.js'
import { deliverAlert } from './alert-delivery.js'
import {
  ALERT_RULE_KEYS,
  ALERT_RULES,
  type AlertRuleKey,
  type AlertRuleSpec,
  breaches,
  readAlertSettings,
} from './alert-rules.js'

/** What an evaluation needs. */
export interface EvaluateOptions {
  db: Kysely<Database>
  appid: string
  now: Date
  timeZone: string
  locale: Locale
  quietHours: QuietHours | null
  robots: GroupRobots
  /** The scheduled jobs: given on the first account only (deployment-wide rules). */
  jobs?: readonly { name: string; cron: string }[]
  /** Open reconciliation mismatches; by default read from their table when it exists. */
  mismatches?: OpenMismatches
  /**
   * Whether the account sends (has a WECHAT_SECRET; default true). Without, no outbox worker runs
   * for it: its backlog is not judged and moderators are told through the robots only.
   */
  sends?: boolean
}

/** What happened to one alert (or rule) in an evaluation. */
export type AlertOutcome =
  | { rule: AlertRuleKey; dim: string; event: 'opened' | 'repeated'; id: number; notified: boolean }
  | { rule: AlertRuleKey; dim: string; event: 'closed'; id: number }
  | { rule: AlertRuleKey; event: 'skipped'; reason: 'disabled' | 'no data' | 'not here' }
  | { rule: AlertRuleKey; event: 'failed'; error: string }

/** Evaluates every rule for one account. */
export async function evaluateAlerts(o: EvaluateOptions): Promise<AlertOutcome[]> {
  const settings = await readAlertSettings(o.db, o.appid)
  const out: AlertOutcome[] = []
  for (const rule of ALERT_RULE_KEYS) {
    const spec = ALERT_RULES[rule]
    const s = settings.rules[rule]
    try {
      if (!s.enabled) {
        for (const c of await closeOpen(o, rule, null)) out.push({ rule, event: 'closed', ...c })
        out.push({ rule, event: 'skipped', reason: 'disabled' })
        continue
      }
      if (
        (spec.scope === 'deployment' && !o.jobs) ||
        (rule === 'outbox_backlog' && o.sends === false)
      ) {
        out.push({ rule, event: 'skipped', reason: 'not here' })
        continue
      }
      const context: CheckContext = {
        db: o.db,
        appid: o.appid,
        now: o.now,
        timeZone: o.timeZone,
        settings: s,
        quietHours: o.quietHours,
        jobs: o.jobs ?? [],
        mismatches: o.mismatches ?? openMismatchesFromTable,
      }
      const observations = await ALERT_CHECKS[rule](context)
      if (observations === null) {
        out.push({ rule, event: 'skipped', reason: 'no data' })
        continue
      }
      for (const ob of observations) {
        if (!ob.judged) continue
        if (breaches(spec, ob.value, s.threshold)) {
          const text = message(o.locale, rule, spec, ob, s.threshold)
          const r = await openOrRepeat(o, rule, ob, s.threshold, s.repeatMinutes, text)
          if (r.notify)
            await deliverAlert(o.db, {
              alert: { id: r.id, appid: o.appid, notifications: r.notifications },
              text: r.repeat
                ? translator(o.locale)('alert.repeat', { minutes: r.openMinutes, text })
                : translator(o.locale)('alert.open', { text }),
              robots: o.robots,
              robotChats: settings.robotChats,
              members: o.sends !== false,
              now: o.now,
            })
          if (r.event !== 'unchanged')
            out.push({ rule, dim: ob.dim, event: r.event, id: r.id, notified: r.notify })
        } else {
          for (const c of await closeOpen(o, rule, [ob.dim], ob.value))
            out.push({ rule, event: 'closed', ...c })
        }
      }
      // Dimensions no longer observed (a finished campaign, a removed job) recover.
      const seen = observations.map((x) => x.dim)
      for (const c of await closeOpen(o, rule, null, undefined, seen))
        out.push({ rule, event: 'closed', ...c })
    } catch (error) {
      out.push({ rule, event: 'failed', error: String(error) })
    }
  }
  return out
}

/** The rule's message with its figure and threshold. */
function message(
  locale: Locale,
  rule: AlertRuleKey,
  spec: AlertRuleSpec,
  ob: Observation,
  threshold: number,
): string {
  const shown =
    spec.unit === 'ratio'
      ? `${(Math.round(threshold * 1000) / 10).toFixed(1)}%`
      : spec.unit === 'seconds'
        ? `${threshold}s`
        : String(threshold)
  return translator(locale)(`alert.rule.${rule}` as MessageKey, { ...ob.params, threshold: shown })
}

type OpenResult = {
  id: number
  notifications: number
  notify: boolean
  repeat: boolean
  openMinutes: number
  event: 'opened' | 'repeated' | 'unchanged'
}

/** Opens the episode, or moves the open one's figure and, when its interval has passed, repeats. */
async function openOrRepeat(
  o: EvaluateOptions,
  rule: AlertRuleKey,
  ob: Observation,
  threshold: number,
  repeatMinutes: number,
  text: string,
): Promise<OpenResult> {
  const repeatBefore = new Date(o.now.getTime() - repeatMinutes * 60_000)
  const opened = await sql<{ id: number; notifications: number }>`
    insert into alerts (appid, rule, dim, status, opened_at, last_notified_at, notifications,
      value, threshold, message, evaluated_at)
    select ${o.appid}, ${rule}, ${ob.dim}, 'open', ${o.now}::timestamptz,
      coalesce(p.at, ${o.now}::timestamptz), case when p.at is null then 1 else 0 end,
      ${ob.value}, ${threshold}, ${text}, ${o.now}::timestamptz
    from (select max(last_notified_at) as at from alerts
      where appid = ${o.appid} and rule = ${rule} and dim = ${ob.dim}
        and last_notified_at > ${repeatBefore}::timestamptz) p
    on conflict (appid, rule, dim) where status = 'open' do nothing
    returning id, notifications`.execute(o.db)
  const row = opened.rows[0]
  if (row) {
    const n = Number(row.notifications)
    return {
      id: Number(row.id),
      notifications: n,
      notify: n > 0,
      repeat: false,
      openMinutes: 0,
      event: 'opened',
    }
  }
  const repeated = await o.db
    .updateTable('alerts')
    .set((eb) => ({
      last_notified_at: o.now,
      notifications: eb('notifications', '+', 1),
      value: ob.value,
      threshold,
      message: text,
      evaluated_at: o.now,
    }))
    .where('appid', '=', o.appid)
    .where('rule', '=', rule)
    .where('dim', '=', ob.dim)
    .where('status', '=', 'open')
    .where((eb) =>
      eb.or([eb('last_notified_at', 'is', null), eb('last_notified_at', '<=', repeatBefore)]),
    )
    .returning(['id', 'notifications', 'opened_at'])
    .executeTakeFirst()
  if (repeated)
    return {
      id: Number(repeated.id),
      notifications: Number(repeated.notifications),
      notify: true,
      repeat: true,
      openMinutes: Math.round((o.now.getTime() - new Date(repeated.opened_at).getTime()) / 60_000),
      event: 'repeated',
    }
  const moved = await o.db
    .updateTable('alerts')
    .set({ value: ob.value, threshold, message: text, evaluated_at: o.now })
    .where('appid', '=', o.appid)
    .where('rule', '=', rule)
    .where('dim', '=', ob.dim)
    .where('status', '=', 'open')
    .returning(['id', 'notifications'])
    .executeTakeFirst()
  return {
    id: Number(moved?.id ?? 0),
    notifications: Number(moved?.notifications ?? 0),
    notify: false,
    repeat: false,
    openMinutes: 0,
    event: 'unchanged',
  }
}

/** Closes open alerts of a rule: of `dims`, of every dim (null), or of every dim not in `keep`. */
async function closeOpen(
  o: EvaluateOptions,
  rule: AlertRuleKey,
  dims: string[] | null,
  value?: number,
  keep?: string[],
): Promise<{ id: number; dim: string }[]> {
  let q = o.db
    .updateTable('alerts')
    .set({
      status: 'closed',
      closed_at: o.now,
      evaluated_at: o.now,
      ...(value === undefined ? {} : { value }),
    })
    .where('appid', '=', o.appid)
    .where('rule', '=', rule)
    .where('status', '=', 'open')
  if (dims) q = q.where('dim', 'in', dims)
  if (keep && keep.length > 0) q = q.where('dim', 'not in', keep)
  const rows = await q.returning(['id', 'dim']).execute()
  return rows.map((r) => ({ id: Number(r.id), dim: r.dim }))
}

/** Open alerts and the most recent ones (closed too), newest first. */
export async function listAlerts(db: Kysely<Database>, appid: string, o: { limit: number }) {
  const columns = [
    'id',
    'rule',
    'dim',
    'status',
    'opened_at',
    'last_notified_at',
    'notifications',
    'closed_at',
    'value',
    'threshold',
    'message',
    'evaluated_at',
    'delivery',
  ] as const
  const shape = <R extends { delivery: string | null }>(r: R) => ({
    ...r,
    delivery: r.delivery ? (JSON.parse(r.delivery) as unknown) : null,
  })
  const open = await db
    .selectFrom('alerts')
    .select(columns)
    .where('appid', '=', appid)
    .where('status', '=', 'open')
    .orderBy('opened_at', 'desc')
    .execute()
  const recent = await db
    .selectFrom('alerts')
    .select(columns)
    .where('appid', '=', appid)
    .orderBy('opened_at', 'desc')
    .orderBy('id', 'desc')
    .limit(o.limit)
    .execute()
  return { open: open.map(shape), recent: recent.map(shape) }
}
