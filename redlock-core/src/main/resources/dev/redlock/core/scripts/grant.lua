-- Shared by the acquire and hand-off scripts, joined in where a script says `--#include grant`.
-- grant(token, lease, n, fencing): sets lock keys KEYS[1..n] to token with PX lease, and with
-- fencing draws the fencing number from the counters KEYS[n+1..2n] (see acquire.lua); returns it,
-- or -1 without fencing.
local function grant(token, lease, n, fencing)
  for i = 1, n do
    redis.call('SET', KEYS[i], token, 'PX', lease)
    -- Read again after writing: a read is what makes a tracking client (CLIENT TRACKING ... NOLOOP)
    -- hear of the key's next change, and our own write just dropped that.
    redis.call('EXISTS', KEYS[i])
  end
  local fence = -1
  if fencing then
    local missing = false
    for i = n + 1, 2 * n do
      if redis.call('EXISTS', KEYS[i]) == 1 then
        local value = redis.call('INCR', KEYS[i])
        if value > fence then
          fence = value
        end
      else
        missing = true
      end
    end
    if missing then
      local now = redis.call('TIME')
      local micros = tonumber(now[1]) * 1000000 + tonumber(now[2])
      if micros > fence then
        fence = micros
      end
    end
  end
  return fence
end
