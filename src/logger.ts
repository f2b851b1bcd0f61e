/**
 * Structured logging: one JSON object per line. Callers pass context fields, never secrets; keys
 * that look like secrets are masked anyway.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'
export type LogFields = Record<string, unknown>

/** A leveled logger with context fields. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }
const SECRET = /secret|token|aes_?key|password|authorization/i

/** Errors keep name, message and code; at error level their stack too (still one JSON line). */
function redact(fields: LogFields, withStack: boolean): LogFields {
  const out: LogFields = {}
  for (const [k, v] of Object.entries(fields)) {
    if (v instanceof Error) {
      const { code } = v as { code?: unknown }
      const copy: LogFields = { name: v.name, message: v.message }
      if (code !== undefined) copy.code = code
      if (withStack && v.stack) copy.stack = v.stack
      out[k] = copy
    } else out[k] = SECRET.test(k) ? '[redacted]' : v
  }
  return out
}

/**
 * Creates a JSON-lines logger.
 * @example const log = createLogger({ level: 'info' }); log.warn('bad signature', { appid })
 */
export function createLogger(
  options: { level?: LogLevel; write?: (line: string) => void; fields?: LogFields } = {},
): Logger {
  return fieldsLogger(
    ORDER[options.level ?? 'info'],
    options.write ?? ((line: string) => console.log(line)),
    options.fields ?? {},
  )
}

/**
 * The logger itself. Fields merge with `Object.assign({}, …)`, not `{ ...base, ...fields }`: a
 * child is made per push, and Node 20's V8 takes a slow path for a second spread or properties
 * after one (bench/README.md, "Object spread").
 */
function fieldsLogger(min: number, write: (line: string) => void, base: LogFields): Logger {
  const log =
    (level: LogLevel) =>
    (msg: string, fields: LogFields = {}) => {
      if (ORDER[level] < min) return
      write(
        JSON.stringify({
          time: new Date().toISOString(),
          level,
          msg,
          ...redact(Object.assign({}, base, fields), level === 'error'),
        }),
      )
    }
  return {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: (fields) => fieldsLogger(min, write, Object.assign({}, base, fields)),
  }
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = createLogger({ write: () => {} })
