// The storefront's running total: what the quantities typed so far come to, at the prices
// in the table. Only a guide while the customer chooses; the order's page gives the total
// the server computed and charged. Without JavaScript the line stays hidden.
(function () {
  "use strict";
  const table = document.getElementById("catalog");
  const line = document.getElementById("running-total");
  if (!table || !line) return;
  const rows = [...table.querySelectorAll("tr.product")];

  // Prices in cents, so that 3 × 12.60 is 37.80 and not 37.800000000000004.
  const cents = (price) => {
    const [whole, fraction = ""] = price.split(".");
    return Number(whole) * 100 + Number((fraction + "00").slice(0, 2));
  };
  const amount = (total) =>
    `${Math.floor(total / 100)}.${String(total % 100).padStart(2, "0")}`;

  function update() {
    const totals = new Map();
    for (const row of rows) {
      const input = row.querySelector("input");
      const typed = input ? input.value.trim() : "";
      // A quantity the server would refuse ("two", "-1", "1.5") counts for nothing here.
      if (!/^\d+$/.test(typed)) continue;
      const currency = row.dataset.currency;
      const sum = (totals.get(currency) || 0) + Number(typed) * cents(row.dataset.price);
      totals.set(currency, sum);
    }
    const shown = [...totals].filter(([, total]) => total > 0);
    line.textContent = shown.length
      ? "Total: " + shown.map(([currency, total]) => `${amount(total)} ${currency}`).join(" + ")
      : "Total: nothing chosen yet";
    line.hidden = false;
  }

  // "change" too: a box cleared by a script or autofill may say so only by that.
  table.addEventListener("input", update);
  table.addEventListener("change", update);
  update(); // the quantities a page sent back after an error count at once
})();
