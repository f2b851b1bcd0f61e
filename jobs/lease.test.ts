import { spawn } from 'node:child_process'
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { createLogger, type LogFields, silentLogger } from '../src/logger.js'
import { type Metrics, noopMetrics } from '../src/metrics.js'
import { forEachDatabase } from '../test/databases.js'
import { runDue, runJobSlot, runScheduled, slotOf } from './runner.js'
import type { Job, JobDeps } from './types.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

forEachDatabase('job leases', (get, dbName) => {
  const lines: LogFields[] = []
  const outcomes: string[] = []
  const metrics: Metrics = { ...noopMetrics, job: (o) => outcomes.push(o.outcome) }
  const deps = (now: () => Date = () => new Date(), env: Record<string, string> = {}): JobDeps => ({
    db: get().db,
    clock: { now },
    logger: createLogger({ level: 'debug', write: (l) => lines.push(JSON.parse(l)) }),
    config: loadConfig(env),
  })
  /** A row as a process that died would leave it. */
  const dead = (job: string, slot: Date, attempts: number, leaseUntil: Date) =>
    get()
      .db.insertInto('job_runs')
      .values({
        job,
        slot,
        trigger: 'schedule',
        status: 'running',
        worker: 'gone',
        started_at: slot,
        lease_until: leaseUntil,
        attempts,
      })
      .execute()
  const row = (job: string, slot: Date) =>
    get()
      .db.selectFrom('job_runs')
      .select(['status', 'attempts', 'worker', 'error', 'lease_until'])
      .where('job', '=', job)
      .where('slot', '=', slot)
      .executeTakeFirstOrThrow()

  it('takes over a run whose lease passed at the next tick, once, and leaves live runs alone', async () => {
    let runs = 0
    const job: Job = {
      name: `takeover-${dbName}`,
      cron: '*/5 * * * *',
      async run() {
        runs++
        await sleep(10)
        return { runs }
      },
    }
    const now = new Date('2026-11-25T02:00:01Z')
    const crashed = new Date('2026-11-25T01:50:00Z')
    const alive = new Date('2026-11-25T01:55:00Z')
    await dead(job.name, crashed, 1, new Date('2026-11-25T01:51:00Z'))
    await dead(job.name, alive, 1, new Date('2026-11-25T02:00:30Z'))
    lines.length = 0
    const pools = dbName === 'postgres' ? [get().open(), get().open()] : []
    const ticks = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        runDue(
          [job],
          { ...deps(() => now), db: pools[i] ?? get().db },
          {
            scheduledTime: new Date('2026-11-25T02:00:00Z'),
            timeZone: 'UTC',
            worker: `w${i}`,
          },
        ),
      ),
    )
    const ran = ticks.flat().filter((r) => r.status === 'ran')
    expect(ran.map((r) => [r.slot.toISOString(), r.attempt]).sort()).toEqual([
      ['2026-11-25T01:50:00.000Z', 2],
      ['2026-11-25T02:00:00.000Z', 1],
    ])
    expect(runs).toBe(2)
    expect(await row(job.name, crashed)).toMatchObject({ status: 'succeeded', attempts: 2 })
    expect(await row(job.name, alive)).toMatchObject({ status: 'running', attempts: 1 })
    expect(lines.filter((l) => l.code === 'JOB_RETRIED')).toEqual([
      expect.objectContaining({ level: 'warn', job: job.name, slot: crashed.toISOString() }),
    ])
  })

  it('gives up when the retry dies too or fails: failed, JOB_ABANDONED, metrics "abandoned"', async () => {
    let runs = 0
    const failing: Job = {
      name: `abandon-${dbName}`,
      cron: '* * * * *',
      async run() {
        runs++
        throw new Error('still broken')
      },
    }
    const now = new Date('2026-11-25T04:00:01Z')
    const diedTwice = new Date('2026-11-25T03:58:00Z')
    const diedOnce = new Date('2026-11-25T03:59:00Z')
    await dead(failing.name, diedTwice, 2, new Date('2026-11-25T03:59:30Z'))
    await dead(failing.name, diedOnce, 1, new Date('2026-11-25T03:59:40Z'))
    lines.length = 0
    outcomes.length = 0
    const reports = (
      await Promise.all(
        [0, 1, 2].map((i) =>
          runScheduled(
            failing,
            deps(() => now),
            {
              slot: new Date('2026-11-25T04:00:00Z'),
              due: false,
              timeZone: 'UTC',
              worker: `w${i}`,
              metrics,
            },
          ),
        ),
      )
    ).flat()
    expect(runs).toBe(1) // the retry of diedOnce, nothing else
    expect(reports.filter((r) => r.status === 'abandoned')).toEqual([
      expect.objectContaining({ slot: diedTwice, attempts: 2 }),
    ])
    expect(await row(failing.name, diedTwice)).toMatchObject({
      status: 'failed',
      attempts: 2,
      error: expect.stringMatching(/^abandoned/),
    })
    expect(await row(failing.name, diedOnce)).toMatchObject({
      status: 'failed',
      attempts: 2,
      error: 'still broken',
    })
    const abandoned = lines.filter((l) => l.code === 'JOB_ABANDONED')
    expect(abandoned.map((l) => [l.level, l.slot]).sort()).toEqual([
      ['warn', diedTwice.toISOString()],
      ['warn', diedOnce.toISOString()],
    ])
    expect(outcomes.filter((o) => o === 'abandoned')).toHaveLength(2)
  })

  it('renews the lease while the job runs, so a long run is not taken over', async () => {
    let runs = 0
    const long: Job = {
      name: `long-${dbName}`,
      cron: '0 0 1 1 *',
      async run() {
        runs++
        await sleep(3600)
        return {}
      },
    }
    const env = { JOB_LEASE_SECONDS: '2' }
    const slot = slotOf(new Date(Date.now() - 60_000))
    const first = runJobSlot(long, deps(undefined, env), { slot, trigger: 'schedule', worker: 'a' })
    await sleep(200)
    const { lease_until: leased } = await row(long.name, slot)
    lines.length = 0
    await sleep(3000) // past the first lease and the second: renewed all along
    const { lease_until: renewed } = await row(long.name, slot)
    expect(renewed!.getTime()).toBeGreaterThan(Date.now())
    expect(renewed!.getTime()).toBeGreaterThan(leased!.getTime() + 1000)
    const second = await runScheduled(long, deps(undefined, env), {
      slot: slotOf(new Date()),
      due: false,
      timeZone: 'UTC',
      worker: 'b',
    })
    expect(second).toEqual([])
    expect(await first).toMatchObject({ status: 'ran', attempt: 1 })
    expect(runs).toBe(1)
    expect(await row(long.name, slot)).toMatchObject({ status: 'succeeded', attempts: 1 })
    expect(lines.filter((l) => l.level === 'warn')).toEqual([])
  })

  it('a run that lost its lease does not overwrite the outcome of the run that took over', async () => {
    let release: () => void = () => {}
    const stalled = new Promise<void>((resolve) => {
      release = resolve
    })
    let runs = 0
    const job: Job = {
      name: `lost-${dbName}`,
      cron: '0 0 1 1 *',
      async run() {
        runs++
        if (runs === 1) {
          await stalled
          return { by: 'first' }
        }
        return { by: 'second' }
      },
    }
    const slot = slotOf(new Date(Date.now() - 60_000))
    const first = runJobSlot(job, deps(), { slot, trigger: 'schedule', worker: 'a' })
    await sleep(100)
    // the first process stalls past its lease (simulated), and another takes the run over
    await get()
      .db.updateTable('job_runs')
      .set({ lease_until: new Date(Date.now() - 1000) })
      .where('job', '=', job.name)
      .execute()
    const [taken] = await runScheduled(job, deps(), {
      slot: slotOf(new Date()),
      due: false,
      timeZone: 'UTC',
      worker: 'b',
    })
    expect(taken).toMatchObject({ status: 'ran', attempt: 2, result: { by: 'second' } })
    release()
    expect(await first).toMatchObject({ status: 'ran', attempt: 1 })
    const stored = await get()
      .db.selectFrom('job_runs')
      .select(['status', 'worker', 'attempts', 'result'])
      .where('job', '=', job.name)
      .executeTakeFirstOrThrow()
    expect(stored).toEqual({
      status: 'succeeded',
      worker: 'b',
      attempts: 2,
      result: '{"by":"second"}',
    })
  })

  it.skipIf(dbName !== 'postgres')(
    'a process killed mid-run (SIGKILL): after its lease passes the run is taken over once',
    async () => {
      const db = get().db
      await sql`create table test_crash_starts (slot timestamptz not null, pid int not null)`.execute(
        db,
      )
      const { s: schema } = await db
        .selectNoFrom((eb) => eb.fn<string>('current_schema').as('s'))
        .executeTakeFirstOrThrow()
      const slot = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000)
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          'test/fixtures/job-crash-child.ts',
          process.env.TEST_DATABASE_URL!,
          schema,
          slot.toISOString(),
          '2',
        ],
        { stdio: 'inherit' },
      )
      const exited = new Promise((resolve) => child.once('exit', resolve))
      const starts = async () =>
        (
          await sql<{
            pid: number
          }>`select pid from test_crash_starts where slot = ${slot} order by pid`.execute(db)
        ).rows.map((r) => r.pid)
      for (let i = 0; i < 100 && (await starts()).length === 0; i++) await sleep(100)
      expect(await starts()).toEqual([child.pid])
      await sleep(1000) // a heartbeat or two
      const { lease_until: lease } = await row('crashy', slot)
      child.kill('SIGKILL')
      await exited

      // Two more processes tick the job; the quick version of it records its start too.
      let retries = 0
      const crashy: Job = {
        name: 'crashy',
        cron: '0 0 1 1 *',
        async run(ctx) {
          retries++
          await sql`insert into test_crash_starts (slot, pid) values (${ctx.slot}, 0)`.execute(db)
          return {}
        },
      }
      const pools = [get().open(), get().open()]
      const tickAll = () =>
        Promise.all(
          pools.map((pool, i) =>
            runScheduled(
              crashy,
              { ...deps(undefined, { JOB_LEASE_SECONDS: '2' }), db: pool, logger: silentLogger },
              { slot: slotOf(new Date()), due: false, timeZone: 'UTC', worker: `p${i}` },
            ),
          ),
        )
      // right after the kill the lease still holds: nobody takes the run
      expect((await tickAll()).flat()).toEqual([])
      expect(await row('crashy', slot)).toMatchObject({ status: 'running', attempts: 1 })
      for (let i = 0; i < 50 && retries === 0; i++) {
        await tickAll()
        await sleep(200)
      }
      await tickAll() // and later ticks leave it alone
      expect(retries).toBe(1)
      expect(await starts()).toEqual([0, child.pid])
      const after = await db
        .selectFrom('job_runs')
        .select(['status', 'attempts', 'started_at'])
        .where('job', '=', 'crashy')
        .where('slot', '=', slot)
        .executeTakeFirstOrThrow()
      expect(after).toMatchObject({ status: 'succeeded', attempts: 2 })
      expect(after.started_at.getTime()).toBeGreaterThan(lease!.getTime()) // not before it passed
    },
    30_000,
  )
})
