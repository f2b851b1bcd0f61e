import { expect, it } from 'vitest'
import { batcher, type Local, scopedBatcher } from './batcher.js'

it('batcher: runs the calls made before it starts together, and those made while it runs next', async () => {
  const runs: number[][] = []
  let started = () => {}
  const running = new Promise<void>((resolve) => (started = resolve))
  let release = () => {}
  const batched = batcher(async (items: number[]) => {
    runs.push(items)
    if (runs.length === 1) {
      started()
      await new Promise<void>((resolve) => (release = resolve))
    }
    return items.map((n) => n * 10)
  })
  const first = [1, 2].map(batched)
  await running
  const rest = [3, 4, 5].map(batched)
  release()
  expect(await Promise.all([...first, ...rest])).toEqual([10, 20, 30, 40, 50])
  expect(runs).toEqual([
    [1, 2],
    [3, 4, 5],
  ])
})

it('batcher: a failed run fails each of its callers, and the next run still happens', async () => {
  let calls = 0
  const batched = batcher(async (items: string[]) => {
    if (++calls === 1) throw new Error('down')
    return items
  })
  await expect(batched('a')).rejects.toThrow('down')
  expect(await batched('b')).toBe('b')
})

it('batcher: one bad item in a batch fails its own caller only', async () => {
  const runs: string[][] = []
  const batched = batcher(async (items: string[]) => {
    runs.push(items)
    if (items.includes('bad')) throw new Error('bad item')
    return items.map((s) => s.toUpperCase())
  })
  const results = ['a', 'b', 'bad', 'c'].map((s) => batched(s).catch((e: Error) => e.message))
  expect(await Promise.all(results)).toEqual(['A', 'B', 'bad item', 'C'])
  expect(runs).toEqual([['a', 'b', 'bad', 'c'], ['a'], ['b'], ['bad'], ['c']])
})

it('scopedBatcher: calls of different scopes never share a run', async () => {
  const runs: string[][] = []
  const made = new Map<string, Map<unknown, unknown>>()
  let scope = 'a'
  const local: Local = <V>(make: () => V): V => {
    const values = made.get(scope) ?? new Map<unknown, unknown>()
    made.set(scope, values)
    if (!values.has(make)) values.set(make, make())
    return values.get(make) as V
  }
  const batched = scopedBatcher(async (items: string[]) => {
    runs.push(items)
    return items
  }, local)
  const calls = [batched('a1'), batched('a2')]
  scope = 'b'
  calls.push(batched('b1'), batched('b2'))
  scope = 'a'
  calls.push(batched('a3'))
  expect(await Promise.all(calls)).toEqual(['a1', 'a2', 'b1', 'b2', 'a3'])
  expect(runs).toEqual([
    ['a1', 'a2', 'a3'],
    ['b1', 'b2'],
  ])
})

it('batcher: takes at most `max` items in one run', async () => {
  const runs: number[][] = []
  const batched = batcher(
    async (items: number[]) => {
      runs.push(items)
      return items
    },
    { max: 2 },
  )
  expect(await Promise.all([1, 2, 3, 4, 5].map(batched))).toEqual([1, 2, 3, 4, 5])
  expect(runs).toEqual([[1, 2], [3, 4], [5]])
})

it('batcher: with two lanes, a call made while a run is stuck runs beside it', async () => {
  const order: string[] = []
  let release = () => {}
  const stuck = new Promise<void>((resolve) => (release = resolve))
  const batched = batcher(
    async (items: string[]) => {
      if (items.includes('stuck')) await stuck
      order.push(...items)
      return items
    },
    { lanes: 2 },
  )
  const first = batched('stuck')
  await new Promise((resolve) => setImmediate(resolve)) // its run has started
  expect(await batched('later')).toBe('later')
  release()
  expect(await first).toBe('stuck')
  expect(order).toEqual(['later', 'stuck'])
})
