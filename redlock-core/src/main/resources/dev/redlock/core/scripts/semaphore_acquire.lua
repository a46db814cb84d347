-- Acquire one permit of a semaphore with expiring permits.
-- KEYS[1]: the holders: a sorted set of holder tokens, each scored by its expiry (server time, ms)
-- KEYS[2]: the number of permits K the current holders agreed on
-- KEYS[3]: with the restart guard, this master's boot marker (see acquire.lua)
-- ARGV[1]: the holder's token
-- ARGV[2]: the lease time in milliseconds
-- ARGV[3]: K, the number of permits the caller uses
-- ARGV[4]: '1' to read (or create) the boot marker, '0' not to
-- Expired holders are removed first. While live holders use another K, nothing changes and the
-- stored K is returned (callers must agree on K). Else the caller is admitted when fewer than K
-- live holders remain (a token already admitted, by an earlier attempt of the same acquisition,
-- is admitted again).
-- Returns {1, 0, -1, age, -1} when admitted, {0, pttl, -1, age, -1} when full (pttl: until the
-- earliest holder's permit expires), {0, -2, -1, age, storedK} when K disagrees.
--#include boot
local token = ARGV[1]
local lease = tonumber(ARGV[2])
local permits = tonumber(ARGV[3])
local millis = server_millis()
local age = -1
if ARGV[4] == '1' then
  age = boot_age(KEYS[#KEYS], millis)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', millis)
local count = redis.call('ZCARD', KEYS[1])
local stored = tonumber(redis.call('GET', KEYS[2]) or '')
if count > 0 and stored and stored ~= permits then
  return {0, -2, -1, age, stored}
end
if not redis.call('ZSCORE', KEYS[1], token) and count >= permits then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(first[2]) - millis, -1, age, -1}
end
redis.call('ZADD', KEYS[1], millis + lease, token)
local ttl = redis.call('PTTL', KEYS[1]) -- also a read after writing: tracked again (CLIENT TRACKING NOLOOP)
if ttl < lease then
  redis.call('PEXPIRE', KEYS[1], lease)
  ttl = lease
end
redis.call('SET', KEYS[2], permits, 'PX', ttl)
redis.call('ZSCORE', KEYS[1], token) -- the last write was to the holders' set's companion: read the set again
return {1, 0, -1, age, -1}
