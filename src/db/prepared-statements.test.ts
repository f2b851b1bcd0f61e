/**
 * Named prepared statements on PostgreSQL (PGlite has no `pg` pool: not concerned). What the
 * server holds is read from `pg_prepared_statements` on the connection itself.
 */
import { type Kysely, sql } from 'kysely'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { positiveDomainTable } from '../../test/domain-table.js'
import { postgresDatabase } from './postgres.js'
import { RENEW_AFTER_RUNS } from './prepared-statements.js'
import type { Database } from './schema.js'

const url = process.env.TEST_DATABASE_URL

/** Resolves once `count` callers are waiting (two connections held at the same time). */
function barrier(count: number) {
  let arrived = 0
  let open!: () => void
  const all = new Promise<void>((resolve) => {
    open = resolve
  })
  return () => {
    if (++arrived === count) open()
    return all
  }
}

describe.skipIf(!url)('prepared statements [postgres]', () => {
  const schema = `prep_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  const opened: Kysely<Database>[] = []
  const open = (statementCache: number, max = 1) => {
    const db = postgresDatabase(url!, { schema, max, statementCache })
    opened.push(db)
    return db
  }
  /** The connection's prepared statements: text and executions (custom + generic plans). */
  const prepared = async (db: Kysely<Database>) =>
    (
      await sql<{ statement: string; runs: number }>`
        select statement, (custom_plans + generic_plans)::int as runs
        from pg_prepared_statements order by prepare_time, name`.execute(db)
    ).rows
  const byId = (db: Kysely<Database>, id: number) =>
    sql<Record<string, unknown>>`select * from things where id = ${id}`.execute(db)

  const asAdmin = async (statement: ReturnType<typeof sql>) => {
    const admin = postgresDatabase(url!, { schema, statementCache: 0 })
    await statement.execute(admin)
    await admin.destroy()
  }
  beforeAll(() =>
    asAdmin(sql`
      create schema ${sql.id(schema)};
      create table ${sql.id(schema)}.things (id int primary key, v text);
      insert into ${sql.id(schema)}.things values (1, 'a'), (2, 'b')`),
  )
  afterEach(async () => {
    for (const db of opened.splice(0)) await db.destroy()
    await asAdmin(sql`alter table things drop column if exists w`)
  })
  afterAll(() => asAdmin(sql`drop schema ${sql.id(schema)} cascade`))

  it('prepares a statement on its second run on a connection, once, and reuses it', async () => {
    const db = open(100)
    for (const id of [1, 2, 1, 2]) expect((await byId(db, id)).rows).toHaveLength(1)
    expect(await prepared(db)).toEqual([
      // parsed once, on the second run; executed by name on the second, third and fourth
      { statement: 'select * from things where id = $1', runs: 3 },
    ])
    expect((await byId(db, 2)).rows).toEqual([{ id: 2, v: 'b' }])
  })

  it('prepares no text run once, no text without parameters, and at most `size` texts', async () => {
    const db = open(2)
    const texts = ['a', 'b', 'c'].map(
      (label) => (id: number) =>
        sql`select ${sql.lit(label)} as label, v from things where id = ${id}`.execute(db),
    )
    for (const run of texts) for (const id of [1, 2]) await run(id)
    await sql`select ${sql.lit('once')} as label from things where id = ${1}`.execute(db)
    await sql`select v from things where id = 1`.execute(db)
    await sql`select v from things where id = 1`.execute(db)
    // a's statement was deallocated when c's made three
    expect((await prepared(db)).map((p) => p.statement)).toEqual([
      "select 'b' as label, v from things where id = $1",
      "select 'c' as label, v from things where id = $1",
    ])
    expect((await texts[0]!(2)).rows).toEqual([{ label: 'a', v: 'b' }])
  })

  it('prepares a text anew after RENEW_AFTER_RUNS runs by name: planned again on the table as it is', async () => {
    // The batched reply store's shape (src/community/inbound-events.ts `completeAll`), on a table
    // no autovacuum analyzes while the test runs.
    await asAdmin(sql`create table claims (id bigserial primary key, appid text, key text,
      status text, claimed_at timestamptz, reply text, unique (appid, key))
      with (autovacuum_enabled = off)`)
    const db = open(100)
    const store = (key: string) =>
      sql`update claims c set status = 'replied', reply = v.reply
        from unnest(${['wx']}::text[], ${[key]}::text[], ${['hi']}::text[]) as v(appid, key, reply)
        where c.appid = v.appid and c.key = v.key and c.status = 'processing'
          and c.claimed_at is null
        returning c.id`.execute(db)
    /** The connection's one prepared statement's name. */
    const name = async () => {
      const rows = (
        await sql<{ name: string }>`select name from pg_prepared_statements`.execute(db)
      ).rows
      expect(rows).toHaveLength(1)
      return rows[0]!.name
    }
    /** The plan a prepared statement runs now (EXPLAIN EXECUTE of its name). */
    const plan = async (statement: string) => {
      const rows = await sql<{ 'QUERY PLAN': string }>`explain execute ${sql.raw(statement)}(
        '{wx}', '{k1}', '{hi}')`.execute(db)
      return rows.rows.map((r) => r['QUERY PLAN']).join('\n')
    }
    // Prepared on its second run, so RENEW_AFTER_RUNS runs by name take RENEW_AFTER_RUNS + 1.
    // Planned while the table is empty: a sequential scan (PostgreSQL's plan after five runs is
    // kept until something invalidates it — what bench/README.md, session 38, found staying).
    for (let i = 0; i < RENEW_AFTER_RUNS + 1; i++) await store('k1')
    const first = await name()
    expect(await plan(first)).toMatch(/Seq Scan on claims/)
    await asAdmin(sql`insert into claims (appid, key, status)
      select 'wx', 'k' || g, 'replied' from generate_series(1, 20000) g`)
    // The next run is under a new name, the old one deallocated before it: planned on 20,000 rows.
    for (let i = 0; i < 6; i++) await store(`k${i}`)
    const renewed = await name()
    expect(renewed).not.toBe(first)
    expect(await plan(renewed)).toMatch(/Index Scan using claims_appid_key_key/)
    await asAdmin(sql`drop table claims`)
  })

  it('prepares nothing with a cache of 0', async () => {
    const db = open(0)
    for (const id of [1, 2, 1]) await byId(db, id)
    expect(await prepared(db)).toEqual([])
  })

  it('answers a statement whose result type a DDL changed (0A000) outside a transaction', async () => {
    const db = open(100)
    await byId(db, 1)
    await byId(db, 1)
    expect(await prepared(db)).toHaveLength(1)
    await sql`alter table things add column w int default 7`.execute(db)
    expect((await byId(db, 1)).rows).toEqual([{ id: 1, v: 'a', w: 7 }])
    expect((await byId(db, 1)).rows).toEqual([{ id: 1, v: 'a', w: 7 }])
  })

  it('answers a statement whose parameter type was dropped and made again (XX000)', async () => {
    const db = open(100)
    const { make, drop, values } = positiveDomainTable(db)
    // `$1` is inferred as the domain: the prepared statement holds its OID
    const insert = (x: number) => sql`insert into typed values (${x})`.execute(db)
    await make()
    await insert(1)
    await insert(2)
    expect(await prepared(db)).toHaveLength(1)
    await drop()
    await make()
    await insert(3)
    await expect(insert(0)).rejects.toMatchObject({ code: '23514' })
    expect(await values()).toEqual([{ x: 3 }])
    await drop()
  })

  it('prepares again when the server lost the statements (26000 after DEALLOCATE ALL)', async () => {
    const db = open(100)
    await byId(db, 1)
    await byId(db, 1)
    await sql`deallocate all`.execute(db)
    expect((await byId(db, 2)).rows).toEqual([{ id: 2, v: 'b' }])
    // forgotten with the lost ones: prepared again on its second run after that
    await byId(db, 2)
    await byId(db, 2)
    expect(await prepared(db)).toEqual([
      { statement: 'select * from things where id = $1', runs: 1 },
    ])
  })

  it('passes the 0A000 on inside a transaction, unchanged, and tells the other connections', async () => {
    const db = open(100, 2)
    // Both connections prepare the statement, held at the same time so that they are two.
    const both = barrier(2)
    await Promise.all(
      [1, 2].map(() =>
        db.connection().execute(async (conn) => {
          await both()
          await byId(conn, 1)
          await byId(conn, 1)
          expect(await prepared(conn)).toHaveLength(1)
        }),
      ),
    )
    await sql`alter table things add column w int default 7`.execute(db)
    const holding = barrier(2)
    let failed!: () => void
    const firstFailed = new Promise<void>((resolve) => {
      failed = resolve
    })
    let release!: () => void
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const first = db.transaction().execute(async (trx) => {
      await holding()
      try {
        await byId(trx, 1)
      } finally {
        failed()
        await released
      }
    })
    // The other connection, in its own transaction after the first one's error: it dropped its
    // statements before running this one.
    const second = db.transaction().execute(async (trx) => {
      await holding()
      await firstFailed
      try {
        return (await byId(trx, 1)).rows
      } finally {
        release()
      }
    })
    await expect(first).rejects.toMatchObject({
      code: '0A000',
      routine: 'RevalidateCachedQuery',
      message: 'cached plan must not change result type',
    })
    expect(await second).toEqual([{ id: 1, v: 'a', w: 7 }])
    // The first connection, after its rollback, prepares it afresh.
    for (let i = 0; i < 3; i++) expect((await byId(db, 2)).rows).toEqual([{ id: 2, v: 'b', w: 7 }])
  })
  it('evicts a text whose Parse failed without aborting a later transaction', async () => {
    const db = open(2)
    const bad = () => sql`select nosuchcol from things where id = ${1}`.execute(db)
    await expect(bad()).rejects.toMatchObject({ code: '42703' })
    await expect(bad()).rejects.toMatchObject({ code: '42703' }) // named now, Parse refused
    const rows = await db.transaction().execute(async (trx) => {
      const out: unknown[] = []
      for (const label of ['x', 'y'])
        for (let i = 0; i < 2; i++)
          out.push(
            ...(await sql`select ${sql.lit(label)} as l from things where id = ${1}`.execute(trx))
              .rows,
          )
      return out
    })
    expect(rows).toEqual([{ l: 'x' }, { l: 'x' }, { l: 'y' }, { l: 'y' }])
  })

  it('forgets a statement whose values pg could not serialise (pg closed it on the server)', async () => {
    const db = open(100)
    const withJson = (value: unknown) =>
      sql<{
        v: string
      }>`select v from things where id = ${1} and ${JSON.stringify({ k: 1 })}::jsonb is not null and ${value}::text is not null`.execute(
        db,
      )
    await withJson('a')
    await withJson('b')
    expect(await prepared(db)).toHaveLength(1)
    await expect(
      withJson({
        toPostgres: () => {
          throw new Error('unserialisable')
        },
      }),
    ).rejects.toThrow('unserialisable')
    // In a transaction, where a missing statement would abort it (26000): prepared afresh or run.
    const rows = await db.transaction().execute(async (trx) => {
      const out: unknown[] = []
      for (let i = 0; i < 3; i++)
        out.push(
          ...(
            await sql<{
              v: string
            }>`select v from things where id = ${1} and ${JSON.stringify({ k: 1 })}::jsonb is not null and ${'c'}::text is not null`.execute(
              trx,
            )
          ).rows,
        )
      return out
    })
    expect(rows).toEqual([{ v: 'a' }, { v: 'a' }, { v: 'a' }])
  })

  it('names statements apart on every connection', async () => {
    const db = open(100, 2)
    const both = barrier(2)
    const names = await Promise.all(
      [1, 2].map(() =>
        db.connection().execute(async (conn) => {
          await both()
          await byId(conn, 1)
          await byId(conn, 1)
          return (
            await sql<{ name: string }>`select name from pg_prepared_statements`.execute(conn)
          ).rows[0]!.name
        }),
      ),
    )
    expect(names[0]).toMatch(/^quanzi_[a-z0-9]+_\d+$/)
    expect(names[0]).not.toBe(names[1])
  })
})
