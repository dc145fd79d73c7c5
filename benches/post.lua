-- wrk script: POST the AdmissionReview named by $BODY as JSON; at the end one machine-readable
-- line: requests, errors, latency p50 and p99 in microseconds.
local file = assert(io.open(os.getenv("BODY"), "r"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("RESULT %d %d %d %d\n", summary.requests,
      e.connect + e.read + e.write + e.status + e.timeout,
      latency:percentile(50), latency:percentile(99)))
end
