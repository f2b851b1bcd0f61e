/**
 * What each alert rule measures, read from the database (so every instance sees the same figures):
 * a check returns one observation per dimension — a lane, a job, a campaign — or null when the rule
 * cannot be judged at all right now (no baseline yet, a table that does not exist). An observation
 * that is not `judged` (too few events) leaves its alert as it is.
 */
import { type Kysely, sql } from 'kysely'
import type { QuietHours } from '../community/community-time.js'
import { localDay, localMinutes, quietHoursEnd } from '../community/community-time.js'
import type { Database } from '../db/schema.js'
import type { AlertRuleKey, RuleSettings } from './alert-rules.js'
import { activeOn } from './facts.js'
import { jobSlotsSince } from './job-slots.js'
import { readTraffic } from './traffic-counter.js'

/** One figure of a rule. */
export interface Observation {
  dim: string
  value: number
  /** False when there were too few events to judge (its alert is left as it is). */
  judged: boolean
  /** Parameters of the rule's message (`alert.rule.<key>`). */
  params: Record<string, string | number>
}

/** Open reconciliation mismatches of an account; null when reconciliation is not set up. */
export type OpenMismatches = (db: Kysely<Database>, appid: string) => Promise<number | null>

/** What a check gets. */
export interface CheckContext {
  db: Kysely<Database>
  appid: string
  now: Date
  timeZone: string
  settings: RuleSettings
  quietHours: QuietHours | null
  /** The scheduled jobs (deployment rules are given them on the first account only). */
  jobs: readonly { name: string; cron: string }[]
  mismatches: OpenMismatches
}

export type Check = (c: CheckContext) => Promise<Observation[] | null>

const MINUTE = 60_000
/** How far back "the same time last week" may be found when the sample of that minute is missing. */
const SAMPLE_TOLERANCE_MS = 15 * MINUTE
/** The metric recorded each minute for {@link ALERT_CHECKS.active_members_drop}. */
export const ACTIVES_SO_FAR = 'activity.actives_so_far'

/** A fraction rounded to 9 decimals, so a figure exactly at its threshold compares as equal. */
const fraction = (part: number, whole: number) =>
  whole === 0 ? 0 : Math.round((part / whole) * 1e9) / 1e9
const percent = (x: number) => `${(Math.round(x * 1000) / 10).toFixed(1)}%`
const windowStart = (c: CheckContext) =>
  new Date(c.now.getTime() - c.settings.windowMinutes! * MINUTE)
const enough = (c: CheckContext, n: number) => n >= (c.settings.minSamples ?? 0) && n > 0

/**
 * Open mismatches of the account's daily reconciliation (src/shop/reconcile.ts); null while the
 * account has no reconciliation run (no shop, or the first bill is not in yet): the rule is skipped.
 */
export const openMismatchesFromTable: OpenMismatches = async (db, appid) => {
  const r = await sql<{ runs: number; n: number }>`
    select (select count(*) from (select 1 from reconciliation_runs where appid = ${appid} limit 1) x)::int
        as runs,
      (select count(*) from reconciliation_mismatches m
        join reconciliation_runs r on r.id = m.run_id
        where r.appid = ${appid} and m.status = 'open')::int as n`.execute(db)
  const row = r.rows[0]
  return row && Number(row.runs) > 0 ? Number(row.n) : null
}

/**
 * Transfer `fail_reason`s (wechatpay-v3-transfers-bills.md §1.9) that are the member's own doing
 * or about the member's own wallet, which only the member can fix and which stop no one else's
 * cashback: not counted by {@link ALERT_CHECKS.transfers_failed}. Every other reason is the
 * merchant's to fix and counted — PAYER_ACCOUNT_ABNORMAL, PRODUCT_AUTH_CHECK_FAIL,
 * TRANSFER_SCENE_INVALID / _UNAVAILABLE (our merchant account, product, scene); TRANSFER_QUOTA_EXCEED,
 * DAY_RECEIVED_COUNT_EXCEED / _QUOTA_EXCEED (limits set per scene in 商户平台, §1.8);
 * BLOCK_B2C_USERLIMITAMOUNT_MONTH and TRANSFER_RISK (WeChat Pay limiting what we pay: amounts or
 * frequency to revisit); OPENID_INVALID and NAME_NOT_CORRECT (data we send; we send no name);
 * OTHER_FAIL_REASON_TYPE and anything new.
 */
export const MEMBER_SIDE_FAIL_REASONS = [
  // the member did not confirm within 24 h (§1.3: also funds never locked in 24 h — a bill that
  // sat in `processing` that long, which transfers_stuck tells of while it sits there)
  'OVERDUE_CLOSE',
  // we cancelled it (an operator, or our cancel at the end of the confirmation window)
  'MCH_CANCEL',
  // the member's wallet: frozen, gone, abnormal, not real-name verified, its own receiving cap
  'ACCOUNT_FROZEN',
  'ACCOUNT_NOT_EXIST',
  'PAYEE_ACCOUNT_ABNORMAL',
  'REAL_NAME_CHECK_FAIL',
  'REALNAME_ACCOUNT_RECEIVED_QUOTA_EXCEED',
]

/** The checks, by rule. */
export const ALERT_CHECKS: Record<AlertRuleKey, Check> = {
  // member_days has no time of day, and inbound_events is pruned a week back at 04:17, so neither
  // can say how many were active by this time a week ago. The evaluator records today's actives
  // so far each minute (alert_samples) and reads the sample of a week before: the comparison is
  // exact to the minute, and starts one week after the job first ran.
  async active_members_drop(c) {
    const day = localDay(c.now, c.timeZone)
    // Today's actives as DAU counts them (facts.ts `activeDays`: buyers, check-ins and sign-ups
    // too, not only the members the push has written a member_days row for).
    const { rows } = await sql<{
      n: number
    }>`select count(*) as n from (${activeOn(c.appid, c.timeZone, day)}) a`.execute(c.db)
    const actives = Number(rows[0]!.n)
    const minute = new Date(Math.floor(c.now.getTime() / MINUTE) * MINUTE)
    await c.db
      .insertInto('alert_samples')
      .values({ appid: c.appid, metric: ACTIVES_SO_FAR, at: minute, value: actives })
      .onConflict((oc) => oc.columns(['appid', 'metric', 'at']).doUpdateSet({ value: actives }))
      .execute()
    const weekAgo = new Date(c.now.getTime() - 7 * 86_400_000)
    const past = await c.db
      .selectFrom('alert_samples')
      .select('value')
      .where('appid', '=', c.appid)
      .where('metric', '=', ACTIVES_SO_FAR)
      .where('at', '<=', weekAgo)
      .where('at', '>', new Date(weekAgo.getTime() - SAMPLE_TOLERANCE_MS))
      .orderBy('at', 'desc')
      .limit(1)
      .executeTakeFirst()
    if (!past) return null
    const baseline = Number(past.value)
    const drop = fraction(baseline - actives, baseline)
    return [
      {
        dim: '',
        value: drop,
        judged: enough(c, baseline),
        params: { drop: percent(drop), actives, baseline },
      },
    ]
  },

  async error_rate(c) {
    const from = windowStart(c)
    const pushes = await c.db
      .selectFrom('inbound_events')
      .select([
        (eb) => eb.fn.countAll<number>().as('n'),
        sql<number>`count(*) filter (where status = 'failed')`.as('failed'),
      ])
      .where('appid', '=', c.appid)
      .where('received_at', '>', from)
      .where('received_at', '<=', c.now)
      .executeTakeFirstOrThrow()
    const t = await readTraffic(c.db, c.appid, from, c.now)
    const failed = Number(pushes.failed)
    const errors = failed + t.push_refused + t.send_failed
    const total = Number(pushes.n) + t.push_refused + t.send_sent + t.send_failed
    const rate = fraction(errors, total)
    return [
      {
        dim: '',
        value: rate,
        judged: enough(c, total),
        params: {
          rate: percent(rate),
          window: c.settings.windowMinutes!,
          errors,
          total,
          failed,
          refused: t.push_refused,
          sendFailed: t.send_failed,
        },
      },
    ]
  },

  // The time a member waits: received → completed (the reply, or the follow-up of a deferred
  // one); pushes still being handled count as waiting until now. Across every instance.
  async reply_latency_p95(c) {
    const { rows } = await sql<{ n: number; p95: number | null }>`
      select count(*)::int as n, percentile_cont(0.95) within group (
          order by extract(epoch from coalesce(completed_at, ${c.now}::timestamptz) - received_at))
        as p95
      from inbound_events
      where appid = ${c.appid} and received_at > ${windowStart(c)} and received_at <= ${c.now}`.execute(
      c.db,
    )
    const n = Number(rows[0]?.n ?? 0)
    const p95 = Number(rows[0]?.p95 ?? 0)
    return [
      {
        dim: '',
        value: p95,
        judged: enough(c, n),
        params: { p95: p95.toFixed(1), window: c.settings.windowMinutes!, count: n },
      },
    ]
  },

  // Due items per lane (push_outbox_due_idx). Campaign items wait through the quiet hours by
  // design, so that lane is not judged inside them and its wait counts from their end.
  async outbox_backlog(c) {
    const rows = await c.db
      .selectFrom('push_outbox')
      .select([
        'lane',
        (eb) => eb.fn.countAll<number>().as('n'),
        (eb) => eb.fn.min('next_attempt_at').as('oldest'),
      ])
      .where('appid', '=', c.appid)
      .where('status', 'in', ['pending', 'sending'])
      .where('next_attempt_at', '<=', c.now)
      .groupBy('lane')
      .execute()
    const quiet = quietHoursEnd(c.now, c.quietHours, c.timeZone) !== null
    const quietEnded = lastQuietEnd(c.now, c.quietHours, c.timeZone)
    return (['reply', 'notice', 'campaign'] as const).map((lane, i) => {
      const row = rows.find((r) => Number(r.lane) === i)
      let since = row ? new Date(row.oldest as Date).getTime() : c.now.getTime()
      if (i === 2 && quietEnded) since = Math.max(since, quietEnded.getTime())
      const seconds = Math.max(0, Math.round((c.now.getTime() - since) / 1000))
      return {
        dim: lane,
        value: i === 2 && quiet ? 0 : seconds,
        judged: !(i === 2 && quiet),
        params: { lane, minutes: Math.round(seconds / 60), count: Number(row?.n ?? 0) },
      }
    })
  },

  async job_stalled(c) {
    if (c.jobs.length === 0) return null
    const { rows } = await sql<{ job: string; last_success: Date | null; first_run: Date | null }>`
      select j.name as job,
        (select max(slot) from job_runs r where r.job = j.name and r.status = 'succeeded')
          as last_success,
        (select min(slot) from job_runs r where r.job = j.name) as first_run
      from (values ${sql.join(c.jobs.map((j) => sql`(${j.name})`))}) as j(name)`.execute(c.db)
    const out: Observation[] = []
    for (const job of c.jobs) {
      const row = rows.find((r) => r.job === job.name)
      // A job that never ran here (just deployed, or no scheduler yet) is not judged; slots
      // before its first run were never going to run.
      if (!row?.first_run) {
        out.push({ dim: job.name, value: 0, judged: false, params: { job: job.name } })
        continue
      }
      const lastSuccess = row.last_success ? new Date(row.last_success) : null
      const after = new Date(
        Math.max(new Date(row.first_run).getTime() - 1, lastSuccess?.getTime() ?? 0),
      )
      const running = await c.db
        .selectFrom('job_runs')
        .select('slot')
        .where('job', '=', job.name)
        .where('slot', '>', after)
        // Running with a live lease, or paused between two bounded invocations (Workers): the
        // job's next tick resumes it. A paused run excuses its own slot only; the runs of a job
        // gone from the list, which no tick resumes, are closed by the retention job.
        .where((eb) =>
          eb.or([
            eb.and([eb('status', '=', 'running'), eb('lease_until', '>', c.now)]),
            eb('status', '=', 'paused'),
          ]),
        )
        .execute()
      const inProgress = new Set(running.map((r) => new Date(r.slot).getTime()))
      const missed = jobSlotsSince(job.cron, c.timeZone, after, c.now).filter(
        (s) => !inProgress.has(s.getTime()),
      ).length
      out.push({
        dim: job.name,
        value: missed,
        judged: true,
        params: {
          job: job.name,
          missed,
          lastSuccess: lastSuccess ? lastSuccess.toISOString() : '—',
        },
      })
    }
    return out
  },

  // Orders shop maintenance could not expire (src/shop/maintenance.ts): its query or close keeps
  // failing — an unsigned 404 (UNVERIFIED_NOT_FOUND), a wrong base URL, broken credentials,
  // WeChat Pay down. Read through orders_pending_expiry_idx (pending orders only, by expiry).
  async orders_stuck(c) {
    const row = await c.db
      .selectFrom('orders')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .select((eb) => eb.fn.min('expires_at').as('oldest_at'))
      .select(sql<string | null>`(array_agg(out_trade_no order by expires_at, id))[1]`.as('oldest'))
      // the latest of maintenance's errors, for the message
      .select(
        sql<string | null>`(array_agg(expire_error order by queried_at desc nulls last)
          filter (where expire_error is not null))[1]`.as('error'),
      )
      .where('appid', '=', c.appid)
      .where('status', '=', 'pending')
      .where('expires_at', '<', windowStart(c))
      .executeTakeFirstOrThrow()
    const n = Number(row.n)
    const overdue = row.oldest_at ? c.now.getTime() - new Date(row.oldest_at).getTime() : 0
    return [
      {
        dim: '',
        value: n,
        judged: true,
        params: {
          count: n,
          hours: Math.round((c.settings.windowMinutes! / 60) * 10) / 10,
          oldest: row.oldest ?? '—',
          overdueHours: Math.round((overdue / 3_600_000) * 10) / 10,
          error: row.error?.slice(0, 80) ?? '—',
        },
      },
    ]
  },

  async refunds_failing(c) {
    const row = await c.db
      .selectFrom('refunds as r')
      .innerJoin('orders as o', 'o.id', 'r.order_id')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('o.appid', '=', c.appid)
      .where((eb) =>
        eb.or([
          eb.and([
            eb('r.status', 'in', ['failed', 'abnormal']),
            eb('r.updated_at', '>', windowStart(c)),
          ]),
          eb.and([eb('r.status', '=', 'requested'), eb('r.attempts', '>=', 3)]),
        ]),
      )
      .executeTakeFirstOrThrow()
    const n = Number(row.n)
    return [{ dim: '', value: n, judged: true, params: { count: n } }]
  },

  // Transfers carry their account's appid (the redemption's; `pay_appid` is the mini program
  // paying). Only states before the member can confirm count: a bill waiting for the member
  // ends by itself (cancelled after 24 h, OVERDUE_CLOSE → `fail`, points back), and `fail` or
  // `cancelled` are final — a member not confirming is normal, not an operator's problem.
  async transfers_stuck(c) {
    const row = await c.db
      .selectFrom('transfers')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      // what WeChat Pay (or the network) last said to one of them — `403 NOT_ENOUGH 资金不足`
      // tells the operator to top up — for the message
      .select(
        sql<string | null>`(array_agg(error order by updated_at desc)
          filter (where error is not null))[1]`.as('error'),
      )
      .where('appid', '=', c.appid)
      .where((eb) =>
        eb.or([
          // creates unanswered or transiently refused; from the 10th on it is TRANSFER_UNCONFIRMED,
          // sent again every 6 h for as long as WeChat Pay has no such bill
          eb.and([eb('state', '=', 'pending'), eb('attempts', '>=', 3)]),
          eb.and([
            eb('state', 'in', ['pending', 'accepted', 'processing']),
            eb('created_at', '<', windowStart(c)),
          ]),
        ]),
      )
      .executeTakeFirstOrThrow()
    const n = Number(row.n)
    return [
      {
        dim: '',
        value: n,
        judged: true,
        params: {
          count: n,
          hours: Math.round((c.settings.windowMinutes! / 60) * 10) / 10,
          error: row.error?.slice(0, 80) ?? '—',
        },
      },
    ]
  },

  // A bill ends `fail` through settleTransfer (src/shop/transfers.ts) — on a create, query or
  // cancel answer, a MCHTRANSFER.BILL.FINISHED notification, or a create WeChat Pay refused for
  // good (fail_reason = its error code: NO_AUTH, PARAM_ERROR, INVALID_REQUEST …, all ours to fix)
  // — which stamps `settled_at`: the window counts from when it failed, not when it was made.
  // NOT_ENOUGH and other retried refusals keep it `pending`: transfers_stuck tells of those.
  async transfers_failed(c) {
    const rows = await c.db
      .selectFrom('transfers')
      .select([
        'fail_reason',
        (eb) => eb.fn.countAll<number>().as('n'),
        (eb) => eb.fn.max('settled_at').as('last'),
      ])
      .where('appid', '=', c.appid)
      .where('state', '=', 'fail')
      .where('settled_at', '>', windowStart(c))
      .where('settled_at', '<=', c.now)
      // No reason, or one we do not know, counts: a new refusal must not go unseen.
      .where((eb) =>
        eb.or([
          eb('fail_reason', 'is', null),
          eb('fail_reason', 'not in', MEMBER_SIDE_FAIL_REASONS),
        ]),
      )
      .groupBy('fail_reason')
      .execute()
    // The most frequent reason is what the operator fixes; on a tie the latest, then by name.
    const ranked = rows
      .map((r) => ({
        reason: r.fail_reason ?? '—',
        n: Number(r.n),
        last: new Date(r.last as Date).getTime(),
      }))
      .sort((a, b) => b.n - a.n || b.last - a.last || a.reason.localeCompare(b.reason))
    const n = ranked.reduce((sum, r) => sum + r.n, 0)
    return [
      {
        dim: '',
        value: n,
        judged: true,
        params: {
          count: n,
          reason: ranked[0]?.reason ?? '—',
          reasonCount: ranked[0]?.n ?? 0,
          hours: Math.round((c.settings.windowMinutes! / 60) * 10) / 10,
        },
      },
    ]
  },

  async reconciliation_mismatches(c) {
    const n = await c.mismatches(c.db, c.appid)
    if (n === null) return null
    return [{ dim: '', value: n, judged: true, params: { count: n } }]
  },

  // Per campaign still running: its newest run whose window is over vs. its up to 7 runs before
  // (30 days back at most); conversion = recipients converted within the window of being enqueued.
  async campaign_conversion_drop(c) {
    const windowMs = c.settings.windowMinutes! * MINUTE
    const { rows } = await sql<{
      id: number
      name: string
      recent_n: number
      recent_converted: number
      trailing_n: number
      trailing_converted: number
    }>`
      with runs as (
        select r.campaign_id, r.slot,
          row_number() over (partition by r.campaign_id order by r.slot desc) as k
        from campaign_runs r join campaigns c on c.id = r.campaign_id
        where c.appid = ${c.appid} and c.status in ('scheduled', 'running', 'paused')
          and r.status in ('enqueued', 'stopped')
          and r.slot <= ${new Date(c.now.getTime() - windowMs)}
          and r.slot > ${new Date(c.now.getTime() - 30 * 86_400_000)}
      ), rates as (
        select x.campaign_id, x.k, count(*) as n,
          count(*) filter (where cr.converted_at is not null
            and cr.converted_at <= cr.enqueued_at + ${`${windowMs / 1000} seconds`}::interval)
            as converted
        from runs x join campaign_recipients cr
          on cr.campaign_id = x.campaign_id and cr.slot = x.slot and cr.outcome = 'enqueued'
        where x.k <= 8
        group by x.campaign_id, x.k
      )
      select c.id, c.name,
        coalesce(sum(n) filter (where k = 1), 0)::int as recent_n,
        coalesce(sum(converted) filter (where k = 1), 0)::int as recent_converted,
        coalesce(sum(n) filter (where k > 1), 0)::int as trailing_n,
        coalesce(sum(converted) filter (where k > 1), 0)::int as trailing_converted
      from campaigns c join rates on rates.campaign_id = c.id
      group by c.id, c.name order by c.id`.execute(c.db)
    return rows.map((r) => {
      const recent = fraction(r.recent_converted, r.recent_n)
      const trailing = fraction(r.trailing_converted, r.trailing_n)
      // (trailing − recent) ÷ trailing, from the counts
      const drop = fraction(
        r.trailing_converted * r.recent_n - r.recent_converted * r.trailing_n,
        r.trailing_converted * r.recent_n,
      )
      return {
        dim: String(r.id),
        value: drop,
        judged: enough(c, r.recent_n) && enough(c, r.trailing_n) && trailing > 0,
        params: {
          name: r.name,
          rate: percent(recent),
          trailing: percent(trailing),
          drop: percent(drop),
        },
      }
    })
  },
}

/** The most recent end of the quiet hours at or before `at` (null without quiet hours). */
function lastQuietEnd(at: Date, quiet: QuietHours | null, timeZone: string): Date | null {
  if (!quiet || quiet.from === quiet.to) return null
  const since = (localMinutes(at, timeZone) - quiet.to + 1440) % 1440
  return new Date((Math.floor(at.getTime() / MINUTE) - since) * MINUTE)
}
