-- Acquire every key of one lease, all or nothing.
-- KEYS[1..n]:      the lock keys of the lease
-- KEYS[n+1..2n]:   with fencing, the fencing counter of each resource (no expiry)
-- KEYS[#KEYS]:     with the restart guard, this master's boot marker (the server time in ms when
--                  the marker was created: the first acquire after the master started empty or
--                  lost its data creates it)
-- ARGV[1]: the holder's token
-- ARGV[2]: the lease time in milliseconds
-- ARGV[3]: n, the number of lock keys
-- ARGV[4]: '1' to draw a fencing number, '0' not to
-- ARGV[5]: '1' to read (or create) the boot marker, '0' not to
-- Sets each key to the token with PX lease time only if no key is held by another token.
-- A key already holding our own token (an earlier attempt of the same acquisition) is reset.
-- Returns {1, 0, fence, age} when acquired, {0, pttl, -1, age} when refused, where pttl is the
-- longest remaining time in ms among the keys held by others (-1 if such a key has no expiry),
-- and age (with the restart guard; else -1) is how long ago, in ms, the boot marker was created.
-- fence (with fencing; else -1): the largest of this master's counters of the lease's resources,
-- each incremented first; a counter this master does not have (a new resource, or a master that
-- lost its data) is not created here, and the server's time in microseconds stands in for it, so
-- that a master that forgot its counters can never pull a token below the ones handed out before
-- (counters are created only by the fence script, with a value a quorum agreed on).
--#include boot
--#include grant
--#include holders
local token = ARGV[1]
local n = tonumber(ARGV[3])
local age = -1
if ARGV[5] == '1' then
  age = boot_age(KEYS[#KEYS], server_millis())
end
local refused, longest, err = holders(n, function(current) return not current or current == token end)
if err then
  return err
end
if refused then
  return {0, longest, -1, age}
end
return {1, 0, grant(token, ARGV[2], n, ARGV[4] == '1'), age}
