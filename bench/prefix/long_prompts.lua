-- 32 chat bodies of ~8 KB: 8 documents (a shared prefix each) x 4 questions, sent in rotation.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local doc = string.rep("The quick brown fox jumps over the lazy dog. ", 180)
local bodies = {}
for i = 1, 32 do
  bodies[i] = '{"model":"tiny","messages":[{"role":"system","content":"Document ' .. (i % 8) .. ': ' .. doc ..
    '"},{"role":"user","content":"question ' .. i .. '"}],"max_tokens":8}'
end
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, bodies[(n % 32) + 1])
end
