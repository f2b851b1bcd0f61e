import type { ChildProcess } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Polls `<base>/healthz` every `intervalMs` until it answers 200 (the benches that start
 * `npm start`); throws if `child` exits first or nothing answers within `timeoutMs`.
 */
export async function untilHealthy(
  base: string,
  child: ChildProcess,
  { what = 'the server', intervalMs = 100, timeoutMs = 120_000 } = {},
) {
  const started = performance.now()
  for (;;) {
    const ok = await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) return
    if (child.exitCode !== null) throw new Error(`${what} exited ${child.exitCode}`)
    if (performance.now() - started > timeoutMs)
      throw new Error(`no /healthz within ${timeoutMs / 1000} s`)
    await sleep(intervalMs)
  }
}
