/**
 * The audit log's retention on every database: operator actions and refused calls each deleted
 * after their own number of days, in batches, by index.
 */
import { sql } from 'kysely'
import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import {
  type AuditEntryAction,
  audit,
  expiredAuditEntries,
  pruneAuditLog,
  REFUSED,
} from './audit-log.js'

const DAY = 86_400_000

forEachDatabase('audit log retention', (get, dbName) => {
  const now = new Date('2026-11-25T20:47:00Z')
  const ago = (days: number) => new Date(now.getTime() - days * DAY)
  const appid = `wxaudit_${dbName}`
  const add = (action: AuditEntryAction, at: Date) =>
    audit(get().db, { appid, actor: 'op1', action, target: 't', details: null, now: at })
  /** The ages (days) of the account's entries of `action` left, oldest first. */
  const left = async (refused: boolean) =>
    (
      await get()
        .db.selectFrom('audit_log')
        .select('created_at')
        .where('appid', '=', appid)
        .where('action', refused ? '=' : '<>', REFUSED)
        .orderBy('created_at')
        .execute()
    ).map((r) => (now.getTime() - r.created_at.getTime()) / DAY)

  it('deletes old entries in batches, each kind on its own clock, keeping the boundary', async () => {
    for (const days of [900, 800, 731, 730, 729, 45, 1]) await add('points.grant', ago(days))
    for (const days of [400, 45, 31, 30, 29, 1]) await add(REFUSED, ago(days))
    // a second before the boundary goes, the boundary itself stays
    await add('campaign.finish', new Date(ago(730).getTime() - 1000))
    const retention = { now, actionDays: 730, refusedDays: 30, batchSize: 2 }
    expect(await pruneAuditLog(get().db, retention)).toEqual({ actions: 4, refused: 3 })
    expect(await left(false)).toEqual([730, 729, 45, 1])
    // refused calls as old as kept operator actions (45 days) are gone
    expect(await left(true)).toEqual([30, 29, 1])
    expect(await pruneAuditLog(get().db, retention)).toEqual({ actions: 0, refused: 0 })
  })

  it('finds each kind of expired entry by its partial index, also in a generic plan', async () => {
    // the prune's statement is prepared (src/db/prepared-statements.ts): even a plan made for
    // any value of its parameters must use the index of its kind, not scan the table
    for (const refused of [true, false]) {
      const query = expiredAuditEntries(get().db, { refused, before: now, limit: 1000 }).compile()
      const values = query.parameters.map((p) =>
        p instanceof Date ? `'${p.toISOString()}'` : typeof p === 'number' ? p : `'${p}'`,
      )
      const plan = await get()
        .db.transaction()
        .execute(async (trx) => {
          await sql`set local enable_seqscan = off`.execute(trx)
          await sql`set local plan_cache_mode = force_generic_plan`.execute(trx)
          await sql.raw(`prepare expired_audit as ${query.sql}`).execute(trx)
          const { rows } = await sql
            .raw(`explain execute expired_audit(${values.join(', ')})`)
            .execute(trx)
          await sql`deallocate expired_audit`.execute(trx)
          return rows.map((r) => Object.values(r as object).join(' ')).join('\n')
        })
      expect(plan).toContain(
        refused ? 'audit_log_refused_created_idx' : 'audit_log_action_created_idx',
      )
    }
  })
})
