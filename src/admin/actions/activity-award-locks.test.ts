/**
 * An award without a daily limit (the API's token holder, an unlimited operator) commits each
 * member's points on its own: no member stays locked while the others are awarded, so a check-in of
 * the first of 1000 awarded members does not wait for the last. PostgreSQL only: it takes a second
 * connection to hold a member locked (PGlite has one).
 */
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../../test/databases.js'
import { expectLedgerInvariant } from '../../../test/points-invariant.js'
import { applyDelta, withMemberLocked } from '../../community/points-ledger.js'
import { awardActivity, createActivity } from './activity-actions.js'

const TZ = 'Asia/Shanghai'
const OA = 'wxawardlocks00000001'

forEachDatabase('activity awards without a limit', (get, dbName) => {
  for (const by of ['the API', 'a console operator without a limit'] as const)
    it.skipIf(dbName === 'pglite')(
      `commits each member's award on its own (${by}): the first member is not held locked until the last is awarded`,
      async () => {
        const api = by === 'the API'
        const actor = { name: api ? 'operator' : 'ops' }
        const options = api ? {} : { dailyLimit: true }
        const o = api ? 'a' : 'c'
        const db = get().db
        const now = new Date()
        if (!api)
          await db
            .insertInto('operators')
            .values({
              name: 'ops',
              role: 'operator',
              password_hash: 'x',
              created_at: now,
              updated_at: now,
            })
            .execute()
        const ids: number[] = []
        for (let i = 0; i < 3; i++)
          ids.push(
            Number(
              (
                await db
                  .insertInto('members')
                  .values({
                    appid: OA,
                    openid: `o_al_${o}${i}`,
                    subscribed: true,
                    first_seen_at: now,
                  })
                  .returning('id')
                  .executeTakeFirstOrThrow()
              ).id,
            ),
          )
        const deps = { db, clock: { now: () => now }, timeZone: TZ }
        const activity = await createActivity(
          deps,
          { name: 'owner' },
          {
            appid: OA,
            key: `locks-${o}`,
            name: '线下聚会',
            description: '',
            cron: '0 10 * * *',
            cadence: 'daily',
            points: 10,
            capacity: null,
            signup: false,
            requiresPurchase: false,
          },
        )
        // the slow step: another connection holds the last member locked until told to let go
        const other = get().open({ max: 1 })
        let letGo = () => {}
        const holding = new Promise<void>((resolve) => {
          letGo = resolve
        })
        let blockerPid = 0
        const locked = new Promise<void>((ready) => {
          void other.transaction().execute(async (trx) => {
            await trx
              .selectFrom('members')
              .select('id')
              .where('id', '=', ids[2]!)
              .forUpdate()
              .execute()
            blockerPid = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx))
              .rows[0]!.pid
            ready()
            await holding
          })
        })
        await locked
        const blockedBy = async (pid: number) =>
          (
            await sql<{ pid: number }>`select pid from pg_stat_activity
            where ${pid}::int = any(pg_blocking_pids(pid))`.execute(db)
          ).rows.map((r) => r.pid)
        const until = async (ready: () => Promise<boolean>) => {
          while (!(await ready())) await new Promise((r) => setTimeout(r, 20))
        }
        const done: string[] = []
        const openids = [0, 1, 2].map((i) => `o_al_${o}${i}`)
        const award = awardActivity(deps, actor, { activity: activity!, openids }, options).then(
          (r) => {
            done.push('award')
            return r
          },
        )
        let awardPid = 0
        await until(async () => {
          awardPid = (await blockedBy(blockerPid))[0] ?? 0
          return awardPid !== 0
        })
        // the award waits for the last member: a ledger write to the first one meanwhile
        const write = withMemberLocked(db, ids[0]!, (trx, m) =>
          applyDelta(
            trx,
            m,
            {
              appid: OA,
              memberId: ids[0]!,
              rule: 'grant',
              idempotencyKey: `al-w-${o}`,
              now,
              timeZone: TZ,
            },
            1,
          ),
        ).then(() => done.push('write'))
        // let go once the write is done, or waits for the award (what holding the first member does)
        await until(async () => done.includes('write') || (await blockedBy(awardPid)).length > 0)
        letGo()
        const result = await award
        await write
        expect(done).toEqual(['write', 'award'])
        expect(result).toMatchObject({ status: 'awarded' })
        const entry = await db
          .selectFrom('audit_log')
          .select('details')
          .where('action', '=', 'activity.award')
          .where('target', '=', `locks-${o}`)
          .executeTakeFirstOrThrow()
        const details =
          typeof entry.details === 'string' ? JSON.parse(entry.details) : entry.details
        expect(details).toMatchObject({ granted: 30 })
        await expectLedgerInvariant(db)
      },
      60_000,
    )
})
