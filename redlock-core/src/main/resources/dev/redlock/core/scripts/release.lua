-- Release one lease: compare-and-delete every key that still holds the token, and announce
-- each release on the key's channel so that waiters retry at once instead of polling.
-- KEYS:    the lock keys of the lease
-- ARGV[1]: the holder's token
-- ARGV[2]: the prefix of the release channels (channel = prefix .. key)
-- Returns the number of keys deleted.
local deleted = 0
for _, key in ipairs(KEYS) do
  if redis.pcall('GET', key) == ARGV[1] then
    redis.call('DEL', key)
    redis.call('PUBLISH', ARGV[2] .. key, 'released')
    deleted = deleted + 1
  end
end
return deleted
