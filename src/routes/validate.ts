/** Validated JSON in: parses the body with a valibot schema; errors name the field (400). */
import type { Context } from 'hono'
import { HTTPException } from 'hono/http-exception'
import * as v from 'valibot'

export async function parseBody<T extends v.GenericSchema>(
  c: Context,
  schema: T,
): Promise<v.InferOutput<T>> {
  let json: unknown
  try {
    json = await c.req.json()
  } catch {
    throw new HTTPException(400, { message: 'body must be JSON' })
  }
  const result = v.safeParse(schema, json, { abortPipeEarly: true })
  if (!result.success) {
    const issue = result.issues[0]
    const field = issue.path?.map((p) => String(p.key)).join('.') ?? 'body'
    throw new HTTPException(400, { message: `${field}: ${issue.message}` })
  }
  return result.output
}

/** The `:appid` of an operator route, refused (404) unless it is a configured account. */
export function accountParam(appids: string[]) {
  return (c: Context): string => {
    const appid = c.req.param('appid') ?? ''
    if (!appids.includes(appid)) throw new HTTPException(404, { message: 'unknown account' })
    return appid
  }
}
