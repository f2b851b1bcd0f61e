/**
 * The push targets' server instructions per push, counted by valgrind's callgrind instead of timed:
 * on a shared 2-core machine whose speed moves by ±30 % from minute to minute, a count moves by a
 * few per cent. Each target's server (bench/server.ts, bundled as the server bench runs it) runs
 * under `valgrind --tool=callgrind` with `node --single-threaded --predictable` (no background
 * compiler or GC threads); one connection sends `BENCH_WARMUP` pushes, the counters are zeroed
 * (`callgrind_control -z`), `BENCH_PUSHES` more are sent one at a time and the counters dumped: the
 * dump's total ÷ pushes. The pushes come from 5,000 senders, so after the warm-up each counted push
 * is from a returning member.
 *
 * The figures compared are the **mutator's**: the count less the garbage collector's functions and
 * the optimising compiler's (their own cost, by their C++ names in the dump; what either hands to
 * shared code — allocation, memcpy, the assembler — stays in the mutator's). The collector's share
 * depends on when a major GC falls and on the heap the run has kept (the bench's in-memory store
 * keeps every claim), not on the push: it moved one count of a build by 16 % against its twin, the
 * mutator's part by 1 % (session 39). With `--single-threaded` the compiler runs on the main
 * thread, so a count still inside the warm-up's compilations counts them: after 1,500 pushes they
 * were 52–60 % of a count, after 10,000 none; a count warns above 2 %.
 *
 * Every count runs beside a second one (two valgrind processes at once): of the same build (their
 * difference is the count's own noise), or with `BENCH_BUNDLE` of another build of bench/server.ts
 * (`npm run bench:bundle-of -- <commit>`), an A/B in one run. Ratios are against node-webot/wechat
 * (`webot`) counted in the same run. Instructions are not time: only the process's own (user-space)
 * instructions count — the kernel's socket work, the same for every target, does not — and a cache
 * miss counts as one. In session 39 (b) was at 2.0–2.2 × webot in mutator instructions and 1.7 × in
 * req/s: this says where a push's own work goes and whether a change removed some of it; req/s
 * stays `npm run bench`.
 *
 *   npm run bench:instructions
 * Env: BENCH_TARGETS (webot,memory,minimal,webhook,bare-hono), BENCH_PUSHES (1000), BENCH_WARMUP
 * (10000), BENCH_PAIRS (2: counts of each target, median taken), BENCH_BUNDLE (see above),
 * BENCH_FUNCTIONS (0; N: each pair's first count lists its N costliest functions by own
 * instructions a push, JavaScript named through node's `--perf-basic-prof` map).
 * Needs valgrind (Debian: `apt-get install -y valgrind`); about 5 minutes per target and pair.
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
import { median } from './median.js'
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
const warmup = envNumber('BENCH_WARMUP', 10_000, { min: 0, integer: true })
const pairs = envNumber('BENCH_PAIRS', 2, { min: 1, integer: true })
const functions = envNumber('BENCH_FUNCTIONS', 0, { min: 0, integer: true })
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
  const flags = [
    '--single-threaded',
    '--predictable',
    ...(functions > 0 ? ['--perf-basic-prof'] : []),
  ]
  const node = [process.execPath, ...(counted ? flags : [])]
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

/** Signed 「帮助」 pushes for `port`, from 5,000 senders of the count's own (from its `offset`th push). */
function prepare(port: number, count: number, tag: string, offset = 0): Promise<PreparedPush[]> {
  const url = `http://127.0.0.1:${port}/wechat`
  const wx = createPusher({ url, account: SAFE_ACCOUNT, crypto: nodeCrypto })
  const sender = `o_instr_${tag}_`
  return textPushes(wx, { count, content: '帮助', sender, senders: 5000, offset })
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
    // Prepared a thousand at a time, just before they are sent: under valgrind the warm-up outlasts
    // the webhook's freshness window (300 s), and the timestamps are signed when prepared.
    for (let sent = 0; sent < warmup; sent += 1000)
      for (const p of await prepare(port, Math.min(1000, warmup - sent), tag, sent)) await send(p)
    const list = await prepare(port, pushes, tag, warmup)
    execFileSync('callgrind_control', ['-z', String(child.pid)], { stdio: 'ignore' })
    for (const p of list) await send(p)
    execFileSync('callgrind_control', ['-d', String(child.pid)], { stdio: 'ignore' })
  } finally {
    await stop(child)
  }
  const dump = readdirSync(dumps).find((f) => f.startsWith(`count.${child.pid}.`))
  const text = dump && readFileSync(join(dumps, dump), 'utf8')
  const total = text && /^summary: (\d+)$/m.exec(text)
  if (!total) throw new Error(`${scenario}: no callgrind dump`)
  const own = ownCosts(text)
  const { gc, compiler, all } = shares(own)
  const top = functions > 0 ? topFunctions(own, child.pid!, functions) : []
  // Another dump format (`--dump-instr=yes`, uncompressed names) would parse as nothing at all.
  if (Math.abs(all - Number(total[1])) > 0.05 * Number(total[1]))
    throw new Error(`${scenario}: the dump's functions sum to ${all}, its summary is ${total[1]}`)
  const perPush = Number(total[1]) / pushes
  return { perPush, mutator: perPush * (1 - gc - compiler), gc, compiler, top }
}
type Count = Awaited<ReturnType<typeof count>>

/** V8's functions by what they are part of, by their C++ names. */
const PARTS = {
  compiler: /v8::internal::(compiler|maglev|turboshaft)::/,
  gc: /v8::internal::(Scavenge|Sweeper|MarkCompact|Marking|ConcurrentMarking|Heap::|Evacuat|YoungGeneration|FullMarking|EphemeronTable|PagedSpace|LargeObjectSpace|MemoryAllocator|MemoryChunk|RememberedSet|SlotSet|IncrementalMarking|ArrayBufferSweeper|PretenuringHandler|GCTracer|BodyDescriptor|HeapObject::SizeFromMap)|heap::base::|cppgc::|Visitor::|SlotCallbackResult/,
} as const

/**
 * A callgrind dump's instructions by function, each function's own (not what it calls). The
 * format: `fn=(id) name` starts a function (its name given the first time only), `cfn=` names a
 * callee, and the cost line after `calls=` is the call's inclusive cost, not the function's own.
 */
function ownCosts(dump: string): Map<string, number> {
  const names = new Map<string, string>()
  const own = new Map<string, number>()
  let current = ''
  let afterCall = false
  for (const line of dump.split('\n')) {
    const fn = /^(c?)fn=\((\d+)\)(?: (.*))?$/.exec(line)
    if (fn) {
      if (fn[3] !== undefined) names.set(fn[2]!, fn[3])
      if (!fn[1]) current = names.get(fn[2]!) ?? fn[2]!
      continue
    }
    if (line.startsWith('calls=')) {
      afterCall = true
      continue
    }
    const cost = /^(?:[+-]?\d+|\*) (\d+)$/.exec(line)
    if (!cost) continue
    if (afterCall) {
      afterCall = false
      continue
    }
    own.set(current, (own.get(current) ?? 0) + Number(cost[1]))
  }
  return own
}

/** The shares of the garbage collector's functions and the optimising compiler's, and the sum. */
function shares(own: Map<string, number>): { gc: number; compiler: number; all: number } {
  const part = { gc: 0, compiler: 0 }
  let all = 0
  for (const [name, cost] of own) {
    all += cost
    if (PARTS.compiler.test(name)) part.compiler += cost
    else if (PARTS.gc.test(name)) part.gc += cost
  }
  return { gc: all && part.gc / all, compiler: all && part.compiler / all, all }
}

/**
 * `BENCH_FUNCTIONS=N`: the N functions of a count with the most own instructions a push, V8's
 * JIT code named through the perf map `--perf-basic-prof` writes (`/tmp/perf-<pid>.map`: address,
 * size, name; the latest entry covering an address wins, as code is replaced).
 */
function topFunctions(own: Map<string, number>, pid: number, n: number): string[] {
  const file = `/tmp/perf-${pid}.map`
  const code = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [at, size, ...name] = line.split(' ')
      const start = Number.parseInt(at!, 16)
      return { start, end: start + Number.parseInt(size!, 16), name: name.join(' ') }
    })
  rmSync(file, { force: true })
  const named = new Map<string, number>()
  for (const [name, cost] of own) {
    const address = /^0x[0-9a-f]+$/.test(name) ? Number.parseInt(name, 16) : undefined
    const js =
      address === undefined
        ? undefined
        : code.findLast((c) => address >= c.start && address < c.end)?.name
    const label = address === undefined ? name : (js ?? `JIT code at ${name}`)
    named.set(label, (named.get(label) ?? 0) + cost)
  }
  return [...named]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(
      ([name, cost]) =>
        `${Math.round(cost / pushes)
          .toLocaleString('en')
          .padStart(8)}  ${name.slice(0, 140)}`,
    )
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

/** A count as each pair prints it: instructions a push, and the GC's and the compiler's shares. */
const figures = (c: Count) =>
  `${Math.round(c.perPush)} (GC ${(100 * c.gc).toFixed(1)} %, compiler ${(100 * c.compiler).toFixed(1)} %)`
const results = new Map<string, { own: Count[]; beside: Count[] }>()
/** The largest share of a count the optimising compiler took. */
let compiled = 0
for (const target of targets) {
  const own: Count[] = []
  const beside: Count[] = []
  for (let pair = 0; pair < pairs; pair++) {
    const env = { BENCH_REPLY: reply }
    const [a, b] = await Promise.all([
      count(bundle, target, env, `${target}a${pair}`),
      count(other ?? bundle, target, env, `${target}b${pair}`),
    ])
    own.push(a)
    beside.push(b)
    console.error(`${target}, pair ${pair + 1}: ${figures(a)} / ${figures(b)}`)
    if (a.top.length > 0)
      console.error(
        `  ${target}'s ${functions} costliest functions, own instructions a push:\n${a.top.join('\n')}`,
      )
    compiled = Math.max(compiled, a.compiler, b.compiler)
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
if (compiled > 0.02)
  console.log(
    `warning: the optimising compiler took up to ${(100 * compiled).toFixed(1)} % of a count: the warm-up did not reach the steady state (raise BENCH_WARMUP)\n`,
  )
console.log(
  `| target | instructions a push (median) | of them the mutator's (median) | ${other ? "the other build's mutator" : "the mutator's beside it"} | ${other ? 'this ÷ other' : 'difference'} | webot ÷ target (mutators) |`,
)
console.log('|---|---:|---:|---:|---:|---:|')
const mutators = (counts: Count[]) => median(counts.map((c) => c.mutator))
for (const [target, { own, beside }] of results) {
  const [m, n] = [mutators(own), mutators(beside)]
  const compare = other ? (m / n).toFixed(3) : `${((100 * Math.abs(m - n)) / n).toFixed(1)} %`
  const versus = webot ? (mutators(webot.own) / m).toFixed(2) : '–'
  const all = median(own.map((c) => c.perPush))
  console.log(`| ${target} | ${k(all)} | ${k(m)} | ${k(n)} | ${compare} | ${versus} |`)
}
