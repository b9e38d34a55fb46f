-- wrk script: POST one streaming chat completion per request (the fake upstream's 20 tokens, 5 ms
-- apart, unless STREAM_TOKENS / STREAM_DELAY_MS say otherwise) and print the figures run.sh parses.
-- wrk reads each chunked response to its end, so requests/s is streams/s and latency a stream's length.
-- Usage (from the repository's root, as run.sh runs it): wrk -s bench/stream.lua ... URL -- MODEL [API_KEY]

-- chat.lua's done(), which prints the RESULT line; init() is this script's own.
dofile("bench/chat.lua")

function init(args)
  local model = args[1] or "bench"
  local tokens = os.getenv("STREAM_TOKENS") or "20"
  local delay = os.getenv("STREAM_DELAY_MS") or "5"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "text/event-stream"
  if args[2] then wrk.headers["Authorization"] = "Bearer " .. args[2] end
  wrk.body = '{"model":"' .. model .. '","messages":[{"role":"user","content":"hello"}],"stream":true,'
    .. '"fake":{"tokens":' .. tokens .. ',"delay_ms":' .. delay .. '}}'
end
