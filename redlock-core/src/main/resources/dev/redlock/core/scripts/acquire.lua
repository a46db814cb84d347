-- Acquire every key of one lease, all or nothing.
-- KEYS:    the lock keys of the lease
-- ARGV[1]: the holder's token
-- ARGV[2]: the lease time in milliseconds
-- Sets each key to the token with PX lease time only if no key is held by another token.
-- A key already holding our own token (an earlier attempt of the same acquisition) is reset.
-- Returns {1, 0} when acquired, {0, pttl} when refused, where pttl is the longest remaining
-- time in ms among the keys held by others (-1 if such a key has no expiry).
local token = ARGV[1]
local refused = false
local longest = -2
for _, key in ipairs(KEYS) do
  local current = redis.pcall('GET', key)
  if type(current) == 'table' and current.err then
    local kind = redis.call('TYPE', key)['ok']
    return redis.error_reply('WRONGTYPE lock key ' .. key .. ' holds a ' .. kind ..
      ' value, not a lock token; delete it or use another keyPrefix')
  end
  if current and current ~= token then
    refused = true
    local ttl = redis.call('PTTL', key)
    if ttl == -1 or (longest ~= -1 and ttl > longest) then
      longest = ttl
    end
  end
end
if refused then
  return {0, longest}
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, token, 'PX', ARGV[2])
end
return {1, 0}
