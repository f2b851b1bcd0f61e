/**
 * Where (b)'s time goes, layer by layer, in one process: the same signed safe-mode pushes (「帮助」
 * by default) handed straight to each app's `fetch` — no sockets, no load generator — one at a
 * time, the layers interleaved round by round:
 *   (w) the webhook alone;
 *   (m) (w) plus the least dispatch, inline (bench/push-apps.ts);
 *   (d) (w) plus quanzi's `dispatch`, called from the route handler;
 *   (r) quanzi's `/wechat` routes alone (adds the refusal counter, the body-size check, the route);
 *   (b) the whole app (adds the access log, the client address, the router over every route).
 * Each layer's median µs per push over the rounds, and the bytes it allocates per push (V8's
 * sampling heap profiler, objects already collected included, over one more pass). Without the HTTP
 * server's and the socket's costs, and with undici's `Request` (the Node adapter's is lighter), the
 * figures are not (b)'s req/s: they say what each layer adds, with less noise than the server
 * bench (whose A/A runs differ by up to 7 %; here a layer's median moves by some 5 µs from one run
 * to the next). Runs bundled, as `npm start` runs the server.
 *
 *   npm run bench:layers
 * Env: BENCH_ROUNDS (10), BENCH_PUSHES (3000 per layer and round), BENCH_TEXT (帮助).
 */
import { loadavg } from 'node:os'
import type { Hono } from 'hono'
import { nodeCrypto } from '../src/node-crypto.js'
import { createPusher, type PreparedPush } from '../src/sandbox/pusher.js'
import { memoryStores } from '../test/memory-stores.js'
import { SAFE_ACCOUNT } from '../test/server.js'
import { sampleAllocations } from './allocations.js'
import { envNumber } from './env-number.js'
import { noRowsDatabase } from './no-rows.js'
import {
  benchApp,
  leastDispatch,
  webhookAlone,
  webhookDispatch,
  wechatRoutesOnly,
} from './push-apps.js'
import { runBundled } from './run-bundled.js'
import { textPushes } from './text-pushes.js'

await runBundled(import.meta.url, 'layers')

const rounds = envNumber('BENCH_ROUNDS', 10, { min: 1, integer: true })
const pushes = envNumber('BENCH_PUSHES', 3000, { min: 1, integer: true })
const content = process.env.BENCH_TEXT ?? '帮助'
const wx = createPusher({
  url: 'http://127.0.0.1/wechat',
  account: SAFE_ACCOUNT,
  crypto: nodeCrypto,
})
let batch = 0
/** `pushes` pushes from 5,000 senders no earlier batch used, each with a new MsgId. */
async function prepare(count: number): Promise<PreparedPush[]> {
  batch++
  return textPushes(wx, { count, content, sender: `o_layers_${batch}_`, senders: 5000 })
}
/** The request WeChat sends (with its Content-Length, which the body-size check reads). */
const request = (p: PreparedPush) =>
  new Request(p.url, {
    method: 'POST',
    body: p.body,
    headers: { 'content-type': p.contentType, 'content-length': String(Buffer.byteLength(p.body)) },
  })

// (b) first: its reply is the text the others answer with.
const b = benchApp(noRowsDatabase(), memoryStores())
const [first] = await prepare(1)
const reply = (await wx.openReply(await (await b.fetch(request(first!))).text()))?.Content
if (typeof reply !== 'string') throw new Error(`(b) did not answer ${content} with a text`)
const layers: [string, Hono][] = [
  ['(w) webhook alone', webhookAlone(reply)],
  ['(m) (w) + least dispatch, inline', leastDispatch(content, reply)],
  ["(d) (w) + quanzi's dispatch", webhookDispatch()],
  ["(r) quanzi's /wechat routes alone", wechatRoutesOnly()],
  ['(b) the whole app', b],
]

/** µs per push of `app` over `list`, each answered (200 with a sealed reply) before the next. */
async function run(app: Hono, list: PreparedPush[]): Promise<number> {
  const started = performance.now()
  for (const p of list) {
    const res = await app.fetch(request(p))
    const body = await res.text()
    if (res.status !== 200 || !body.includes('<Encrypt>'))
      throw new Error(`HTTP ${res.status}: ${body.slice(0, 200)}`)
  }
  return ((performance.now() - started) * 1000) / list.length
}

/** Bytes allocated per push (sampled; what was collected since included). */
async function allocated(app: Hono): Promise<number> {
  const list = await prepare(pushes)
  const sampling = await sampleAllocations(1024)
  await run(app, list)
  return (await sampling.stop()).bytes / list.length
}

console.log(
  `${rounds} rounds of ${pushes} 「${content}」 pushes per layer, in process; load average ${loadavg().map((x) => x.toFixed(1))}`,
)
// A warm-up pass of each (JIT, caches), not counted.
for (const [, app] of layers) await run(app, await prepare(Math.min(pushes, 1000)))
const times = layers.map(() => [] as number[])
for (let r = 0; r < rounds; r++) {
  // Every other round in reverse order: no layer always runs after the same one.
  const order = [...layers.keys()]
  if (r % 2 === 1) order.reverse()
  for (const i of order) times[i]!.push(await run(layers[i]![1], await prepare(pushes)))
}
const bytes: number[] = []
for (const [, app] of layers) bytes.push(await allocated(app))

const median = (xs: number[]) => [...xs].sort((a, c) => a - c)[xs.length >> 1]!
console.log(
  '\n| layer | µs per push (median) | rounds min–max | + µs over the row above | KB allocated per push |',
)
console.log('|---|---:|---:|---:|---:|')
for (const [i, [name]] of layers.entries()) {
  const m = median(times[i]!)
  const above = i > 0 ? (m - median(times[i - 1]!)).toFixed(1) : '–'
  const range = `${Math.min(...times[i]!).toFixed(0)}–${Math.max(...times[i]!).toFixed(0)}`
  console.log(
    `| ${name} | ${m.toFixed(1)} | ${range} | ${above} | ${(bytes[i]! / 1024).toFixed(1)} |`,
  )
}
console.log(`load average ${loadavg().map((x) => x.toFixed(1))}`)
