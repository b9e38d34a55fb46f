-- wrk script: POST one small chat completion per request and print the figures run.sh parses.
-- Usage: wrk -s bench/chat.lua ... URL -- MODEL [API_KEY]
-- wrk's own --latency table rounds to 0.01 ms; done() reads the histogram in microseconds.

local model = "bench"

function init(args)
  if args[1] then model = args[1] end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  -- Sent to the upstream too (which ignores it) so both requests are the same size.
  if args[2] then wrk.headers["Authorization"] = "Bearer " .. args[2] end
  wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello"}],"max_tokens":16}'
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f mean_us=%.1f rps=%.0f requests=%d non2xx=%d socket_errors=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    summary.requests / seconds, summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
