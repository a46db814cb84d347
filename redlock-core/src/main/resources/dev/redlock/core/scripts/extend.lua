-- Extend one or several leases in one call (renewals of many leases are coalesced this way).
-- ARGV[1]: the lease time in milliseconds; '0' only checks, changing nothing
-- Then, for each lease i: ARGV[2i] = number of keys of the lease, ARGV[2i+1] = its token.
-- KEYS:    the keys of all leases, lease after lease, in the same order.
-- For each lease: if every one of its keys holds its token, resets their expiry to the lease
-- time (relative, never an absolute time) and answers 1; otherwise changes nothing for that
-- lease and answers 0. A key that is gone is never re-created.
-- Returns one answer per lease, in order.
--
-- The keys are read with MGET, all at once, and the renewed ones read again the same way after
-- writing (a read is what makes a tracking client, CLIENT TRACKING ... NOLOOP, hear of a key's next
-- change, and our own write dropped that). Not one read per key: before Redis 7.0, every read
-- command a script runs makes the server track every key the script was given, so a read per key
-- cost time quadratic in the keys of the call (about a second for 2048 keys on Redis 6.2).
local lease = ARGV[1]

-- MGET in slices: unpack is bounded by Lua's C stack.
local function read(keys)
  local values = {}
  local from = 1
  while from <= #keys do
    local to = math.min(from + 999, #keys)
    local part = redis.call('MGET', unpack(keys, from, to))
    for j = 1, #part do
      values[from + j - 1] = part[j]
    end
    from = to + 1
  end
  return values
end

local current = read(KEYS)
local renewed = {}
local answers = {}
local k = 1
local a = 2
while ARGV[a] do
  local count = tonumber(ARGV[a])
  local token = ARGV[a + 1]
  local held = true
  for i = k, k + count - 1 do
    if current[i] ~= token then
      held = false
      break
    end
  end
  if held and lease ~= '0' then
    for i = k, k + count - 1 do
      redis.call('PEXPIRE', KEYS[i], lease)
      renewed[#renewed + 1] = KEYS[i]
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
-- Read again after writing, to be told of the keys' next change (CLIENT TRACKING NOLOOP).
read(renewed)
return answers
