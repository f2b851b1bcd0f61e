/**
 * V8's sampling heap profiler for the benches, objects the collector has already collected
 * included (what `--heap-prof` leaves out): where a run allocates, and how many bytes.
 */
import { Session } from 'node:inspector/promises'

type ProfileNode = { selfSize: number; children: ProfileNode[] }

/**
 * Starts sampling allocations every `interval` bytes; `stop()` returns the profile (for Chrome
 * DevTools: Memory → Load) and its bytes in all.
 */
export async function sampleAllocations(
  interval: number,
): Promise<{ stop(): Promise<{ profile: object; bytes: number }> }> {
  const session = new Session()
  session.connect()
  await session.post('HeapProfiler.enable')
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: interval,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  })
  return {
    async stop() {
      const { profile } = await session.post('HeapProfiler.stopSampling')
      session.disconnect()
      const sum = (n: ProfileNode): number => n.children.reduce((a, c) => a + sum(c), n.selfSize)
      return { profile, bytes: sum(profile.head as ProfileNode) }
    },
  }
}
