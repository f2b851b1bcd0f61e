/**
 * The body caps of the console (256 KB) and the operator API (1 MB): a larger body is refused with
 * 413 — on the console before the session and CSRF checks, with its error page — and is not read
 * whole, whether it declares a Content-Length or streams chunked without one — on every test
 * database.
 */
import type { Hono } from 'hono'
import { beforeAll, expect, it } from 'vitest'
import { createRouter } from '../../handlers/index.js'
import { manualClock, seedOperators, signIn } from '../../test/console-kit.js'
import { forEachDatabase } from '../../test/databases.js'
import { SAFE_ACCOUNT, testConfig } from '../../test/server.js'
import { ADMIN_MAX_BODY_BYTES } from '../admin/admin-routes.js'
import { createApp } from '../app.js'
import { silentLogger } from '../logger.js'
import { CONSOLE_MAX_BODY_BYTES } from './console-routes.js'

const TOKEN = 'body-size-test-token'
const CHUNK = 64 * 1024

/** A url-encoded-looking body of `chunks` × 64 KB, streamed (no Content-Length); counts what was read. */
function streamed(chunks: number) {
  const read = { bytes: 0 }
  let sent = 0
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent === chunks) return controller.close()
      sent++
      read.bytes += CHUNK
      controller.enqueue(pad(sent === 1 ? 'a=' : ''))
    },
  })
  return { body, read, total: chunks * CHUNK }
}
const pad = (head: string) => new TextEncoder().encode(head + 'x'.repeat(CHUNK - head.length))

forEachDatabase('body caps', (get) => {
  const clock = manualClock(new Date('2026-11-20T02:00:00Z'))
  let app: Hono
  const form = { 'content-type': 'application/x-www-form-urlencoded' }

  beforeAll(async () => {
    await seedOperators(get().db, clock.now())
    app = createApp({
      config: testConfig({ ADMIN_TOKEN: TOKEN }),
      db: get().db,
      router: createRouter(),
      logger: silentLogger,
      clock,
    })
  })

  it('refuses an anonymous console body over 256 KB with 413 and its error page, unread', async () => {
    // Chunked, no Content-Length: read up to the cap, not to the end (100 × 64 KB = 6.4 MB).
    const big = streamed(100)
    const res = await app.request('/console/activities/checkin/award', {
      method: 'POST',
      headers: form,
      body: big.body,
      duplex: 'half',
    } as RequestInit)
    expect(res.status).toBe(413)
    expect(res.headers.get('connection')).toBe('close')
    expect(await res.text()).toContain('提交的内容过大，未处理。')
    expect(big.read.bytes).toBeLessThan(big.total / 4)
    // A declared length over the cap: refused from the header alone.
    const declared = await app.request('/console/login?lang=en', {
      method: 'POST',
      headers: { ...form, 'content-length': String(CONSOLE_MAX_BODY_BYTES + 1) },
      body: 'name=a',
    })
    expect(declared.status).toBe(413)
    expect(await declared.text()).toContain('What was sent is too large; nothing was done.')
  })

  it('reads a signed-in operator’s form under the cap as before', async () => {
    const op = await signIn(app, 'op1')
    // The list seeds the default activities (签到 among them).
    await app.request('/console/activities', { headers: { cookie: op.cookie } })
    const openids = Array.from({ length: 5000 }, (_, i) => `o_${String(i).padStart(38, '0')}`)
    const body = new URLSearchParams({ _csrf: op.csrf, others: openids.join('\n') })
    expect(body.toString().length).toBeGreaterThan(200_000)
    expect(body.toString().length).toBeLessThan(CONSOLE_MAX_BODY_BYTES)
    const res = await app.request('/console/activities/checkin/award', {
      method: 'POST',
      headers: { ...form, cookie: op.cookie },
      body: body.toString(),
    })
    // Read and answered by the page: too many members (over 1000), not a 413.
    expect(res.status).toBe(400)
    expect(await res.text()).toContain('一次最多发放 1000 人')
  })

  it('refuses an operator API body over 1 MB with 413, unread', async () => {
    const big = streamed(100)
    const res = await app.request(`/admin/api/accounts/${SAFE_ACCOUNT.appid}/activities`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: big.body,
      duplex: 'half',
    } as RequestInit)
    expect(res.status).toBe(413)
    expect(big.read.bytes).toBeLessThanOrEqual(ADMIN_MAX_BODY_BYTES + 2 * CHUNK)
    expect(big.read.bytes).toBeLessThan(big.total)
  })
})
