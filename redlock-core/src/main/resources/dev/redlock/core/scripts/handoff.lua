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
--#include holders
local token = ARGV[1]
local from = ARGV[6]
local n = tonumber(ARGV[3])
local age = -1
if ARGV[5] == '1' then
  age = boot_age(KEYS[#KEYS], server_millis())
end
-- A key may be taken where it holds the old token, or the new one (an earlier call of this acquisition).
local refused, longest, err = holders(n, function(current) return current == from or current == token end)
if err then
  return err
end
if refused then
  return {0, longest, -1, age}
end
return {1, 0, grant(token, ARGV[2], n, ARGV[4] == '1'), age}
