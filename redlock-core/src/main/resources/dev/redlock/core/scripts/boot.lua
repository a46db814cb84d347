-- Shared by the acquire scripts, joined in where a script says `--#include boot` when the
-- scripts are loaded (Redis 6.2 scripts cannot call each other).
-- server_millis(): the server's time in milliseconds.
-- boot_age(marker, millis): how long ago, in ms, this master's data dates from, by its boot
-- marker (restart guard). The first acquire that finds no marker (the master started empty or
-- lost its data) creates it, dated:
-- - from the server's start, when INFO shows no sign of data lost since: no FLUSHALL, FLUSHDB,
--   SWAPDB, DEBUG, REPLICAOF/SLAVEOF or FAILOVER was ever run, no key was evicted, and the server
--   was never a replica promoted to primary (INFO replication shows a second replication id's
--   offset then: a Redis Cluster failover promotes without REPLICAOF). Such a
--   master has held all it ever granted since it started, so only a restart can have made it
--   forget a lock, and the guard then runs from that restart (a master up longer than the guard
--   counts at once);
-- - from now otherwise, or when INFO is not allowed (the full guard).
local function server_millis()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
local function data_since(millis)
  local server = redis.pcall('INFO', 'server')
  local stats = redis.pcall('INFO', 'stats')
  local commands = redis.pcall('INFO', 'commandstats')
  local replication = redis.pcall('INFO', 'replication')
  if type(server) ~= 'string' or type(stats) ~= 'string' or type(commands) ~= 'string'
      or type(replication) ~= 'string' then
    return millis
  end
  local promoted = tonumber(string.match(replication, 'second_repl_offset:(%-?%d+)'))
  if promoted ~= -1 then
    return millis
  end
  local uptime = tonumber(string.match(server, 'uptime_in_seconds:(%d+)'))
  local evicted = tonumber(string.match(stats, 'evicted_keys:(%d+)'))
  if not uptime or evicted ~= 0 then
    return millis
  end
  for _, lossy in ipairs({'flushall', 'flushdb', 'swapdb', 'debug', 'replicaof', 'slaveof', 'failover'}) do
    if string.find(commands, 'cmdstat_' .. lossy .. ':', 1, true) then
      return millis
    end
  end
  -- Whole seconds of the server's wall clock on both ends: the uptime may read up to a second
  -- more than the time since the start. One second less is never later than the start.
  return millis - math.max(0, uptime - 1) * 1000
end
local function boot_age(marker, millis)
  local created = tonumber(redis.call('GET', marker) or '')
  if not created then
    created = data_since(millis)
    redis.call('SET', marker, created)
  end
  return millis - created
end
