import { expect, it } from 'vitest'
import { stopping } from './stopping.js'

it('aborts at stop, then waits for the work kept, failed or not', async () => {
  const server = stopping()
  const events: string[] = []
  let finish!: () => void
  server.keep(
    new Promise<void>((resolve) => {
      finish = resolve
    }).then(() => {
      events.push('work ended')
    }),
  )
  server.keep(Promise.reject(new Error('failed')))
  const stopped = server.stop().then(() => events.push('stopped'))
  expect(server.signal.aborted).toBe(true)
  await new Promise((r) => setTimeout(r, 10))
  expect(events).toEqual([])
  finish()
  await stopped
  expect(events).toEqual(['work ended', 'stopped'])
})
