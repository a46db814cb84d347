-- How old this master's data is, for health checks: the age in ms of its boot marker, or, when it
-- has none yet, the age the next acquire would give it (see boot.lua); creates nothing.
-- KEYS[1]: this master's boot marker
-- Returns the age in milliseconds.
--#include boot
local millis = server_millis()
local created = tonumber(redis.call('GET', KEYS[1]) or '')
if not created then
  created = data_since(millis)
end
return millis - created
