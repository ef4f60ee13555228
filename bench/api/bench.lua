-- wrk script for the luna2d API benchmark (bench/api/run drives it).
--
--   wrk -t1 -c32 -d10s -s bench.lua http://127.0.0.1:PORT -- MODE TOKEN [ARG]
--
-- MODE get   GET  /config/node/<random node>      (ARG: number of nodes)
-- MODE post  POST /config/node/<random node>      (ARG: number of nodes), a
--            new comment each time, so every request is a real write
-- MODE path  GET  ARG                             (a fixed path)
--
-- Node names are node00001 .. nodeNNNNN, as the loader creates them.
-- done() prints one line "WRKJSON {...}" that the runner parses.

local mode, token, arg
local nodes = 1
local counter = 0
local thread_id = 0

function init(args)
   mode = args[1] or "get"
   token = args[2] or ""
   arg = args[3]
   if mode == "get" or mode == "post" then
      nodes = tonumber(arg) or 1
   end
   math.randomseed(os.time() + thread_id * 7919)
   wrk.headers["x-access-tokens"] = token
   if mode == "post" then
      wrk.headers["content-type"] = "application/json"
   end
end

function setup(thread)
   thread_id = thread_id + 1
   thread:set("thread_id", thread_id)
end

local function node_name()
   return string.format("node%05d", math.random(1, nodes))
end

function request()
   if mode == "get" then
      return wrk.format("GET", "/config/node/" .. node_name())
   elseif mode == "post" then
      local name = node_name()
      counter = counter + 1
      local body = string.format('{"config":{"node":{"%s":{"comment":"bench update %d"}}}}', name, counter)
      return wrk.format("POST", "/config/node/" .. name, nil, body)
   else
      return wrk.format("GET", arg)
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9), latency.max))
end
