/**
 * Memory of the Node server on PostgreSQL (issue #20 target 6: idle ≤ 150 MB RSS, growth ≤ 30 MB
 * over a 60 s load run).
 *
 *   npm run bench:memory
 *
 * Builds (`npm run build`), then starts the production entry (`npm start`: dist/node.js, its jobs
 * and outbox included) on a throw-away PostgreSQL database (`bench_sp_mem_<port>`), and samples
 * its RSS (/proc/<pid>/status) once a second: idle for BENCH_IDLE_SECONDS (default 20), then under
 * BENCH_SECONDS (default 60) of load — safe-mode pushes of BENCH_TEXT (default 签到) from
 * BENCH_MEMBERS (default 100000) members over BENCH_CONNECTIONS (default 50) connections, each with
 * a fresh MsgId — then idle again for BENCH_SETTLE_SECONDS (default 20).
 *
 * What is measured: growth is the memory the load left *retained*. At the end of the idle phase
 * (before the pushes are prepared and the load starts) and again at the end of the settling, the
 * bench has the server force full garbage collections (SIGUSR2 to the server, handled by
 * bench/memory-probe.mjs: V8's gc() twice, without --expose-gc on node's command line), waits
 * BENCH_GC_WAIT_SECONDS (default 2) for V8's sweeping and unmapping to finish, and samples the RSS:
 * growth = settled RSS after the forced GC − idle RSS after the forced GC. Without it, garbage the
 * load left that no major GC has collected yet (V8 runs one when the old generation reaches its
 * limit, not when the load stops) counts as growth, and one run differs from the next by whether a
 * major GC happened to run. The un-collected figures are reported beside it: the idle RSS (the
 * idle target's figure: what a server sitting idle holds) and the settled RSS before the forced
 * GC, and their difference as "growth before GC"; the peak under load too. Linux only (/proc).
 *
 * Where the RSS went: bench/memory-probe.mjs, loaded into the server, records process.memoryUsage()
 * and V8's heap spaces each second (and just after each forced GC), and the bench splits the idle,
 * end-of-load and settled samples, before and after the forced GCs, into the V8 young generation,
 * old generation, other heap spaces, external memory (Buffers) and the rest (native: code, stacks,
 * malloc — pg sockets, OpenSSL, libuv). To compare runtime settings, BENCH_START replaces
 * `npm start` with a shell command run in the repository, e.g.
 * `BENCH_START='exec node src/start.mjs'` (the script without its node flags) or
 * `BENCH_START='MALLOC_ARENA_MAX=2 exec node --max-semi-space-size=4 src/start.mjs'` (it must keep
 * NODE_OPTIONS, which loads the probe).
 */
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import pg from 'pg'
import { createPusher } from '../src/sandbox/pusher.js'
import { SAFE_ACCOUNT } from '../test/server.js'
import { untilHealthy } from './healthz.js'
import { textPushes } from './text-pushes.js'

const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 20)
const seconds = Number(process.env.BENCH_SECONDS ?? 60)
const settleSeconds = Number(process.env.BENCH_SETTLE_SECONDS ?? 20)
const gcWaitSeconds = Number(process.env.BENCH_GC_WAIT_SECONDS ?? 2)
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50)
const members = Number(process.env.BENCH_MEMBERS ?? 100_000)
const content = process.env.BENCH_TEXT ?? '签到'
const port = Number(process.env.BENCH_PORT ?? 3498)
const pgUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const database = `bench_sp_mem_${port}`
const root = new URL('..', import.meta.url).pathname

const mb = (kb: number) => kb / 1024
/** Resident set size of `pid` in kB (VmRSS). */
function rss(pid: number): number {
  const line = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!line) throw new Error(`no VmRSS for ${pid}`)
  return Number(line[1])
}
const load = () => loadavg().map((x) => x.toFixed(1))

/** The server's latest memory sample (bench/memory-probe.mjs), in bytes. */
type Probe = NodeJS.MemoryUsage & { spaces: Record<string, number>; gc?: number; gcMs?: number }
function probes(file: string): Probe[] {
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean)
  const out: Probe[] = []
  for (const [i, line] of lines.entries()) {
    try {
      out.push(JSON.parse(line) as Probe)
    } catch (error) {
      // the server may be writing its last line as it is read: that one waits for the next read
      if (i < lines.length - 1) throw error
    }
  }
  return out
}
function probe(file: string): Probe {
  const last = probes(file).at(-1)
  if (!last) throw new Error(`no memory sample in ${file}: is bench/memory-probe.mjs loaded?`)
  return last
}
/** RSS split by where it lives, in MB. */
function breakdown(p: Probe): [string, number][] {
  const young = p.spaces.new_space ?? 0
  const old = p.spaces.old_space ?? 0
  return [
    ['RSS', p.rss],
    ['V8 young generation (new space)', young],
    ['V8 old generation (old space)', old],
    ['V8 other spaces (code, maps, large objects…)', p.heapTotal - young - old],
    ['external (Buffers, ArrayBuffers…)', p.external],
    ['native (RSS − V8 heap − external)', p.rss - p.heapTotal - p.external],
  ].map(([name, bytes]) => [name as string, (bytes as number) / 1024 / 1024])
}

/**
 * The server under `npm start`: npm runs the script through `sh -c`, which execs node — the first
 * descendant of npm's PID running src/start.mjs (its own children, e.g. esbuild, come after it).
 */
function serverPid(npmPid: number): number {
  let pid = npmPid
  while (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('start.mjs')) {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim()
    if (!children) throw new Error(`no server process under ${npmPid}`)
    pid = Number(children.split(' ')[0])
  }
  return pid
}

// Built first, as `npm install` does: a start that finds its sources newer than dist/ rebuilds,
// which is not what a deployed server does. BENCH_BUILD=0 skips it (two runs side by side share
// one dist/; or to measure a start that rebuilds).
if (process.env.BENCH_BUILD !== '0')
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' })
const admin = new pg.Client({ connectionString: pgUrl })
await admin.connect()
await admin.query(`drop database if exists ${database}`)
await admin.query(`create database ${database}`)
const url = new URL(pgUrl)
url.pathname = `/${database}`
const probeFile = `${tmpdir()}/quanzi-memory-probe-${port}.jsonl`
rmSync(probeFile, { force: true })
const startCommand = process.env.BENCH_START
const child = spawn(startCommand ? 'sh' : 'npm', startCommand ? ['-c', startCommand] : ['start'], {
  cwd: root,
  env: {
    ...process.env,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${root}bench/memory-probe.mjs`.trim(),
    BENCH_MEMORY_PROBE: probeFile,
    PORT: String(port),
    LOG_LEVEL: 'warn',
    DATABASE_URL: url.href,
    WECHAT_APPID: SAFE_ACCOUNT.appid,
    WECHAT_TOKEN: SAFE_ACCOUNT.token,
    WECHAT_AES_KEY: SAFE_ACCOUNT.aesKey,
  },
  stdio: ['ignore', 'ignore', 'inherit'],
})
const exited = new Promise((resolve) => child.once('exit', resolve))
try {
  await untilHealthy(`http://127.0.0.1:${port}`, child, { what: 'npm start' })
  const pid = serverPid(child.pid!)
  console.log(`server up (pid ${pid}, ${startCommand ?? 'npm start'}); load average ${load()}`)

  const sample = async (n: number, into: number[]) => {
    for (let i = 0; i < n; i++) {
      await sleep(1000)
      into.push(rss(pid))
    }
  }
  /**
   * Has the server force full garbage collections (SIGUSR2 → bench/memory-probe.mjs), waits for
   * the probe's line saying they are done, then gcWaitSeconds for V8's concurrent sweeping to
   * unmap what they freed; the RSS and the probe's latest sample after that.
   */
  let forced = 0
  const forceGc = async () => {
    probe(probeFile) // the probe is there to catch the signal, whose default action is to exit
    forced++
    process.kill(pid, 'SIGUSR2')
    let done: Probe | undefined
    for (const started = Date.now(); !done; await sleep(50)) {
      done = probes(probeFile).find((p) => p.gc === forced)
      if (!done && Date.now() - started > 30_000) throw new Error('no forced GC within 30 s')
    }
    await sleep(gcWaitSeconds * 1000)
    return { rss: rss(pid), probe: probe(probeFile), ms: done.gcMs! }
  }

  const idle: number[] = []
  await sample(idleSeconds, idle)
  const idleRss = idle.at(-1)!
  const idleProbe = probe(probeFile)
  const idleGc = await forceGc()
  console.log(
    `idle: ${mb(idleRss).toFixed(1)} MB RSS (min ${mb(Math.min(...idle)).toFixed(1)}); after a forced full GC (${idleGc.ms.toFixed(0)} ms) ${mb(idleGc.rss).toFixed(1)} MB`,
  )

  // The pushes, prepared before the clock starts (as bench/webhook.ts does); a run faster than
  // this many pushes repeats them, and a repeat is answered as a WeChat retry.
  const wx = createPusher({ url: `http://127.0.0.1:${port}/wechat`, account: SAFE_ACCOUNT })
  const count = Number(process.env.BENCH_PUSHES ?? 200_000)
  const pushes = await textPushes(wx, { count, content, sender: 'o_mem_', senders: members })
  const before = rss(pid)
  const during: number[] = []
  let i = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      await sleep(1000)
      if (sampling) during.push(rss(pid))
    }
  })()
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path: '/wechat',
        headers: { 'content-type': 'text/xml' },
        setupRequest: (req) => {
          const p = pushes[i++ % pushes.length]!
          return { ...req, path: p.url.slice(p.url.indexOf('/wechat')), body: p.body }
        },
      },
    ],
  })
  sampling = false
  await sampler
  const endRss = rss(pid)
  const endProbe = probe(probeFile)
  console.log(`load average ${load()}`)
  const settled: number[] = []
  await sample(settleSeconds, settled)
  const after = settled.at(-1)!
  const afterProbe = probe(probeFile)
  const afterGc = await forceGc()
  console.log(`settled: forced full GC in ${afterGc.ms.toFixed(0)} ms`)
  const peak = Math.max(...during, endRss)
  const bad = result.non2xx + result.errors + result.timeouts
  console.log(
    `load: ${result.requests.total} pushes in ${seconds} s (${result.requests.average.toFixed(0)} req/s, p99 ${result.latency.p99} ms, non-2xx/errors ${bad}${i > pushes.length ? `, ${i - pushes.length} repeated` : ''})`,
  )
  console.log(
    [
      '',
      '| RSS, MB | value |',
      '|---|---:|',
      `| idle (after ${idleSeconds} s) | ${mb(idleRss).toFixed(1)} |`,
      `| idle, ${gcWaitSeconds} s after a forced full GC | ${mb(idleGc.rss).toFixed(1)} |`,
      `| just before the load | ${mb(before).toFixed(1)} |`,
      `| peak during ${seconds} s of load | ${mb(peak).toFixed(1)} |`,
      `| at the end of the load | ${mb(endRss).toFixed(1)} |`,
      `| ${settleSeconds} s after the load | ${mb(after).toFixed(1)} |`,
      `| ${settleSeconds} s after the load, ${gcWaitSeconds} s after a forced full GC | ${mb(afterGc.rss).toFixed(1)} |`,
      `| **growth (after a forced full GC)** | **${mb(afterGc.rss - idleGc.rss).toFixed(1)}** |`,
      `| growth before GC (${settleSeconds} s after − idle) | ${mb(after - idleRss).toFixed(1)} |`,
    ].join('\n'),
  )
  const rows = [idleProbe, idleGc.probe, endProbe, afterProbe, afterGc.probe].map(breakdown)
  console.log(
    `\n| MB (process.memoryUsage, V8 heap spaces) | idle | idle, GC | end of load | ${settleSeconds} s after | ${settleSeconds} s after, GC | growth after GC | growth before GC |\n|---|---:|---:|---:|---:|---:|---:|---:|`,
  )
  for (const [i, [name]] of rows[0]!.entries()) {
    const [idleMb, idleGcMb, endMb, afterMb, afterGcMb] = rows.map((r) => r[i]![1])
    console.log(
      `| ${name} | ${[idleMb, idleGcMb, endMb, afterMb, afterGcMb, afterGcMb! - idleGcMb!, afterMb! - idleMb!].map((x) => x!.toFixed(1)).join(' | ')} |`,
    )
  }
} finally {
  child.kill('SIGTERM')
  await exited
  await admin.query(`drop database if exists ${database}`)
  await admin.end()
  rmSync(probeFile, { force: true })
}
