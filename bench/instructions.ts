/**
 * The push targets' server instructions per push, counted by valgrind's callgrind instead of timed:
 * on a shared 2-core machine whose speed moves by ±30 % from minute to minute, a count moves by a
 * few per cent. Each target's server (bench/server.ts, bundled as the server bench runs it) runs
 * under `valgrind --tool=callgrind` with `node --single-threaded --predictable` (no background
 * compiler or GC threads); one connection sends `BENCH_WARMUP` pushes, the counters are zeroed
 * (`callgrind_control -z`), `BENCH_PUSHES` more are sent one at a time and the counters dumped: the
 * dump's total ÷ pushes. Every count runs beside a second one (two valgrind processes at once): of
 * the same build (their difference is the count's own noise), or with `BENCH_BUNDLE` of another
 * build of bench/server.ts (`npm run bench:bundle-of -- <commit>`), an A/B in one run. Ratios are
 * against node-webot/wechat (`webot`) counted in the same run. Instructions are not time: only the
 * process's own (user-space) instructions count — the kernel's socket work, the same for every
 * target, does not — and a cache miss counts as one. Two counts of one build differ by 0–5 %
 * (V8's optimising decisions differ from run to run): this says where a push's own work goes and
 * how it compares with webot's, not whether a change of a few per cent helped; req/s stays
 * `npm run bench`.
 *
 *   npm run bench:instructions
 * Env: BENCH_TARGETS (webot,memory,minimal,webhook,bare-hono), BENCH_PUSHES (1000), BENCH_WARMUP
 * (1500), BENCH_PAIRS (2: counts of each target, median taken), BENCH_BUNDLE (see above).
 * Needs valgrind (Debian: `apt-get install -y valgrind`); about 1.5 minutes per target and pair.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { nodeCrypto } from '../src/node-crypto.js'
import { createPusher, type PreparedPush } from '../src/sandbox/pusher.js'
import { SAFE_ACCOUNT } from '../test/server.js'
import { envNumber } from './env-number.js'
import { bundleServer } from './server-bundle.js'
import { textPushes } from './text-pushes.js'

for (const tool of ['valgrind', 'callgrind_control']) {
  try {
    execFileSync(tool, ['--version'], { stdio: 'ignore' })
  } catch {
    console.error(`${tool} not found: apt-get install -y valgrind`)
    process.exit(2)
  }
}
const targets = (process.env.BENCH_TARGETS ?? 'webot,memory,minimal,webhook,bare-hono').split(',')
const pushes = envNumber('BENCH_PUSHES', 1000, { min: 1, integer: true })
const warmup = envNumber('BENCH_WARMUP', 1500, { min: 0, integer: true })
const pairs = envNumber('BENCH_PAIRS', 2, { min: 1, integer: true })
const other = process.env.BENCH_BUNDLE

const server = await bundleServer('instructions')
const bundle = server.file
const dumps = mkdtempSync(join(tmpdir(), 'quanzi-instructions-'))

/** Starts `scenario` of `file` (under callgrind when `counted`); resolves with its port. */
async function start(
  file: string,
  scenario: string,
  env: Record<string, string>,
  counted: boolean,
) {
  const node = [process.execPath, ...(counted ? ['--single-threaded', '--predictable'] : [])]
  const command = counted
    ? [
        'valgrind',
        '--tool=callgrind',
        '--smc-check=all-non-file',
        `--callgrind-out-file=${dumps}/count.%p`,
        ...node,
      ]
    : node
  const child = spawn(command[0]!, [...command.slice(1), file, scenario], {
    env: { ...process.env, ...env, BENCH_EXIT_WITH_PARENT: '1' },
    stdio: ['pipe', 'pipe', 'ignore'],
  })
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  const first = await lines.next()
  if (first.done) throw new Error(`${scenario} did not start`)
  return { child, port: (JSON.parse(first.value) as { port: number }).port }
}

async function stop(child: ChildProcess) {
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

/** Signed 「帮助」 pushes for `port`, from 5,000 senders of the count's own. */
function prepare(port: number, count: number, tag: string): Promise<PreparedPush[]> {
  const url = `http://127.0.0.1:${port}/wechat`
  const wx = createPusher({ url, account: SAFE_ACCOUNT, crypto: nodeCrypto })
  return textPushes(wx, { count, content: '帮助', sender: `o_instr_${tag}_`, senders: 5000 })
}

/** Sends one push and checks it was answered with a sealed reply. */
async function send(p: PreparedPush) {
  const res = await fetch(p.url, {
    method: 'POST',
    body: p.body,
    headers: { 'content-type': p.contentType },
  })
  const text = await res.text()
  if (res.status !== 200 || !text.includes('<Encrypt>'))
    throw new Error(`HTTP ${res.status}: ${text.slice(0, 200)}`)
}

/** Instructions per push of `scenario` in `file`. */
async function count(file: string, scenario: string, env: Record<string, string>, tag: string) {
  const { child, port } = await start(file, scenario, env, true)
  try {
    const list = await prepare(port, warmup + pushes, tag)
    for (const p of list.slice(0, warmup)) await send(p)
    execFileSync('callgrind_control', ['-z', String(child.pid)], { stdio: 'ignore' })
    for (const p of list.slice(warmup)) await send(p)
    execFileSync('callgrind_control', ['-d', String(child.pid)], { stdio: 'ignore' })
  } finally {
    await stop(child)
  }
  const dump = readdirSync(dumps).find((f) => f.startsWith(`count.${child.pid}.`))
  const total = dump && /^summary: (\d+)$/m.exec(readFileSync(join(dumps, dump), 'utf8'))
  if (!total) throw new Error(`${scenario}: no callgrind dump`)
  return Number(total[1]) / pushes
}

// (e) and the stand-ins answer what (b) answers: learnt from a (b) server first.
const learn = await start(bundle, 'memory', {}, false)
const [probe] = await prepare(learn.port, 1, 'probe')
const answered = await createPusher({ url: '', account: SAFE_ACCOUNT, crypto: nodeCrypto }).send(
  probe!,
)
await stop(learn.child)
const reply = answered.reply?.Content
if (typeof reply !== 'string') throw new Error('(b) did not answer 帮助 with a text')

const median = (xs: number[]) => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const results = new Map<string, { own: number[]; beside: number[] }>()
for (const target of targets) {
  const own: number[] = []
  const beside: number[] = []
  for (let pair = 0; pair < pairs; pair++) {
    const env = { BENCH_REPLY: reply }
    const [a, b] = await Promise.all([
      count(bundle, target, env, `${target}a${pair}`),
      count(other ?? bundle, target, env, `${target}b${pair}`),
    ])
    own.push(a)
    beside.push(b)
    console.error(`${target}, pair ${pair + 1}: ${Math.round(a)} / ${Math.round(b)}`)
  }
  results.set(target, { own, beside })
}
server.remove()
rmSync(dumps, { recursive: true, force: true })

const webot = results.get('webot')
const k = (n: number) => `${Math.round(n / 1000).toLocaleString('en')}k`
console.log(
  `\n${pushes} pushes counted after ${warmup}, ${pairs} pair(s) a target${other ? `; beside: ${other}` : ''}\n`,
)
console.log(
  `| target | instructions a push (median) | ${other ? 'other build' : 'the count beside it'} | ${other ? 'this ÷ other' : 'difference'} | webot ÷ target |`,
)
console.log('|---|---:|---:|---:|---:|')
for (const [target, { own, beside }] of results) {
  const [m, n] = [median(own), median(beside)]
  const compare = other ? (m / n).toFixed(3) : `${((100 * Math.abs(m - n)) / n).toFixed(1)} %`
  const versus = webot ? (median(webot.own) / m).toFixed(2) : '–'
  console.log(`| ${target} | ${k(m)} | ${k(n)} | ${compare} | ${versus} |`)
}
