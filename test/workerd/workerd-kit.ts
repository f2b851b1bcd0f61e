/**
 * What the workerd suites share: a throwaway PostgreSQL database (a Worker connects by URL, so a
 * whole database rather than a schema), and wrangler's `unstable_startWorker` options for
 * `wrangler.toml` served on loopback, offline, with the given variables.
 */
import { type Kysely, sql } from 'kysely'
import type { unstable_startWorker } from 'wrangler'
import { postgresDatabase } from '../../src/db/postgres.js'
import type { Database } from '../../src/db/schema.js'
import { SAFE_ACCOUNT } from '../server.js'

/** wrangler.toml, absolute (wrangler hands a watched path to the watcher as given). */
const WRANGLER_TOML = new URL('../../wrangler.toml', import.meta.url).pathname

/** Nothing a workerd test starts may reach the internet. */
export function offline(): void {
  // Request.cf comes from workers.cloudflare.com unless turned off; telemetry too.
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = 'false'
  process.env.WRANGLER_SEND_METRICS = 'false'
  // The CLI's banner asks the npm registry for a newer wrangler.
  process.env.WRANGLER_HIDE_BANNER = 'true'
}

/**
 * Creates a database beside the one `serverUrl` names; `url` has a password (Hyperdrive's local
 * connection string needs one: a server that trusts loopback ignores it).
 */
export async function workerdDatabase(serverUrl: string) {
  const name = `qz_workerd_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 6)}`
  const admin = postgresDatabase(serverUrl, { max: 1 })
  await sql`create database ${sql.id(name)}`.execute(admin)
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  if (!url.password) url.password = 'unused'
  return {
    url: url.href,
    async drop() {
      await sql`drop database if exists ${sql.id(name)} with (force)`.execute(admin)
      await admin.destroy()
    },
  }
}

/**
 * `unstable_startWorker` options: wrangler.toml, its Hyperdrive on `databaseUrl`, the safe-mode
 * test account (SAFE_ACCOUNT) and these vars over it.
 */
export function workerEnvironment(o: {
  databaseUrl: string
  vars: Record<string, string>
}): Parameters<typeof unstable_startWorker>[0] {
  offline()
  process.env.CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_HYPERDRIVE = o.databaseUrl
  return {
    config: 'wrangler.toml',
    // .dev.vars (a developer's own) is not read: only these.
    envFiles: [],
    build: {
      // What `wrangler dev` derives from compatibility_flags (nodejs_compat → v2); the API does not.
      nodejsCompatMode: 'v2',
      // The Worker under test is built once. wrangler watches the custom build's watch_dir (src/)
      // whatever `dev.watch` says and reloads the Worker on any change there (another session's
      // edit): its proxy then replays an in-flight GET — a scheduled tick runs twice — answers
      // other requests 503, and cuts the old Worker's database sockets (an unhandled ECONNRESET in
      // Miniflare's Hyperdrive proxy). wrangler.toml, which no run rewrites, is all it watches.
      custom: { watch: WRANGLER_TOML },
    },
    bindings: Object.fromEntries(
      Object.entries({
        WECHAT_APPID: SAFE_ACCOUNT.appid,
        WECHAT_TOKEN: SAFE_ACCOUNT.token,
        WECHAT_AES_KEY: SAFE_ACCOUNT.aesKey,
        ...o.vars,
      }).map(([name, value]) => [name, { type: 'plain_text', value }]),
    ),
    dev: {
      remote: false,
      server: { hostname: '127.0.0.1', port: 0 },
      inspector: false,
      watch: false,
      persist: false,
      logLevel: 'warn',
    },
  }
}

/** A one-variant template campaign of the safe account to everyone, due now; its id. */
export async function dueTemplateCampaign(
  db: Kysely<Database>,
  o: { name: string; template: { template_id: string; data: Record<string, { value: string }> } },
): Promise<number> {
  const row = await db
    .insertInto('campaigns')
    .values({
      appid: SAFE_ACCOUNT.appid,
      name: o.name,
      status: 'scheduled',
      audience: '{}',
      variants: JSON.stringify([{ key: 'A', weight: 1, template: o.template }]),
      run_at: new Date(Date.now() - 1000),
      created_at: new Date(),
      updated_at: new Date(),
    })
    .returning('id')
    .executeTakeFirstOrThrow()
  return Number(row.id)
}
