-- Extend one or several leases kept as members of sorted sets (readers, semaphore permits), in one
-- call, as extend.lua does for plain keys.
-- ARGV[1]: the lease time in milliseconds; 0 only checks, changing nothing
-- Then, for each lease i: ARGV[2i] = number of keys of the lease, ARGV[2i+1] = its token.
-- KEYS:    per lease, its sorted set, then companion keys that must live as long (the semaphore's
--          K), lease after lease, in the same order.
-- For each lease: if its token is a live member of the set, rescores it to expire the lease time
-- from now, keeps the set and its companions alive at least that long, and answers 1; otherwise
-- changes nothing for that lease and answers 0. A member or key that is gone is never re-created.
-- Returns one answer per lease, in order.
local lease = tonumber(ARGV[1])
local now = redis.call('TIME')
local millis = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local answers = {}
local k = 1
local a = 2
while ARGV[a] do
  local count = tonumber(ARGV[a])
  local token = ARGV[a + 1]
  local score = tonumber(redis.call('ZSCORE', KEYS[k], token) or '')
  if score and score > millis and lease > 0 then
    redis.call('ZADD', KEYS[k], 'XX', millis + lease, token)
    for i = k, k + count - 1 do
      local ttl = redis.call('PTTL', KEYS[i])
      if ttl >= 0 and ttl < lease then
        redis.call('PEXPIRE', KEYS[i], lease)
      end
    end
    redis.call('ZSCORE', KEYS[k], token) -- read after writing: tracked again (CLIENT TRACKING NOLOOP)
  end
  if score and score > millis then
    answers[#answers + 1] = 1
  else
    answers[#answers + 1] = 0
  end
  k = k + count
  a = a + 2
end
return answers
