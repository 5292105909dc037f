-- POST /v1/credit-checks for a customer picked uniformly at random from BENCH_CUSTOMERS
-- (customers.csv of bench/generate.py: the external id and the credit currency), with an
-- order amount between 1.00 and 5 000.00 in that currency.
-- env: BENCH_TOKEN, BENCH_CUSTOMERS; optional BENCH_MEAN_DELAY_MS paces each connection
-- with exponentially distributed pauses of that mean between its requests (an open,
-- Poisson-like arrival rate instead of a closed loop at saturation). Prints one JSON line
-- (BENCH_RESULT) with the count of each response status and of each decision.
local token = os.getenv("BENCH_TOKEN")
local path = os.getenv("BENCH_CUSTOMERS")
local counter = 0
local threads = {}
local customers = {}
statuses = {}
decisions = {}

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
  for line in io.lines(path) do
    -- org_id, external_id, name, country, language, currency, ...
    local ext, cur = line:match("^%d+,([^,]+),[^,]*,[^,]*,[^,]*,([A-Z][A-Z][A-Z]),")
    if ext then
      table.insert(customers, {ext, cur})
    end
  end
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
end

local mean_delay = tonumber(os.getenv("BENCH_MEAN_DELAY_MS") or "")
if mean_delay then
  function delay()
    return -math.log(1 - math.random()) * mean_delay
  end
end

function request()
  local c = customers[math.random(1, #customers)]
  local body = string.format(
    '{"customer_external_id": "%s", "order_amount": "%d.00", "currency": "%s"}',
    c[1], math.random(1, 5000), c[2])
  return wrk.format("POST", "/v1/credit-checks", nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local d = body:match('"decision":"(%a+)"')
  if d then
    decisions[d] = (decisions[d] or 0) + 1
  end
end

local function merged(name)
  local m = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get(name)) do m[k] = (m[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(m) do table.insert(parts, string.format('"%s": %d', k, v)) end
  return table.concat(parts, ", ")
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "errors_status": %d, "errors_other": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "statuses": {%s}, "decisions": {%s}}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    merged("statuses"), merged("decisions")))
end
