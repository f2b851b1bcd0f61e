/**
 * What an object literal with properties after a spread costs on this Node, against the same
 * object built other ways, in one run (bench/README.md, "Object spread"):
 *
 *   npm run bench:spread
 *
 * Sources of 4, 12 and 23 properties (a push's message base, a bot context, a member row), each a
 * fresh object literal per iteration as on the push path; nanoseconds per object beyond building
 * the source, median of 5 rounds.
 */
const ROUNDS = 5
const N = Number(process.env.BENCH_ITERATIONS ?? 200_000)
let sink: unknown

function measure(build: (i: number) => unknown): number {
  const times: number[] = []
  for (let r = 0; r < ROUNDS + 1; r++) {
    const t = performance.now()
    for (let i = 0; i < N; i++) sink = build(i)
    if (r > 0) times.push(((performance.now() - t) / N) * 1e6) // round 0 warms up
  }
  return times.sort((a, b) => a - b)[Math.floor(ROUNDS / 2)]!
}

/** A function returning a fresh object literal of `n` properties, as a call site on the push path does. */
const literal = (n: number) =>
  new Function(
    'i',
    `return { ${Array.from({ length: n }, (_, k) => `p${k}: ${k === 0 ? 'i' : k}`).join(', ')} }`,
  ) as (i: number) => Record<string, unknown>

const rows: string[][] = []
for (const size of [4, 12, 23]) {
  const make = literal(size)
  const base = measure((i) => make(i))
  const forms: [string, (i: number) => unknown][] = [
    ['`{ ...a, x, y, z }`', (i) => ({ ...make(i), x: i, y: null, z: false })],
    ['`{ x, y, z, ...a }`', (i) => ({ x: i, y: null, z: false, ...make(i) })],
    [
      '`Object.assign({}, a, { x, y, z })`',
      (i) => Object.assign({}, make(i), { x: i, y: null, z: false }),
    ],
    [
      '`{ ...a }` then `.x = …` ×3',
      (i) => {
        const o: Record<string, unknown> = { ...make(i) }
        o.x = i
        o.y = null
        o.z = false
        return o
      },
    ],
    ['`{ ...a, ...b }` (b: 3 properties)', (i) => ({ ...make(i), ...{ x: i, y: null, z: false } })],
  ]
  for (const [name, build] of forms) {
    const ns = measure(build) - base
    rows.push([String(size), name, ns.toFixed(0)])
  }
}
void sink
console.log(
  `Node ${process.version} (V8 ${process.versions.v8}); ns per object beyond building the source, median of ${ROUNDS} rounds × ${N}`,
)
console.log('\n| source properties | form | ns per object |\n|---:|---|---:|')
for (const r of rows) console.log(`| ${r.join(' | ')} |`)
