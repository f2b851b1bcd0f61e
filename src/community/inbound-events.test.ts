import { expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { countStatements } from '../../test/statement-counter.js'
import { databaseInboundStore } from './inbound-events.js'

forEachDatabase('inbound store', (get) => {
  it('stores concurrent replies in fewer statements, each moving its own claim only', async () => {
    const counted = countStatements(get().db)
    const appid = 'wxbatch00000000001'
    const now = new Date('2026-12-03T01:00:00Z')
    const keys = [1, 2, 3, 4, 5].map((i) => ({ appid, dedupeKey: `m:batch${i}` }))
    await get()
      .db.insertInto('inbound_events')
      .values(
        keys.map((k, i) => ({
          appid,
          dedupe_key: k.dedupeKey,
          openid: 'o_batch',
          msg_type: 'text',
          event: null,
          status: i === 4 ? 'deferred' : 'processing', // the deadline took the last one
          received_at: now,
        })),
      )
      .execute()
    const store = databaseInboundStore(counted.db)
    counted.reset()
    const moved = await Promise.all(
      keys.map((k, i) => store.complete(k, `reply ${i}`, now, i === 3 ? 'boom' : undefined)),
    )
    expect(moved).toEqual([true, true, true, true, false])
    expect(counted.count()).toBe(1) // made together: one batch
    const rows = await get()
      .db.selectFrom('inbound_events')
      .select(['dedupe_key', 'status', 'reply', 'error'])
      .where('appid', '=', appid)
      .orderBy('dedupe_key')
      .execute()
    expect(rows).toEqual([
      { dedupe_key: 'm:batch1', status: 'replied', reply: 'reply 0', error: null },
      { dedupe_key: 'm:batch2', status: 'replied', reply: 'reply 1', error: null },
      { dedupe_key: 'm:batch3', status: 'replied', reply: 'reply 2', error: null },
      { dedupe_key: 'm:batch4', status: 'failed', reply: 'reply 3', error: 'boom' },
      { dedupe_key: 'm:batch5', status: 'deferred', reply: null, error: null },
    ])
  })
})
