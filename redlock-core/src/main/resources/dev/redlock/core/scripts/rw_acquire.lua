-- Acquire a read or a write lease of a reader-writer lock on one resource.
-- KEYS[1]: the writer key: the writer's token, with PX lease time
-- KEYS[2]: the readers: a sorted set of reader tokens, each scored by its expiry (server time, ms)
-- KEYS[3]: the waiting writer's mark (its token, with PX lease time): no new reader enters while
--          it exists, so that a steady stream of readers cannot starve a writer
-- KEYS[4]: with fencing (a writer only), the fencing counter of the write lock (no expiry)
-- KEYS[#KEYS]: with the restart guard, this master's boot marker (see acquire.lua)
-- ARGV[1]: the holder's token
-- ARGV[2]: the lease time in milliseconds
-- ARGV[3]: 'r' for a reader, 'w' for a writer
-- ARGV[4]: for a writer, '1' to leave its mark when only readers keep it out, '0' not to
-- ARGV[5]: '1' to read (or create) the boot marker, '0' not to
-- ARGV[6]: for a writer, '1' to draw a fencing number (as acquire.lua does), '0' not to
-- Expired readers are removed first. A writer is admitted when no other writer and no live reader
-- holds the lock; a reader when no writer holds it and no writer waits (has its mark here).
-- Returns {1, 0, fence, age} when admitted, {0, pttl, -1, age} when refused, where pttl is how long
-- the obstacle may still last in ms (the writer, the last reader, or the waiting writer's mark),
-- and fence (a writer with fencing; else -1) is drawn as in acquire.lua.
--#include boot
local token = ARGV[1]
local lease = tonumber(ARGV[2])
local millis = server_millis()
local age = -1
if ARGV[5] == '1' then
  age = boot_age(KEYS[#KEYS], millis)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', millis)
local writer = redis.call('GET', KEYS[1])
if ARGV[3] == 'w' then
  if writer and writer ~= token then
    return {0, redis.call('PTTL', KEYS[1]), -1, age}
  end
  if redis.call('ZCARD', KEYS[2]) > 0 then
    if ARGV[4] == '1' then
      local mark = redis.call('GET', KEYS[3])
      if not mark or mark == token then
        redis.call('SET', KEYS[3], token, 'PX', lease)
      end
    end
    local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
    return {0, tonumber(last[2]) - millis, -1, age}
  end
  redis.call('SET', KEYS[1], token, 'PX', lease)
  redis.call('EXISTS', KEYS[1]) -- read after writing: tracked again (CLIENT TRACKING NOLOOP)
  if redis.call('GET', KEYS[3]) == token then
    redis.call('DEL', KEYS[3])
  end
  local fence = -1
  if ARGV[6] == '1' then
    if redis.call('EXISTS', KEYS[4]) == 1 then
      fence = redis.call('INCR', KEYS[4])
    else
      local now = redis.call('TIME')
      fence = tonumber(now[1]) * 1000000 + tonumber(now[2])
    end
  end
  return {1, 0, fence, age}
end
if writer then
  return {0, redis.call('PTTL', KEYS[1]), -1, age}
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {0, redis.call('PTTL', KEYS[3]), -1, age}
end
redis.call('ZADD', KEYS[2], millis + lease, token)
local ttl = redis.call('PTTL', KEYS[2])
if ttl < lease then
  redis.call('PEXPIRE', KEYS[2], lease)
end
redis.call('ZSCORE', KEYS[2], token) -- read after writing: tracked again (CLIENT TRACKING NOLOOP)
return {1, 0, -1, age}
