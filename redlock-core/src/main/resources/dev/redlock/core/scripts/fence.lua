-- Confirm a fencing number: on a master that still holds every key of the lease, raise each of
-- the lease's fencing counters to at least the number (creating it if missing). A later holder's
-- acquire increments a counter of a master in this confirming quorum, so its number is larger.
-- KEYS[1..n]:      the lock keys of the lease
-- KEYS[n+1..2n]:   the fencing counter of each resource (no expiry)
-- ARGV[1]: the holder's token
-- ARGV[2]: the fencing number
-- Returns 1 when confirmed, 0 when this master no longer holds the lease (nothing written).
local n = #KEYS / 2
for i = 1, n do
  if redis.call('GET', KEYS[i]) ~= ARGV[1] then
    return 0
  end
end
local t = tonumber(ARGV[2])
for i = n + 1, 2 * n do
  local current = tonumber(redis.call('GET', KEYS[i]) or '0')
  if current < t then
    redis.call('SET', KEYS[i], ARGV[2])
  end
end
return 1
