-- wrk script: POSTs ranking bodies written by `recsys bench load --save-bodies DIR`, in turn,
-- so wrk and recsys bench send the very same bytes and their numbers can be set side by side.
--
--   recsys bench load --model demo --models models --batch-dist fixed:64 --distinct-bodies 64 --save-bodies /tmp/bodies
--   wrk -t1 -c16 -d20s -s bench/wrk/rank.lua http://127.0.0.1:8080/v1/models/demo/rank -- /tmp/bodies 64
--
-- Arguments after "--": the directory and how many bodies (body-0.json .. body-(N-1).json).
-- For MessagePack bodies pass a third argument "msgpack".

local bodies = {}
local next_body = 1
local content_type = "application/json"

function init(args)
  local dir = args[1] or error("usage: -- BODY_DIR COUNT [json|msgpack]")
  local count = tonumber(args[2] or "1")
  local ext = "json"
  if args[3] == "msgpack" then
    ext = "msgpack"
    content_type = "application/x-msgpack"
  end
  for i = 0, count - 1 do
    local path = string.format("%s/body-%d.%s", dir, i, ext)
    local f = io.open(path, "rb") or error("cannot open " .. path)
    bodies[#bodies + 1] = f:read("*a")
    f:close()
  end
  -- Each wrk thread starts at a different body so threads do not send identical sequences.
  next_body = (math.random(#bodies) - 1) % #bodies + 1
end

function request()
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format("POST", nil, { ["Content-Type"] = content_type }, body)
end

-- No response() callback: wrk already counts non-2xx answers, and a Lua call per response
-- would add client overhead to what is meant to be the lean reference client.
function done(summary, latency, requests)
  io.write(string.format("requests %d, non-2xx/3xx %d, socket errors connect %d read %d write %d timeout %d\n",
    summary.requests, summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write(string.format("latency ms p50 %.3f p95 %.3f p99 %.3f p99.9 %.3f max %.3f\n",
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
  io.write(string.format("rps %.1f\n", summary.requests / (summary.duration / 1e6)))
end
