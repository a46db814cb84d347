-- Release one lease: compare-and-delete every key that still holds the token, and announce
-- each release on the key's channel so that waiters retry at once instead of polling.
-- KEYS:    the lock keys of the lease
-- ARGV[1]: the holder's token
-- ARGV[2]: the prefix of the release channels (channel = prefix .. key)
-- ARGV[3]: the release notice: an id of the lease that is not its token (tokens are never
--          published), so that a waiter hearing the same release from several masters, or
--          from its own process first, acts on it once; empty for a quiet release that
--          announces nothing (the clean-up of a failed attempt)
-- Returns the number of keys deleted.
local deleted = 0
for _, key in ipairs(KEYS) do
  if redis.pcall('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    if ARGV[3] ~= '' then
      redis.call('PUBLISH', ARGV[2] .. key, ARGV[3])
    end
    deleted = deleted + 1
  end
end
return deleted
