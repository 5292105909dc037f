-- POST /v1/payments with automatic allocation: each request picks a customer uniformly at
-- random among those with planned payments in BENCH_PAYMENTS (payments.tsv of
-- bench/generate.py), then one of that customer's planned payments (currency, amount).
-- env: BENCH_TOKEN, BENCH_PAYMENTS, BENCH_RECEIVED_ON. Prints one JSON line (BENCH_RESULT)
-- with the count of each response status.
local token = os.getenv("BENCH_TOKEN")
local path = os.getenv("BENCH_PAYMENTS")
local received_on = os.getenv("BENCH_RECEIVED_ON")
local counter = 0
local threads = {}
local plan = {}
statuses = {}

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
  local index = {}
  for line in io.lines(path) do
    local c, cur, amt = line:match("^(%S+)\t(%S+)\t(%S+)$")
    if c then
      if not index[c] then
        index[c] = {}
        table.insert(plan, index[c])
      end
      table.insert(index[c], {c, cur, amt})
    end
  end
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  local lines = plan[math.random(1, #plan)]
  local p = lines[math.random(1, #lines)]
  local body = string.format(
    '{"customer_external_id": "%s", "amount": "%s", "currency": "%s", "received_on": "%s", "method": "bank_transfer"}',
    p[1], p[3], p[2], received_on)
  return wrk.format("POST", "/v1/payments", nil, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do merged[k] = (merged[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(merged) do table.insert(parts, string.format('"%d": %d', k, v)) end
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "errors_status": %d, "errors_other": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), table.concat(parts, ", ")))
end
