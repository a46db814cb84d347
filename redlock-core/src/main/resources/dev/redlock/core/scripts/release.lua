-- Release one lease: compare-and-delete every key that still holds the token, and announce
-- each release on the key's channel so that waiters retry at once instead of polling.
-- KEYS:    the lock keys of the lease
-- ARGV[1]: the holder's token
-- ARGV[2]: the prefix of the release channels (channel = prefix .. key); a leading '!' (not part
--          of the prefix) asks for a sharded channel (SPUBLISH, Redis 7+ cluster masters), with
--          PUBLISH where the server does not know SPUBLISH
-- ARGV[3]: the release notice: an id of the lease that is not its token (tokens are never
--          published), so that a waiter hearing the same release from several masters, or
--          from its own process first, acts on it once; empty for a quiet release that
--          announces nothing (the clean-up of a failed attempt)
-- Returns the number of keys deleted.
local prefix = ARGV[2]
local publish = 'PUBLISH'
if string.sub(prefix, 1, 1) == '!' then
  prefix = string.sub(prefix, 2)
  publish = 'SPUBLISH'
end
local function announce(channel, notice)
  if publish == 'SPUBLISH' then
    local sent = redis.pcall('SPUBLISH', channel, notice)
    if type(sent) ~= 'table' or not sent.err then
      return
    end
  end
  redis.call('PUBLISH', channel, notice)
end
local deleted = 0
for _, key in ipairs(KEYS) do
  if redis.pcall('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    if ARGV[3] ~= '' then
      announce(prefix .. key, ARGV[3])
    end
    deleted = deleted + 1
  end
end
return deleted
