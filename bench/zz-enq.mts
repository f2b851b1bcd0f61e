import { sql } from 'kysely'
import { translator } from '../src/bot/i18n.js'
import { dispatchCampaigns } from '../src/community/campaigns.js'
import { migrateToLatest } from '../src/db/migrate.js'
import { pgliteDatabase } from '../src/db/open-database.js'
const count = Number(process.env.N ?? 1_000_000)
const stmts = new Map<string, { n: number; ms: number }>()
const db = await pgliteDatabase(undefined, {
  log: (e) => {
    if (e.level !== 'query') return
    const k = e.query.sql.replace(/\s+/g, ' ').slice(0, 90)
    const s = stmts.get(k) ?? { n: 0, ms: 0 }
    s.n++; s.ms += e.queryDurationMillis; stmts.set(k, s)
  },
})
await migrateToLatest(db)
const appid = 'wxbench000000000001'
const now = new Date('2026-11-25T02:00:00Z')
await sql`insert into members (appid, openid, subscribed, first_seen_at, last_active_at, points_balance)
  select ${appid}, 'o_' || g, true, ${now}::timestamptz - interval '300 days', ${now}::timestamptz - make_interval(days => (100 + g % 100)::int), g % 500
  from generate_series(1, ${count}::bigint) g`.execute(db)
await sql`vacuum analyze members`.execute(db)
stmts.clear()
await db.insertInto('campaigns').values({ appid, name: 'b', status: 'scheduled', audience: '{}', variants: JSON.stringify([{ key: 'A', weight: 100, template: { template_id: 'T', data: { thing1: { value: 'x' } } } }]), run_at: now, created_at: now, updated_at: now }).execute()
let batches = 0
const t0 = performance.now(); let last = t0
const times: number[] = []
const budget = { left: () => batches < Number(process.env.B ?? 30) }
const result = await dispatchCampaigns(db, {
  slot: now, now,
  settings: { timeZone: 'Asia/Shanghai', capHours: 24, capSlackMinutes: 30, quietHours: null, publicBaseUrl: 'https://q.example' },
  t: translator('zh-CN'), leaseMs: 600_000, budget: budget as never,
  onBatch: () => { batches++; const t = performance.now(); times.push(t - last); last = t },
})
console.log('enqueued', JSON.stringify(result).slice(0, 200), 'batches', batches, 'ms/batch first/median/last', times[0]?.toFixed(0), times.sort((a, b) => a - b)[Math.floor(times.length / 2)]?.toFixed(0), (performance.now() - t0).toFixed(0))
for (const [k, s] of [...stmts].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12)) console.log(s.ms.toFixed(0).padStart(7), 'ms', String(s.n).padStart(5), k)
