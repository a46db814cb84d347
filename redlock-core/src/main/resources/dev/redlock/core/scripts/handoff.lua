-- Hand a lease's keys from its holder to the next holder, in one call: the release of the old
-- lease and the acquire of the new one as one atomic step (for a waiter of the same process that
-- is next in line when the holder releases).
-- KEYS and ARGV[1..5]: as for acquire.lua (ARGV[1] is the new holder's token).
-- ARGV[6]: the old holder's token.
-- Moves the keys only where every one of them still holds the old token (or already the new one:
-- an earlier call of the same acquisition): they are set to the new token with PX lease time, and
-- the fencing number and boot marker are handled as acquire.lua does. Anything else refuses,
-- changing nothing: a key held by a third token (the old one expired and someone else took the
-- lock) and a key that is gone alike; the old holder's keys are then not there to release.
-- Returns what acquire.lua returns: {1, 0, fence, age} when moved, {0, pttl, -1, age} when
-- refused (pttl: the longest remaining time of a key held by a third token, -1 without expiry, -2
-- when none is held by one).
--#include boot
--#include grant
local token = ARGV[1]
local from = ARGV[6]
local n = tonumber(ARGV[3])
local age = -1
if ARGV[5] == '1' then
  age = boot_age(KEYS[#KEYS], server_millis())
end
local refused = false
local longest = -2
for i = 1, n do
  local key = KEYS[i]
  local current = redis.pcall('GET', key)
  if type(current) == 'table' and current.err then
    local kind = redis.call('TYPE', key)['ok']
    return redis.error_reply('WRONGTYPE lock key ' .. key .. ' holds a ' .. kind ..
      ' value, not a lock token; delete it or use another keyPrefix')
  end
  if current ~= from and current ~= token then
    refused = true
    if current then
      local ttl = redis.call('PTTL', key)
      if ttl == -1 or (longest ~= -1 and ttl > longest) then
        longest = ttl
      end
    end
  end
end
if refused then
  return {0, longest, -1, age}
end
return {1, 0, grant(token, ARGV[2], n, ARGV[4] == '1'), age}
