/**
 * The Node entry as an operator meets it, through `npm start` in a child process on PGlite: logs
 * that are JSON lines, /healthz and /metrics (read with a Prometheus text parser), one process that
 * takes the signals, the embedded database held by one process, and start-up errors that name
 * their cause in one line.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createPusher } from '../src/sandbox/pusher.js'

const root = new URL('..', import.meta.url).pathname

async function freePort(): Promise<number> {
  const server = createServer().listen(0)
  await new Promise((r) => server.once('listening', r))
  const { port } = server.address() as AddressInfo
  await new Promise((r) => server.close(r))
  return port
}

interface Started {
  child: ChildProcess
  port: number
  dataDir: string
  out: string[]
  err: string[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/** `npm <args>` with its own data folder and port; collects stdout and stderr lines. */
function npm(args: string[], env: Record<string, string>, port: number, dataDir: string): Started {
  const child = spawn('npm', ['--silent', ...args], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      QUANZI_DATA_DIR: dataDir,
      DATABASE_URL: '',
      WECHAT_APPID: '',
      WECHAT_TOKEN: '',
      ADMIN_TOKEN: '',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const out: string[] = []
  const err: string[] = []
  const lines = (into: string[]) => {
    let rest = ''
    return (chunk: Buffer) => {
      const parts = (rest + chunk.toString()).split('\n')
      rest = parts.pop()!
      into.push(...parts)
    }
  }
  child.stdout!.on('data', lines(out))
  child.stderr!.on('data', lines(err))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  return { child, port, dataDir, out, err, exited }
}

async function untilHealthy(s: Started, ms = 90_000) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (s.child.exitCode !== null)
      throw new Error(`exited ${s.child.exitCode}: ${s.err.join('\n')}`)
    const ok = await fetch(`http://127.0.0.1:${s.port}/healthz`).then(
      (r) => r.status === 200,
      () => false,
    )
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('no /healthz in time')
}

/**
 * A push whose query is validly signed for the sandbox account (so the webhook must read the body
 * to go on) with its body still coming: a request truly in flight.
 */
function pendingPush(s: Started) {
  const { token } = JSON.parse(readFileSync(join(s.dataDir, 'sandbox-account.json'), 'utf8'))
  const timestamp = String(Math.floor(Date.now() / 1000))
  const nonce = 'n1'
  const signature = createHash('sha1')
    .update([token, timestamp, nonce].sort().join(''))
    .digest('hex')
  const path = `/wechat?signature=${signature}&timestamp=${timestamp}&nonce=${nonce}&encrypt_type=aes&msg_signature=${signature}`
  let answered: (status: number) => void = () => {}
  const status = new Promise<number>((resolve) => {
    answered = resolve
  })
  const head = '<xml><ToUserName>x</ToUserName>'
  const tail = '<Encrypt>e</Encrypt></xml>'
  const length = String(Buffer.byteLength(head + tail))
  const req = request(
    {
      host: '127.0.0.1',
      port: s.port,
      path,
      method: 'POST',
      headers: { 'content-length': length },
    },
    (res) => {
      res.resume()
      answered(res.statusCode ?? 0)
    },
  )
  req.on('error', () => answered(-1))
  req.write(head)
  return { status, finish: () => req.end(tail) }
}

const withTimeout = <T>(p: Promise<T>, ms: number) =>
  Promise.race([
    p,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms),
    ),
  ])

describe('npm start on the embedded database', () => {
  let server: Started
  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'quanzi-entry-'))
    server = npm(['start'], { SHUTDOWN_TIMEOUT_SECONDS: '2' }, await freePort(), dataDir)
    await untilHealthy(server)
  }, 120_000)
  afterAll(() => {
    server.child.kill('SIGKILL')
    rmSync(server.dataDir, { recursive: true, force: true })
  })

  it('answers /healthz with the database, outbox and job vital signs', async () => {
    const res = await fetch(`http://127.0.0.1:${server.port}/healthz`)
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, Record<string, unknown>>
    expect(body.ok).toBe(true)
    expect(body.db).toMatchObject({ ok: true })
    expect(typeof body.db!.ms).toBe('number')
    expect(body.outbox).toEqual({
      backlog: expect.any(Number),
      oldestDueSeconds: expect.any(Number),
      paused: [],
    })
    expect(body.jobs).toHaveProperty('lagSeconds')
  })

  it('serves /metrics that a Prometheus text parser reads', async () => {
    // A push answered and one refused, so the counters have something to say.
    const account = JSON.parse(readFileSync(join(server.dataDir, 'sandbox-account.json'), 'utf8'))
    const pusher = createPusher({ url: `http://127.0.0.1:${server.port}/wechat`, account })
    expect((await pusher.text('o_metrics', '帮助')).status).toBe(200)
    await fetch(`http://127.0.0.1:${server.port}/wechat?signature=x&timestamp=1&nonce=2`, {
      method: 'POST',
      body: '<xml></xml>',
    })
    const res = await fetch(`http://127.0.0.1:${server.port}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/plain')
    const families = parsePrometheusTextFormat(await res.text())
    const byName = new Map(families.map((f) => [f.name, f]))
    for (const name of [
      'quanzi_http_requests_total',
      'quanzi_http_request_duration_seconds',
      'quanzi_outbox_backlog',
      'quanzi_refunds',
      'quanzi_db_up',
      'quanzi_db_statement_duration_seconds',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
    ])
      expect(byName.has(name), name).toBe(true)
    const health = byName
      .get('quanzi_http_requests_total')!
      .metrics.find((m) => m.labels?.route === '/healthz')
    expect(health?.labels).toMatchObject({ method: 'GET', status: '200' })
    expect(Number(byName.get('quanzi_db_up')!.metrics[0]!.value)).toBe(1)
    const pushes = byName.get('quanzi_pushes_total')!.metrics.map((m) => m.labels)
    expect(pushes).toContainEqual({ channel: 'oa', type: 'text', outcome: 'replied' })
    expect(pushes).toContainEqual({
      channel: 'oa',
      type: 'unknown',
      outcome: 'refused_unauthenticated',
    })
    expect(byName.get('quanzi_reply_duration_seconds')!.type).toBe('HISTOGRAM')
    // Statements are timed (those after start-up: the push's, /healthz's).
    const statements = byName.get('quanzi_db_statement_duration_seconds')!
    expect(statements.type).toBe('HISTOGRAM')
    expect(Number((statements.metrics[0] as { count: string }).count)).toBeGreaterThan(0)
    // Query strings (signatures) never reach a label.
    expect(JSON.stringify(families)).not.toContain('signature=')
  })

  it('writes only JSON lines to stdout, with an access-log line per request', async () => {
    await fetch(`http://127.0.0.1:${server.port}/healthz?probe=1`)
    await new Promise((r) => setTimeout(r, 200))
    const parsed = server.out.filter((l) => l.trim()).map((l) => JSON.parse(l))
    const access = parsed.filter((l) => l.msg === 'request' && l.route === '/healthz')
    expect(access.length).toBeGreaterThan(0)
    expect(access[0]).toMatchObject({ level: 'info', method: 'GET', status: 200 })
    expect(server.out.join('\n')).not.toContain('probe=1')
    // Start-up says what it is doing.
    const messages = parsed.map((l) => l.msg as string)
    expect(messages.some((m) => m.startsWith('database: creating'))).toBe(true)
    expect(messages.some((m) => m.startsWith('migrations:'))).toBe(true)
    expect(messages).toContain('listening')
    expect(messages).toContain('sandbox mode: no WeChat credentials configured')
  })

  it('refuses a second server on the same data folder, naming the holder', async () => {
    const second = npm(['start'], {}, await freePort(), server.dataDir)
    const { code } = await withTimeout(second.exited, 60_000)
    expect(code).toBe(1)
    expect(second.err.join('\n')).toMatch(/server is running on this data folder.*pid \d+/)
    expect(second.err.join('\n')).not.toMatch(/^\s+at /m)
  })

  it('runs `npm run job` inside the server holding the embedded database', async () => {
    const job = npm(['run', 'job', 'recompute-segments'], {}, server.port, server.dataDir)
    const { code } = await withTimeout(job.exited, 60_000)
    expect(code, job.err.join('\n')).toBe(0)
    const printed = JSON.parse(job.out.join('\n'))
    expect(printed).toMatchObject({ job: 'recompute-segments', status: 'ran' })
    expect(printed.ranIn).toMatch(/^server pid \d+$/)
  })

  it('settles a refund by itself: the sandbox Pay sends REFUND.SUCCESS, as WeChat Pay does', async () => {
    const services = JSON.parse(
      readFileSync(join(server.dataDir, 'sandbox-services.json'), 'utf8'),
    ) as { wechatApi: string; pay: string; mpAppid: string; adminToken: string }
    const call = async (url: string, body?: unknown, token?: string) => {
      const res = await fetch(url, {
        method: body === undefined ? 'GET' : 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      // biome-ignore lint/suspicious/noExplicitAny: response JSON, checked by the assertions
      return { status: res.status, json: (await res.json()) as Record<string, any> }
    }
    const base = `http://127.0.0.1:${server.port}`
    // What `npm run shop` does: log in, buy, pay on the sandbox Pay server.
    const { json: login } = await call(`${services.wechatApi}/sandbox/login-code`, {
      appid: services.mpAppid,
      openid: 'o_entry_refund',
    })
    const { json: session } = await call(`${base}/api/mp/login`, { code: login.code })
    const { json: bought } = await call(`${base}/api/mp/orders`, { sku: 'vip-30' }, session.token)
    const no = bought.order.outTradeNo as string
    expect((await call(`${services.pay}/sandbox/pay/${no}`, {})).status).toBe(200)
    // The operator refunds 3.00; nothing else is called.
    const account = JSON.parse(readFileSync(join(server.dataDir, 'sandbox-account.json'), 'utf8'))
    const refund = await call(
      `${base}/admin/api/accounts/${account.appid}/shop/orders/${no}/refunds`,
      { amountFen: 300, reason: '退款', outRefundNo: 'R-entry-1' },
      services.adminToken,
    )
    expect([refund.status, refund.json.refundStatus]).toEqual([201, 'processing'])
    const order = () => call(`${base}/api/mp/orders/${no}`, undefined, session.token)
    await vi.waitFor(async () => expect((await order()).json.order.refundedFen).toBe(300), {
      timeout: 30_000,
      interval: 250,
    })
  }, 40_000)

  it('stops on SIGTERM to the npm start PID: in-flight requests finish, then it exits', async () => {
    const push = pendingPush(server)
    await new Promise((r) => setTimeout(r, 200))
    server.child.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 500))
    // Still running: it waits for the request in flight, which then gets its answer.
    expect(server.child.exitCode).toBe(null)
    push.finish()
    const status = await push.status
    expect(status).toBeGreaterThanOrEqual(200)
    expect(status).toBeLessThan(500)
    const started = Date.now()
    const { code } = await withTimeout(server.exited, 10_000)
    expect(code).toBe(0)
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(existsSync(join(server.dataDir, 'pglite.lock'))).toBe(false)
    const refused = await fetch(`http://127.0.0.1:${server.port}/healthz`).then(
      () => false,
      () => true,
    )
    expect(refused).toBe(true)
    const messages = server.out.filter((l) => l.trim()).map((l) => JSON.parse(l).msg)
    expect(messages).toContain('shutting down')
    expect(messages).toContain('stopped')
  })
})

it('closes what is left at the drain deadline and exits', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'quanzi-entry-drain-'))
  const s = npm(['start'], { SHUTDOWN_TIMEOUT_SECONDS: '1' }, await freePort(), dataDir)
  try {
    await untilHealthy(s)
    const push = pendingPush(s) // never finished
    await new Promise((r) => setTimeout(r, 200))
    const started = Date.now()
    s.child.kill('SIGTERM')
    const { code } = await withTimeout(s.exited, 10_000)
    expect(code).toBe(0)
    expect(Date.now() - started).toBeGreaterThanOrEqual(900)
    expect(Date.now() - started).toBeLessThan(5_000)
    expect(await push.status).toBe(-1) // its connection was closed
    const lines = s.out.filter((l) => l.trim()).map((l) => JSON.parse(l))
    expect(lines.find((l) => l.code === 'DRAIN_TIMEOUT')).toMatchObject({ level: 'warn' })
  } finally {
    s.child.kill('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  }
}, 120_000)

it('exits at once on a second SIGINT while draining', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'quanzi-entry-int-'))
  const s = npm(['start'], { SHUTDOWN_TIMEOUT_SECONDS: '60' }, await freePort(), dataDir)
  try {
    await untilHealthy(s)
    // A request that never finishes keeps the drain waiting for its 60 s.
    pendingPush(s)
    await new Promise((r) => setTimeout(r, 200))
    s.child.kill('SIGINT')
    await new Promise((r) => setTimeout(r, 1000))
    expect(s.child.exitCode).toBe(null)
    const started = Date.now()
    s.child.kill('SIGINT')
    const { code } = await withTimeout(s.exited, 5_000)
    expect(code).toBe(130)
    expect(Date.now() - started).toBeLessThan(2_000)
  } finally {
    s.child.kill('SIGKILL')
    rmSync(dataDir, { recursive: true, force: true })
  }
}, 120_000)

describe('start-up errors name their cause in one line', () => {
  const dirs: string[] = []
  const dataDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'quanzi-entry-err-'))
    dirs.push(dir)
    return dir
  }
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })

  it('a port in use names PORT', async () => {
    const taken = createServer().listen(0)
    await new Promise((r) => taken.once('listening', r))
    const { port } = taken.address() as AddressInfo
    const s = npm(['start'], {}, port, dataDir())
    const { code } = await withTimeout(s.exited, 90_000)
    taken.close()
    expect(code).toBe(1)
    expect(s.err.join('\n')).toContain(`PORT: ${port} is already in use`)
    expect(s.err.join('\n')).not.toMatch(/^\s+at /m)
    expect(s.out.map((l) => JSON.parse(l)).find((l) => l.level === 'error')).toMatchObject({
      code: 'PORT_IN_USE',
    })
  }, 100_000)

  it('an unreachable DATABASE_URL names the variable, host and port, never the password', async () => {
    const port = await freePort()
    const s = npm(
      ['start'],
      { DATABASE_URL: `postgres://quanzi:s3cret-pw@127.0.0.1:${port}/quanzi` },
      await freePort(),
      dataDir(),
    )
    const { code } = await withTimeout(s.exited, 30_000)
    expect(code).toBe(1)
    const said = s.err.join('\n')
    expect(said).toContain(`DATABASE_URL: cannot connect to 127.0.0.1:${port}/quanzi`)
    expect(said).toContain('ECONNREFUSED')
    expect(`${said}${s.out.join('\n')}`).not.toContain('s3cret-pw')
    expect(said).not.toMatch(/^\s+at /m)
  })

  it('bad configuration names the variable, not its value', async () => {
    const s = npm(['start'], { WECHAT_AES_KEY: 'short-secret-value' }, await freePort(), dataDir())
    const { code } = await withTimeout(s.exited, 30_000)
    expect(code).toBe(1)
    expect(s.err.join('\n')).toContain('WECHAT_AES_KEY')
    expect(s.err.join('\n')).not.toContain('short-secret-value')
  })
})
