-- 32 chat bodies of ~8 KB: 8 documents (a shared prefix each, different text throughout) x 4 questions,
-- sent in rotation. PAUSE_MS (environment): each connection waits that long before each request, so the
-- rate is fixed (about connections / pause) instead of as fast as the gateway answers.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
for i = 1, 32 do
  local d = i % 8
  local doc = string.rep("Document " .. d .. " says the quick brown fox jumps over lazy dog number " .. d .. ". ", 120)
  bodies[i] = '{"model":"tiny","messages":[{"role":"system","content":"' .. doc ..
    '"},{"role":"user","content":"question ' .. i .. '"}],"max_tokens":8}'
end
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % 32) + 1])
end
local pause = tonumber(os.getenv("PAUSE_MS") or "")
if pause then
  delay = function()
    return pause
  end
end
