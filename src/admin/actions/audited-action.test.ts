import { expect, it } from 'vitest'
import { forEachDatabase } from '../../../test/databases.js'
import type { AuditAction } from '../../community/audit-log.js'
import { auditedAction } from './audited-action.js'
import { createReward } from './reward-actions.js'

const appid = 'wx_audited'
const now = new Date('2026-12-01T02:00:00Z')
const clock = { now: () => now }
const alice = { name: 'alice', clientAddress: '192.0.2.7' }

forEachDatabase('audited operator actions', (get) => {
  const entries = (action: string) =>
    get()
      .db.selectFrom('audit_log')
      .select(['appid', 'actor', 'action', 'target', 'details', 'client_address'])
      .where('action', '=', action)
      .execute()

  it('records who did it and from where, in the change’s transaction, only when it changed', async () => {
    const db = get().db
    const input = { appid, code: 7, name: '贴纸', cost: 30, stock: null, perMemberLimit: null }
    const made = await createReward({ db, clock }, alice, input)
    expect(made?.name).toBe('贴纸')
    expect(await createReward({ db, clock }, alice, input)).toBeUndefined()
    const rows = await entries('reward.create')
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({
      appid,
      actor: 'alice',
      target: '7',
      client_address: '192.0.2.7',
    })
    expect(JSON.parse(rows[0]!.details)).toMatchObject({ code: 7, cost: 30 })
  })

  it('rolls the entry back with a failing change, and writes it after work that commits itself', async () => {
    const db = get().db
    // actions of this test alone, so that no other file's entries are counted
    const step = { appid, actor: alice, action: 'test.fail' as AuditAction, target: 't', now }
    await expect(
      auditedAction(db, step, async (trx) => {
        await trx
          .insertInto('audit_log')
          .values({
            appid,
            actor: 'x',
            action: 'test.fail',
            target: 'inner',
            details: '{}',
            created_at: now,
          })
          .execute()
        throw new Error('boom')
      }),
    ).rejects.toThrow('boom')
    expect(await entries('test.fail')).toHaveLength(0)

    const after = { ...step, action: 'test.after' as AuditAction, commit: 'after' as const }
    const result = await auditedAction(db, after, async (own) => {
      const n = await own
        .selectFrom('audit_log')
        .select('id')
        .where('action', '=', 'test.after')
        .execute()
      return { result: n.length, details: { seen: n.length }, target: 'late' }
    })
    expect(result).toBe(0)
    const rows = await entries('test.after')
    expect(rows.map((r) => [r.actor, r.target, JSON.parse(r.details).seen])).toEqual([
      ['alice', 'late', 0],
    ])
  })
})
