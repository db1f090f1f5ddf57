-- wrk script: POST a JSON body built from BENCH_BODY (its "%d" is replaced with a random
-- key in [0, BENCH_KEYS) per request); prints one JSON summary line at the end.
local template = os.getenv("BENCH_BODY")
local keys = tonumber(os.getenv("BENCH_KEYS") or "100000")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  return wrk.format(nil, nil, nil, string.format(template, math.random(0, keys - 1)))
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests": %d, "duration_us": %d, "status_errors": %d, "connect_errors": %d,'
      .. ' "read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d,'
      .. ' "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
