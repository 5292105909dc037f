-- GET /v1/invoices/inv_N with N uniform over 1..BENCH_INVOICES.
-- env: BENCH_TOKEN, BENCH_INVOICES. Prints one JSON line (BENCH_RESULT) when done.
local token = os.getenv("BENCH_TOKEN")
local n = tonumber(os.getenv("BENCH_INVOICES"))
local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  return wrk.format("GET", "/v1/invoices/inv_" .. math.random(1, n))
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "errors_status": %d, "errors_other": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
