-- Shared by the acquire and hand-off scripts, joined in where a script says `--#include holders`.
-- holders(n, may_take): reads the lock keys KEYS[1..n] of a lease before it is granted, where
-- may_take(current) says whether a key's current value (false: the key is gone) lets the lease
-- take it. Returns refused, longest, err:
--   refused: whether some key may not be taken;
--   longest: the longest remaining time in ms among the refusing keys that are held (-1 if such a
--            key has no expiry, -2 if none is held);
--   err: an error reply when a key holds another type of value (nil otherwise): return it as is.
local function holders(n, may_take)
  local refused = false
  local longest = -2
  for i = 1, n do
    local key = KEYS[i]
    local current = redis.pcall('GET', key)
    if type(current) == 'table' and current.err then
      local kind = redis.call('TYPE', key)['ok']
      return true, longest, redis.error_reply('WRONGTYPE lock key ' .. key .. ' holds a ' .. kind ..
        ' value, not a lock token; delete it or use another keyPrefix')
    end
    if not may_take(current) then
      refused = true
      if current then
        local ttl = redis.call('PTTL', key)
        if ttl == -1 or (longest ~= -1 and ttl > longest) then
          longest = ttl
        end
      end
    end
  end
  return refused, longest, nil
end
