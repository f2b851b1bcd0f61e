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
  return new JsonLogger(
    ORDER[options.level ?? 'info'],
    options.write ?? ((line: string) => console.log(line)),
    options.fields ?? {},
  )
}

/**
 * The logger itself. A child is one object holding its parent and its own fields object (read,
 * not copied: merged only when a line is written), since dispatch makes a child for every push,
 * which most often writes nothing (bench/README.md, session 40). The fields of a line merge with
 * `Object.assign`; the line itself is written rarely enough for its spread.
 */
class JsonLogger implements Logger {
  constructor(
    private readonly min: number,
    private readonly write: (line: string) => void,
    private readonly fields: LogFields,
    private readonly parent?: JsonLogger,
  ) {}

  debug(msg: string, fields?: LogFields) {
    this.line('debug', msg, fields)
  }
  info(msg: string, fields?: LogFields) {
    this.line('info', msg, fields)
  }
  warn(msg: string, fields?: LogFields) {
    this.line('warn', msg, fields)
  }
  error(msg: string, fields?: LogFields) {
    this.line('error', msg, fields)
  }
  child(fields: LogFields): Logger {
    return new JsonLogger(this.min, this.write, fields, this)
  }

  /** This logger's fields over its parents', outermost first. */
  private merged(into: LogFields): LogFields {
    this.parent?.merged(into)
    return Object.assign(into, this.fields)
  }

  private line(level: LogLevel, msg: string, fields: LogFields = {}) {
    if (ORDER[level] < this.min) return
    const all = Object.assign(this.merged({}), fields)
    this.write(
      JSON.stringify({
        time: new Date().toISOString(),
        level,
        msg,
        ...redact(all, level === 'error'),
      }),
    )
  }
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = createLogger({ write: () => {} })
