import { expect, it } from 'vitest'
import { pruneInboundEventsJob } from '../../jobs/prune-inbound-events.js'
import { forEachDatabase } from '../../test/databases.js'
import { testConfig } from '../../test/server.js'
import { silentLogger } from '../logger.js'
import { limitRequest } from './rate-buckets.js'
import { bodyDigest, claimNonce, pruneReplayClaims } from './replay-claims.js'

forEachDatabase('the replay cache and request limits', (get) => {
  const now = new Date('2026-11-24T02:00:00Z')
  const ts = Math.floor(now.getTime() / 1000)

  it('tells a new request from a retry (same body) and a replay (another body)', async () => {
    const db = get().db
    const claim = async (body: string, o: { key?: string; nonce?: string; door?: string } = {}) =>
      claimNonce(db, {
        door: o.door ?? 'bridge',
        key: o.key ?? 'home',
        timestamp: ts,
        nonce: o.nonce ?? 'nonce-0001',
        bodyDigest: await bodyDigest(body),
        now,
      })
    expect(await claim('a')).toBe('new')
    expect(await claim('a')).toBe('retry')
    expect(await claim('b')).toBe('conflict')
    expect(await claim('b', { key: 'other' })).toBe('new')
    expect(await claim('b', { door: 'wechat' })).toBe('new')
    expect(await claim('b', { nonce: 'nonce-0002' })).toBe('new')
    // concurrent first sightings: exactly one wins, the others are retries
    const racing = await Promise.all(
      Array.from({ length: 8 }, () => claim('c', { nonce: 'nonce-race' })),
    )
    expect(racing.filter((r) => r === 'new')).toHaveLength(1)
    expect(racing.filter((r) => r === 'retry')).toHaveLength(7)
  })

  it('prunes claims outside the freshness window (the prune job), and idle limit buckets', async () => {
    const db = get().db
    const old = { door: 'bridge', key: 'prune', nonce: 'nonce-old', bodyDigest: 'x', now }
    await claimNonce(db, { ...old, timestamp: ts - 400 })
    await claimNonce(db, { ...old, nonce: 'nonce-new', timestamp: ts - 100 })
    expect(
      await limitRequest(db, [{ key: 'test:idle', rate: { perSecond: 1, burst: 1 } }], now),
    ).toBe(0)
    const result = await pruneInboundEventsJob.run({
      db,
      slot: new Date(now.getTime() + 7_200_000),
      clock: { now: () => new Date(now.getTime() + 7_200_000) },
      logger: silentLogger,
      config: testConfig(),
    })
    expect(result.replayClaims).toBeGreaterThanOrEqual(2)
    expect(result.rateBuckets).toBeGreaterThanOrEqual(1)
    expect(await pruneReplayClaims(db, now)).toBe(0)
    const left = await db
      .selectFrom('replay_claims')
      .select('nonce')
      .where('key', '=', 'prune')
      .execute()
    expect(left).toEqual([])
  })

  it('limits requests per bucket and says when to retry', async () => {
    const db = get().db
    const rate = { perSecond: 0.5, burst: 2 }
    const at = (ms: number) => new Date(now.getTime() + ms)
    expect(await limitRequest(db, [{ key: 'test:a', rate }], at(0))).toBe(0)
    expect(await limitRequest(db, [{ key: 'test:a', rate }], at(0))).toBe(0)
    expect(await limitRequest(db, [{ key: 'test:a', rate }], at(0))).toBe(2000)
    expect(await limitRequest(db, [{ key: 'test:a', rate }], at(1000))).toBe(1000)
    expect(await limitRequest(db, [{ key: 'test:a', rate }], at(2000))).toBe(0)
    // the first empty bucket stops: the later one is not drawn from
    const tight = { perSecond: 0.001, burst: 1 }
    expect(await limitRequest(db, [{ key: 'test:b', rate: tight }], at(0))).toBe(0)
    expect(
      await limitRequest(
        db,
        [
          { key: 'test:b', rate: tight },
          { key: 'test:c', rate: tight },
        ],
        at(0),
      ),
    ).toBeGreaterThan(0)
    expect(await limitRequest(db, [{ key: 'test:c', rate: tight }], at(0))).toBe(0)
  })
})
