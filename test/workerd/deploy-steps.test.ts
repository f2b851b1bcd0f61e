/**
 * README → Cloudflare Workers → Deploy, followed literally: every command of the block between
 * `workers-deploy:begin` and `workers-deploy:end` runs in order, in a shell, with DATABASE_URL on a
 * throwaway local database. The two commands that need Cloudflare's network (`hyperdrive create`,
 * `secret put`) run as `--help` — proving the pinned wrangler has them with these arguments'
 * names — and the block stops before the real `npm run deploy`: the dry run is as far as a machine
 * without a Cloudflare account goes. PostgreSQL only (the migrations step); skipped, saying so,
 * without TEST_DATABASE_URL.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { offline, workerdDatabase } from './workerd-kit.js'

const url = process.env.TEST_DATABASE_URL
if (!url)
  console.warn('test/workerd/deploy-steps: skipped — the migrations step needs TEST_DATABASE_URL')

const root = new URL('../..', import.meta.url).pathname

/** The README's deploy block: its commands, comments and blank lines dropped. */
function deployCommands(readme: string): string[] {
  const block =
    /<!-- workers-deploy:begin -->\s*```sh\n([\s\S]*?)```\s*<!-- workers-deploy:end -->/.exec(
      readme,
    )
  if (!block) throw new Error('README: no workers-deploy block')
  return block[1]!
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
}

/** How the test runs one documented command: as written, as `--help`, or not (the real deploy). */
function localForm(command: string): string | undefined {
  if (/wrangler (hyperdrive create|secret put)\b/.test(command))
    return `${command.replace(/ --connection-string=.*$/, '')} --help`
  if (command === 'npm run deploy' || /wrangler deploy(?!.*--dry-run)/.test(command))
    return undefined
  return command
}

describe('the README deploy steps', () => {
  it('names each step once, in order, and stops at a dry run before deploying', () => {
    const commands = deployCommands(readFileSync(`${root}README.md`, 'utf8'))
    const kinds = commands.map((c) =>
      localForm(c) === undefined ? 'deploy' : localForm(c) === c ? 'run' : 'help',
    )
    expect(commands.findIndex((c) => c.includes('hyperdrive create'))).toBe(0)
    expect(kinds.at(-1)).toBe('deploy')
    expect(commands.at(-2)).toMatch(/wrangler deploy --dry-run/)
    expect(commands.indexOf('DATABASE_URL="$DATABASE_URL" npm run migrate')).toBeGreaterThan(0)
  })

  it.skipIf(!url)(
    'runs locally up to wrangler deploy --dry-run',
    async () => {
      offline()
      const database = await workerdDatabase(url!)
      const outdir = `${root}dist/worker`
      rmSync(outdir, { recursive: true, force: true })
      try {
        const commands = deployCommands(readFileSync(`${root}README.md`, 'utf8'))
        for (const command of commands) {
          const local = localForm(command)
          if (local === undefined) break
          const out = execFileSync('bash', ['-euo', 'pipefail', '-c', local], {
            cwd: root,
            env: { ...process.env, DATABASE_URL: database.url, CI: '1' },
            encoding: 'utf8',
            stdio: ['ignore', 'pipe', 'pipe'],
            timeout: 120_000,
          })
          if (local.includes('npm run migrate')) expect(out).toMatch(/migrations/)
          if (local.includes('--help'))
            expect(out).toMatch(/wrangler (hyperdrive create|secret put)/)
        }
        // The dry run wrote the bundle wrangler would upload.
        expect(existsSync(`${outdir}/worker.js`)).toBe(true)
        expect(readFileSync(`${outdir}/worker.js`, 'utf8')).toContain('NOT_CONFIGURED')
      } finally {
        rmSync(outdir, { recursive: true, force: true })
        await database.drop()
      }
    },
    180_000,
  )
})
