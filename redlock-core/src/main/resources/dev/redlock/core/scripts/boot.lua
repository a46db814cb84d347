-- Shared by the acquire scripts, joined in where a script says `--#include boot` when the
-- scripts are loaded (Redis 6.2 scripts cannot call each other).
-- server_millis(): the server's time in milliseconds.
-- boot_age(marker, millis): how long ago, in ms, this master's boot marker was created; the
-- first acquire after the master started empty or lost its data creates it (restart guard).
local function server_millis()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
local function boot_age(marker, millis)
  local created = tonumber(redis.call('GET', marker) or '')
  if not created then
    redis.call('SET', marker, millis)
    created = millis
  end
  return millis - created
end
