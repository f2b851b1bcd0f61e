// The console's only script: folds the navigation on phones, draws every chart from the JSON its page embeds, and redraws them
// when the window or their box changes size. Each chart is `<div class="chart" data-chart="id">`
// with `<script type="application/json" id="id">{…ECharts option…}</script>` beside it.
;(() => {
  const charts = []
  const init = () => {
    // The navigation is open without script; on a phone it starts folded behind its summary.
    const nav = document.querySelector('details.nav')
    if (nav && window.matchMedia('(max-width: 720px)').matches) nav.open = false
    for (const el of document.querySelectorAll('[data-chart]')) {
      const data = document.getElementById(el.dataset.chart)
      if (!data || !window.echarts) continue
      const chart = window.echarts.init(el, null, { renderer: 'canvas' })
      const option = JSON.parse(data.textContent || '{}')
      if (option.yAxis && el.dataset.percent === '1')
        option.yAxis.axisLabel = { formatter: (v) => `${Math.round(v * 100)}%` }
      chart.setOption(option)
      charts.push(chart)
      el.dataset.ready = '1'
    }
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
