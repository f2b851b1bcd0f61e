/**
 * Only a checkout that timed out in a full pool's queue is a PoolBusyError: a connection the server
 * never answers, one it refuses and look-alike errors stay what they were. Against loopback servers
 * (no database needed); against PostgreSQL when TEST_DATABASE_URL is set.
 */

import type { AddressInfo } from 'node:net'
import { createServer, type Server, type Socket } from 'node:net'
import type pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  acquire,
  isPoolAcquireTimeout,
  POOL_ACQUIRE_TIMEOUT,
  PoolBusyError,
} from './pool-busy-error.js'
import { postgresPool } from './postgres.js'

/** What a promise settled with: its value, or the error. */
const settle = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ value }),
    (error: Error) => ({ error }),
  )

describe('PoolBusyError', () => {
  // A "database" that accepts connections and never answers.
  let silent: Server
  const sockets: Socket[] = []
  let silentUrl = ''
  beforeAll(async () => {
    silent = createServer((socket) => {
      sockets.push(socket)
    })
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))
    silentUrl = `postgres://nobody@127.0.0.1:${(silent.address() as AddressInfo).port}/none`
  })
  afterAll(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((r) => silent.close(r))
  })

  it('is what a checkout that waited in a full pool gets, not the connection that never came', async () => {
    const pool = postgresPool(silentUrl, { max: 1, connectionTimeoutMs: 150 })
    try {
      // the first takes the pool's one slot and connects; the second waits in the queue
      const [connecting, queued] = await Promise.all([
        settle(acquire(pool, 150)),
        settle(acquire(pool, 150)),
      ])
      expect(connecting).toMatchObject({
        error: { message: 'Connection terminated due to connection timeout' },
      })
      expect((connecting as { error: Error }).error).not.toBeInstanceOf(PoolBusyError)
      const busy = (queued as { error: Error }).error
      expect(busy).toBeInstanceOf(PoolBusyError)
      expect(busy).toMatchObject({
        waitedMs: 150,
        message: 'no database connection came free within 150 ms',
        cause: { message: POOL_ACQUIRE_TIMEOUT },
      })
    } finally {
      await pool.end()
    }
  })

  it('leaves a refused connection and look-alike errors alone', async () => {
    const closed = createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as AddressInfo).port
    await new Promise((r) => closed.close(r))
    const pool = postgresPool(`postgres://nobody@127.0.0.1:${port}/none`, {
      max: 1,
      connectionTimeoutMs: 150,
    })
    try {
      const refused = await settle(acquire(pool, 150))
      expect(refused).toMatchObject({ error: { code: 'ECONNREFUSED' } })
      expect((refused as { error: Error }).error).not.toBeInstanceOf(PoolBusyError)
    } finally {
      await pool.end()
    }
    expect(isPoolAcquireTimeout(new Error(POOL_ACQUIRE_TIMEOUT))).toBe(true)
    expect(isPoolAcquireTimeout(new TypeError(POOL_ACQUIRE_TIMEOUT))).toBe(false)
    expect(
      isPoolAcquireTimeout(Object.assign(new Error(POOL_ACQUIRE_TIMEOUT), { code: '57014' })),
    ).toBe(false)
    expect(isPoolAcquireTimeout(new Error(`${POOL_ACQUIRE_TIMEOUT}!`))).toBe(false)
    expect(isPoolAcquireTimeout(POOL_ACQUIRE_TIMEOUT)).toBe(false)
  })

  it.runIf(process.env.TEST_DATABASE_URL)(
    'is what a statement gets on PostgreSQL while every connection is held',
    async () => {
      const pool = postgresPool(process.env.TEST_DATABASE_URL!, {
        max: 1,
        connectionTimeoutMs: 200,
      })
      try {
        const held = await acquire<pg.PoolClient>(pool, 200)
        const busy = await settle(acquire(pool, 200))
        expect((busy as { error: Error }).error).toBeInstanceOf(PoolBusyError)
        held.release()
        const free = await acquire<pg.PoolClient>(pool, 200)
        expect((await free.query('select 1 as one')).rows).toEqual([{ one: 1 }])
        free.release()
      } finally {
        await pool.end()
      }
    },
  )

  it.runIf(process.env.TEST_DATABASE_URL)(
    'outlives an idle connection the server closes (a restart, a failover): the next statement reconnects',
    async () => {
      const pool = postgresPool(process.env.TEST_DATABASE_URL!, { max: 2 })
      const other = postgresPool(process.env.TEST_DATABASE_URL!, { max: 1 })
      try {
        const { rows } = await pool.query<{ pid: number }>('select pg_backend_pid() as pid')
        expect(pool.idleCount).toBe(1)
        // what a restart does to it; with no 'error' listener the pool's event is an uncaught
        // exception (vitest fails the run with 'terminating connection due to administrator
        // command'; a server process would crash)
        await other.query('select pg_terminate_backend($1)', [rows[0]!.pid])
        for (let i = 0; i < 100 && pool.idleCount > 0; i++)
          await new Promise((r) => setTimeout(r, 20))
        expect(pool.idleCount).toBe(0)
        expect((await pool.query('select 1 as one')).rows).toEqual([{ one: 1 }])
      } finally {
        await pool.end()
        await other.end()
      }
    },
  )
})
