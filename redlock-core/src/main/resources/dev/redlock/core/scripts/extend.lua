-- Extend one or several leases in one call (renewals of many leases are coalesced this way).
-- ARGV[1]: the lease time in milliseconds; '0' only checks, changing nothing
-- Then, for each lease i: ARGV[2i] = number of keys of the lease, ARGV[2i+1] = its token.
-- KEYS:    the keys of all leases, lease after lease, in the same order.
-- For each lease: if every one of its keys holds its token, resets their expiry to the lease
-- time (relative, never an absolute time) and answers 1; otherwise changes nothing for that
-- lease and answers 0. A key that is gone is never re-created.
-- Returns one answer per lease, in order.
local lease = ARGV[1]
local answers = {}
local k = 1
local a = 2
while ARGV[a] do
  local count = tonumber(ARGV[a])
  local token = ARGV[a + 1]
  local held = true
  for i = k, k + count - 1 do
    local current = redis.pcall('GET', KEYS[i])
    if current ~= token then
      held = false
      break
    end
  end
  if held and lease ~= '0' then
    for i = k, k + count - 1 do
      redis.call('PEXPIRE', KEYS[i], lease)
      -- Read again after writing, to be told of the key's next change (CLIENT TRACKING NOLOOP).
      redis.call('EXISTS', KEYS[i])
    end
  end
  if held then
    answers[#answers + 1] = 1
  else
    answers[#answers + 1] = 0
  end
  k = k + count
  a = a + 2
end
return answers
