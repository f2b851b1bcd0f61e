/**
 * `POST /admin/jobs/<name>/run`: runs a job now in this process and answers its outcome. `npm run
 * job` uses it when the server holds the embedded database (which is single-process), with the
 * per-run control token from the data folder's lock file; operators may call it with ADMIN_TOKEN.
 */
import { Hono } from 'hono'
import { bearerAuth } from 'hono/bearer-auth'
import { HTTPException } from 'hono/http-exception'
import type { Logger } from '../logger.js'

/** Options for {@link jobRoutes}. */
export interface JobRouteOptions {
  jobs: {
    /** Extra bearer tokens accepted besides ADMIN_TOKEN (the local control token). */
    tokens: string[]
    /** Runs a job by name; undefined when there is no such job. */
    run(
      name: string,
    ): Promise<({ job: string; status: string } & Record<string, unknown>) | undefined>
  }
  adminToken?: string
  logger: Logger
}

/** The job-run route. */
export function jobRoutes(o: JobRouteOptions): Hono {
  const app = new Hono()
  const tokens = [...o.jobs.tokens, ...(o.adminToken ? [o.adminToken] : [])]
  if (tokens.length === 0) return app
  app.use('*', bearerAuth({ token: tokens }))
  app.post('/:name/run', async (c) => {
    const name = c.req.param('name')
    const outcome = await o.jobs.run(name)
    if (!outcome) throw new HTTPException(404, { message: `no job named ${name}` })
    o.logger.info('job run on request', { job: name, status: outcome.status })
    const { error, ...rest } = outcome
    const body =
      error === undefined ? rest : { ...rest, error: String((error as Error)?.message ?? error) }
    return c.json(body)
  })
  return app
}
