/** The PGlite driver (PGlite only: PostgreSQL goes through `pg` and its pool). */

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryFS, PGlite } from '@electric-sql/pglite'
import { NodeFS } from '@electric-sql/pglite/nodefs'
import { CompiledQuery, Kysely, sql } from 'kysely'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { positiveDomainTable } from '../../test/domain-table.js'
import { BACKGROUND_MAX_WAIT_MS, pgliteDialect } from './pglite-driver.js'

let pglite: PGlite
let db: Kysely<{ t: { id: number; name: string } }>
/** The same PGlite for background work (jobs, outbox workers). */
let background: typeof db

beforeAll(async () => {
  pglite = new PGlite()
  db = new Kysely({ dialect: pgliteDialect(pglite) })
  background = new Kysely({ dialect: pgliteDialect(pglite, { background: true }) })
  await sql`create table t (id int primary key, name text)`.execute(db)
})
afterAll(() => db.destroy())

it('serves waiting callers first come first served, each in a new event-loop turn', async () => {
  const events: string[] = []
  let done = false
  // A callback waiting on the event loop (a socket, a timer, an accept) stands for the server.
  const tick = () => {
    events.push('tick')
    if (!done) setImmediate(tick)
  }
  const queries = [0, 1, 2, 3, 4].map((i) =>
    sql`select ${i}::int as i`.execute(db).then(() => events.push(`q${i}`)),
  )
  setImmediate(tick)
  await Promise.all(queries)
  done = true
  const served = events.filter((e) => e !== 'tick')
  expect(served).toEqual(['q0', 'q1', 'q2', 'q3', 'q4'])
  // Between two callers' statements the event loop turned at least once.
  for (let i = 1; i < served.length; i++)
    expect(events.slice(events.indexOf(served[i - 1]!), events.indexOf(served[i]!))).toContain(
      'tick',
    )
})

it("gives the connection to a waiting request's statement before background work's", async () => {
  const events: string[] = []
  // Background work holds the connection (a job's transaction); then, while it does, background
  // statements and requests' statements ask for it, interleaved.
  const held = background.transaction().execute(async (trx) => {
    await sql`select 1`.execute(trx)
    const waiting = [
      sql`select 1`.execute(background).then(() => events.push('job 1')),
      sql`select 1`.execute(db).then(() => events.push('request 1')),
      sql`select 1`.execute(background).then(() => events.push('job 2')),
      sql`select 1`.execute(db).then(() => events.push('request 2')),
    ]
    await new Promise((resolve) => setImmediate(resolve))
    events.push('commit')
    return waiting
  })
  await Promise.all(await held)
  // The requests first, in their order; then the background work, in its.
  expect(events).toEqual(['commit', 'request 1', 'request 2', 'job 1', 'job 2'])
})

it('gives background work the connection once it has waited its longest, requests waiting or not', async () => {
  const events: string[] = []
  const held = db.transaction().execute(async (trx) => {
    await sql`select 1`.execute(trx)
    const job = sql`select 1`.execute(background).then(() => events.push('job 1'))
    // The job has waited its longest when these come and the connection is given back.
    await new Promise((resolve) => setTimeout(resolve, BACKGROUND_MAX_WAIT_MS + 50))
    const later = [
      sql`select 1`.execute(db).then(() => events.push('request')),
      sql`select 1`.execute(background).then(() => events.push('job 2')),
    ]
    events.push('commit')
    return [job, ...later]
  })
  await Promise.all(await held)
  // The overdue job first; then, of those who have just come, the request before the job.
  expect(events).toEqual(['commit', 'job 1', 'request', 'job 2'])
})

it('gives background work one turn per interval before waiting requests, not every turn', async () => {
  const events: string[] = []
  const held = db.transaction().execute(async (trx) => {
    await sql`select 1`.execute(trx)
    const waiting = [
      sql`select 1`.execute(background).then(() => events.push('job 1')),
      sql`select 1`.execute(background).then(() => events.push('job 2')),
      sql`select 1`.execute(db).then(() => events.push('request 1')),
      sql`select 1`.execute(db).then(() => events.push('request 2')),
    ]
    // Both jobs have waited their longest when the connection is given back.
    await new Promise((resolve) => setTimeout(resolve, BACKGROUND_MAX_WAIT_MS + 50))
    events.push('commit')
    return waiting
  })
  await Promise.all(await held)
  // One overdue job goes first; the next waits while requests wait (it went first too before).
  expect(events).toEqual(['commit', 'job 1', 'request 1', 'request 2', 'job 2'])
})

it("logs each statement once, whichever of the instance's dialects runs it", async () => {
  const logged: string[] = []
  const log = (e: { query: { sql: string } }) => void logged.push(e.query.sql)
  const lite = new PGlite()
  const logging = new Kysely<unknown>({ dialect: pgliteDialect(lite), log })
  const loggingBackground = new Kysely<unknown>({
    dialect: pgliteDialect(lite, { background: true }),
    log,
  })
  try {
    await sql`select 1 as request`.execute(logging)
    await sql`select 1 as job`.execute(loggingBackground)
    await sql`select 2 as request`.execute(logging)
    // (one connection object for both dialects logged each statement once per dialect)
    expect(logged).toEqual(['select 1 as request', 'select 1 as job', 'select 2 as request'])
  } finally {
    await logging.destroy()
  }
})

it('runs a repeated statement in one trip into PGlite', async () => {
  const trips = vi.spyOn(pglite, 'execProtocolRaw')
  const byId = (id: number) => db.selectFrom('t').select('name').where('id', '=', id).execute()
  await byId(1)
  trips.mockClear()
  await byId(2)
  expect(trips).toHaveBeenCalledTimes(1)
  trips.mockRestore()
})

it('runs a statement again after the type its parameter was inferred as is made anew', async () => {
  // A domain's OID is what the driver remembers for `$1` here; dropping and making the schema
  // again (as each suite does with `public`, or a migration's way down and up) gives a new OID.
  const { make, drop, values } = positiveDomainTable(db)
  const insert = (x: number) =>
    db.executeQuery(CompiledQuery.raw('insert into typed values ($1)', [x]))
  await make()
  await insert(1)
  await drop()
  await make()
  await insert(2)
  await expect(insert(0)).rejects.toMatchObject({ code: '23514' })
  expect(await values()).toEqual([{ x: 2 }])
  await drop()
})

it("serializes a value for a domain's parameter as its base type's", async () => {
  await sql`create domain stamp as timestamptz`.execute(db)
  await sql`create domain late_stamp as stamp check (value > '2000-01-01')`.execute(db)
  await sql`create table stamped (at late_stamp, doc_at stamp)`.execute(db)
  const at = new Date('2026-12-07T09:00:00.123Z')
  // `$1` and `$2` are inferred as the domains; a Date must go as a timestamptz, not String(at)
  await db.executeQuery(CompiledQuery.raw('insert into stamped values ($1, $2)', [at, at]))
  const { rows } = await sql<{ at: Date; doc_at: Date }>`select at, doc_at from stamped`.execute(db)
  expect(rows).toEqual([{ at, doc_at: at }])
  await sql`drop table stamped`.execute(db)
  await sql`drop domain late_stamp`.execute(db)
  await sql`drop domain stamp`.execute(db)
})

it('keeps a transaction on the connection from begin to commit', async () => {
  const events: string[] = []
  const inside = db.transaction().execute(async (trx) => {
    await trx.insertInto('t').values({ id: 10, name: 'a' }).execute()
    events.push('insert')
    await trx.updateTable('t').set({ name: 'b' }).where('id', '=', 10).execute()
    events.push('update')
  })
  const outside = db
    .selectFrom('t')
    .select('name')
    .where('id', '=', 10)
    .executeTakeFirst()
    .then((row) => events.push(`read ${row?.name}`))
  await Promise.all([inside, outside])
  expect(events).toEqual(['insert', 'update', 'read b'])
})

it('gives values, affected rows and errors as PGlite query() does', async () => {
  const text = `select $1::int8 as big, $2::numeric as num, $3::timestamptz as at, $4::jsonb as doc,
    $5::text[] as tags, $6::bool as yes, $7::bytea as raw, $8::text as nothing, $9::date as day`
  const params = [
    42,
    '1.50',
    new Date('2026-12-03T04:05:06.789Z'),
    { a: [1, 'x'] },
    ['a', 'b,c', null],
    true,
    new Uint8Array([1, 2, 255]),
    null,
    '2026-12-03',
  ]
  const mine = await db.executeQuery(CompiledQuery.raw(text, params))
  const theirs = await pglite.query(text, params)
  expect(mine.rows).toEqual(theirs.rows)

  const moved = await db.updateTable('t').set({ name: 'c' }).where('id', '=', 10).executeTakeFirst()
  expect(moved.numUpdatedRows).toBe(1n)

  const duplicate = await db
    .insertInto('t')
    .values({ id: 10, name: 'again' })
    .execute()
    .catch((e: unknown) => e)
  expect(duplicate).toMatchObject({ code: '23505' })
  await expect(sql`select 1 as one`.execute(db)).resolves.toMatchObject({ rows: [{ one: 1 }] })
  await expect(
    db.transaction().execute(async (trx) => {
      await trx.insertInto('t').values({ id: 11, name: 'rolled back' }).execute()
      await trx.insertInto('t').values({ id: 10, name: 'clash' }).execute()
    }),
  ).rejects.toMatchObject({ code: '23505' })
  expect(await db.selectFrom('t').select('id').where('id', '=', 11).execute()).toEqual([])
})

it('syncs after a statement outside a transaction only when the file system has something to sync', async () => {
  // A file system whose sync does something: synced after each statement outside a transaction
  // and after the commit, not inside.
  let synced = 0
  class SyncingFS extends MemoryFS {
    override async syncToFs() {
      synced++
    }
  }
  const syncing = new PGlite({ fs: new SyncingFS() })
  const syncingDb = new Kysely<unknown>({ dialect: pgliteDialect(syncing) })
  try {
    await syncing.waitReady
    synced = 0 // PGlite syncs on its own while it starts
    await sql`select 1`.execute(syncingDb)
    expect(synced).toBe(1)
    await syncingDb.transaction().execute(async (tx) => {
      await sql`select 2`.execute(tx)
      await sql`select 3`.execute(tx)
      expect(synced).toBe(1)
    })
    expect(synced).toBe(2)
  } finally {
    await syncingDb.destroy()
  }
  // PGlite's in-memory and Node file systems write through (their sync is empty): not synced.
  const dir = mkdtempSync(join(tmpdir(), 'quanzi-pglite-fs-'))
  try {
    // (this file's instance is on the in-memory one)
    const memorySyncs = vi.spyOn(pglite, 'syncToFs')
    try {
      await sql`select 1`.execute(db)
      expect(memorySyncs).not.toHaveBeenCalled()
    } finally {
      memorySyncs.mockRestore()
    }
    const onDisk = new PGlite({ fs: new NodeFS(dir) })
    const onDiskDb = new Kysely<unknown>({ dialect: pgliteDialect(onDisk) })
    try {
      await sql`select 1`.execute(onDiskDb)
      const syncs = vi.spyOn(onDisk, 'syncToFs')
      await sql`create table kept (id int)`.execute(onDiskDb)
      await sql`insert into kept values (1)`.execute(onDiskDb)
      expect(syncs).not.toHaveBeenCalled()
    } finally {
      await onDiskDb.destroy()
    }
    // and what the Node file system wrote is there for the next instance on the folder (after a
    // clean close, which checkpoints: this shows the folder is used, not the skipped sync)
    const again = new PGlite({ fs: new NodeFS(dir) })
    try {
      expect((await again.query('select id from kept')).rows).toEqual([{ id: 1 }])
    } finally {
      await again.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
