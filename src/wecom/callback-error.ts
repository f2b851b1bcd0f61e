/** A WeCom callback refused: 401 when the signature does not match, 400 for anything else. */
export class WecomCallbackError extends Error {
  override readonly name = 'WecomCallbackError'
  constructor(
    readonly status: 400 | 401,
    message: string,
  ) {
    super(message)
  }
}

/** The `{code, message}` answer for a refused callback (other errors are rethrown). */
export function refusal(error: unknown, log: (reason: string) => void): Response {
  if (!(error instanceof WecomCallbackError)) throw error
  log(error.message)
  return Response.json(
    { code: error.status === 401 ? 'UNAUTHORIZED' : 'BAD_REQUEST', message: error.message },
    { status: error.status },
  )
}
