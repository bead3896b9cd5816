/* The staff dashboard: figures from the page, then pushed by the staff stream or fetched on a timer.
 *
 * With a stream URL (the site has Redis) the page listens to the staff stream:
 * "figures" events redraw everything, "step" events feed the list of what is
 * happening. If the stream fails, figures.json is fetched every few seconds and
 * the stream tried again every 10 s; without a stream URL the timer is all.
 */
(function () {
  "use strict";

  const byId = (id) => document.getElementById(id);
  const config = JSON.parse(byId("live-config").textContent);
  const REFRESH_MS = config.refresh_seconds * 1000;
  const RECONNECT_MS = 10000;
  const FEED_LENGTH = 30;
  // While live, figures come every couple of seconds; none for this long: fetch them.
  const PUSH_STALE_MS = 3 * REFRESH_MS;

  const COLORS = {
    placed: "#3b6fd4", completed: "#1b7f3b", cancelled: "#c0392b",
    captured: "#1b7f3b", refunded: "#e67e22", declines: "#c0392b", p50: "#3b6fd4", p95: "#8e44ad",
  };

  // --- Formatting -------------------------------------------------------------

  const dash = "–";
  const count = (n) => (n === null || n === undefined ? dash : n.toLocaleString("en"));
  const percent = (r) => (r === null || r === undefined ? dash : (r * 100).toFixed(1) + " %");

  function seconds(s) {
    if (s === null || s === undefined) return dash;
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 120) return s.toFixed(1) + " s";
    if (s < 7200) return (s / 60).toFixed(1) + " min";
    return (s / 3600).toFixed(1) + " h";
  }

  function ago(s) {
    return s === null || s === undefined ? "never" : seconds(Math.max(s, 0)) + " ago";
  }

  function money(byCurrency, currency) {
    const entries = Object.entries(byCurrency || {});
    if (!entries.length) return "0.00 " + currency;
    return entries.map(([code, amount]) => amount + " " + code).join(", ");
  }

  function clock(iso) {
    return iso ? new Date(iso).toLocaleTimeString("en-GB", { hour12: false }) : dash;
  }

  function minuteLabel(iso) {
    return new Date(iso).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  }

  function set(id, text, tone) {
    const element = byId(id);
    if (!element) return;
    element.textContent = text;
    element.classList.toggle("bad", tone === "bad");
    element.classList.toggle("warn", tone === "warn");
  }

  function element(tag, text, attributes) {
    const made = document.createElement(tag);
    if (text !== undefined && text !== null) made.textContent = text;
    Object.entries(attributes || {}).forEach(([name, value]) => made.setAttribute(name, value));
    return made;
  }

  function link(href, text) {
    return element("a", text, { href: href });
  }

  // --- Charts -----------------------------------------------------------------

  function chart(id, datasets, options) {
    return new Chart(byId(id), {
      data: { labels: [], datasets: datasets },
      options: Object.assign(
        {
          animation: false,
          maintainAspectRatio: false,
          interaction: { mode: "index", intersect: false },
          plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
          scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { beginAtZero: true } },
        },
        options || {}
      ),
    });
  }

  const charts = {
    orders: chart("chart-orders", [
      { type: "bar", label: "completed", backgroundColor: COLORS.completed, stack: "ended", data: [] },
      { type: "bar", label: "cancelled", backgroundColor: COLORS.cancelled, stack: "ended", data: [] },
      { type: "line", label: "placed", borderColor: COLORS.placed, backgroundColor: COLORS.placed, pointRadius: 0, data: [] },
    ], { scales: { x: { stacked: true, ticks: { maxTicksLimit: 8 } }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } }),
    money: chart("chart-money", [
      { type: "line", label: "captured", borderColor: COLORS.captured, backgroundColor: COLORS.captured, pointRadius: 0, data: [] },
      { type: "line", label: "refunded", borderColor: COLORS.refunded, backgroundColor: COLORS.refunded, pointRadius: 0, data: [] },
    ]),
    declines: chart("chart-declines", [
      { type: "line", label: "declined ÷ tried", borderColor: COLORS.declines, backgroundColor: COLORS.declines, pointRadius: 3, spanGaps: true, data: [] },
    ], { scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { beginAtZero: true, suggestedMax: 0.1, ticks: { callback: (v) => Math.round(v * 100) + " %" } } } }),
    latency: chart("chart-latency", [
      { type: "line", label: "p50", borderColor: COLORS.p50, backgroundColor: COLORS.p50, pointRadius: 3, spanGaps: true, data: [] },
      { type: "line", label: "p95", borderColor: COLORS.p95, backgroundColor: COLORS.p95, pointRadius: 3, spanGaps: true, data: [] },
    ]),
  };

  function drawCharts(business) {
    const rows = business.per_minute;
    const currency = business.currency;
    const labels = rows.map((row) => minuteLabel(row.minute));
    const amount = (byCurrency) => Number((byCurrency || {})[currency] || 0);
    const series = {
      orders: [rows.map((r) => r.orders_completed), rows.map((r) => r.orders_cancelled), rows.map((r) => r.orders_placed)],
      money: [rows.map((r) => amount(r.money_captured)), rows.map((r) => amount(r.money_refunded))],
      declines: [rows.map((r) => r.decline_rate)],
      latency: [rows.map((r) => r.completion_p50), rows.map((r) => r.completion_p95)],
    };
    Object.entries(series).forEach(([name, data]) => {
      const drawn = charts[name];
      drawn.data.labels = labels;
      data.forEach((values, i) => { drawn.data.datasets[i].data = values; });
      drawn.update("none");
    });
    set("chart-money-currency", currency);
  }

  // --- Figures ----------------------------------------------------------------

  function drawSummaries(business) {
    Object.entries(business.summary).forEach(([window, figures]) => {
      set("orders-placed-" + window, count(figures.orders_placed));
      set("orders-completed-" + window, count(figures.orders_completed));
      set("orders-cancelled-" + window, count(figures.orders_cancelled), figures.orders_cancelled ? "warn" : null);
      set("captured-" + window, money(figures.money_captured, business.currency));
      set("refunded-" + window, money(figures.money_refunded, business.currency));
      set("decline-rate-" + window, percent(figures.decline_rate), figures.decline_rate > 0.2 ? "bad" : null);
      set("p50-" + window, seconds(figures.completion_p50));
      set("p95-" + window, seconds(figures.completion_p95));
    });
  }

  function drawProcessors(processors) {
    const body = byId("processors").tBodies[0];
    const stale = processors.filter((p) => p.is_stale).map((p) => p.processor);
    set(
      "processors-note",
      !processors.length ? "(no stream processor has run: no figures)"
        : stale.length ? "(figures may be stale: " + stale.join(", ") + " not running)" : "",
      processors.length && !stale.length ? null : "bad"
    );
    body.replaceChildren(...processors.map((p) => {
      const row = element("tr", null, { id: "processor-" + p.processor });
      row.append(
        element("td", p.processor),
        element("td", count(p.lag_entries) + " entries, " + seconds(p.lag_seconds)),
        element("td", ago(p.heartbeat_age_seconds), { class: p.is_stale ? "bad" : "" }),
        element("td", p.last_error ? clock(p.last_error_at) + " " + p.last_error.slice(0, 120) : "", { title: p.last_error || "" })
      );
      return row;
    }));
  }

  const QUEUE_CELLS = [
    ["depth", (q) => count(q.depth), (q) => (q.depth > 0 && q.consumers === 0 ? "bad" : null)],
    ["consumers", (q) => count(q.consumers), (q) => (q.consumers === 0 ? "bad" : null)],
    ["rate-10s", (q) => q.deliveries_per_second_10s.toFixed(1)],
    ["rate-60s", (q) => q.deliveries_per_second_60s.toFixed(1)],
    ["retries", (q) => count(q.retries_5m), (q) => (q.retries_5m > 0 ? "warn" : null)],
    ["dead-letters", (q) => count(q.dead_letters_pending), (q) => (q.dead_letters_pending > 0 ? "bad" : null)],
    ["dead-letters-hour", (q) => count(q.dead_letters_last_hour)],
  ];

  function drawQueues(queues) {
    const body = byId("queues").tBodies[0];
    const names = queues.rows.map((q) => q.queue).join(" ");
    if (body.dataset.queues !== names) {
      body.dataset.queues = names;
      body.replaceChildren(...queues.rows.map((q) => {
        const row = element("tr", null, { id: "queue-" + q.queue });
        row.append(element("td", q.queue), ...QUEUE_CELLS.map(([key]) => element("td", dash, { id: "queue-" + q.queue + "-" + key })));
        return row;
      }));
    }
    queues.rows.forEach((q) => {
      QUEUE_CELLS.forEach(([key, text, tone]) => {
        set("queue-" + q.queue + "-" + key, text(q), tone ? tone(q) : null);
      });
      byId("queue-" + q.queue + "-depth").title = q.broker_reason || "";
    });
    const notes = [];
    if (!queues.broker.is_available) notes.push("Depth and consumers unknown: " + queues.broker.reason + ".");
    if (!queues.retries.is_counted) notes.push("Retries " + queues.retries.reason + ".");
    set("queues-note", notes.join(" "));
  }

  function drawOutbox(outbox) {
    const relay = outbox.relay;
    set("outbox-backlog", count(outbox.backlog), outbox.backlog > 0 ? "warn" : null);
    set("outbox-oldest-age", outbox.oldest_pending_age_seconds === null ? "nothing waiting" : seconds(outbox.oldest_pending_age_seconds),
      outbox.oldest_pending_age_seconds > 60 ? "bad" : null);
    set(
      "relay-last-run",
      !relay.has_run ? "never (no worker or relay_outbox has run it)"
        : ago(relay.last_run_age_seconds) + " by " + relay.last_runner + " (every " + seconds(relay.interval_seconds) + " in each worker)",
      !relay.has_run ? "warn" : relay.is_late ? "bad" : null
    );
  }

  function drawBreaker(breaker) {
    const state = byId("breaker-state");
    state.textContent = breaker.is_shared ? breaker.state : "not shared";
    state.className = "pill " + (breaker.state || "");
    let detail = breaker.reason || "";
    if (breaker.is_shared) {
      detail = breaker.failures + " of " + breaker.fail_max + " failures in a row";
      if (breaker.seconds_until_trial !== null) detail += "; trial call in " + seconds(breaker.seconds_until_trial);
    }
    set("breaker-detail", detail);
  }

  function drawSagas(sagas) {
    const list = byId("sagas");
    list.replaceChildren(...Object.entries(sagas.by_state).flatMap(([state, n]) => {
      const value = element("dd", count(n), { id: "saga-" + state });
      if (state === "needs_attention" && n > 0) value.className = "bad";
      return [element("dt", sagas.labels[state]), value];
    }));
  }

  function drawStuck(stuck) {
    set("stuck-count", count(stuck.count), stuck.count > 0 ? "bad" : null);
    set("stuck-note", "Open after " + seconds(stuck.older_than_seconds) + (stuck.count > stuck.oldest.length ? "; the oldest " + stuck.oldest.length + ":" : ""));
    byId("stuck-list").replaceChildren(...stuck.oldest.map((order) => {
      const item = element("li");
      item.append(link(order.admin_url, order.id.slice(0, 8)), " " + order.status + ", " + seconds(order.age_seconds) + " old: " + order.waiting_on);
      return item;
    }));
  }

  function drawFraud(fraud) {
    set("fraud-count", count(fraud.count), fraud.count > 0 ? "bad" : null);
    byId("fraud-list").replaceChildren(...fraud.latest.map((flag) => {
      const item = element("li", null, { title: flag.reason });
      item.append(
        element("time", clock(flag.fired_at)), " ",
        link(flag.admin_url, flag.rule), " " + flag.who + " · order ",
        link(flag.order_admin_url, flag.order_id.slice(0, 8))
      );
      return item;
    }));
  }

  function draw(snapshot) {
    set("updated-at", clock(snapshot.generated_at));
    byId("updated-at").setAttribute("datetime", snapshot.generated_at);
    drawSummaries(snapshot.business);
    drawCharts(snapshot.business);
    drawProcessors(snapshot.processors);
    drawQueues(snapshot.queues);
    drawOutbox(snapshot.outbox);
    drawBreaker(snapshot.breaker);
    drawSagas(snapshot.sagas);
    drawStuck(snapshot.stuck_orders);
    drawFraud(snapshot.fraud);
  }

  // --- The feed of steps --------------------------------------------------------

  const seenSteps = [];

  function addStep(step) {
    if (seenSteps.includes(step.message_id)) return;
    seenSteps.unshift(step.message_id);
    seenSteps.length = Math.min(seenSteps.length, FEED_LENGTH * 2);
    const feed = byId("feed");
    const empty = byId("feed-empty");
    if (empty) empty.remove();
    const item = element("li", null, { class: "tone-" + (step.tone || "neutral") });
    item.append(element("time", clock(step.occurred_at)), step.title + " ");
    if (step.order_id) item.append(link(config.order_admin_url.replace(config.any_order, step.order_id), String(step.order_id).slice(0, 8)));
    feed.prepend(item);
    while (feed.children.length > FEED_LENGTH) feed.lastElementChild.remove();
  }

  // --- Stream, timer and the status line ----------------------------------------

  const status = byId("live-status");
  let mode = { kind: "starting", text: "Starting…" };
  let source = null;
  let pollTimer = null;
  let reconnectTimer = null;
  let lastPushed = 0;

  function showStatus(kind, text) {
    status.dataset.mode = kind;
    status.textContent = text;
  }

  function enter(kind, text) {
    mode = { kind: kind, text: text };
    showStatus(kind, text);
  }

  async function fetchFigures() {
    try {
      const response = await fetch(config.figures_url, { headers: { Accept: "application/json" }, cache: "no-store" });
      const type = response.headers.get("Content-Type") || "";
      if (!response.ok || !type.includes("json")) {
        showStatus("failed", "Figures unavailable (HTTP " + response.status + (response.redirected ? ", signed out: reload the page" : "") + ")");
        return;
      }
      draw(await response.json());
      if (status.dataset.mode === "failed") showStatus(mode.kind, mode.text);
    } catch (error) {
      showStatus("failed", mode.text + " · the last refresh failed: " + error.message);
    }
  }

  function startTimer() {
    if (pollTimer === null) pollTimer = setInterval(fetchFigures, REFRESH_MS);
  }

  function stopTimer() {
    if (pollTimer !== null) clearInterval(pollTimer);
    pollTimer = null;
  }

  function streamFailed() {
    if (source) source.close();
    source = null;
    enter("timer", "Live updates unavailable: refreshing every " + config.refresh_seconds + " s");
    fetchFigures();
    startTimer();
    if (reconnectTimer === null) reconnectTimer = setTimeout(connect, RECONNECT_MS);
  }

  function connect() {
    reconnectTimer = null;
    let stream;
    try {
      stream = new EventSource(config.stream_url);
    } catch (error) {
      streamFailed();
      return;
    }
    source = stream;
    stream.addEventListener("open", () => {
      stopTimer();
      lastPushed = Date.now();
      enter("live", "Live");
    });
    stream.addEventListener("figures", (event) => {
      lastPushed = Date.now();
      if (mode.kind === "live" && status.textContent !== mode.text) showStatus("live", mode.text);
      draw(JSON.parse(event.data));
    });
    stream.addEventListener("step", (event) => addStep(JSON.parse(event.data)));
    stream.addEventListener("error", () => {
      if (source === stream) streamFailed();
    });
  }

  // Live but nothing pushed for a while (no publisher running): fetch the figures meanwhile.
  setInterval(() => {
    if (mode.kind === "live" && Date.now() - lastPushed > PUSH_STALE_MS) {
      showStatus("live", "Live (no figures pushed for " + Math.round((Date.now() - lastPushed) / 1000) + " s: fetching them every " + config.refresh_seconds + " s)");
      fetchFigures();
    }
  }, REFRESH_MS);

  draw(JSON.parse(byId("live-snapshot").textContent));
  if (config.stream_url) {
    connect();
  } else {
    enter("timer", "No Redis configured: refreshing every " + config.refresh_seconds + " s");
    startTimer();
  }
})();
