import { expect, it } from 'vitest'
import { batcher, type Local, scopedBatcher } from './batcher.js'

it('batcher: runs the first call at once and the calls made meanwhile together', async () => {
  const runs: number[][] = []
  let release = () => {}
  const batched = batcher(async (items: number[]) => {
    runs.push(items)
    if (runs.length === 1) await new Promise<void>((resolve) => (release = resolve))
    return items.map((n) => n * 10)
  })
  const first = batched(1)
  const rest = [2, 3, 4].map(batched)
  release()
  expect(await Promise.all([first, ...rest])).toEqual([10, 20, 30, 40])
  expect(runs).toEqual([[1], [2, 3, 4]])
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
  let release = () => {}
  let runs = 0
  const batched = batcher(async (items: string[]) => {
    if (++runs === 1) await new Promise<void>((resolve) => (release = resolve))
    if (items.includes('bad')) throw new Error('bad item')
    return items.map((s) => s.toUpperCase())
  })
  const first = batched('a')
  const rest = ['b', 'bad', 'c'].map((s) => batched(s).catch((e: Error) => e.message))
  release()
  expect(await first).toBe('A')
  expect(await Promise.all(rest)).toEqual(['B', 'bad item', 'C'])
})

it('scopedBatcher: calls of different scopes never share a run', async () => {
  const runs: string[][] = []
  let release = () => {}
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
    if (runs.length === 1) await new Promise<void>((resolve) => (release = resolve))
    return items
  }, local)
  const calls = [batched('a1'), batched('a2')]
  scope = 'b'
  calls.push(batched('b1'), batched('b2'))
  scope = 'a'
  calls.push(batched('a3'))
  release()
  expect(await Promise.all(calls)).toEqual(['a1', 'a2', 'b1', 'b2', 'a3'])
  expect(runs).toContainEqual(['a2', 'a3'])
  for (const run of runs) expect(new Set(run.map((item) => item[0])).size).toBe(1)
})
