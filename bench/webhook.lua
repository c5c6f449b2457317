-- wrk: POST pre-signed T-Bank notifications (one JSON per line of the file after "--"),
-- picked at random; counts answers that are not 200 with body exactly "OK".
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  bodies = {}
  for line in io.lines(args[1]) do if #line > 0 then bodies[#bodies + 1] = line end end
  math.randomseed(os.time() + #threads)
  headers = { ["Content-Type"] = "application/json" }
  bad = 0
end
function request() return wrk.format("POST", nil, headers, bodies[math.random(#bodies)]) end
function response(status, hdrs, body) if status ~= 200 or body ~= "OK" then bad = bad + 1 end end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + (t:get("bad") or 0) end
  io.write(string.format("not OK: %d\n", b))
end
