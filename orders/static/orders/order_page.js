// The order page, kept up to date: pushed over Server-Sent Events when the site has a
// stream, polled from the API when it has none or the stream is unavailable.
//
// Steps are kept by message id, so a step that arrives twice (the stream sends the
// whole timeline again on every reconnection) is shown once, and they are shown in
// the order they happened.
(function () {
  "use strict";
  const POLL_MS = 1000;
  const RETRY_PUSH_MS = 5000;
  // How long a dropped stream may take to come back before the page polls instead.
  const RECONNECT_GRACE_MS = 5000;
  // Steps can still follow the end of an order (a refund, stock put back).
  const LINGER_MS = 20000;
  const RANK = { placed: 0, paid: 1, reserved: 2, shipped: 3, completed: 4 };
  const LABELS = {
    placed: "Placed", paid: "Paid", reserved: "Reserved", shipped: "Shipped",
    completed: "Completed", cancelled: "Cancelled",
  };

  const byId = (id) => document.getElementById(id);
  const live = byId("order-live");
  const streamUrl = live.dataset.streamUrl;
  const apiUrl = live.dataset.apiUrl;
  const snapshot = JSON.parse(byId("order-snapshot").textContent);
  const createdAt = Date.parse(snapshot.created_at);
  const steps = new Map();
  let rowStatus = snapshot.status;
  let closedAt = null;
  let source = null;
  let pollTimer = null;
  let retryTimer = null;
  let graceTimer = null;

  function add(list) {
    let changed = false;
    for (const step of list) {
      if (step.kind && step.kind !== "event") continue;
      if (!steps.has(step.message_id)) {
        steps.set(step.message_id, step);
        changed = true;
      }
    }
    if (changed) render();
  }

  function since(step) {
    const seconds = (Date.parse(step.occurred_at) - createdAt) / 1000;
    if (seconds < 0.05) return "";
    if (seconds < 60) return "+" + seconds.toFixed(1) + " s";
    if (seconds < 3600) return "+" + Math.round(seconds / 60) + " min";
    return "+" + (seconds / 3600).toFixed(1) + " h";
  }

  function ordered() {
    return [...steps.values()].sort(
      (a, b) => Date.parse(a.occurred_at) - Date.parse(b.occurred_at) ||
        a.message_id.localeCompare(b.message_id));
  }

  function statusOf(list) {
    let status = rowStatus;
    for (const step of list) {
      if (status === "cancelled") break;
      if (step.status === "cancelled") status = "cancelled";
      else if (step.status in RANK && RANK[step.status] > (RANK[status] ?? -1)) status = step.status;
    }
    return status;
  }

  function paymentOf(list) {
    let state = snapshot.payment.status;
    let refunded = null;
    for (const step of list) {
      if (step.type === "PaymentProcessed") state = "captured";
      else if (step.type === "PaymentFailed") state = "failed";
      else if (step.type === "PaymentVoided") state = "voided";
      else if (step.type === "PaymentRefunded") { state = "refunded"; refunded = step.facts.refunded; }
    }
    if (refunded === null && snapshot.payment.amount_refunded !== "0.00") {
      refunded = snapshot.payment.amount_refunded;
    }
    return "card …" + snapshot.payment.card_last4 + ", " + state +
      (refunded ? " (refunded " + refunded + ")" : "");
  }

  function render() {
    const list = ordered();
    const status = statusOf(list);
    const badge = byId("status");
    badge.textContent = LABELS[status] || status;
    badge.className = "status " + status;
    const cancelled = list.find((step) => step.status === "cancelled");
    if (cancelled) byId("cancel-reason").textContent = cancelled.detail;
    byId("payment").textContent = paymentOf(list);
    const shipped = list.find((step) => step.type === "ShipmentCreated");
    if (shipped) byId("shipment").textContent = shipped.facts.carrier + " " + shipped.facts.tracking_number;
    const progress = byId("progress");
    progress.classList.toggle("cancelled", status === "cancelled");
    const reached = status === "cancelled" ?
      Math.max(0, ...list.map((s) => RANK[s.status] ?? 0)) : RANK[status];
    for (const item of progress.children) {
      item.classList.toggle("reached", RANK[item.dataset.status] <= reached);
    }
    byId("timeline").replaceChildren(...list.map(stepItem));
    if ((status === "completed" || status === "cancelled") && closedAt === null) {
      closedAt = Date.now();
      byId("live-note").textContent = "";
      setTimeout(stopAll, LINGER_MS);
    }
  }

  function stepItem(step) {
    const item = document.createElement("li");
    item.className = step.tone;
    item.dataset.messageId = step.message_id;
    const title = document.createElement("strong");
    title.textContent = step.title;
    item.append(title);
    if (step.detail) item.append(span("detail", step.detail));
    const when = since(step);
    if (when) item.append(span("when", when));
    const about = span("muted about", step.type + " · ");
    const id = document.createElement("code");
    id.textContent = step.message_id;
    about.append(id);
    item.append(about);
    return item;
  }

  function span(className, text) {
    const element = document.createElement("span");
    element.className = className;
    element.textContent = text;
    return element;
  }

  function note(mode, text) {
    const element = byId("live-note");
    element.dataset.mode = mode;
    element.textContent = closedAt === null ? text : "";
  }

  // --- push ------------------------------------------------------------
  function push() {
    clearTimeout(retryTimer);
    if (source) source.close();
    source = new EventSource(streamUrl);
    source.addEventListener("timeline", (event) => {
      clearTimeout(graceTimer);
      stopPolling();
      note("push", "Live: each step appears here as it happens.");
      add(JSON.parse(event.data).steps);
    });
    source.addEventListener("step", (event) => add([JSON.parse(event.data)]));
    source.addEventListener("unavailable", () => fallBack());
    source.onerror = () => {
      if (!source || source.readyState === EventSource.CLOSED) {
        fallBack();  // refused (503, 404): the browser will not try again by itself
      } else if (!graceTimer) {
        // The browser is reconnecting; poll if it takes too long.
        graceTimer = setTimeout(() => { graceTimer = null; fallBack(); }, RECONNECT_GRACE_MS);
      }
    };
  }

  function fallBack() {
    clearTimeout(graceTimer);
    graceTimer = null;
    if (source) { source.close(); source = null; }
    note("polling", "Live updates are unavailable right now: this page checks for changes every second.");
    startPolling();
    if (closedAt === null) retryTimer = setTimeout(push, RETRY_PUSH_MS);
  }

  // --- polling ---------------------------------------------------------
  function startPolling() {
    if (!pollTimer) pollTimer = setTimeout(poll, 0);
  }

  function stopPolling() {
    clearTimeout(pollTimer);
    pollTimer = null;
  }

  async function poll() {
    try {
      const response = await fetch(apiUrl, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const order = await response.json();
        rowStatus = order.status;
        snapshot.payment = order.payment;
        add(order.timeline);
        render();
      }
    } catch (error) { /* the next poll tries again */ }
    if (pollTimer !== null && (closedAt === null || Date.now() - closedAt < LINGER_MS)) {
      pollTimer = setTimeout(poll, POLL_MS);
    }
  }

  function stopAll() {
    stopPolling();
    clearTimeout(retryTimer);
    if (source) { source.close(); source = null; }
    note("closed", "");
  }

  add(snapshot.timeline);
  render();
  if (snapshot.is_closed) return;
  if (streamUrl) {
    note("connecting", "Connecting for live updates…");
    push();
  } else {
    note("polling", "This page checks for changes every second.");
    pollTimer = setTimeout(poll, POLL_MS);
  }
})();
