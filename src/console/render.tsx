/** `renderPage(c, …)`: a page's content inside the layout, as the response (never cached). */
import type { Child } from 'hono/jsx'
import { Layout } from './components/layout.js'
import type { ConsoleContext } from './context.js'
import type { SectionKey } from './page.js'

/** Responds with a signed-in page. */
export function renderPage(
  c: ConsoleContext,
  p: { title: string; section: SectionKey; charts?: boolean },
  content: Child,
  status: 200 | 400 = 200,
) {
  c.header('cache-control', 'no-store')
  return c.html(
    <Layout
      title={p.title}
      section={p.section}
      charts={p.charts}
      t={c.var.t}
      lang={c.var.lang}
      session={c.var.session}
      links={c.var.links}
      path={new URL(c.req.url).pathname + new URL(c.req.url).search}
    >
      {content}
    </Layout>,
    status,
  )
}
