// The console's only script: folds the navigation on phones, draws every chart from the JSON its page embeds, and redraws them
// when the window or their box changes size. Each chart is `<div class="chart" data-chart="id">`
// with `<script type="application/json" id="id">{…ECharts option…}</script>` beside it.
;(() => {
  const charts = []
  const init = () => {
    for (const form of document.querySelectorAll('form[data-estimate]')) live(form)
    // The navigation is open without script; on a phone it starts folded behind its summary.
    const nav = document.querySelector('details.nav')
    if (nav && window.matchMedia('(max-width: 720px)').matches) nav.open = false
    for (const el of document.querySelectorAll('[data-chart]')) {
      const data = document.getElementById(el.dataset.chart)
      if (!data || !window.echarts) continue
      const chart = window.echarts.init(el, null, { renderer: 'canvas' })
      const option = JSON.parse(data.textContent || '{}')
      // data-percent: the (first, left) y axis is a ratio's — a second axis keeps its own unit.
      const yAxis = Array.isArray(option.yAxis) ? option.yAxis[0] : option.yAxis
      if (yAxis && el.dataset.percent === '1')
        yAxis.axisLabel = { formatter: (v) => `${Math.round(v * 100)}%` }
      chart.setOption(option)
      charts.push(chart)
      el.dataset.ready = '1'
    }
  }
  // A form with data-estimate asks its URL (GET, the form's fields) for live figures on change and
  // fills the [data-out] elements; [data-mirror] elements echo a field's text (previews).
  const live = (form) => {
    let timer = 0
    const update = () => {
      for (const el of form.querySelectorAll('[data-mirror]'))
        el.textContent = form.elements[el.dataset.mirror]?.value ?? ''
      clearTimeout(timer)
      timer = setTimeout(async () => {
        const query = new URLSearchParams(new FormData(form))
        query.delete('_csrf')
        const res = await fetch(`/console${form.dataset.estimate}?${query}`)
        if (!res.ok) return
        const figures = await res.json()
        for (const el of form.querySelectorAll('[data-out]'))
          el.textContent = figures[el.dataset.out] ?? ''
        form.dataset.estimated = String(Number(form.dataset.estimated || 0) + 1)
      }, 250)
    }
    form.addEventListener('input', update)
    form.addEventListener('change', update)
  }
  let pending = 0
  const resize = () => {
    cancelAnimationFrame(pending)
    pending = requestAnimationFrame(() => {
      for (const chart of charts) chart.resize()
    })
  }
  window.addEventListener('resize', resize)
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init)
  else init()
})()
