/**
 * Lifecycle journeys: data-defined reactions to segment transitions (segments.ts records them).
 * A journey (an account's row in `journeys`) names the segment whose entry starts it and its steps
 * (journey-steps.ts). `runJourneys` — the `journeys` job — moves every journey on, set-based, with
 * one statement per task and per step however many members are on it:
 *
 *   1. transitions since the journey's watermark (`enrolled_through`, a transition id read after
 *      waiting for a running segment recompute to commit): members who left the journey's segment
 *      end as `left`; members who entered it start (active journeys only), once per
 *      (journey, member, transition) — a unique constraint, so parallel runs start each once;
 *      a first step due at once (no delay, no cap) goes out in the statement that starts them;
 *   2. conversions: members active or buying since the last mark (a watermark, as for campaigns)
 *      whose last received step's goal is met (the last step whose push was sent, after it was
 *      sent: a step queued, failed or skipped reached no one) end as `converted` (activity counts as for
 *      campaigns: not the 退订 itself, once a minute old — marketing-opt-out.ts), and are credited
 *      its offer when within its days; their queued pushes are cancelled as for those who left;
 *   3. each step: due enrollments (`FOR UPDATE SKIP LOCKED`, so parallel runs share them) get the
 *      step — skipped when opted out (退订), not following or capped (the campaign frequency cap,
 *      when the step has `cap`) — through the outbox's campaign lane (quiet hours hold it there,
 *      as for campaigns), and move to the next step, or wait `JOURNEY_TAIL_DAYS` for a conversion;
 *   4. enrollments past their last step and its tail end as `completed`.
 *
 * Paused journeys neither start nor send (their queued pushes are held, journey-catalog.ts) but
 * still end enrollments that convert or leave. The status is read again, under the journey row's
 * lock, in every transaction that starts members or sends a step (FOR SHARE, as campaigns do per
 * batch): a pause committed while a run is in progress takes effect within one batch, and one
 * waiting for a batch's lock holds what that batch queued. Steps go out in descending order within
 * a run, so an enrollment advances at most one step per run even after downtime.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely'
import type { Translate } from '../bot/i18n.js'
import type { Budget } from '../budget.js'
import { inParallel, keyedJoins, noJit } from '../db/keyed-joins.js'
import type { Database, Segment } from '../db/schema.js'
import { afterQuietHours, type CampaignSettings, capBoundary, capTime } from './campaigns.js'
import { messageWindowOpen } from './cs-window.js'
import {
  JOURNEY_TAIL_DAYS,
  type JourneyGoal,
  type JourneyStep,
  journeySourcePrefix,
  stepMessage,
} from './journey-steps.js'
import { LEVELS } from './levels.js'
import { CONVERSION_SETTLE_MS, convertingActivity, settledBy } from './marketing-opt-out.js'
import { LANE } from './outbox.js'
import { changePoints } from './points-ledger.js'

/** How a run goes. */
export interface JourneyRunOptions {
  /** The job's slot (the cap compares slots, as for campaigns). */
  slot: Date
  now: Date
  settings: Pick<CampaignSettings, 'timeZone' | 'capHours' | 'capSlackMinutes' | 'quietHours'>
  t: Translate
  /** Enrollments per send statement (default 50 000); a step repeats until none is due. */
  batchSize?: number
  /** Send batches run at once, on as many connections (default 2; see {@link inParallel}). */
  parallel?: number
  /**
   * Asked between send batches (Workers' bounded invocations): when spent, the run stops sending;
   * due enrollments stay due (`next_at`) for the next run.
   */
  budget?: Budget
}

/** What a run did. */
export interface JourneyRunResult {
  started: number
  left: number
  converted: number
  enqueued: number
  skipped: number
  completed: number
}

interface JourneyRow {
  id: number
  appid: string
  segment: Segment
  status: 'active' | 'paused'
  steps: JourneyStep[]
}

/** Runs every account's journeys once (the `journeys` job). */
export async function runJourneys(
  db: Kysely<Database>,
  o: JourneyRunOptions,
): Promise<JourneyRunResult> {
  const result = { started: 0, left: 0, converted: 0, enqueued: 0, skipped: 0, completed: 0 }
  const journeys = (
    await db
      .selectFrom('journeys')
      .select(['id', 'appid', 'segment', 'status', 'steps'])
      .where('appid', '<>', '*')
      .orderBy('id')
      .execute()
  ).map((j) => ({ ...j, steps: JSON.parse(j.steps) as JourneyStep[] }))
  // journey id → its transition watermark before this run, for the journeys whose first step went
  // out as their members started (conversions leave those enrollments to the next run, as when
  // the step went out after the conversions)
  const sentOnStart = new Map<number, number>()
  for (const j of journeys) {
    const moved = await followTransitions(db, j, o)
    result.started += moved.started
    result.left += moved.left
    result.enqueued += moved.enqueued
    result.skipped += moved.skipped
    if (moved.sentOnStart) sentOnStart.set(j.id, moved.through)
  }
  result.converted = await markJourneyConversions(db, journeys, o, sentOnStart)
  for (const j of journeys) {
    // as read at the start (each batch checks again: a pause since then stops it)
    if (j.status === 'active')
      for (let k = j.steps.length - 1; k >= 0; k--) {
        const sent = await sendStep(db, j, k, o)
        result.enqueued += sent.enqueued
        result.skipped += sent.skipped
      }
    result.completed += await completeJourney(db, j, o.now)
  }
  return result
}

/**
 * Cancels the queued pushes of enrollments that ended (converted or left): the CTEs `sources` and
 * `cancelled`, after a CTE named `ended` (id, appid). The sources are materialized first, so each
 * is found by the outbox's (appid, source) index — joined directly, the planner once walked every
 * pending push of the account per ended enrollment (29 s for 200 at 10,000 members).
 */
const cancelQueued = (ended: string) => sql`sources as materialized (
    select x.appid, s.outbox_source as source
    from ${sql.raw(ended)} x join journey_sends s on s.enrollment_id = x.id
    where s.outbox_source is not null
  ), cancelled as (
    update push_outbox o set status = 'cancelled', errmsg = 'journey ended'
    from sources q
    where o.appid = q.appid and o.source = q.source and o.status in ('pending', 'held')
  )`

/**
 * Step 1: the transitions recorded since the journey's watermark. Waits for a segment recompute
 * in progress (its advisory lock, shared), so every transition id up to the maximum read is
 * committed; the journey row's lock serializes parallel runs of one journey, and its status is
 * read under it (a pause since the run read the journeys starts no one).
 */
async function followTransitions(db: Kysely<Database>, j: JourneyRow, o: JourneyRunOptions) {
  const now = o.now
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock_shared(hashtext('quanzi:recompute-segments'))`.execute(
      trx,
    )
    // When a whole segment starts at once (1,000,000 members entering `new`), the start statement
    // below spent ≈ 1 s compiling it (JIT) and sorted its enrollments on disk at the default
    // work_mem (bench/README.md → Lifecycle journeys, session 30). A run starts its journeys one
    // after another, so one such statement runs at a time, as a segment recompute does.
    await noJit(trx)
    await sql`set local work_mem = '64MB'`.execute(trx)
    const { enrolled_through: through, status } = await trx
      .selectFrom('journeys')
      .select(['enrolled_through', 'status'])
      .where('id', '=', j.id)
      .forUpdate()
      .executeTakeFirstOrThrow()
    const { rows } = await sql<{ upto: number | null }>`
      select max(id)::bigint as upto from segment_transitions where id > ${through}`.execute(trx)
    const upto = rows[0]?.upto == null ? null : Number(rows[0].upto)
    const moved = { started: 0, left: 0, enqueued: 0, skipped: 0, through, sentOnStart: false }
    if (upto === null) return moved
    // Members with a transition in the range whose segment now is not the journey's.
    const left = await sql<{ n: number }>`
      with ended as (
        update journey_enrollments e set status = 'left', ended_at = ${now}
        from (select distinct member_id from segment_transitions
            where id > ${through} and id <= ${upto}) t
          left join member_segments m on m.member_id = t.member_id
        where e.member_id = t.member_id and e.journey_id = ${j.id} and e.status = 'active'
          and m.segment is distinct from ${j.segment}
        returning e.id, e.appid
      ), ${cancelQueued('ended')}
      select count(*)::int as n from ended`.execute(trx)
    const picked = sql`select distinct on (t.member_id) t.appid, t.member_id, t.id, t.at
        from segment_transitions t join member_segments m on m.member_id = t.member_id
        where t.id > ${through} and t.id <= ${upto} and t.appid = ${j.appid}
          and t.to_segment = ${j.segment} and m.segment = ${j.segment}
          and not exists (select 1 from journey_enrollments x where x.journey_id = ${j.id}
            and x.member_id = t.member_id and x.status = 'active')
        order by t.member_id, t.id desc`
    const first = j.steps[0]
    if (status === 'active' && first?.delayHours === 0 && !first.cap) {
      // The first step is due as each member starts: sent in the statement that starts them, so
      // no enrollment is updated after its insert (an update of every new enrollment, with its
      // four index entries, cost ≈ 1 s per 50,000 at 1,000,000: bench/README.md). A step with
      // the cap is sent with the other steps instead, in the same order across journeys.
      const { ctes, nextAt } = stepSends(j, 0, o)
      const { rows } = await sql<{ started: number; due: number; enqueued: number }>`
        with picked as materialized (${picked}), later as (
          insert into journey_enrollments (journey_id, appid, member_id, transition_id, started_at,
            next_at)
          select ${j.id}, p.appid, p.member_id, p.id, p.at, p.at
          from picked p where p.at > ${now}::timestamptz
          on conflict (journey_id, member_id, transition_id) do nothing
          returning 1
        ), due as materialized (
          -- the enrollment ids drawn first: the step's records and pushes name them
          select nextval(pg_get_serial_sequence('journey_enrollments', 'id')) as id, p.appid,
            p.member_id, p.id as transition_id, p.at
          from picked p where p.at <= ${now}::timestamptz
            and not exists (select 1 from journey_enrollments x where x.journey_id = ${j.id}
              and x.member_id = p.member_id and x.transition_id = p.id)
        ), ${ctes}, started as (
          insert into journey_enrollments (id, journey_id, appid, member_id, transition_id,
            started_at, next_step, next_at, last_step, last_sent_at)
          overriding system value
          select d.id, ${j.id}, d.appid, d.member_id, d.transition_id, d.at, 1,
            ${nextAt(sql`d.at`)}, case when x.outcome = 'enqueued' then 0 end,
            case when x.outcome = 'enqueued' then ${now}::timestamptz end
          from due d join outcomes x on x.id = d.id
          returning 1
        )
        select ((select count(*) from later) + (select count(*) from started))::int as started,
          (select count(*) from due)::int as due,
          (select count(*) from pushed)::int as enqueued`.execute(trx)
      const r = rows[0]!
      Object.assign(moved, {
        started: r.started,
        enqueued: r.enqueued,
        skipped: r.due - r.enqueued,
        sentOnStart: true,
      })
    } else if (status === 'active' && first) {
      const r = await sql`
        insert into journey_enrollments (journey_id, appid, member_id, transition_id, started_at,
          next_at)
        select ${j.id}, p.appid, p.member_id, p.id, p.at,
          p.at + make_interval(hours => ${first.delayHours})
        from (${picked}) p
        on conflict (journey_id, member_id, transition_id) do nothing`.execute(trx)
      moved.started = Number(r.numAffectedRows ?? 0)
    }
    await trx
      .updateTable('journeys')
      .set({ enrolled_through: upto })
      .where('id', '=', j.id)
      .execute()
    moved.left = left.rows[0]!.n
    return moved
  })
}

/**
 * Conversion marking looks this far behind its watermark (activity committed late, and activity
 * too recent to count at the last mark: more than {@link CONVERSION_SETTLE_MS}).
 */
const MARK_OVERLAP_MS = 5 * 60_000
const WATERMARK = 'journey-conversions'

/**
 * When the goal of the enrollment's last received step was met after that step's push was sent
 * (SQL over `r`, the step and its send time, and `m`), or null. `active`: activity settled by
 * `settled` and later than the member's last opt-out (the 退订 is no conversion:
 * {@link convertingActivity}).
 */
function goalMet(goal: JourneyGoal, settled: Date) {
  if (goal === 'active') {
    const active = convertingActivity('m', settled)
    return sql`case when ${active} > r.sent_at then ${active} end`
  }
  if (goal === 'purchase')
    return sql`case when m.last_purchased_at > r.sent_at then m.last_purchased_at end`
  return sql`(select min(c.created_at) from checkins c where c.member_id = m.id
    and c.created_at > r.sent_at)`
}

/**
 * Step 2: converted enrollments, among members active or buying since the last mark (the
 * watermark's row lock serializes parallel runs). Credits each converted step's offer when the
 * conversion came within its days (idempotent per enrollment). Returns how many converted.
 */
async function markJourneyConversions(
  db: Kysely<Database>,
  journeys: JourneyRow[],
  o: JourneyRunOptions,
  sentOnStart: Map<number, number>,
): Promise<number> {
  return db.transaction().execute(async (trx) => {
    await keyedJoins(trx)
    await trx
      .insertInto('campaign_watermarks')
      .values({ name: WATERMARK, marked_at: o.now })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute()
    const mark = await trx
      .selectFrom('campaign_watermarks')
      .select('marked_at')
      .where('name', '=', WATERMARK)
      .forUpdate()
      .executeTakeFirstOrThrow()
    const since = new Date(Math.min(mark.marked_at.getTime(), o.now.getTime()) - MARK_OVERLAP_MS)
    let converted = 0
    for (const j of journeys) {
      const when = sql`case r.step ${sql.join(
        j.steps.map((s, k) => sql`when ${k} then ${goalMet(s.goal, settledBy(o.now))}`),
        sql` `,
      )} end`
      const { rows } = await sql<{ id: number; member_id: number; step: number; late: boolean }>`
        with moved as (
          select id from members where last_active_at > ${since}
          union
          select id from members where last_purchased_at > ${since}
        ), met as (
          -- driven from the members who moved, each finding its enrollment by the unique
          -- (member, journey) index of active ones: cheap whatever the estimates say; the last
          -- step the member received is the last one whose push was sent (its sends by the
          -- primary key, their outbox items by theirs): one queued, failed, skipped or cancelled
          -- reached no one, and its enrollment goes on
          select e.id, r.step, r.sent_at, ${when} as at
          from moved join journey_enrollments e on e.member_id = moved.id
              and e.journey_id = ${j.id} and e.status = 'active'
            join members m on m.id = moved.id
            cross join lateral (
              select s.step, o.sent_at from journey_sends s
              join push_outbox o on o.appid = e.appid and o.source = s.outbox_source
                and o.openid = m.openid
              where s.enrollment_id = e.id and s.outcome = 'enqueued' and o.status = 'sent'
              order by s.step desc limit 1
            ) r
          where true ${
            sentOnStart.has(j.id) ? sql`and e.transition_id <= ${sentOnStart.get(j.id)!}` : sql``
          }
        ), ended as (
          -- the step credited, and when its push was sent, replace the last step enqueued
          update journey_enrollments e set status = 'converted', converted_at = met.at,
            ended_at = ${o.now}, last_step = met.step, last_sent_at = met.sent_at
          from met where e.id = met.id and met.at is not null
          returning e.id, e.appid, e.member_id, e.last_step, e.last_sent_at, e.converted_at
        ), ${cancelQueued('ended')}
        select id, member_id, last_step as step,
          converted_at > last_sent_at
            + make_interval(days => (${offerDays(j)})[last_step + 1]) as late
        from ended`.execute(trx)
      converted += rows.length
      for (const r of rows) {
        const offer = j.steps[r.step]?.offer
        if (!offer || r.late) continue
        await changePoints(
          trx,
          {
            appid: j.appid,
            memberId: r.member_id,
            rule: 'journey_offer',
            idempotencyKey: `journey:${r.id}`,
            reference: `journey:${j.id}`,
            now: o.now,
            timeZone: o.settings.timeZone,
          },
          offer.points,
        )
      }
    }
    await trx
      .updateTable('campaign_watermarks')
      .set({ marked_at: o.now })
      .where('name', '=', WATERMARK)
      .execute()
    return converted
  })
}

/** The offer days of each step (0 without an offer), as an SQL int array (1-based). */
const offerDays = (j: JourneyRow) => sql`${j.steps.map((s) => s.offer?.days ?? 0)}::int[]`

/** The level labels as SQL: {{level}} in a step's copy. */
function levelLabel(t: Translate) {
  return sql`case m.level ${sql.join(
    LEVELS.map((l) => sql`when ${l.key} then ${JSON.stringify(t(`level.${l.key}`)).slice(1, -1)}`),
    sql` `,
  )} else m.level end`
}

/** Fills {{points}} and {{level}} of a message (JSON text) per member. */
const perMember = (text: string | null, t: Translate) =>
  text === null
    ? sql`null`
    : sql`replace(replace(${text}::text, '{{points}}', m.points_balance::text), '{{level}}',
        ${levelLabel(t)})`

/**
 * What step `k` does for the enrollments of a CTE named `due` (id, member_id): the CTEs
 * `targets`, `passed`, `outcomes` (id, member_id, openid, points_balance, level, outcome),
 * `recorded` and `pushed` (a row per push enqueued) — each one's outcome recorded, the cap
 * applied, the pushes enqueued — and `nextAt`, when the step after it is due for an enrollment
 * started at `startedAt` (SQL).
 */
function stepSends(j: JourneyRow, k: number, o: JourneyRunOptions) {
  const step = j.steps[k]!
  const next = j.steps[k + 1]
  const message = stepMessage(step, o.t, o.now, o.settings.timeZone)
  const capAt = capTime(o.slot, o.now, o.settings)
  const boundary = step.cap ? capBoundary(capAt, o.settings) : null
  const source = `${journeySourcePrefix(j.id)}${k}:`
  const notBefore = afterQuietHours(o.now, o.settings)
  // A customer-service text with no template to fall back on reaches only a member whose 48-hour
  // window (their own message's; a follow's minute is long gone when a recompute starts them) is
  // open when it goes, not refused and with quota left — as the outbox will see it
  // (reachability.ts, cs-window.ts; the check-in reminders decide their channel the same way).
  // Anyone else — a follower who never wrote — is skipped as unreachable here: queued, the push
  // would only be skipped by the outbox (45015) having reached no one.
  const windowOnly = message.kind === 'custom' && message.fallback === null
  const noWindow = sql`(not ${messageWindowOpen(notBefore)} or exists (select 1
          from member_reachability b where b.appid = m.appid and b.openid = m.openid
            and b.channel = 'any'))`
  // After the last step: wait the tail for a conversion (then completeJourney ends it).
  const nextAt = (startedAt: RawBuilder<unknown>) =>
    next
      ? sql`${startedAt} + make_interval(hours => ${next.delayHours})`
      : sql`${o.now}::timestamptz + make_interval(days => ${JOURNEY_TAIL_DAYS})`
  const ctes = sql`targets as (
        select d.id, m.id as member_id, m.openid, m.points_balance, m.level,
          case when m.marketing_opt_out then 'opted_out'
            when not m.subscribed then 'unreachable'
            ${windowOnly ? sql`when ${noWindow} then 'unreachable'` : sql``} end as skip
        from due d join members m on m.id = d.member_id
      ), passed as (
        ${
          step.cap
            ? sql`update members m set last_campaign_at = greatest(m.last_campaign_at,
                  ${capAt}::timestamptz)
                from targets x
                where m.id = x.member_id and x.skip is null ${
                  boundary
                    ? sql`and (m.last_campaign_at is null
                        or m.last_campaign_at <= ${boundary}::timestamptz)`
                    : sql``
                }
                returning m.id`
            : sql`select member_id as id from targets where skip is null`
        }
      ), outcomes as (
        select x.id, x.member_id, x.openid, x.points_balance, x.level, coalesce(x.skip,
          case when x.member_id in (select id from passed) then 'enqueued' else 'capped' end)
          as outcome
        from targets x
      ), recorded as (
        insert into journey_sends (enrollment_id, step, journey_id, outcome, outbox_source,
          enqueued_at)
        select id, ${k}, ${j.id}, outcome,
          case when outcome = 'enqueued' then ${source}::text || id end, ${o.now}::timestamptz
        from outcomes
        on conflict do nothing
      ), pushed as (
        insert into push_outbox (appid, source, openid, kind, payload, lane, fallback,
          next_attempt_at, created_at)
        select ${j.appid}, ${source}::text || m.id, m.openid, ${message.kind},
          ${perMember(message.payload, o.t)}, ${LANE.campaign}, ${perMember(message.fallback, o.t)},
          ${notBefore}::timestamptz, ${o.now}::timestamptz
        from outcomes m -- the members' columns the copy fills in came with them (no second join)
        where m.outcome = 'enqueued'
        on conflict (appid, source, openid) do nothing
        returning 1
      )`
  return { ctes, nextAt }
}

/**
 * Step 3 for step `k`: one statement per batch of due enrollments (locked, skipping those another
 * run holds) records each one's outcome, applies the cap, enqueues the pushes and advances them.
 * Each batch first takes the journey row FOR SHARE and checks that it is still active: a pause
 * (setJourneyStatus, FOR UPDATE) either commits before it — the batch sends nothing and the step
 * stops — or waits for it and then holds what it queued.
 */
async function sendStep(
  db: Kysely<Database>,
  j: JourneyRow,
  k: number,
  o: JourneyRunOptions,
): Promise<{ enqueued: number; skipped: number }> {
  const limit = o.batchSize ?? 50_000
  const { ctes, nextAt } = stepSends(j, k, o)
  const total = { enqueued: 0, skipped: 0 }
  await inParallel(o.parallel ?? 2, async () => {
    for (;;) {
      const rows = await db.transaction().execute(async (trx) => {
        const live = await trx
          .selectFrom('journeys')
          .select('status')
          .where('id', '=', j.id)
          .forShare()
          .executeTakeFirst()
        if (live?.status !== 'active') return undefined
        await keyedJoins(trx)
        const { rows } = await sql<{ due: number; enqueued: number }>`
      with due as (
        -- in the due index's order, so the scan stops after the batch (a second sort key made
        -- every batch read and sort every due enrollment: ~4 s a batch at 1,000,000)
        select e.id, e.member_id from journey_enrollments e
        where e.journey_id = ${j.id} and e.status = 'active' and e.next_step = ${k}
          and e.next_at <= ${o.now}::timestamptz
        order by e.next_at
        limit ${limit}
        for update skip locked
      ), ${ctes}, advanced as (
        update journey_enrollments e set next_step = ${k + 1}, next_at = ${nextAt(sql`e.started_at`)},
          last_step = case when x.outcome = 'enqueued' then ${k} else e.last_step end,
          last_sent_at = case when x.outcome = 'enqueued' then ${o.now}::timestamptz
            else e.last_sent_at end
        from outcomes x where e.id = x.id
      )
      select (select count(*) from due)::int as due,
        (select count(*) from pushed)::int as enqueued`.execute(trx)
        return rows
      })
      if (!rows) return // paused (or removed) since the run read it
      const r = rows[0]!
      total.enqueued += r.enqueued
      total.skipped += r.due - r.enqueued
      if (r.due < limit || o.budget?.left() === false) return
    }
  })
  return total
}

/** Step 4: enrollments past their last step and its tail end as completed. */
async function completeJourney(db: Kysely<Database>, j: JourneyRow, now: Date) {
  const r = await db
    .updateTable('journey_enrollments')
    .set({ status: 'completed', ended_at: now })
    .where('journey_id', '=', j.id)
    .where('status', '=', 'active')
    .where('next_step', '>=', j.steps.length)
    .where('next_at', '<=', now)
    .executeTakeFirst()
  return Number(r.numUpdatedRows)
}
