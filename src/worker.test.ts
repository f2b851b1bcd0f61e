/**
 * The Worker entry with bad configuration, in Node (no workerd, no database: it never gets that
 * far). The configured Worker runs in workerd: test/workerd/worker.test.ts.
 */
import { describe, expect, it, vi } from 'vitest'
import worker from './worker.js'

// The newcomer's line: a signing token written as a number — a secret that must show nowhere.
const env = {
  WECHAT_ACCOUNTS: '[{"appid":"wx0123456789abcdef","token":20261205}]',
  DATABASE_URL: 'postgres://127.0.0.1:9/never',
}
const ctx = {
  waitUntil() {},
  passThroughOnException() {},
  props: {},
}

/** The lines the Worker logs while `run` runs. */
async function logged(run: () => Promise<unknown>): Promise<string[]> {
  const lines: string[] = []
  const spy = vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line))
  try {
    await run()
  } finally {
    spy.mockRestore()
  }
  return lines
}

describe('the Worker, not configured', () => {
  it('answers anyone 503 NOT_CONFIGURED without the problem; the log names it, never the value', async () => {
    let response: Response | undefined
    const lines = await logged(async () => {
      response = await worker.fetch(new Request('http://quanzi.example/healthz'), env, ctx)
    })
    expect(response!.status).toBe(503)
    const body = await response!.text()
    expect(JSON.parse(body)).toEqual({
      code: 'NOT_CONFIGURED',
      message: 'the server is not configured: its log names the problem',
    })
    expect(body).not.toContain('WECHAT_ACCOUNTS')
    expect(body).not.toContain('20261205')
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'error', code: 'NOT_CONFIGURED' })
    expect(lines[0]).toContain('WECHAT_ACCOUNTS[0].token: must be a string')
    expect(lines[0]).not.toContain('20261205')
  })

  it('logs the same one line on every cron tick and returns, instead of throwing', async () => {
    for (let tick = 0; tick < 2; tick++) {
      const lines = await logged(() => worker.scheduled({ scheduledTime: Date.now() }, env, ctx))
      expect(lines).toHaveLength(1)
      expect(JSON.parse(lines[0]!)).toMatchObject({ msg: 'not configured', code: 'NOT_CONFIGURED' })
      expect(lines[0]).toContain('WECHAT_ACCOUNTS[0].token: must be a string')
      expect(lines[0]).not.toContain('20261205')
    }
  })
})
