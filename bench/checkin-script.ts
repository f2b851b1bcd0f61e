/** The pgbench script of a first check-in, shared by the check-in benches. */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LEVELS_JSON } from '../src/community/points-ledger.js'

/**
 * Writes a pgbench script of the three statements a first 签到 from a new member costs
 * (`quanzi_receive`, `quanzi_checkin`, the reply store) to a temporary file; returns its path.
 */
export function writeCheckinScript(): string {
  const script = join(mkdtempSync(join(tmpdir(), 'quanzi-bench-')), 'checkin.sql')
  const levels = LEVELS_JSON.replaceAll("'", "''")
  writeFileSync(
    script,
    [
      '\\set id random(1, 2000000000)',
      `select quanzi_receive('wxbench', 'k' || :id, 'o' || :id, 'text', null, now(), true, true, true, false, false, false, null, null, true, 'Asia/Shanghai', current_date, current_date, '${levels}')->'member'->>'id' as mid \\gset`,
      `select quanzi_checkin('wxbench', :mid, now(), current_date, current_date, '{}', '${levels}');`,
      "update inbound_events set status = 'replied', reply = 'x', completed_at = now() where appid = 'wxbench' and dedupe_key = 'k' || :id and status = 'processing';",
      '',
    ].join('\n'),
  )
  return script
}
