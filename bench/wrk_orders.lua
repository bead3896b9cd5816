-- wrk script for the web scenario: POST /api/orders/ with a random product per request.
--
--   wrk -t1 -c8 -d6s -s bench/wrk_orders.lua URL -- SKU1,SKU2,...
--
-- The same body as bench/loadgen.py sends; prints one JSON line at the end.

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Forwarded-Proto"] = "https"

local skus = {}

function init(args)
  for sku in string.gmatch(args[1] or "", "[^,]+") do
    table.insert(skus, sku)
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

local template = '{"email": "ada@example.com", "items": [{"sku": "%s", "quantity": 1}], '
  .. '"shipping_address": {"name": "Ada Lovelace", "line1": "12 St James\'s Square", '
  .. '"city": "London", "postal_code": "SW1Y 4JH", "country": "GB"}, '
  .. '"card_number": "4242 4242 4242 4242"}'

function request()
  return wrk.format(nil, nil, nil, string.format(template, skus[math.random(#skus)]))
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.6f, "p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, '
      .. '"max_ms": %.3f, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"timeouts": %d, "non_2xx_3xx": %d}\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    errors.connect, errors.read, errors.write, errors.timeout, errors.status
  ))
end
