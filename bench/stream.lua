-- wrk script: POST one streaming chat completion per request (the fake upstream's 20 tokens, 5 ms
-- apart, unless STREAM_TOKENS / STREAM_DELAY_MS say otherwise) and print the figures run.sh parses.
-- wrk reads each chunked response to its end, so requests/s is streams/s and latency a stream's length.
-- Usage: wrk -s bench/stream.lua ... URL -- MODEL [API_KEY]

local model = "bench"

function init(args)
  if args[1] then model = args[1] end
  local tokens = os.getenv("STREAM_TOKENS") or "20"
  local delay = os.getenv("STREAM_DELAY_MS") or "5"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "text/event-stream"
  if args[2] then wrk.headers["Authorization"] = "Bearer " .. args[2] end
  wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello"}],"stream":true,'
    .. '"fake":{"tokens":' .. tokens .. ',"delay_ms":' .. delay .. '}}'
end

function done(summary, latency, requests)
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f mean_us=%.1f rps=%.0f requests=%d non2xx=%d socket_errors=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    summary.requests / seconds, summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
