/** Form pieces: the CSRF field every POST form carries, and a labelled input. */
import type { Child } from 'hono/jsx'

/** The hidden CSRF field; the console refuses a POST without it (403). */
export function CsrfField(p: { token: string }) {
  return <input type="hidden" name="_csrf" value={p.token} />
}

/**
 * A labelled control: `for` names the control's `id` (give the input that id), the hint is
 * announced with it (`aria-describedby="<id>-hint"`).
 */
export function Field(p: { id: string; label: string; hint?: string; children: Child }) {
  return (
    <div class="field">
      <label for={p.id}>{p.label}</label>
      {p.children}
      {p.hint && (
        <span class="muted" id={`${p.id}-hint`}>
          {p.hint}
        </span>
      )}
    </div>
  )
}

/** A success or error line above a page's content. */
export function Notice(p: { kind: 'ok' | 'error'; text: string | undefined }) {
  if (!p.text) return null
  return (
    <p
      class={p.kind === 'error' ? 'notice error' : 'notice'}
      role={p.kind === 'error' ? 'alert' : 'status'}
    >
      {p.text}
    </p>
  )
}
