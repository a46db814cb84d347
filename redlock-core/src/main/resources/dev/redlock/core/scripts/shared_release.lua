-- Release one lease of a reader-writer lock or a semaphore, and announce it on one channel so
-- that every waiter for the resource (readers, writers, permit holders) retries at once.
-- KEYS:      the keys of the lease
-- ARGV[1]:   the holder's token
-- ARGV[2]:   the prefix of the release channels (channel = prefix .. notice key); a leading '!'
--            asks for a sharded channel, as in release.lua
-- ARGV[3]:   the release notice (an id of the lease, never its token); empty for a quiet
--            release that announces nothing (the clean-up of a failed attempt)
-- ARGV[4]:   the notice key: the key whose channel the waiters of this resource listen to
-- ARGV[4+i]: how KEYS[i] holds the lease: 's' a string holding the token (deleted if it still
--            does), 'z' a sorted set with the token as member (removed, with expired members),
--            'c' a companion of the sorted set before it (deleted once that set is gone)
-- Returns the number of keys or members removed; announces only when it removed something.
local token = ARGV[1]
local now = nil
local removed = 0
for i, key in ipairs(KEYS) do
  local mode = ARGV[4 + i]
  if mode == 's' then
    if redis.call('GET', key) == token then
      redis.call('DEL', key)
      removed = removed + 1
    end
  elseif mode == 'z' then
    removed = removed + redis.call('ZREM', key, token)
    if not now then
      local t = redis.call('TIME')
      now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  elseif mode == 'c' then
    if redis.call('EXISTS', KEYS[i - 1]) == 0 then
      redis.call('DEL', key)
    end
  end
end
if removed > 0 and ARGV[3] ~= '' then
  local prefix = ARGV[2]
  local sent = nil
  if string.sub(prefix, 1, 1) == '!' then
    prefix = string.sub(prefix, 2)
    sent = redis.pcall('SPUBLISH', prefix .. ARGV[4], ARGV[3])
  end
  if not sent or (type(sent) == 'table' and sent.err) then
    redis.call('PUBLISH', prefix .. ARGV[4], ARGV[3])
  end
end
return removed
