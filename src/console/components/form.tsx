/** Form pieces: the CSRF field every POST form carries, and a labelled input. */
import { type Child, createContext, useContext } from 'hono/jsx'

/** The account the page shows (`renderPage` provides it), which every form posts back. */
export const PageAccount = createContext('')

/**
 * The hidden CSRF field (the console refuses a POST without it, 403) and the page's account: a
 * form acts on the account it was shown for, even when another tab switched accounts since.
 */
export function CsrfField(p: { token: string }) {
  const appid = useContext(PageAccount)
  return (
    <>
      <input type="hidden" name="_csrf" value={p.token} />
      {appid && <input type="hidden" name="appid" value={appid} />}
    </>
  )
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
