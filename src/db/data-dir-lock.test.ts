/**
 * The embedded database's folder lock, refused because the server holds it: the message says what
 * to do for the command that was refused — only a job can be handed to the server.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { acquireDataDirLock, DataDirLockedError } from './data-dir-lock.js'

const root = mkdtempSync(join(tmpdir(), 'quanzi-lock-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** The message `role` is refused with while a live server (this test's parent process) holds it. */
function refusal(role: string) {
  const dir = join(root, `pglite-${role}`)
  const held = JSON.stringify({ pid: process.ppid, role: 'server', startedAt: '2026-01-01' })
  writeFileSync(`${dir}.lock`, held)
  let error: unknown
  try {
    acquireDataDirLock(dir, role).release()
  } catch (e) {
    error = e
  }
  expect(error).toBeInstanceOf(DataDirLockedError)
  // Refused: the server's lock is left as it was.
  expect(readFileSync(`${dir}.lock`, 'utf8')).toBe(held)
  return (error as Error).message
}

it('tells `npm run migrate` and `npm run operator` what fits them, not to hand them to the server', () => {
  const migrate = refusal('migrate')
  expect(migrate).toMatch(/^the server is running on this data folder \(.*, pid \d+\)/)
  expect(migrate).not.toContain('npm run job')
  expect(migrate).toContain('the server applied the migrations when it started')

  const operator = refusal('operator-cli')
  expect(operator).not.toContain('npm run job')
  expect(operator).toContain('stop the server and run the command again')

  // A second server: stop the first.
  expect(refusal('server')).not.toContain('npm run job')
  // A job is the one thing the server runs for you.
  expect(refusal('job')).toContain('let it run the job (npm run job does that by itself)')
})
