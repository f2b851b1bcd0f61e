/**
 * Long jobs in resumable chunks (Workers' bounded scheduled invocations): a run with a tiny budget
 * stops part-way (its slot paused, its cursor saved), later ticks resume it, and the end state is
 * exactly that of one unbounded run; a chunk whose transaction fails leaves the cursor where it
 * was, the run is paused with a try used, and the next tick resumes from there.
 */
import { type Kysely, sql } from 'kysely'
import { expect, it } from 'vitest'
import { translator } from '../src/bot/i18n.js'
import { chunkBudget } from '../src/budget.js'
import { dispatchCampaigns } from '../src/community/campaigns.js'
import type { Config } from '../src/config.js'
import type { Database } from '../src/db/schema.js'
import { silentLogger } from '../src/logger.js'
import { forEachDatabase } from '../test/databases.js'
import { testConfig } from '../test/server.js'
import { recomputeSegmentsJob } from './recompute-segments.js'
import { runJobSlot, runScheduled } from './runner.js'
import type { JobDeps } from './types.js'

const TZ = 'Asia/Shanghai'
const MINUTE = 60_000

/** 03:30 in Shanghai: the segment recompute's slot. */
const SLOT = new Date('2026-11-25T19:30:00Z')

forEachDatabase('chunked jobs', (get, dbName) => {
  const appid = `wx${dbName === 'pglite' ? 'c' : 'd'}000000000000777`
  const config = (): Config => {
    const c = testConfig()
    return { ...c, timeZone: TZ, jobs: { ...c.jobs, chunkMembers: 7 } }
  }
  const deps = (now: Date): JobDeps => ({
    db: get().db,
    clock: { now: () => now },
    logger: silentLogger,
    config: config(),
  })

  /** 60 members whose segments differ (every rule of segments.ts is hit by some). */
  const seedMembers = (db: Kysely<Database>, n: number) =>
    sql`insert into members (appid, openid, subscribed, first_seen_at, subscribed_at,
        last_active_at, purchase_count)
      select ${appid}, 'o_chunk_' || i, i % 5 <> 0,
        ${SLOT}::timestamptz - make_interval(days => i % 200),
        case when i % 3 = 0 then ${SLOT}::timestamptz - make_interval(days => i % 120) end,
        case when i % 4 <> 0 then ${SLOT}::timestamptz - make_interval(days => i % 100) end,
        i % 4
      from generate_series(1, ${n}) as i`.execute(db)

  const segments = async (db: Kysely<Database>) => {
    const members = await db
      .selectFrom('members')
      .leftJoin('member_segments', 'member_segments.member_id', 'members.id')
      .select(['openid', 'member_segments.segment', 'member_segments.since'])
      .where('members.appid', '=', appid)
      .orderBy('members.id')
      .execute()
    const transitions = await db
      .selectFrom('segment_transitions')
      .innerJoin('members', 'members.id', 'segment_transitions.member_id')
      .select(['members.openid', 'from_segment', 'to_segment', 'at'])
      .where('segment_transitions.appid', '=', appid)
      .orderBy('members.openid')
      .execute()
    return { members, transitions }
  }
  const forget = async (db: Kysely<Database>) => {
    await db.deleteFrom('segment_transitions').where('appid', '=', appid).execute()
    await db.deleteFrom('member_segments').where('appid', '=', appid).execute()
  }
  const run = (slot: Date) =>
    get()
      .db.selectFrom('job_runs')
      .select(['status', 'cursor', 'attempts', 'result'])
      .where('job', '=', recomputeSegmentsJob.name)
      .where('slot', '=', slot)
      .executeTakeFirstOrThrow()

  it('segment recompute: a tiny budget pauses the run part-way; later ticks resume it and end exactly where one unbounded run does', async () => {
    const { db } = get()
    await seedMembers(db, 60)
    const start = new Date(SLOT.getTime() + 5_000)
    const once = await runJobSlot(recomputeSegmentsJob, deps(start), {
      slot: new Date(SLOT.getTime() - 86_400_000),
      trigger: 'schedule',
      worker: 'unbounded',
    })
    expect(once).toMatchObject({ status: 'ran', result: { changed: 60 } })
    const expected = await segments(db)
    expect(new Set(expected.members.map((m) => m.segment)).size).toBeGreaterThan(3)
    await forget(db)

    // One chunk per invocation; each tick a minute later (a later `now` for a run that restarted).
    const tick = (k: number) =>
      runScheduled(recomputeSegmentsJob, deps(new Date(start.getTime() + k * MINUTE)), {
        slot: new Date(SLOT.getTime() + k * MINUTE),
        due: k === 0,
        timeZone: TZ,
        worker: `tick${k}`,
        budget: chunkBudget(0),
      })
    const [first] = await tick(0)
    expect(first).toMatchObject({ status: 'paused', result: { more: true, chunks: 1 } })
    const paused = await run(SLOT)
    expect(paused.status).toBe('paused')
    const cursor = JSON.parse(paused.cursor!) as { after: number; now: string }
    expect(cursor.now).toBe(start.toISOString())
    const partly = await segments(db)
    expect(partly.members.some((m) => m.segment === null)).toBe(true)
    expect(partly.members.some((m) => m.segment !== null)).toBe(true)

    let ticks = 1
    while ((await run(SLOT)).status === 'paused' && ticks < 50) {
      const reports = await tick(ticks++)
      expect(reports.map((r) => r.slot.getTime())).toEqual([SLOT.getTime()])
    }
    expect(await run(SLOT)).toMatchObject({ status: 'succeeded', attempts: 1 })
    // More members in the database than this suite's 60 (other suites share it): ≥ 60 / 7 chunks.
    expect(ticks).toBeGreaterThanOrEqual(Math.ceil(60 / 7))
    expect(await segments(db)).toEqual(expected)
  })

  it('segment recompute: a chunk whose transaction fails leaves the cursor where it was; the run is paused with a try used and the next tick resumes from it', async () => {
    const { db } = get()
    const expected = await segments(db)
    await forget(db)
    const slot = new Date(SLOT.getTime() + 86_400_000)
    const start = new Date(SLOT.getTime() + 5_000)
    // The 12th member of the suite (in the second chunk of 7) cannot be recorded: its chunk fails.
    const victim = await db
      .selectFrom('members')
      .select('id')
      .orderBy('id')
      .offset(11)
      .limit(1)
      .executeTakeFirstOrThrow()
    await sql`create function qz_fail_chunk() returns trigger language plpgsql as $$
      begin
        if new.member_id = ${sql.lit(Number(victim.id))} then raise exception 'chunk fails'; end if;
        return new;
      end $$`.execute(db)
    await sql`create trigger qz_fail_chunk before insert on segment_transitions
      for each row execute function qz_fail_chunk()`.execute(db)
    const failed = await runJobSlot(recomputeSegmentsJob, deps(start), {
      slot,
      trigger: 'schedule',
      worker: 'doomed',
    })
    expect(failed.status).toBe('failed')
    const after = await run(slot)
    // It saved progress and has a try left: paused, not given up.
    expect(after).toMatchObject({ status: 'paused', attempts: 2 })
    const saved = JSON.parse(after.cursor!) as { after: number; changed: number }
    // The first chunk committed with its cursor; the second (the victim's) left nothing behind.
    const firstSeven = await db.selectFrom('members').select('id').orderBy('id').limit(7).execute()
    expect(saved.after).toBe(Number(firstSeven.at(-1)!.id))
    const done = await db
      .selectFrom('member_segments')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('member_id', '>', saved.after)
      .where('appid', '=', appid)
      .executeTakeFirstOrThrow()
    expect(done.n).toBe(0)
    await sql`drop trigger qz_fail_chunk on segment_transitions`.execute(db)
    await sql`drop function qz_fail_chunk()`.execute(db)

    // The next tick resumes it from the saved cursor, at the run's own `now`.
    const later = new Date(start.getTime() + 10 * MINUTE)
    const [taken] = await runScheduled(recomputeSegmentsJob, deps(later), {
      slot: new Date(slot.getTime() + 10 * MINUTE),
      due: false,
      timeZone: TZ,
      worker: 'heir',
    })
    expect(taken).toMatchObject({ status: 'ran', attempt: 2 })
    expect(await segments(db)).toEqual(expected)
  })

  it('segment recompute: an older paused run resumed after a newer manual one finished writes nothing over it', async () => {
    const { db } = get()
    await forget(db)
    const slot = new Date(SLOT.getTime() + 2 * 86_400_000)
    const t1 = new Date(slot.getTime() + 5_000)
    const [old] = await runScheduled(recomputeSegmentsJob, deps(t1), {
      slot,
      due: true,
      timeZone: TZ,
      worker: 'bounded',
      budget: chunkBudget(0),
    })
    expect(old).toMatchObject({ status: 'paused' })
    // 40 days later an operator recomputes by hand: members have moved on (active → at risk …).
    const t2 = new Date(t1.getTime() + 40 * 86_400_000)
    const manual = await runJobSlot(recomputeSegmentsJob, deps(t2), {
      slot: t2,
      trigger: 'manual',
      worker: 'operator',
    })
    expect(manual.status).toBe('ran')
    const newer = await segments(db)
    expect(newer.transitions.some((t) => t.at.getTime() === t2.getTime())).toBe(true)
    // The old run is resumed (a tick shortly after its slot: nothing else is due) …
    const [resumed] = await runScheduled(
      recomputeSegmentsJob,
      deps(new Date(t2.getTime() + MINUTE)),
      {
        slot: new Date(slot.getTime() + 10 * MINUTE),
        due: false,
        timeZone: TZ,
        worker: 'resumer',
      },
    )
    expect(resumed).toMatchObject({ status: 'ran', result: { superseded: t2.toISOString() } })
    // … and leaves the newer segments, their `since` and the transitions as they were.
    expect(await segments(db)).toEqual(newer)
  })

  it('a tick resumes a paused slot first and, once the budget is spent, claims no further slot; the catch-up runs it later', async () => {
    const ran: string[] = []
    const job = {
      name: `paused-first-${dbName}`,
      cron: '* * * * *',
      catchUp: 'every' as const,
      async run({ slot, cursor }: { slot: Date; cursor?: unknown }) {
        ran.push(`${slot.toISOString().slice(11, 16)}${cursor ? ` from ${cursor}` : ''}`)
        return {}
      },
    }
    const at = (m: number) => new Date(Date.UTC(2026, 10, 26, 2, m))
    await get()
      .db.insertInto('job_runs')
      .values({
        job: job.name,
        slot: at(0),
        trigger: 'schedule',
        status: 'paused',
        worker: 'earlier',
        started_at: at(0),
        cursor: JSON.stringify('c1'),
      })
      .execute()
    const tick = (m: number, budget?: ReturnType<typeof chunkBudget>) =>
      runScheduled(job, deps(new Date(at(m).getTime() + 1000)), {
        slot: at(m),
        due: true,
        timeZone: TZ,
        worker: `w${m}`,
        budget,
      })
    expect((await tick(3, chunkBudget(0))).map((r) => r.status)).toEqual(['ran'])
    expect(ran).toEqual(['02:00 from c1'])
    await tick(4)
    expect(ran).toEqual(['02:00 from c1', '02:01', '02:02', '02:03', '02:04'])
  })

  it('campaign enqueue: a tiny budget gives the run back at its cursor; later dispatches end where one unbounded dispatch does', async () => {
    const { db } = get()
    const settings = {
      timeZone: TZ,
      capHours: 0,
      capSlackMinutes: 0,
      quietHours: null,
      publicBaseUrl: 'https://quanzi.example',
    }
    const t = translator('zh-CN')
    const at = new Date('2026-11-26T02:00:00Z')
    const campaign = await db
      .insertInto('campaigns')
      .values({
        appid,
        name: 'chunked',
        status: 'scheduled',
        audience: '{}',
        variants: JSON.stringify([
          { key: 'A', weight: 1, template: { template_id: 'T_A', data: { x: { value: 'a' } } } },
          { key: 'B', weight: 1, template: { template_id: 'T_B', data: { x: { value: 'b' } } } },
        ]),
        run_at: at,
        created_at: at,
        updated_at: at,
      })
      .returning('id')
      .executeTakeFirstOrThrow()
    const source = `campaign:${campaign.id}:%`
    const outcome = async () => ({
      recipients: await db
        .selectFrom('campaign_recipients')
        .select(['member_id', 'variant', 'outcome', 'outbox_source'])
        .where('campaign_id', '=', campaign.id)
        .orderBy('member_id')
        .execute(),
      outbox: await db
        .selectFrom('push_outbox')
        .select(['openid', 'payload', 'source'])
        .where('source', 'like', source)
        .orderBy('openid')
        .execute(),
      runs: await db
        .selectFrom('campaign_runs')
        .select(['status', 'slot'])
        .where('campaign_id', '=', campaign.id)
        .execute(),
      status: (
        await db
          .selectFrom('campaigns')
          .select('status')
          .where('id', '=', campaign.id)
          .executeTakeFirstOrThrow()
      ).status,
    })
    const dispatch = (now: Date, budget?: ReturnType<typeof chunkBudget>) =>
      dispatchCampaigns(db, { slot: now, now, settings, t, batchSize: 4, budget })

    const whole = await dispatch(at)
    expect(whole).toEqual({ runs: 1, enqueued: 48 })
    const expected = await outcome()
    expect(expected.recipients).toHaveLength(60)
    expect(expected.status).toBe('running') // a one-shot whose pushes are queued
    await db.deleteFrom('push_outbox').where('source', 'like', source).execute()
    await db.deleteFrom('campaign_recipients').where('campaign_id', '=', campaign.id).execute()
    await db.deleteFrom('campaign_runs').where('campaign_id', '=', campaign.id).execute()
    await db
      .updateTable('campaigns')
      .set({ status: 'scheduled' })
      .where('id', '=', campaign.id)
      .execute()

    const first = await dispatch(at, chunkBudget(0))
    expect(first).toEqual({ runs: 1, enqueued: expect.any(Number), released: 1 })
    expect((await outcome()).recipients).toHaveLength(4)
    let n = 1
    for (; n < 40; n++) {
      const next = await dispatch(new Date(at.getTime() + n * MINUTE), chunkBudget(0))
      if (next.released === undefined) break
      expect(next.runs).toBe(1)
    }
    expect(n).toBe(15) // 60 members, 4 a batch: 15 batches, one a dispatch
    expect(await outcome()).toEqual(expected)
  })
})
