import { afterAll, beforeAll, expect, it } from 'vitest'
import { forEachDatabase } from '../../test/databases.js'
import { sandboxClient } from '../../test/sandbox-client.js'
import type { Clock } from '../clock.js'
import { silentLogger } from '../logger.js'
import { type SandboxApi, startSandboxApi } from '../sandbox/wechat-api-server.js'
import { type DispatcherOptions, enqueue } from './outbox.js'
import { drainOutboxWithin } from './outbox-worker.js'

const SECRET = 'bounded-secret'
let wx: SandboxApi
beforeAll(async () => {
  wx = await startSandboxApi({ secret: SECRET })
})
afterAll(() => wx.close())

forEachDatabase('bounded outbox drain (Workers cron)', (get, dbName) => {
  let n = 0
  /** A clock that moves `stepMs` each time it is read: a budget runs out after a few reads. */
  const steppingClock = (stepMs: number) => {
    let at = new Date('2026-11-24T02:00:00Z').getTime()
    return {
      now: () => {
        at += stepMs
        return new Date(at)
      },
    } satisfies Clock
  }
  function account(clock: Clock): DispatcherOptions {
    const appid = `wx${dbName === 'pglite' ? 'c' : 'd'}${String(++n).padStart(15, '0')}`
    return {
      db: get().db,
      api: sandboxClient(get().db, { appid, secret: SECRET, baseUrl: wx.url }),
      appid,
      clock,
      logger: silentLogger,
      timeZone: 'Asia/Shanghai',
      rate: { perSecond: 0, burst: 1 },
      batchSize: 2,
    }
  }
  const fill = (o: DispatcherOptions, count: number) =>
    enqueue(
      get().db,
      Array.from({ length: count }, (_, i) => ({
        appid: o.appid,
        source: 'notice:bounded',
        openid: `o_b${i}`,
        kind: 'template' as const,
        payload: { template_id: 'TPL_BOUNDED', data: { keyword1: { value: '提醒' } } },
      })),
      new Date('2026-11-24T01:00:00Z'),
    )
  const sentTo = (appid: string) => wx.sent.filter((s) => s.appid === appid).length

  it('drains batch by batch until nothing is due, within the budget', async () => {
    const o = account(steppingClock(1))
    await fill(o, 5)
    const r = await drainOutboxWithin({ ...o, budgetMs: 60_000 })
    expect(r).toMatchObject({ sent: 5, batches: 3, outOfTime: false })
    expect(sentTo(o.appid)).toBe(5)
    expect(await drainOutboxWithin({ ...o, budgetMs: 60_000 })).toMatchObject({
      sent: 0,
      batches: 0,
    })
  })

  it('stops when the budget has passed and leaves the rest to the next tick', async () => {
    // Every read of the clock moves it 1 s; a 1.5 s budget allows one batch to start.
    const o = account(steppingClock(1000))
    await fill(o, 6)
    const first = await drainOutboxWithin({ ...o, budgetMs: 1500 })
    expect(first.outOfTime).toBe(true)
    expect(first.sent).toBeGreaterThan(0)
    expect(first.sent).toBeLessThan(6)
    expect(sentTo(o.appid)).toBe(first.sent)
    const rest = await drainOutboxWithin({ ...o, clock: steppingClock(1), budgetMs: 60_000 })
    expect(first.sent + rest.sent).toBe(6)
    expect(sentTo(o.appid)).toBe(6)
  })
})
