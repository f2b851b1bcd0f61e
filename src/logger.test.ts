import { expect, it } from 'vitest'
import { createLogger } from './logger.js'

const lines = (level?: 'debug' | 'info' | 'warn' | 'error') => {
  const out: Record<string, unknown>[] = []
  const log = createLogger({ level, write: (line) => out.push(JSON.parse(line)) })
  return { log, out }
}

it('children add their fields to every line; the line and the nearer child win', () => {
  const { log, out } = lines()
  const child = log.child({ appid: 'wx1', step: 'outer' })
  const grandchild = child.child({ step: 'inner', msgId: '7' })
  grandchild.info('claimed', { msgId: '8' })
  child.warn('late')
  log.info('plain')
  expect(out.map(({ time, ...rest }) => rest)).toEqual([
    { level: 'info', msg: 'claimed', appid: 'wx1', step: 'inner', msgId: '8' },
    { level: 'warn', msg: 'late', appid: 'wx1', step: 'outer' },
    { level: 'info', msg: 'plain' },
  ])
  expect(typeof out[0]!.time).toBe('string')
})

it('masks secret-looking keys, keeps error details (the stack at error level only), drops lower levels', () => {
  const { log, out } = lines('info')
  const error = Object.assign(new Error('boom'), { code: 'E_X' })
  const child = log.child({ accessToken: 'abc' })
  child.debug('dropped')
  child.warn('refused', { error, aes_key: 'k' })
  child.error('failed', { error: new Error('plain') })
  expect(out).toHaveLength(2)
  expect(out[0]).toMatchObject({
    accessToken: '[redacted]',
    aes_key: '[redacted]',
    error: { name: 'Error', message: 'boom', code: 'E_X' },
  })
  expect(out[0]!.error).not.toHaveProperty('stack')
  expect(out[1]!.error).toMatchObject({ name: 'Error', message: 'plain' })
  expect(out[1]!.error).not.toHaveProperty('code')
  expect((out[1]!.error as { stack: string }).stack).toContain('plain')
})
